"""The latency table through the stages: built by the bench stage (real OpenVINO) for a ResNet-20
export, in-process and by a real bench worker over Redis, carried as JSON to the pruner (torch
side); the bench side's prediction of the pruned export agrees with the pruner's plan."""

from __future__ import annotations

import json

import pytest
import torch

from benchsuite.bench.latency_table import predict_pair
from benchsuite.export.onnx import export_onnx
from benchsuite.latency.spec import fit_per_op
from benchsuite.models import build_model
from benchsuite.pipeline.stages import (
    LATENCY_TABLE,
    _to_ir,
    calibration_net_stage,
    latency_table_stage,
)
from benchsuite.prune import CompressionScheduler
from benchsuite.recipe import parse_recipe

pytest_plugins = ["broker_support"]

RECIPE = """version: 1
pruners:
  budget: {class: LatencyBudgetPruner, speedup: 1.3, round_to: 32}
extensions:
  thin: {class: FilterRemover}
policies:
  - pruner: {instance_name: budget}
    epochs: [0]
  - extension: {instance_name: thin}
    epochs: [0]
"""


def test_table_stage_feeds_the_pruner_and_the_prediction(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1).eval()
    dense_onnx = export_onnx(model, (1, 32, 32), tmp_path / "dense.onnx")
    cal = calibration_net_stage({"model": "resnet20", "input_shape": [1, 32, 32],
                                 "num_classes": 10, "step": 32}, {}, tmp_path / "cal")
    out = latency_table_stage({
        "input_shape": [1, 32, 32], "network": "resnet20", "step": 32,
        "settings": {"device": "CPU", "precision": "f32"}, "paired": {"threads": 1},
    }, {"dense_onnx": dense_onnx} | cal.files, tmp_path / "work")
    assert set(cal.files) == {"untrained_onnx", "calibration_onnx"}
    table = json.loads(json.dumps(out.result))["table"]  # as it crosses the broker
    assert set(table["networks"]) == {"resnet20"} and table["step"] == 32
    assert table["conditions"]["clock"] == "cpu time per inference"
    # the calibration network (stage 3's inner widths 64 -> 32: the same ops) measured
    # against the dense one, and the per-op cost fitted on its speed-up as stored
    net = table["networks"]["resnet20"]
    c = net["calibration"]
    # (19 convs, 2 shortcut convs, the classifier)
    assert c["ops"] == net["ops"] == 22 and c["sum_us"] < net["sum_us"]
    assert c["ci_low"] <= c["speedup"] <= c["ci_high"] and c["ci_low"] > 1  # measured faster
    assert c["method"].startswith("in-process paired rounds")  # the cases' own
    assert net["per_op_us"] == pytest.approx(
        fit_per_op(net["sum_us"], 22, c["sum_us"], 22, 1 / c["speedup"]))

    calib = (torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,)))
    example = torch.zeros(1, 1, 32, 32)
    sched = CompressionScheduler(parse_recipe(RECIPE), model, example, calibration=calib,
                                 latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    assert plan["predicted_us"] <= plan["target_us"]

    pruned_onnx = export_onnx(model.eval(), (1, 32, 32), tmp_path / "pruned.onnx")
    irs, _ = _to_ir({"dense_onnx": dense_onnx, "pruned_onnx": pruned_onnx},
                    ("dense", "pruned"), (1, 32, 32), tmp_path / "ir")
    pred = predict_pair(irs, table, None)
    assert pred["latency_predicted_us"] == pytest.approx(plan["predicted_us"], rel=1e-6)
    assert pred["speedup_predicted"] == pytest.approx(plan["dense_us"] / plan["predicted_us"],
                                                      rel=1e-6)
    assert pred["speedup_predicted"] >= 1.3


def test_table_stage_over_redis(redis_server, start_worker, executor_for, tmp_path, monkeypatch):
    """A real bench worker serves `latency_table` from Redis; the table comes back as the job's
    JSON result, the form in which run_case hands it to the prune job's spec."""
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "worker-cache"))  # the worker's
    torch.manual_seed(0)
    dense_onnx = export_onnx(build_model("resnet20", 10, 1).eval(), (1, 32, 32),
                             tmp_path / "dense.onnx")
    start_worker(redis_server.url, "bench")
    res = executor_for(redis_server.url).run(LATENCY_TABLE, {
        "input_shape": [1, 32, 32], "network": "resnet20", "step": 64,
        "settings": {"device": "CPU", "precision": "f32"}, "paired": {"threads": 1},
    }, {"dense_onnx": dense_onnx})
    table = res.result["table"]
    assert set(table["networks"]) == {"resnet20"} and table["step"] == 64
    assert (tmp_path / "worker-cache" / "latency_tables").is_dir()  # cached on the bench side
