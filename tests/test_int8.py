"""INT8 (NNCF post-training quantization) and the Top-1 of the deployed model.

A small CNN trained on digits (real training, real OpenVINO, real NNCF): its INT8 model runs
INT8 kernels and keeps Top-1 within a few points of f32; bf16 likewise where the CPU has it;
the bench stage quantizes and scores in the bench env (no torch); an INT8 case on a device without
INT8 fails before any training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchsuite.bench.accuracy import deployed_accuracy
from benchsuite.bench.devices import precision_skip_reason
from benchsuite.bench.evaldata import CALIBRATION_SIZE, calibration_indices, read_eval_data
from benchsuite.bench.int8 import (
    capability_problem,
    int8_layers,
    int8_problem,
    nncf_problem,
    quantize_ir,
)
from benchsuite.core.errors import UserError
from benchsuite.core.paths import project_root
from benchsuite.pipeline.assemble import TORCH_ONLY, top1_fields

pytestmark = pytest.mark.usefixtures("one_thread")
pytest_plugins = ["pytester"]
DENSE = {"model": "small_cnn", "dataset": "digits", "data_dir": None, "seed": 0, "epochs": 20}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    """A small CNN trained on digits by the train stage: its IR, evaluation blob and results."""
    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.pipeline.stages import train_stage

    work = tmp_path_factory.mktemp("int8")
    dense = train_stage(DENSE, {}, work)
    shape = tuple(dense.result["input_shape"])
    ir = onnx_to_ir(dense.files["onnx"], work / "dense" / "model.xml", shape)
    return {"ir": ir, "onnx": dense.files["onnx"], "blob": dense.files["eval_data"],
            "data": read_eval_data(dense.files["eval_data"]), "result": dense.result,
            "work": work}


@pytest.fixture(scope="module")
def int8_ir(trained):
    data = trained["data"]
    return quantize_ir(trained["ir"], data.x_calib, trained["work"] / "int8" / "model.xml")


def test_eval_blob_calibrates_on_training_images_only(trained, digits):
    from benchsuite.data import load_case_data

    data = trained["data"]
    assert data.x_calib.shape == (CALIBRATION_SIZE, 1, 32, 32)
    train = load_case_data("digits", seed=0).x_train  # the training split less validation
    idx = calibration_indices(len(train))
    assert (data.x_calib == train.numpy()[idx]).all()
    assert data.test_images == len(digits.y_test) == 899
    assert (data.y_test == digits.y_test.numpy()).all()


def test_f32_deployed_top1_agrees_with_torch(trained):
    data = trained["data"]
    f32 = deployed_accuracy(trained["ir"], data.x_test, data.y_test, precision="f32")
    assert f32["precision"] == "f32" and f32["test_images"] == 899
    assert trained["result"]["top1"] > 0.85, "the small CNN did not train"
    assert abs(f32["top1"] - trained["result"]["top1"]) <= 2 / 899  # at most 2 images apart


def test_int8_runs_int8_kernels_and_keeps_top1(trained, int8_ir):
    path, info = int8_ir
    data = trained["data"]
    assert info["fake_quantize_ops"] > 0 and "300 calibration images" in info["quantization"]
    layers = int8_layers(path)
    assert layers.total > 0 and layers.quantized == layers.total, layers
    assert int8_layers(trained["ir"]).quantized == 0  # the f32 model runs none
    f32 = deployed_accuracy(trained["ir"], data.x_test, data.y_test, precision="f32")
    int8 = deployed_accuracy(path, data.x_test, data.y_test, precision="f32")
    assert abs(int8["top1"] - f32["top1"]) <= 0.03, (int8["top1"], f32["top1"])


def test_bf16_deployed_top1(trained):
    if (reason := precision_skip_reason("CPU", "bf16")) is not None:
        pytest.skip(reason)
    data = trained["data"]
    f32 = deployed_accuracy(trained["ir"], data.x_test, data.y_test, precision="f32")
    bf16 = deployed_accuracy(trained["ir"], data.x_test, data.y_test, precision="bf16")
    assert bf16["precision"] == "bf16"
    assert abs(bf16["top1"] - f32["top1"]) <= 0.03, (bf16["top1"], f32["top1"])


BENCH_STAGE = """
import json, sys
from pathlib import Path
from benchsuite.pipeline.stages import bench_stage
onnx, blob, work = (Path(a) for a in sys.argv[1:4])
spec = {"input_shape": [1, 32, 32], "int8": True,
        "settings": {"device": "CPU", "precision": "f32", "niter": 50},
        "paired": {"threads": 1, "max_seconds": 2.0}}
files = {"dense_onnx": onnx, "pruned_onnx": onnx, "eval_data": blob}
out = bench_stage(spec, files, work).result
print(json.dumps({k: out[k] for k in ("top1_deployed", "dense_top1_deployed", "quantization",
                  "int8_layers", "speedup", "top1_method", "conditions")}
                 | {"torch_imported": "torch" in sys.modules}))
"""


def test_bench_env_quantizes_and_scores_without_torch(trained, tmp_path):
    """dense -> INT8 through the bench stage in the bench worker's env (openvino + nncf, no
    torch: the tox env `bench`, which CI builds)."""
    python = project_root() / ".tox" / "bench" / "bin" / "python"
    if not python.is_file():
        pytest.skip("tox env 'bench' not built (tox -e bench --notest)")
    has_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True,
                               check=False).returncode == 0
    assert not has_torch, "the bench env has torch"
    proc = subprocess.run(
        [str(python), "-c", BENCH_STAGE, str(trained["onnx"]), str(trained["blob"]),
         str(tmp_path)], capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(project_root()), "PATH": "/usr/bin:/bin"}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not out["torch_imported"]
    assert out["quantization"].startswith("NNCF ") and out["int8_layers"].split("/")[0] != "0"
    assert out["conditions"]["precision"] == "f32"  # dense reference and unquantized ops
    assert abs(out["top1_deployed"] - out["dense_top1_deployed"]) <= 0.03
    assert out["top1_method"] == "OpenVINO CPU INT8 (NNCF), dense at f32, batch 1"
    assert out["speedup"] > 0


def test_row_takes_the_deployed_top1_and_keeps_torchs():
    dense = {"top1": 0.98, "top5": 1.0, "test_images": 899}
    pruned = {"top1": 0.975, "top5": 1.0, "test_images": 899}
    bench = {"top1_deployed": 0.96, "top5_deployed": 0.99, "dense_top1_deployed": 0.979,
             "dense_top5_deployed": 1.0, "test_images_deployed": 899,
             "top1_method": "OpenVINO CPU INT8 (NNCF), dense at f32, batch 1",
             "quantization": "NNCF", "int8_layers": "22/22"}
    row = top1_fields(dense, pruned, bench)
    assert (row["top1"], row["dense_top1"], row["top1_torch"]) == (0.96, 0.979, 0.975)
    assert row["top1_ci_low"] < 0.96 < row["top1_ci_high"]
    assert row["top1_torch_ci_low"] < 0.975 < row["top1_torch_ci_high"]
    # the -1pt floor applies to the deployed figures: 0.96 < 0.979 - 0.01 fails it
    assert row["top1"] < row["dense_top1"] - 0.01 <= row["top1_torch"]
    legacy = top1_fields(dense, pruned, {})
    assert legacy["top1"] == 0.975 and legacy["top1_method"] == TORCH_ONLY


def test_int8_problem_names_what_is_missing():
    why = capability_problem("CPU", ("FP32", "BF16"))
    assert why is not None and "does not list INT8" in why and "FP32, BF16" in why
    assert capability_problem("CPU", ("FP32", "INT8")) is None
    assert "not one here" in (capability_problem("XPU", None) or "")
    bare = Path("/usr/bin/python3")
    if not bare.is_file() or nncf_problem(str(bare)) is None:
        pytest.skip("no interpreter without nncf on this machine")
    assert "pip install nncf==" in (nncf_problem(str(bare)) or "")
    assert nncf_problem() is None  # this env has it (requirements.txt)


def test_a_bench_worker_without_nncf_refuses_the_job_as_a_user_error(monkeypatch, tmp_path):
    # a --no-local-workers bench worker is on its own host: the session cannot check it up
    # front, so its stage says what is missing, as a UserError (dead-lettered at once, no retry)
    monkeypatch.setitem(sys.modules, "nncf", None)  # import nncf -> ImportError
    with pytest.raises(UserError, match=r"needs nncf on this bench worker.*pip install nncf=="):
        quantize_ir(tmp_path / "m.xml", np.zeros((1, 1, 8, 8), np.float32), tmp_path / "q.xml")


def test_int8_on_this_cpu_passes_the_check():
    why = int8_problem("CPU")
    if why is not None and "does not list INT8" in why:
        pytest.skip(why)
    assert why is None


NO_NNCF = """
import importlib.abc, sys
class NoNNCF(importlib.abc.MetaPathFinder):  # a bench environment without nncf
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "nncf":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoNNCF())
"""


def test_int8_case_without_nncf_fails_before_training(pytester, monkeypatch, tmp_path):
    test = (project_root() / "experiments" / "test_latency.py").read_text()
    pytester.makepyfile(test_latency=test)
    pytester.makeconftest(NO_NNCF)
    pytester.makeini("[pytest]\nmarkers =\n    latency: experiment\n"
                     "benchsuite_dataset = digits\n")  # the smoke data
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    result = pytester.runpytest_subprocess(
        "-p", "benchsuite.frontends.plugin", "-m", "latency", "--executor", "local",
        "--wandb", "disabled", "--no-calibration", "--recipes", "level_elementwise",
        "--precision", "int8", "--dense-epochs", "1", "--epochs", "1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*precision int8 needs nncf in the bench environment*"
                                 "pip install nncf==*"])
    assert "dense baseline" not in result.stdout.str()
    assert not (tmp_path / "cache" / "dense").exists()  # no dense model was trained
