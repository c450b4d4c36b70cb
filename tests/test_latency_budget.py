"""LatencyBudgetPruner on ResNet-20 with synthetic latency tables (real torch, real thinning)."""

from __future__ import annotations

import pytest
import torch

from benchsuite.latency.arch import conv_specs
from benchsuite.latency.spec import ConvSpec, LatencyTable, grid_units
from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler
from benchsuite.prune.block_removal import bypass_loss_scores
from benchsuite.prune.latency_budget import kept_counts, taylor_scores
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
     "not the first conv of a residual block"),
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
