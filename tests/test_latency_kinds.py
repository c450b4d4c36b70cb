"""The latency model beyond convolutions: depthwise convs, linear layers and attention. Their specs
as both sides read them (real MobileNetV2 and ViT exports), the lookup on synthetic tables, a real
table built for a small ViT and a small MobileNetV2, and the latency-budget pruner's sum."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch
from torch import nn

from benchsuite.latency.spec import (
    AttentionSpec,
    ConvSpec,
    DepthwiseSpec,
    LatencyTable,
    LinearSpec,
    grid_units,
    spec_at,
)


def _ir(model: nn.Module, shape: tuple[int, ...], path):
    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.export.onnx import export_onnx

    onnx = export_onnx(model.eval(), shape, path.with_suffix(".onnx"))
    return onnx_to_ir(onnx, path.with_suffix(".xml"), shape)


def _torch_counts(model: nn.Module) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            counts["depthwise" if m.groups > 1 else "conv"] += 1
        elif isinstance(m, nn.Linear):
            counts["linear"] += 1
        elif hasattr(m, "qkv") and hasattr(m, "num_heads"):
            counts["attention"] += 1
    return counts


def _drop_heads(model: nn.Module, block: int, keep: int) -> None:
    """Thin one ViT block's attention to `keep` heads (what AttentionHeadPruner leaves)."""
    attn = model.blocks[block].attn
    dim = attn.proj.out_features
    attn.qkv = nn.Linear(dim, 3 * keep * attn.head_dim)
    attn.proj = nn.Linear(keep * attn.head_dim, dim)


@pytest.mark.parametrize("name", ["mobilenetv2", "vit_tiny"])
def test_both_sides_read_the_same_ops_of_real_exports(name, tmp_path):
    """Every Conv2d, depthwise Conv2d, Linear and attention module of the torch model is one op
    of its kind in the exported IR (the IR's GroupConvolutions and ScaledDotProductAttentions
    included), and the two sides' specs agree, also for a thinned ViT."""
    from benchsuite.bench.latency_table import convs_from_ir, ops_from_ir
    from benchsuite.latency.arch import conv_specs, op_specs
    from benchsuite.models import build_model

    torch.manual_seed(0)
    model = build_model(name, 10, 3).eval()
    if name == "vit_tiny":
        _drop_heads(model, 1, 1)
        model.blocks[2].mlp.fc1 = nn.Linear(96, 192)
        model.blocks[2].mlp.fc2 = nn.Linear(192, 96)
    ir = ops_from_ir(_ir(model, (3, 32, 32), tmp_path / name))
    torch_side = list(op_specs(model, torch.zeros(1, 3, 32, 32)).values())
    assert collections.Counter(o.kind for o in ir) == _torch_counts(model)
    assert sorted(ir, key=repr) == sorted(torch_side, key=repr)
    assert convs_from_ir(tmp_path / f"{name}.xml") == [o for o in ir if o.kind == "conv"]
    assert list(conv_specs(model, torch.zeros(1, 3, 32, 32)).values()) == [
        o for o in torch_side if o.kind == "conv"]
    if name == "vit_tiny":
        assert AttentionSpec(65, 1, 32) in ir and AttentionSpec(65, 3, 32) in ir
        assert LinearSpec(65, 96, 3 * 32) in ir and LinearSpec(65, 192, 96) in ir
        assert LinearSpec(1, 96, 10) in ir  # the classifier on the class token
    else:
        assert DepthwiseSpec(96, 3, 2, 32, 32) in ir  # stage 2's first block, stride 2
        assert LinearSpec(1, 1280, 10) in ir


def test_unfused_attention_and_grouped_convs_in_an_ir(tmp_path):
    """A MatMul - Softmax - MatMul attention (no ScaledDotProductAttention) is one attention op,
    its two MatMuls no linear layers; a grouped conv that is not depthwise is refused."""
    import openvino as ov
    import openvino.opset13 as ops

    from benchsuite.bench.latency_table import ops_from_ir

    rng = np.random.default_rng(0)
    x = ops.parameter([1, 4, 10, 8], np.float32, name="input")  # heads 4, n 10, d 8
    k = ops.add(x, ops.constant(rng.standard_normal((1, 4, 10, 8)).astype(np.float32)))
    attn = ops.softmax(ops.multiply(ops.matmul(x, k, False, True),
                                    ops.constant(np.float32(8 ** -0.5))), -1)
    y = ops.matmul(attn, x, False, False)
    y = ops.matmul(y, ops.constant(rng.standard_normal((8, 6)).astype(np.float32)), False, False)
    ov.save_model(ov.Model([ops.result(y)], [x], "attn"), str(tmp_path / "a.xml"))
    assert ops_from_ir(tmp_path / "a.xml") == [AttentionSpec(10, 4, 8), LinearSpec(40, 8, 6)]

    x = ops.parameter([1, 8, 6, 6], np.float32, name="input")
    w = ops.constant(rng.standard_normal((2, 4, 4, 3, 3)).astype(np.float32))
    y = ops.group_convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])
    ov.save_model(ov.Model([ops.result(y)], [x], "g"), str(tmp_path / "g.xml"))
    with pytest.raises(ValueError, match="depthwise ones only"):
        ops_from_ir(tmp_path / "g.xml")


def test_grouped_conv_refused_on_the_torch_side():
    from benchsuite.latency.arch import op_specs

    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=2))
    with pytest.raises(ValueError, match="depthwise"):
        op_specs(model, torch.zeros(1, 8, 6, 6))


def kind_us(op) -> float:
    """Synthetic costs of each kind's form: linear in the channels or heads, bilinear in a
    linear layer's features."""
    if isinstance(op, DepthwiseSpec):
        return 0.02 * op.c * op.k * op.k * op.h * op.w / op.stride ** 2 + 0.5
    if isinstance(op, LinearSpec):
        return 1e-3 * op.tokens * op.fin * op.fout + 0.1 * op.fin + 0.05 * op.fout + 1.0
    if isinstance(op, AttentionSpec):
        return 2e-3 * op.tokens ** 2 * op.head_dim * op.heads + 3.0
    return 0.01 * op.cin * op.cout * op.k * op.k + 0.3 * op.cin + 0.2 * op.cout + 1.0


def _synthetic(ops, step: int, kinds: list[str]) -> LatencyTable:
    entries = {g: {"cin": a, "cout": b, "us": [[kind_us(spec_at(g, i, j)) for j in b] for i in a]}
               for g, (a, b) in grid_units(ops, step).items()}
    return LatencyTable({"device": "synthetic"}, step, entries, kinds=kinds)


def test_lookup_of_the_new_kinds_on_a_synthetic_table():
    dense = [ConvSpec(3, 64, 3, 1, 16, 16), DepthwiseSpec(96, 3, 2, 16, 16),
             DepthwiseSpec(64, 3, 1, 8, 8), LinearSpec(65, 96, 288), LinearSpec(65, 384, 96),
             LinearSpec(1, 96, 10), AttentionSpec(65, 3, 32)]
    for op in dense:
        assert spec_at(op.geometry, *op.dims) == op
    grids = grid_units(dense, 32)
    assert grids["dw:k3s2h16w16"] == ([32, 64, 96], [1])
    assert grids["fc:t65"] == ([32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384],
                               [32, 64, 96, 128, 160, 192, 224, 256, 288])
    assert grids["attn:n65d32"] == ([1, 2, 3], [1]) and grids["fc:t1"] == ([32, 64, 96], [10])
    table = _synthetic(dense, 32, ["conv", "depthwise", "linear", "attention"])
    pruned = [ConvSpec(3, 40, 3, 1, 16, 16), DepthwiseSpec(72, 3, 2, 16, 16),
              DepthwiseSpec(40, 3, 1, 8, 8), LinearSpec(65, 96, 3 * 32 * 2),
              LinearSpec(65, 200, 96), LinearSpec(1, 70, 10), AttentionSpec(65, 2, 32)]
    for op in dense + pruned:  # every kind's form is reproduced exactly off the grid
        assert table.op_us(op) == pytest.approx(kind_us(op), rel=1e-12)
    assert table.sum_us(pruned) == pytest.approx(sum(map(kind_us, pruned)), rel=1e-12)
    assert table.covers(dense + pruned)
    assert not table.covers([AttentionSpec(65, 4, 32)])  # more heads than measured
    assert not table.covers([LinearSpec(65, 96, 320)])
    with pytest.raises(KeyError, match="no attention of geometry attn:n50d32"):
        table.op_us(AttentionSpec(50, 2, 32))
    # a table of convs only (a stored one that names no kinds reads as one) sums a mixed
    # network's convs, and says it does not cover the rest
    stored = _synthetic(dense[:1], 32, ["conv", "linear"]).to_dict()
    convs_only = LatencyTable.from_dict({k: v for k, v in stored.items() if k != "kinds"})
    assert convs_only.kinds == ["conv"]
    assert convs_only.sum_us(pruned) == pytest.approx(kind_us(pruned[0]), rel=1e-12)
    assert convs_only.covers(pruned[:1]) and not convs_only.covers(pruned)
    back = LatencyTable.from_dict(table.to_dict())
    assert back == table and back.kinds == ["conv", "depthwise", "linear", "attention"]


def test_budget_pruner_sums_every_kind():
    """The pruner's dense latency is the scale times the convs' and the classifier's table
    sum when the table models linear layers; its plan removes convs only."""
    from benchsuite.latency.arch import op_specs
    from benchsuite.models import build_model
    from benchsuite.prune import CompressionScheduler
    from benchsuite.recipe import parse_recipe

    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1).eval()
    example = torch.zeros(1, 1, 32, 32)
    ops = list(op_specs(model, example).values())
    assert LinearSpec(1, 64, 10) in ops
    table = _synthetic(ops, 8, ["conv", "linear"])
    dense_sum = table.sum_us(ops)
    assert dense_sum == pytest.approx(sum(map(kind_us, ops)), rel=1e-12)
    table.networks = {"resnet20": {"measured_us": 0.9 * dense_sum, "sum_us": dense_sum}}
    recipe = parse_recipe("""version: 1
pruners:
  budget: {class: LatencyBudgetPruner, speedup: 1.5}
policies:
  - pruner: {instance_name: budget}
    epochs: [0]
""")
    calib = (torch.randn(8, 1, 32, 32), torch.randint(0, 10, (8,)))
    sched = CompressionScheduler(recipe, model, example, calibration=calib,
                                 latency_table=table.to_dict())
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    assert plan["dense_us"] == pytest.approx(0.9 * dense_sum, rel=1e-9)
    assert plan["predicted_us"] <= plan["dense_us"] / 1.5


def test_table_for_a_small_vit_and_mobilenetv2(tmp_path):
    """Real OpenVINO: one table (step 128: a few grid points) built for a small ViT, then
    extended for a small MobileNetV2; it has every kind, is monotone, covers every op of both
    and of their thinned versions, and predicts a speed-up of at least 1 for them; read without
    the envelope it gives the stored points as measured, never above the enveloped grid.
    Assertions on shape and consistency, not on timings."""
    from benchsuite.bench.latency_table import (
        UNIT_SETTINGS,
        build_table,
        load_table,
        ops_from_ir,
        predict_pair,
    )
    from benchsuite.bench.paired import PairedSettings
    from benchsuite.models.mobilenetv2 import MobileNetV2
    from benchsuite.models.vit import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(10, 1, dim=32, depth=1, heads=2, mlp_ratio=2, patch=8, image=16)
    mnv2 = MobileNetV2(10, 1, width=0.35, stages=((1, 16, 1, 1), (6, 24, 2, 2)),
                       strides=(2, 1, 2))
    shape = (1, 16, 16)
    irs = {"vit": _ir(vit, shape, tmp_path / "vit"), "mnv2": _ir(mnv2, shape, tmp_path / "mnv2")}
    _drop_heads(vit, 0, 1)
    vit.blocks[0].mlp.fc1 = nn.Linear(32, 32)
    vit.blocks[0].mlp.fc2 = nn.Linear(32, 32)
    thin = MobileNetV2(10, 1, width=0.2, stages=((1, 16, 1, 1), (6, 24, 2, 2)), strides=(2, 1, 2))
    pruned = {"vit": _ir(vit, shape, tmp_path / "vit_pruned"),
              "mnv2": _ir(thin, shape, tmp_path / "mnv2_pruned")}
    settings = PairedSettings(**UNIT_SETTINGS | {"max_seconds": 0.3})
    tables = {}
    for name in ("vit", "mnv2"):
        tables[name] = build_table(irs[name], name, 128, settings, folder=tmp_path / "tables",
                                   workdir=tmp_path / "work")
    table = tables["mnv2"]
    assert set(table.networks) == {"vit", "mnv2"} and set(tables["vit"].entries) < set(
        table.entries)
    prefixes = {g.partition(":")[0] if ":" in g else "conv" for g in table.entries}
    assert prefixes == {"conv", "dw", "fc", "attn"}
    assert table.entries["attn:n5d16"]["cin"] == [1, 2]
    for e in table.entries.values():
        arr = np.array(e["us"])
        assert np.isfinite(arr).all()
        assert (np.diff(arr, axis=0) >= 0).all() and (np.diff(arr, axis=1) >= 0).all()
    for name in ("vit", "mnv2"):
        dense_ops, pruned_ops = ops_from_ir(irs[name]), ops_from_ir(pruned[name])
        assert table.covers(dense_ops) and table.covers(pruned_ops)
        assert {o.kind for o in dense_ops} == (
            {"conv", "linear", "attention"} if name == "vit" else {"conv", "depthwise", "linear"})
        one = table.to_dict() | {"networks": {name: table.networks[name]}}
        pred = predict_pair({"dense": irs[name], "pruned": pruned[name]}, one, None)
        assert pred["dense_latency_table_sum_us"] == pytest.approx(table.networks[name]["sum_us"])
        assert pred["speedup_predicted"] >= 1.0 and pred["latency_predicted_us"] > 0
    raw = load_table(settings, 128, tmp_path / "tables", envelope=False)
    points = json.loads(next((tmp_path / "tables").glob("*.json")).read_text())["points"]
    assert raw.entries.keys() == table.entries.keys()
    for g, e in raw.entries.items():
        assert e["cin"] == table.entries[g]["cin"] and e["cout"] == table.entries[g]["cout"]
        assert e["us"] == [[points[g][f"{a},{b}"] for b in e["cout"]] for a in e["cin"]]
        assert (np.array(table.entries[g]["us"]) >= np.array(e["us"])).all()
