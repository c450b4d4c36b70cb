"""Recipes that name no weights select their layers by rule (prune/graph.py: prunable_layers),
so the top-level library fits a model that is not a ResNet: the README's own-model example,
`Case(recipe="l1_filters", model="mymodels:tiny")`, binds, prunes and thins; on the CIFAR
ResNets the rule selects what Distiller's recipes list, and explicit lists work as before."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from tinymodel import write_mymodels
from torch import nn

from benchsuite.core.paths import schedules_dir
from benchsuite.frontends.cli import main
from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler, model_stats
from benchsuite.prune.distiller_summary import layer_rows
from benchsuite.prune.dryrun import dry_run, pruned_model
from benchsuite.prune.graph import prunable_layers
from benchsuite.recipe import RecipeError, load_recipe, parse_recipe, render
from benchsuite.recipe.case import Case

pytestmark = pytest.mark.usefixtures("one_thread")

X3 = torch.zeros(1, 3, 32, 32)
# what schedules/l1_filters.yaml listed before it selected by rule (Distiller's ResNet-20 list)
DISTILLER_RESNET20 = [f"module.layer{s}.{b}.conv1.weight" for s in (1, 2, 3) for b in range(3)]


@pytest.fixture
def mymodels(tmp_path, monkeypatch):
    """The user's `mymodels.py` in the current directory, as `--model mymodels:tiny` finds it."""
    write_mymodels(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    sys.modules.pop("mymodels", None)
    yield "mymodels:tiny"
    sys.modules.pop("mymodels", None)


@pytest.mark.parametrize("depth", [20, 56])
def test_rule_selects_distillers_lists_on_the_cifar_resnets(depth):
    n = (depth - 2) // 6
    layers = prunable_layers(build_model(f"resnet{depth}", 10, 3), X3)
    blocks = [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(n)]
    # Filters: the block convs not tied to a residual add (stem, conv2s, downsamples are)
    assert layers["Filters"] == [f"{b}.conv1.weight" for b in blocks]
    # Channels: the convs reading only such a conv (resnet20/channels_oneshot's list)
    assert layers["Channels"] == [f"{b}.conv2.weight" for b in blocks]
    assert layers["Rows"] == []  # the classifier reads the residual stream


def test_l1_filters_by_rule_prunes_resnet20_as_its_old_list_did():
    path = schedules_dir() / "l1_filters.yaml"
    text = path.read_text()
    assert load_recipe(path).pruners["filter_pruner"].args["weights"] is None  # no ResNet names
    anchor = "    round_to: ${round_to=1}\n"
    listed = text.replace(anchor, f"{anchor}    weights: [{', '.join(DISTILLER_RESNET20)}]\n")
    by_rule = dry_run(load_recipe(path), "resnet20", (3, 32, 32))
    explicit = dry_run(parse_recipe(render(listed), "listed.yaml"), "resnet20", (3, 32, 32))
    assert [r.as_dict() for r in by_rule.rows] == [r.as_dict() for r in explicit.rows]
    assert by_rule.thinned == explicit.thinned == {
        w.removeprefix("module.").removesuffix(".weight"): 8 if "layer1" in w else
        16 if "layer2" in w else 32 for w in DISTILLER_RESNET20}


def test_readme_own_model_example_prunes_and_thins(mymodels):
    """README: `Case(recipe="l1_filters", model="mymodels:tiny")` on a plain CNN: bound by the
    rule, the filters of both convs halved and thinned (MACs drop), the model still runs."""
    case = Case(recipe="l1_filters", params={"sparsity": 0.5}, model=mymodels)
    recipe = parse_recipe(case.recipe_text(), case.recipe_path.name)
    model, sched, dense_rows = pruned_model(recipe, case.model, (3, 32, 32))
    assert sched.pruners["filter_pruner"].weights() == ["stem.weight", "body.weight"]
    assert sched.thinned == {"stem": 8, "body": 16}
    assert (model.stem.out_channels, model.body.in_channels, model.body.out_channels,
            model.head.in_features) == (8, 8, 16, 16)
    # Distiller's count: stem 16x3x9 -> 8x3x9 at 32x32, body 32x16x9 -> 16x8x9 at 16x16
    assert sum(r.macs for r in dense_rows) == 442_368 + 1_179_648 + 320
    assert sum(r.macs for r in layer_rows(model, X3)) == 221_184 + 294_912 + 160
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_readme_own_model_case_passes_the_pipelines_validation(mymodels):
    """What failed with `no parameter 'module.layer1.0.conv1.weight'` before any training."""
    from benchsuite.pipeline.run import validate

    validate(Case(recipe="l1_filters", params={"sparsity": 0.5}, model=mymodels,
                  dataset="digits"))


def test_recipe_dry_run_of_l1_filters_on_my_model(mymodels, capsys):
    assert main(["recipe", "dry-run", str(schedules_dir() / "l1_filters.yaml"), "--model",
                 mymodels, "--input", "3x32x32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["thinned"] == {"stem": 8, "body": 16}
    assert (out["dense_macs"], out["macs"]) == (1_622_336, 516_256)
    assert main(["recipe", "check", str(schedules_dir() / "l1_filters.yaml"), "--model",
                 mymodels]) == 0
    out = capsys.readouterr().out
    assert "ok on mymodels:tiny" in out
    assert "  pruners.filter_pruner: 2 layers by rule: stem, body\n" in out


CHANNELS_AND_ROWS = """
version: 1
pruners:
  channels: {class: L1RankedStructureParameterPruner, group_type: Channels,
             desired_sparsity: 0.5}
  rows: {class: L2RankedStructureParameterPruner_AGP, group_type: Rows, initial_sparsity: 0.1,
         final_sparsity: 0.5}
extensions:
  thin: {class: ChannelRemover, thinning_func_str: remove_channels}
policies:
  - pruner: {instance_name: channels}
    epochs: [0]
  - pruner: {instance_name: rows}
    starting_epoch: 0
    ending_epoch: 2
  - extension: {instance_name: thin}
    epochs: [1]
"""


def test_channels_and_rows_by_rule_on_my_model(mymodels):
    recipe = parse_recipe(CHANNELS_AND_ROWS, "c.yaml")
    model, sched, _ = pruned_model(recipe, mymodels, (3, 32, 32))
    assert sched.pruners["channels"].weights() == ["body.weight"]
    assert sched.pruners["rows"].weights() == ["head.weight"]
    # body's input channels went with stem's filters; head's zeroed input features went with
    # body's filters (ChannelRemover thins a linear layer's inputs that no layer reads)
    assert (model.stem.out_channels, model.body.in_channels) == (8, 8)
    assert (model.body.out_channels, model.head.in_features) == (16, 16)
    assert int((model.head.weight == 0).all(0).sum()) == 0
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


class Branchy(nn.Module):
    """Concatenated branches, a depthwise conv, a grouped conv, an MLP head."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.c = nn.Conv2d(8, 6, 1)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.grouped = nn.Conv2d(6, 6, 1, groups=2)
        self.fc = nn.Linear(6, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        y = self.c(torch.cat([self.a(x), self.b(x)], 1))
        y = self.grouped(self.dw(torch.relu(y)))
        return self.out(torch.relu(self.fc(y.mean((2, 3)))))


def test_rule_follows_the_dependency_graph():
    layers = prunable_layers(Branchy(), torch.zeros(1, 3, 8, 8))
    # a, b feed a concat read by c; c's output reaches the grouped conv (not selected); the
    # classifier's outputs are the model's
    assert layers["Filters"] == ["a.weight", "b.weight"]
    assert layers["Channels"] == ["c.weight"]
    assert layers["Rows"] == ["out.weight"]


def test_a_model_with_nothing_to_prune_by_rule_says_so():
    model = nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    text = (schedules_dir() / "l1_filters.yaml").read_text()
    with pytest.raises(RecipeError, match=r"pruners\.filter_pruner\.weights: no weights named "
                       r"and the model \(Sequential\) has no conv whose output feeds only "
                       r"prunable layers"):
        CompressionScheduler(parse_recipe(render(text), "l1_filters.yaml"), model, X3)


def test_explicit_weights_still_bind_exactly_and_blocks_need_them():
    text = """
version: 1
pruners:
  p: {class: L1RankedStructureParameterPruner, group_type: Filters, desired_sparsity: 0.5,
      weights: [module.layer2.1.conv1.weight]}
  blocks: {class: L1RankedStructureParameterPruner, group_type: Blocks, desired_sparsity: 0.5,
           kwargs: {block_shape: [1, 4, 1, 1]}}
policies:
  - pruner: {instance_name: p}
    epochs: [0]
"""
    with pytest.raises(RecipeError, match=r"pruners\.blocks\.weights: group_type Blocks has no "
                       "selection rule"):
        CompressionScheduler(parse_recipe(text, "r.yaml"), build_model("resnet20", 10, 3), X3)
    lone = text.split("  blocks:")[0] + "policies:" + text.split("policies:")[1]
    sched = CompressionScheduler(parse_recipe(lone, "r.yaml"), build_model("resnet20", 10, 3), X3)
    assert sched.pruners["p"].weights() == ["layer2.1.conv1.weight"]


def test_agp_without_weights_prunes_every_conv_and_linear(mymodels):
    text = """
version: 1
pruners:
  agp: {class: AutomatedGradualPruner, initial_sparsity: 0.1, final_sparsity: 0.5}
policies:
  - pruner: {instance_name: agp}
    starting_epoch: 0
    ending_epoch: 3
"""
    model, sched, _ = pruned_model(parse_recipe(text, "a.yaml"), mymodels, (3, 32, 32))
    assert sched.pruners["agp"].weights() == ["stem.weight", "body.weight", "head.weight"]
    assert model_stats(model, X3)["weight_sparsity"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(("top", "listed"), [("l1_channels", "resnet20/channels_oneshot"),
                                             ("agp_filters", "resnet20/filters_agp"),
                                             ("remove_blocks", "resnet20/block_removal")])
def test_top_level_recipes_match_their_resnet20_siblings(top, listed):
    """On ResNet-20 the rule gives what the model folder's recipe lists: the same pruned model."""
    runs = [dry_run(load_recipe(schedules_dir() / f"{name}.yaml"), "resnet20", (3, 32, 32))
            for name in (top, listed)]
    assert [r.as_dict() for r in runs[0].rows] == [r.as_dict() for r in runs[1].rows]
    assert runs[0].thinned == runs[1].thinned and runs[0].removed_blocks == runs[1].removed_blocks
    assert runs[0].pruned["macs"] < runs[0].dense["macs"]


@pytest.mark.parametrize(("name", "model"), [("l1_channels", "mymodels:tiny"),
                                             ("agp_filters", "mymodels:tiny"),
                                             ("remove_blocks", "resnet18")])
def test_top_level_recipes_prune_other_models(name, model, mymodels):
    recipe = load_recipe(schedules_dir() / f"{name}.yaml")
    pruned, sched, dense_rows = pruned_model(recipe, model, (3, 32, 32))
    assert sched.thinned or sched.removed_blocks
    assert sum(r.macs for r in layer_rows(pruned, X3)) < 0.7 * sum(r.macs for r in dense_rows)
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_the_bn_after_a_conv_is_found_whatever_its_name(mymodels):
    """APoZ / activation-mean ranking and fold_batchnorm read the BN after each conv: by
    Distiller's names (conv1 -> bn1) or, on a model named otherwise, by the dependency graph."""
    from benchsuite.prune.criteria import _following_bn
    from benchsuite.prune.folding import folded

    model = build_model(mymodels, 10, 3)
    assert _following_bn(model, "stem") is None  # no Distiller names here
    assert _following_bn(model, "stem", X3) is model.stem_bn
    assert _following_bn(model, "body", X3) is model.body_bn
    with torch.no_grad():
        model.stem_bn.weight[:8] = 0
    with folded(model, ["stem.weight"], X3):
        assert (model.stem.weight[:8] == 0).all() and (model.stem.weight[8:] != 0).any()
    assert (model.stem.weight[:8] != 0).any()  # restored
