"""OpenVINO's sparse weights decompression (CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE) for INT8 cases.

Real parts: a small network of linear layers with 90 % of its weights zeroed (L1), quantized by
NNCF, compiled by OpenVINO; which FullyConnected layers run sparse kernels is read from the
compiled model's runtime graph. The kernels exist on CPUs with AMX only: there the layers whose
INT8 weights are at least `rate` zeros (and whose dimensions are multiples of 64) run them;
elsewhere none does. The case option, its checks, and benchmark_app's `-load_config` too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from benchsuite.bench.int8 import int8_layers, nncf_problem, quantize_ir
from benchsuite.bench.measurement import SPARSE_RATE, BenchSettings
from benchsuite.bench.paired import PairedSettings, measure_paired
from benchsuite.pipeline.grid import GridError, generate_cases
from benchsuite.pipeline.run import validate
from benchsuite.pipeline.settings import BY_NAME
from benchsuite.recipe.case import Case, CaseError

pytestmark = pytest.mark.usefixtures("one_thread")
SPARSITY = 0.9


def amx_missing() -> str | None:
    """Why this machine cannot run sparse INT8 kernels (None: it has AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "needs /proc/cpuinfo to tell whether the CPU has AMX"
    if "amx_int8" not in flags.split():
        return "needs a CPU with AMX (no amx_int8 in /proc/cpuinfo): OpenVINO has no sparse " \
               "INT8 kernels without it"
    return None


class Linears(nn.Module):
    """Two 128x128 linear layers (dimensions multiples of 64) and a 128 -> 10 classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                                  nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.fixture(scope="module")
def int8_models(tmp_path_factory, one_thread):
    """(dense INT8 IR, 90 %-sparse INT8 IR) of the same network."""
    if (problem := nncf_problem()) is not None:
        pytest.skip(problem)
    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.export.onnx import export_onnx

    work = tmp_path_factory.mktemp("sparse")
    calibration = np.random.default_rng(0).standard_normal((32, 1, 8, 8)).astype(np.float32)
    out = {}
    for name, sparsity in (("dense", 0.0), ("sparse", SPARSITY)):
        torch.manual_seed(0)
        model = Linears().eval()
        if sparsity:
            for layer in (model.body[3], model.body[5]):
                torch_prune.l1_unstructured(layer, "weight", sparsity)
        onnx = export_onnx(model, (1, 8, 8), work / name / "model.onnx")
        ir = onnx_to_ir(onnx, work / name / "model.xml", (1, 8, 8))
        out[name], _ = quantize_ir(ir, calibration, work / name / "int8" / "model.xml")
    return out


def test_without_a_rate_no_layer_runs_sparse_kernels(int8_models):
    layers = int8_layers(int8_models["sparse"])
    assert layers.quantized == layers.total > 0 and layers.fully_connected == 4
    assert layers.sparse == 0
    assert "sparse" not in layers.describe(None)


def test_the_rate_selects_the_layers_sparse_enough(int8_models):
    if (reason := amx_missing()) is not None:
        pytest.skip(reason)
    below = int8_layers(int8_models["sparse"], sparse_weights_rate=0.5)
    # the two 90 %-sparse 128x128 layers; not 64 -> 128 (dense), not the 128 -> 10 head
    assert below.sparse == 2, below
    assert "2/4 fc layers run sparse kernels" in below.describe(0.5)
    assert int8_layers(int8_models["sparse"], sparse_weights_rate=0.95).sparse == 0
    assert int8_layers(int8_models["dense"], sparse_weights_rate=0.5).sparse == 0


def test_on_a_cpu_without_amx_the_rate_changes_nothing(int8_models):
    if amx_missing() is None:
        pytest.skip("this CPU has AMX: the kernels exist (the test above)")
    assert int8_layers(int8_models["sparse"], sparse_weights_rate=0.5).sparse == 0


def test_paired_measurement_runs_with_the_rate_and_records_it(int8_models):
    settings = PairedSettings(precision="f32", sparse_weights_rate=0.5, max_seconds=3,
                              min_rounds=2, round_size=5, warmup=5)
    result = measure_paired({"dense": int8_models["dense"], "sparse": int8_models["sparse"]},
                            settings)
    assert result.conditions["sparse_weights_rate"] == 0.5
    assert result.speedup > 0 and result.ci_low <= result.speedup <= result.ci_high
    with pytest.raises(ValueError, match="sparse_weights_rate"):
        PairedSettings(sparse_weights_rate=0)


def test_benchmark_app_gets_the_rate_through_load_config(tmp_path):
    from benchsuite.bench.runner import build_command, find_benchmark_app

    exe = find_benchmark_app()
    cmd, _ = build_command(tmp_path / "m.xml", tmp_path / "reports",
                           BenchSettings(precision="f32", sparse_weights_rate=0.7), exe)
    config = Path(cmd[cmd.index("-load_config") + 1])
    assert json.loads(config.read_text()) == {"CPU": {SPARSE_RATE: "0.7"}}
    plain, _ = build_command(tmp_path / "m.xml", tmp_path / "r2", BenchSettings(), exe)
    assert "-load_config" not in plain


def test_the_case_option_reads_checks_and_labels():
    option = BY_NAME["sparse-weights-rate"]
    assert option.value(None) is None and option.value("off") is None
    assert option.value("0.5") == 0.5
    for bad in ("0", "1.5", "x"):
        with pytest.raises(ValueError):
            option.value(bad)
    case = Case(recipe="level_elementwise", precision="int8", sparse_weights_rate=0.5)
    assert case.label.endswith("-int8-swr0.5")
    assert case.bench_settings()["sparse_weights_rate"] == 0.5
    assert case.paired_settings() == Case(recipe="level_elementwise").paired_settings()
    assert "sparse_weights_rate" not in Case(recipe="level_elementwise").bench_settings()
    for wrong in ({"precision": "f32"}, {"precision": "int8", "device": "GPU"}):
        case = Case(recipe="level_elementwise", sparse_weights_rate=0.5, **wrong)
        with pytest.raises(CaseError, match="INT8 FullyConnected layers on a CPU only"):
            validate(case)  # before any work


def test_the_grid_gives_the_rate_to_its_int8_cases_only():
    base = Case(recipe="", sparse_weights_rate=0.5)
    cases = generate_cases(recipes_glob="level_elementwise", precisions=["f32", "int8"], base=base)
    assert {c.precision: c.sparse_weights_rate for c in cases} == {"f32": None, "int8": 0.5}
    with pytest.raises(GridError, match="none is selected"):
        generate_cases(recipes_glob="level_elementwise", precisions=["f32"], base=base)
