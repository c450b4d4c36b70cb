"""The latency model: table lookup and predictor (synthetic tables), the bench-side builder
(real OpenVINO, a tiny model), the conv lists of both sides, the report's errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchsuite.latency.spec import (
    ConvSpec,
    LatencyTable,
    channel_grid,
    fit_per_op,
    grid_units,
    monotone,
    predict_us,
)


def bilinear_us(c: ConvSpec) -> float:
    return 0.01 * c.cin * c.cout * c.k * c.k + 0.3 * c.cin + 0.2 * c.cout + 1.0 + c.stride


def _synthetic(convs: list[ConvSpec], step: int) -> LatencyTable:
    entries = {}
    for g, (cins, couts) in grid_units(convs, step).items():
        proto = next(c for c in convs if c.geometry == g)
        entries[g] = {"cin": cins, "cout": couts,
                      "us": [[bilinear_us(proto.with_channels(ci, co)) for co in couts]
                             for ci in cins]}
    return LatencyTable({"device": "synthetic"}, step, entries)


def test_channel_grid_and_units():
    assert channel_grid(64, 16) == [16, 32, 48, 64]
    assert channel_grid(20, 8) == [8, 16, 20]
    assert channel_grid(3, 8) == [3]
    convs = [ConvSpec(1, 16, 3, 1, 32, 32), ConvSpec(16, 16, 3, 1, 32, 32),
             ConvSpec(16, 32, 1, 2, 32, 32)]
    assert grid_units(convs, 8) == {"k3s1h32w32": ([1, 8, 16], [8, 16]),
                                    "k1s2h32w32": ([8, 16], [8, 16, 24, 32])}


def test_predictor_is_exact_on_a_bilinear_table():
    dense = [ConvSpec(1, 16, 3, 1, 32, 32), ConvSpec(16, 32, 3, 2, 32, 32),
             ConvSpec(32, 64, 3, 1, 16, 16)]
    table = _synthetic(dense, 8)
    pruned = [ConvSpec(1, 12, 3, 1, 32, 32), ConvSpec(12, 20, 3, 2, 32, 32),
              ConvSpec(20, 44, 3, 1, 16, 16)]  # off the grid: interpolated
    for c in dense + pruned:
        assert table.conv_us(c) == pytest.approx(bilinear_us(c), rel=1e-12)
    assert predict_us(pruned, table, 0.8) == pytest.approx(
        0.8 * sum(bilinear_us(c) for c in pruned), rel=1e-12)
    with pytest.raises(KeyError, match="k5s1h32w32"):
        table.conv_us(ConvSpec(8, 8, 5, 1, 32, 32))
    assert table.covers(pruned) and not table.covers([ConvSpec(16, 128, 3, 1, 16, 16)])


def test_scale_and_round_trip():
    table = _synthetic([ConvSpec(8, 8, 3, 1, 8, 8)], 8)
    table.networks = {"net": {"measured_us": 120.0, "sum_us": 100.0}}
    back = LatencyTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert back == table and back.scale() == pytest.approx(1.2)
    with pytest.raises(ValueError, match="rebuild"):
        LatencyTable.from_dict(table.to_dict() | {"version": 0})


def test_per_op_cost_is_fitted_and_charged():
    """A network measured at s x (sum + c x ops), its calibration version at the same s and c:
    the fit recovers c, the table charges it and the scale carries what remains."""
    dense = [ConvSpec(16, 32, 3, 1, 8, 8), ConvSpec(32, 32, 3, 1, 8, 8),
             ConvSpec(32, 16, 1, 1, 8, 8)]
    narrow = [ConvSpec(16, 16, 3, 1, 8, 8), ConvSpec(16, 32, 3, 1, 8, 8),
              ConvSpec(32, 16, 1, 1, 8, 8)]
    table = _synthetic(dense, 8)
    s, c = 0.9, 2.5
    d_sum, n_sum = table.sum_us(dense), table.sum_us(narrow)
    ratio = (n_sum + c * 3) / (d_sum + c * 3)  # what the two measurements give
    assert ratio > n_sum / d_sum  # the per-op cost is what the sums' ratio misses
    assert fit_per_op(d_sum, 3, n_sum, 3, ratio) == pytest.approx(c)
    assert fit_per_op(d_sum, 3, n_sum, 3, 0.9 * n_sum / d_sum) == 0.0  # negative: clamped
    with pytest.raises(ValueError, match="cannot be fitted"):
        fit_per_op(d_sum, 3, d_sum, 3, 1.0)
    assert table.per_op_us() == 0.0 and table.cost_us(dense) == table.sum_us(dense)
    table.networks = {"net": {"measured_us": s * (d_sum + c * 3), "sum_us": d_sum,
                              "per_op_us": c, "ops": 3}}
    assert table.cost_us(narrow) == pytest.approx(n_sum + 3 * c)
    assert table.scale() == pytest.approx(s)
    assert predict_us(narrow, table, table.scale()) == pytest.approx(s * (n_sum + 3 * c))
    back = LatencyTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert back.per_op_us("net") == c and back.cost_us(dense) == table.cost_us(dense)


def test_monotone_envelope():
    grid = [[5.0, 4.0, 9.0], [3.0, 8.0, 7.0]]
    out = monotone(grid)
    assert out == [[5.0, 5.0, 9.0], [5.0, 8.0, 9.0]]
    arr = np.array(out)
    assert (np.diff(arr, axis=0) >= 0).all() and (np.diff(arr, axis=1) >= 0).all()
    assert (arr >= np.array(grid)).all()


def _tiny_ir(path):
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([1, 3, 16, 16], np.float32, name="input")
    w1 = ops.constant(rng.standard_normal((16, 3, 3, 3)).astype(np.float32))
    y = ops.relu(ops.convolution(x, w1, [1, 1], [1, 1], [1, 1], [1, 1]))
    w2 = ops.constant(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    y = ops.relu(ops.convolution(y, w2, [2, 2], [1, 1], [1, 1], [1, 1]))
    ov.save_model(ov.Model([ops.result(y)], [x], "tiny"), str(path), compress_to_fp16=False)
    return path


def test_build_table_on_a_tiny_model(tmp_path):
    """Real OpenVINO: the grid the pruner can reach is measured, shaped and cached; the assertions
    are on shape, monotonicity and caching, not on timings."""
    from benchsuite.bench.latency_table import UNIT_SETTINGS, build_table, convs_from_ir, load_table
    from benchsuite.bench.paired import PairedSettings

    xml = _tiny_ir(tmp_path / "tiny.xml")
    convs = convs_from_ir(xml)
    assert convs == [ConvSpec(3, 16, 3, 1, 16, 16), ConvSpec(16, 16, 3, 2, 16, 16)]
    settings = PairedSettings(**UNIT_SETTINGS | {"max_seconds": 0.3})
    said: list[str] = []
    table = build_table(xml, "tiny", 8, settings, folder=tmp_path / "tables",
                        workdir=tmp_path / "work", progress=said.append)
    assert "6/6 grid points" in said[-2] and said[-1] == "latency table: tiny measured whole"
    assert {g: (e["cin"], e["cout"]) for g, e in table.entries.items()} == {
        "k3s1h16w16": ([3], [8, 16]), "k3s2h16w16": ([8, 16], [8, 16])}
    for e in table.entries.values():
        arr = np.array(e["us"])
        assert np.isfinite(arr).all()
        assert (np.diff(arr, axis=0) >= 0).all() and (np.diff(arr, axis=1) >= 0).all()
    assert table.covers(convs) and table.networks["tiny"]["measured_us"] > 0
    assert table.conditions["threads"] == 1 and table.conditions["precision"] == "f32"
    again: list[str] = []
    cached = build_table(xml, "tiny", 8, settings, folder=tmp_path / "tables",
                         workdir=tmp_path / "work", progress=again.append)
    assert again == [] and cached.entries == table.entries  # nothing measured again
    assert load_table(settings, 8, tmp_path / "tables").entries == table.entries


def test_torch_and_openvino_see_the_same_convs(tmp_path):
    """The pruner plans on the torch model's convs, the bench stage predicts from the IR's: both
    must list the same convs (BN folded, blocks bypassed, filters thinned)."""
    import torch

    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.bench.latency_table import convs_from_ir
    from benchsuite.export.onnx import export_onnx
    from benchsuite.latency.arch import conv_specs
    from benchsuite.models import build_model
    from benchsuite.models.blocks import bypass

    model = build_model("resnet20", 10, 1).eval()
    bypass(model, "layer1.1")
    model.layer2[1].conv1 = torch.nn.Conv2d(32, 24, 3, padding=1, bias=False)
    model.layer2[1].bn1 = torch.nn.BatchNorm2d(24)
    model.layer2[1].conv2 = torch.nn.Conv2d(24, 32, 3, padding=1, bias=False)
    onnx = export_onnx(model, (1, 32, 32), tmp_path / "m.onnx")
    xml = onnx_to_ir(onnx, tmp_path / "m.xml", (1, 32, 32))
    torch_side = list(conv_specs(model, torch.zeros(1, 1, 32, 32)).values())
    assert sorted(convs_from_ir(xml), key=str) == sorted(torch_side, key=str)
    assert ConvSpec(32, 24, 3, 1, 16, 16) in torch_side and len(torch_side) == 21 - 2


def test_prediction_frame_errors_and_refit():
    from benchsuite.track.latency_model import prediction_frame, summary_lines

    common = {"model": "m", "device_name": "cpu", "precision": "f32", "threads": 1,
              "dense_latency_table_sum_us": 170.0}
    rows = pd.DataFrame([
        # the table's dense network measured 204 µs at build time: scale 1.2
        common | {"label": "a", "latency_median_us": 100.0, "dense_latency_median_us": 204.0,
                  "speedup": 2.04, "latency_predicted_us": 96.0, "speedup_predicted": 2.125,
                  "latency_table_sum_us": 80.0, "dense_latency_table_measured_us": 204.0},
        common | {"label": "b", "latency_median_us": 25.0, "dense_latency_median_us": 204.0,
                  "speedup": 8.16, "latency_predicted_us": 24.0, "speedup_predicted": 8.5,
                  "latency_table_sum_us": 20.0, "dense_latency_table_measured_us": 204.0},
        # recorded by the additive model (sum + measured - dense sum: 80 + 200 - 170)
        common | {"label": "c", "latency_median_us": 100.0, "dense_latency_median_us": 210.0,
                  "speedup": 2.1, "latency_predicted_us": 110.0, "speedup_predicted": 1.9,
                  "latency_table_sum_us": 80.0},
        {"label": "old", "model": "m", "device_name": "cpu", "precision": "f32", "threads": 1,
         "latency_median_us": 50.0, "dense_latency_median_us": 210.0, "speedup": 4.2},
    ])
    df = prediction_frame(rows)
    assert list(df["label"]) == ["a", "b", "c"]
    # c is re-predicted by the scale model from its recorded figures: 80 x 200 / 170
    assert df["latency_predicted_us"].tolist() == pytest.approx([96.0, 24.0, 80 * 200 / 170])
    assert df["err_latency"].tolist() == pytest.approx([-0.04, -0.04, 80 * 2 / 170 - 1])
    # scale refitted: median(204 / 170, 204 / 170, 210 / 170) = 1.2
    assert df["latency_refit_us"].tolist() == pytest.approx([96.0, 24.0, 96.0])
    # the speed-up is the ratio of table sums, whatever the row recorded
    assert df["err_speedup"].tolist() == pytest.approx([2.125 / 2.04 - 1, 8.5 / 8.16 - 1,
                                                        2.125 / 2.1 - 1])
    assert df["err_latency_cpu"].isna().all()  # no CPU share recorded in these rows
    last = summary_lines(df, 1)[-1]
    assert "latency 4.0%" in last and "speed-up 4.2%" in last
    assert "1 rows without a prediction" in last
    assert not any("speed-up per model" in line for line in summary_lines(df, 1))
    df.loc[df["label"] == "b", "model"] = "vit"
    per = [line for line in summary_lines(df, 1) if "speed-up per model" in line]
    m_err = ((2.125 / 2.04 - 1) + (2.125 / 2.1 - 1)) / 2  # rows a and c
    assert per == [f"median |error| of the speed-up per model: m {m_err:.1%} "
                   f"(2 cases), vit {8.5 / 8.16 - 1:.1%} (1 cases)"]



def test_which_cases_get_a_table(monkeypatch):
    from benchsuite.recipe.case import LATENCY_MODEL_ENV, Case

    monkeypatch.delenv(LATENCY_MODEL_ENV, raising=False)
    budget = Case("latency_budget", {"speedup": 3, "round_to": 16}, model="resnet56")
    assert budget.latency_table_step() == 16
    assert Case("l1_filters", {"sparsity": 0.5}).latency_table_step() is None
    monkeypatch.setenv(LATENCY_MODEL_ENV, "1")
    assert Case("l1_filters", {"sparsity": 0.5}).latency_table_step() == 8


def test_counters_cross_check(tmp_path):
    from benchsuite.track.latency_model import counters_check

    (tmp_path / "per_layer").mkdir()
    pd.DataFrame([
        {"layer": "c1", "layer_type": "Convolution", "real_time_us": 300.0, "model": "dense"},
        {"layer": "c2", "layer_type": "Convolution", "real_time_us": 100.0, "model": "dense"},
        {"layer": "fc", "layer_type": "FullyConnected", "real_time_us": 50.0, "model": "dense"},
        {"layer": "c1", "layer_type": "Convolution", "real_time_us": 200.0, "model": "pruned"},
    ]).to_csv(tmp_path / "per_layer" / "abc.csv", index=False)
    df = pd.DataFrame([{"case_id": "abc", "dense_latency_table_sum_us": 300.0,
                        "latency_table_sum_us": 100.0},
                       {"case_id": "none", "dense_latency_table_sum_us": 300.0,
                        "latency_table_sum_us": 100.0}])
    out = counters_check(df, tmp_path)
    assert out.loc[0, "pc_conv_dense_us"] == 400.0 and out.loc[0, "pc_conv_pruned_us"] == 200.0
    assert out.loc[0, "err_conv_ratio"] == pytest.approx(3.0 / 2.0 - 1)
    assert np.isnan(out.loc[1, "err_conv_ratio"])
