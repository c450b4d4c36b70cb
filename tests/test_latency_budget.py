"""LatencyBudgetPruner on ResNet-20 and MobileNetV2 with synthetic latency tables (real torch,
real thinning)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from benchsuite.latency.arch import conv_specs, op_specs
from benchsuite.latency.spec import (
    AttentionSpec,
    ConvSpec,
    DepthwiseSpec,
    LatencyTable,
    LinearSpec,
    grid_units,
    spec_at,
)
from benchsuite.models import build_model
from benchsuite.models.mobilenetv2 import InvertedResidual
from benchsuite.prune import CompressionScheduler
from benchsuite.prune.block_removal import bypass_loss_scores
from benchsuite.prune.budget_units import kept_counts, taylor_scores
from benchsuite.recipe import RecipeError, parse_recipe

EXAMPLE = torch.zeros(1, 1, 32, 32)


def _table(model, cost, step=8, scale=0.8) -> dict:
    """A table over the model's geometries with T = cost(conv); the dense network measured
    whole at `scale` x its table sum (in-network convs cheaper than alone, as at bf16)."""
    specs = list(conv_specs(model, EXAMPLE).values())
    entries = {}
    for g, (cins, couts) in grid_units(specs, step).items():
        k, s, h, w = (int(v) for v in g[1:].replace("s", " ").replace("h", " ")
                      .replace("w", " ").split())
        entries[g] = {"cin": cins, "cout": couts,
                      "us": [[cost(ConvSpec(ci, co, k, s, h, w)) for co in couts]
                             for ci in cins]}
    table = LatencyTable({"device": "synthetic"}, step, entries)
    dense_sum = table.sum_us(specs)
    table.networks = {"resnet20": {"measured_us": dense_sum * scale, "sum_us": dense_sum}}
    return table.to_dict()


def macs_us(c: ConvSpec) -> float:
    return 1e-4 * c.cin * c.cout * c.k * c.k * (c.h // c.stride) * (c.w // c.stride) + 1.0


def _recipe(args: str) -> str:
    return f"""version: 1
pruners:
  budget:
    class: LatencyBudgetPruner
{args}
extensions:
  thin:
    class: FilterRemover
policies:
  - pruner:
      instance_name: budget
    epochs: [0]
  - extension:
      instance_name: thin
    epochs: [0]
"""


@pytest.fixture()
def model_and_calib():
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1).eval()
    x = torch.randn(16, 1, 32, 32)
    y = torch.randint(0, 10, (16,))
    return model, (x, y)


def _run(model, calib, args: str, table: dict) -> CompressionScheduler:
    sched = CompressionScheduler(parse_recipe(_recipe(args)), model, EXAMPLE,
                                 calibration=calib, latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    return sched


def test_meets_a_predicted_speedup_on_resnet20(model_and_calib):
    model, calib = model_and_calib
    table = _table(model, macs_us)
    sched = _run(model, calib, "    speedup: 2.5\n", table)
    plan = sched.pruners["budget"].plan
    assert plan["predicted_us"] <= plan["target_us"] == pytest.approx(plan["dense_us"] / 2.5)
    assert plan["steps"][-2][4] > plan["target_us"]  # it stopped at the first step that met it
    # the pruned, thinned model predicts what the plan said
    t = LatencyTable.from_dict(table)
    after = t.scale() * t.sum_us(list(conv_specs(model, EXAMPLE).values()))
    assert after == pytest.approx(plan["predicted_us"], rel=1e-6)
    assert sched.removed_blocks == plan["blocks"]
    for b, width in plan["widths"].items():
        assert model.get_submodule(f"{b}.conv1").out_channels == width
        assert width % 8 == 0 and width >= 8
    assert model(EXAMPLE).shape == (1, 10)


def test_latency_us_target_and_filters_only(model_and_calib):
    model, calib = model_and_calib
    table = _table(model, macs_us)
    dense = LatencyTable.from_dict(table)
    target = 0.8 * dense.scale() * dense.sum_us(list(conv_specs(model, EXAMPLE).values()))
    sched = _run(model, calib, f"    latency_us: {target}\n    blocks: false\n", table)
    plan = sched.pruners["budget"].plan
    assert plan["blocks"] == [] and plan["widths"]
    assert plan["predicted_us"] <= target
    assert {s[0] for s in plan["steps"]} == {"filters"}


@pytest.mark.parametrize("criterion", ["taylor", "loss"])
def test_removes_the_least_important_blocks_first(model_and_calib, criterion):
    """With every conv costing the same whatever its width, a filter group saves nothing and a
    block saves the same: the pruner must take blocks in order of importance."""
    model, calib = model_and_calib
    eligible = ["layer1.0", "layer1.1", "layer1.2", "layer2.1", "layer2.2", "layer3.1",
                "layer3.2"]
    if criterion == "loss":
        scores = bypass_loss_scores(model.eval(), eligible, calib)
    else:
        scores = taylor_scores(model.eval(), [], eligible, calib)[1]
    table = _table(model, lambda c: 10.0)
    dense = LatencyTable.from_dict(table)
    # a block saves 0.8 x 2 x 10 = 16 µs in the network: 45 µs takes three
    target = dense.scale() * dense.sum_us(list(conv_specs(model, EXAMPLE).values())) - 45
    sched = _run(model, calib, f"    latency_us: {target}\n    criterion: {criterion}\n", table)
    plan = sched.pruners["budget"].plan
    assert [s[0] for s in plan["steps"]] == ["block"] * 3
    expected, per_stage = [], {}
    for b in sorted(scores, key=lambda b: (max(scores[b], 0.0), 0)):
        stage = b.split(".")[0]
        if len(expected) < 3 and per_stage.get(stage, 0) < 2:
            expected.append(b)
            per_stage[stage] = per_stage.get(stage, 0) + 1
    assert sorted(plan["blocks"]) == sorted(expected)
    ratios = [max(s[2], 0.0) for s in plan["steps"]]
    assert ratios == sorted(ratios)


@pytest.mark.parametrize(("args", "path", "message"), [
    ("    speedup: 2\n    latency_us: 300\n", "pruners.budget", "exactly one target"),
    ("    round_to: 8\n", "pruners.budget", "exactly one target"),
    ("    speedup: 0.5\n", "pruners.budget.speedup", ">= 1"),
    ("    speedup: 2\n    weights: [layer1.0.conv2.weight]\n", "pruners.budget.weights[0]",
     "not the inner layer of a block"),
    ("    speedup: 2\n    criterion: l1\n", "pruners.budget.criterion",
     "must be one of taylor, loss"),
])
def test_recipe_errors(args, path, message):
    model = build_model("resnet20", 10, 1)
    with pytest.raises(RecipeError) as e:
        CompressionScheduler(parse_recipe(_recipe(args)), model, EXAMPLE)
    assert e.value.path == path and message in e.value.message


def test_needs_a_table_and_a_reachable_target(model_and_calib):
    model, calib = model_and_calib
    sched = CompressionScheduler(parse_recipe(_recipe("    speedup: 2\n")), model, EXAMPLE,
                                 calibration=calib)
    with pytest.raises(RecipeError, match="needs the latency table"):
        sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(RecipeError, match="out of reach"):
        _run(model, calib, "    speedup: 50\n", _table(model, macs_us))


def test_kept_counts():
    assert kept_counts(64, 8) == [64, 56, 48, 40, 32, 24, 16, 8]
    assert kept_counts(20, 8) == [20, 16, 8]
    assert kept_counts(8, 8) == [8]


# MobileNetV2: the inner width is an inverted residual's hidden width (expansion conv, depthwise
# conv, projection's input), and only blocks with a shortcut can be removed

MNV2_INPUT = torch.zeros(1, 1, 28, 28)


def kind_us(op) -> float:
    """A cost of each kind's form: bilinear in a conv's channels, linear in a depthwise conv's."""
    if isinstance(op, DepthwiseSpec):
        return 0.02 * op.c * op.k * op.k * (op.h // op.stride) * (op.w // op.stride) + 0.5
    if isinstance(op, LinearSpec):
        return 1e-4 * op.tokens * op.fin * op.fout + 1.0
    if isinstance(op, AttentionSpec):
        return 2e-3 * op.tokens ** 2 * op.head_dim * op.heads + 3.0
    return macs_us(op)


def _kinds_table(model, example, step=8, scale=0.9, per_op=0.0) -> dict:
    ops = list(op_specs(model, example).values())
    entries = {g: {"cin": a, "cout": b, "us": [[kind_us(spec_at(g, i, j)) for j in b] for i in a]}
               for g, (a, b) in grid_units(ops, step).items()}
    table = LatencyTable({"device": "synthetic"}, step, entries,
                         kinds=["conv", "depthwise", "linear", "attention"])
    dense_sum, n = table.sum_us(ops), len(table.modelled(ops))
    table.networks = {"network": {"measured_us": (dense_sum + per_op * n) * scale,
                                  "sum_us": dense_sum, "per_op_us": per_op, "ops": n}}
    return table.to_dict()


@pytest.fixture()
def mobilenet_and_calib():
    torch.manual_seed(0)
    model = build_model("mobilenetv2_035", 10, 1).eval()
    return model, (torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))


@pytest.mark.parametrize("per_op", [0.0, 30.0])
def test_meets_a_predicted_speedup_on_mobilenetv2(mobilenet_and_calib, per_op):
    model, calib = mobilenet_and_calib
    stages = {n: [b for b, _ in m.named_children()] for n, m in model.named_children()
              if n.startswith("stage")}
    table = _kinds_table(model, MNV2_INPUT, per_op=per_op)
    sched = CompressionScheduler(parse_recipe(_recipe("    speedup: 1.6\n")),
                                 model, MNV2_INPUT, calibration=calib, latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    assert plan["predicted_us"] <= plan["target_us"] == pytest.approx(plan["dense_us"] / 1.6)
    assert plan["widths"]
    # the thinned network's table cost (depthwise convs and the classifier included, and the
    # per-op cost of the ops it still has) is the prediction: every op was priced, and a
    # removed block saved the per-op cost of each of its ops
    t = LatencyTable.from_dict(table)
    after = t.scale() * t.cost_us(list(op_specs(model, MNV2_INPUT).values()))
    assert after == pytest.approx(plan["predicted_us"], rel=1e-6)
    assert plan["blocks"] or not per_op
    for b in plan["blocks"]:  # removed: blocks with a shortcut, never a stage's first
        assert not b.endswith(".0") and isinstance(model.get_submodule(b), torch.nn.Identity)
    for b, width in plan["widths"].items():
        assert width % 8 == 0 and width >= 8
        assert model.get_submodule(f"{b}.conv.0.0").out_channels == width
        assert model.get_submodule(f"{b}.conv.1.0").in_channels == width
        assert model.get_submodule(f"{b}.conv.1.0").groups == width
        assert model.get_submodule(f"{b}.conv.2.0").in_channels == width
    assert all(f"{s}.0" not in plan["blocks"] for s in stages)
    assert model(MNV2_INPUT).shape == (1, 10)


def test_mobilenetv2_hidden_groups_by_measured_loss(mobilenet_and_calib):
    """criterion: loss on one block's hidden width: its groups are zeroed at the projection's
    input, least L1 first, and the plan's importances are those losses."""
    model, calib = mobilenet_and_calib
    table = _kinds_table(model, MNV2_INPUT)
    dense = LatencyTable.from_dict(table)
    target = dense.scale() * dense.sum_us(list(op_specs(model, MNV2_INPUT).values())) - 20
    before = copy.deepcopy(model)
    sched = CompressionScheduler(parse_recipe(_recipe(
        f"    latency_us: {target}\n    criterion: loss\n    blocks: false\n"
        "    weights: [stage3.1.conv.0.0.weight]\n")),
        model, MNV2_INPUT, calibration=calib, latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    hidden = before.get_submodule("stage3.1.conv.0.0").out_channels
    width = plan["widths"]["stage3.1"]
    assert set(plan["widths"]) == {"stage3.1"} and width < hidden
    assert plan["predicted_us"] <= target
    # the groups' losses, measured again: the lowest-L1 filters zeroed at the projection input
    order = before.get_submodule("stage3.1.conv.0.0").weight.abs().flatten(1).sum(1).argsort()
    keep = torch.ones(hidden)
    keep[order[:hidden - width]] = 0
    proj = before.get_submodule("stage3.1.conv.2.0")
    with torch.no_grad():
        dense_loss = float(F.cross_entropy(before(calib[0]), calib[1]))
        hook = proj.register_forward_pre_hook(lambda _m, i: (i[0] * keep[None, :, None, None],))
        zeroed = float(F.cross_entropy(before(calib[0]), calib[1]))
        hook.remove()
    assert sum(s[2] for s in plan["steps"]) == pytest.approx(zeroed - dense_loss, abs=1e-5)


def test_mobilenetv2_blocks_follow_their_importance(mobilenet_and_calib):
    """Every op costing the same at any width: only blocks save, each its three convs; the
    pruner takes the residual blocks of least Taylor score first (no filter group to take:
    round_to beyond every hidden width)."""
    model, calib = mobilenet_and_calib
    residual = [n for n, m in model.named_modules()
                if isinstance(m, InvertedResidual) and m.residual]
    scores = taylor_scores(model, [], residual, calib)[1]
    table = _kinds_table(model, MNV2_INPUT)
    for e in table["entries"].values():
        e["us"] = [[10.0 for _ in row] for row in e["us"]]
    dense = LatencyTable.from_dict(table)
    # a block saves 0.9 x 3 x 10 = 27 µs in the network: 60 µs takes three
    target = dense.scale() * dense.sum_us(list(op_specs(model, MNV2_INPUT).values())) - 60
    sched = CompressionScheduler(parse_recipe(_recipe(f"    latency_us: {target}\n"
                                                      "    round_to: 1024\n")),
                                 model, MNV2_INPUT, calibration=calib, latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    assert [s[0] for s in plan["steps"]] == ["block"] * 3
    assert sorted(plan["blocks"]) == sorted(sorted(residual, key=lambda b: scores[b])[:3])
    assert all(s[3] == pytest.approx(27.0) for s in plan["steps"])


def test_mobilenetv2_weights_must_be_expansion_convs():
    model = build_model("mobilenetv2_035", 10, 1)
    with pytest.raises(RecipeError, match="inner layer of a block") as e:
        CompressionScheduler(parse_recipe(_recipe(
            "    speedup: 2\n    weights: [stage3.1.conv.2.0.weight]\n")), model, MNV2_INPUT)
    assert e.value.path == "pruners.budget.weights[0]"
    # stage1's block has no expansion conv: no inner width to name
    with pytest.raises(RecipeError, match="inner layer of a block"):
        CompressionScheduler(parse_recipe(_recipe(
            "    speedup: 2\n    weights: [stage1.0.conv.1.0.weight]\n")), model, MNV2_INPUT)


def test_a_model_without_known_blocks_is_refused():
    with pytest.raises(RecipeError, match="no residual blocks this pruner knows"):
        CompressionScheduler(parse_recipe(_recipe("    speedup: 2\n")),
                             build_model("small_cnn", 10, 1), torch.zeros(1, 1, 28, 28))


def test_meets_a_predicted_speedup_on_the_vit():
    """The ViT's encoder blocks: its MLP hidden width (fc1's rows, fc2's inputs) in groups, and
    whole blocks (attention, qkv, proj and MLP priced; the ViT keeps at least one); heads are
    off by default (`test_heads_are_units_of_the_vit_budget`)."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", 10, 1).eval()
    example = torch.zeros(1, 1, 28, 28)
    calib = (torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))
    table = _kinds_table(model, example, step=32)
    sched = CompressionScheduler(parse_recipe(_recipe("    speedup: 1.8\n")), model, example,
                                 calibration=calib, latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    assert plan["predicted_us"] <= plan["target_us"] == pytest.approx(plan["dense_us"] / 1.8)
    assert plan["widths"] and plan["blocks"]  # this table makes both pay
    t = LatencyTable.from_dict(table)
    after = t.scale() * t.sum_us(list(op_specs(model, example).values()))
    assert after == pytest.approx(plan["predicted_us"], rel=1e-6)
    for b in plan["blocks"]:
        assert isinstance(model.get_submodule(b), torch.nn.Identity)
    for b, width in plan["widths"].items():
        assert width % 32 == 0
        assert model.get_submodule(f"{b}.mlp.fc1").out_features == width
        assert model.get_submodule(f"{b}.mlp.fc2").in_features == width
    assert model(example).shape == (1, 10)


def _vit_and_calib():
    torch.manual_seed(0)
    model = build_model("vit_tiny", 10, 1).eval()
    example = torch.zeros(1, 1, 28, 28)
    return model, example, (torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))


def test_heads_are_units_of_the_vit_budget(tmp_path):
    """With `heads: true`, attention heads are priced from the table (qkv, the attention op by
    head count, proj) and taken one at a time where they cost the least importance per µs: on
    this table they pay, and the pruned model's table sum is the plan's prediction. By default
    every head stays."""
    model, example, calib = _vit_and_calib()
    table = _kinds_table(model, example, step=32)
    sched = CompressionScheduler(parse_recipe(_recipe("    speedup: 1.8\n    heads: true\n")),
                                 model, example, calibration=calib, latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    assert plan["predicted_us"] <= plan["target_us"] == pytest.approx(plan["dense_us"] / 1.8)
    assert plan["heads"] and any(s[0] == "heads" for s in plan["steps"])
    for b, heads in plan["heads"].items():
        attn = model.get_submodule(f"{b}.attn")
        assert 1 <= heads < 3 and attn.num_heads == heads
        assert attn.qkv.out_features == 3 * heads * attn.head_dim
        assert attn.proj.in_features == heads * attn.head_dim
    # what the bench worker receives: the checkpoint loads into a fresh ViT by shapes, and
    # OpenVINO runs the export to the same outputs
    import numpy as np
    import openvino as ov

    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.export.onnx import export_onnx
    from benchsuite.models import load_thinned

    x = torch.randn(1, 1, 28, 28)
    again = load_thinned(build_model("vit_tiny", 10, 1), model.state_dict()).eval()
    with torch.no_grad():
        expected = model(x).numpy()
        np.testing.assert_allclose(again(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    xml = onnx_to_ir(export_onnx(model, (1, 28, 28), tmp_path / "m.onnx"), tmp_path / "m.xml",
                     (1, 28, 28))
    got = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(
        x.numpy())[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * float(np.abs(expected).max()))
    t = LatencyTable.from_dict(table)
    assert t.scale() * t.sum_us(list(op_specs(model, example).values())) == pytest.approx(
        plan["predicted_us"], rel=1e-6)
    thinned = sched.pruners["budget"].thinned
    assert {k: v for k, v in thinned.items() if k.endswith(".heads")} == {
        f"{b}.attn.heads": 3 - n for b, n in plan["heads"].items()}

    model, example, calib = _vit_and_calib()
    sched = CompressionScheduler(parse_recipe(_recipe("    speedup: 1.8\n")), model, example,
                                 calibration=calib, latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    assert sched.pruners["budget"].plan["heads"] == {}
    assert all(m.num_heads == 3 for n, m in model.named_modules() if n.endswith(".attn"))


def test_removing_heads_computes_what_was_scored():
    """criterion: loss scores a block's heads by zeroing their channels at attn.proj's input,
    cumulatively: the physically pruned model's calibration loss is the dense one plus the sum
    of the steps taken (one block, heads only: nothing else changes)."""
    model, example, calib = _vit_and_calib()
    table = _kinds_table(model, example, step=32)
    with torch.no_grad():
        base = float(F.cross_entropy(model(calib[0]), calib[1]))
    sched = CompressionScheduler(parse_recipe(_recipe(
        "    speedup: 1.05\n    criterion: loss\n    blocks: false\n    heads: true\n"
        "    weights: [blocks.2.attn.qkv.weight]\n")), model, example, calibration=calib,
        latency_table=table)
    sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    plan = sched.pruners["budget"].plan
    assert plan["heads"] == {"blocks.2": 3 - len(plan["steps"])} and plan["widths"] == {}
    assert {s[0] for s in plan["steps"]} == {"heads"}
    with torch.no_grad():
        after = float(F.cross_entropy(model(calib[0]), calib[1]))
    assert after - base == pytest.approx(sum(s[2] for s in plan["steps"]), abs=1e-5)
    assert model.get_submodule("blocks.1.attn").num_heads == 3  # not listed: untouched


def test_vit_weights_name_fc1_or_qkv():
    model, example, _ = _vit_and_calib()
    with pytest.raises(RecipeError, match=r"nor, with heads: true, an encoder block's attn\.qkv"
                       ) as e:
        CompressionScheduler(parse_recipe(_recipe(
            "    speedup: 2\n    weights: [blocks.0.attn.qkv.weight]\n")),
            model, example)
    assert e.value.path == "pruners.budget.weights[0]"
    with pytest.raises(RecipeError, match="is not the inner layer"):
        CompressionScheduler(parse_recipe(_recipe(
            "    speedup: 2\n    heads: true\n    weights: [blocks.0.attn.proj.weight]\n")),
            model, example)
