"""`benchsuite recipe check|dry-run|list`: Distiller's MAC count, thinning applied, clear errors,
which models each recipe of the library fits."""

import json
import sys

import pytest
import torch

from benchsuite.frontends.cli import main
from benchsuite.models import build_model
from benchsuite.prune.distiller_summary import layer_rows, totals

pytestmark = pytest.mark.usefixtures("one_thread")

EMPTY = "version: 1\npolicies: []\n"

# our own recipe of the shape of Li et al.'s filter pruning on ResNet-56: one-shot L1 filters on
# the first conv of some blocks of each stage, then thinning
FILTERS = """
version: 1
pruners:
  stage1:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.layer1.0.conv1.weight, module.layer1.3.conv1.weight]
  stage3:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.25
    weights: [module.layer3.2.conv1.weight]
extensions:
  thin: {class: FilterRemover, thinning_func_str: remove_filters, arch: resnet56_cifar,
         dataset: cifar10}
policies:
  - pruner: {instance_name: stage1}
    epochs: [0]
  - pruner: {instance_name: stage3}
    epochs: [0]
  - extension: {instance_name: thin}
    epochs: [0]
"""


def test_dense_resnet56_has_distillers_mac_count():
    model = build_model("resnet56", 10, 3)
    assert totals(layer_rows(model, torch.zeros(1, 3, 32, 32)))["macs"] == 125_747_840


def test_dry_run_thins_and_counts(tmp_path, capsys):
    path = tmp_path / "filters.yaml"
    path.write_text(FILTERS)
    assert main(["recipe", "dry-run", str(path), "--model", "resnet56", "--input", "3x32x32",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dense_macs"] == 125_747_840
    layers = {r["name"]: r for r in out["layers"]}
    assert layers["layer1.0.conv1"]["shape"] == [8, 16, 3, 3]
    assert layers["layer1.0.conv2"]["shape"] == [16, 8, 3, 3]
    assert layers["layer3.2.conv1"]["shape"] == [48, 64, 3, 3]
    # each halved 16-filter conv in stage 1 saves 8 filters x (16*9) x 32*32 MACs, twice
    # (its own output and the next conv's input); stage 3 saves 16 x 64*9 x 8*8 twice
    saved = 2 * (2 * 8 * 16 * 9 * 32 * 32) + 2 * 16 * 64 * 9 * 8 * 8
    assert out["macs"] == 125_747_840 - saved
    assert out["params"] == out["nnz_params"] < out["dense_params"]


def test_check_reports_ok_and_bad_names(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(FILTERS)
    assert main(["recipe", "check", str(good), "--model", "resnet56"]) == 0
    assert "good.yaml: ok on resnet56" in capsys.readouterr().out
    # the same recipe on ResNet-20: layer1.3 does not exist there
    assert main(["recipe", "check", str(good), "--model", "resnet20"]) == 2
    err = capsys.readouterr().err
    assert "good.yaml: pruners.stage1.weights[1]: no parameter 'module.layer1.3.conv1.weight'" \
        in err
    assert "(the recipe's weights fit resnet32, resnet44, resnet56, not resnet20)" in err
    # weights of no model of the suite
    bad = tmp_path / "vgg.yaml"
    bad.write_text(FILTERS.replace("module.layer3.2.conv1.weight", "module.features.3.weight"))
    assert main(["recipe", "check", str(bad), "--model", "resnet56"]) == 2
    err = capsys.readouterr().err
    from benchsuite.models import MODEL_NAMES

    assert f"the recipe's weights fit none of the suite's models ({', '.join(MODEL_NAMES)})" \
        in err


def test_check_takes_a_recipe_by_its_name_as_pytest_does(capsys):
    assert main(["recipe", "check", "l1_filters", "--model", "resnet20"]) == 0
    assert "l1_filters.yaml: ok on resnet20" in capsys.readouterr().out
    assert main(["recipe", "check", "resnet20/block_removal", "--model", "resnet20"]) == 0
    assert main(["recipe", "check", "no_such_recipe", "--model", "resnet20"]) == 2
    assert "no recipe file no_such_recipe and no recipe 'no_such_recipe' in the library" \
        in capsys.readouterr().err


def test_text_output_has_the_totals(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text(EMPTY)
    assert main(["recipe", "dry-run", str(path), "--model", "resnet20", "--input",
                 "3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "dense_macs       40,813,184" in out
    assert "nnz_params" in out


def test_an_amc_configuration_is_not_a_schedule(tmp_path, capsys):
    path = tmp_path / "amc.yaml"
    path.write_text("network:\n  resnet20_cifar: [module.layer1.0.conv1]\n")
    assert main(["recipe", "check", str(path), "--model", "resnet20"]) == 2
    err = capsys.readouterr().err
    assert "amc.yaml: network: this is an AMC (automated model compression) configuration, " \
           "not a scheduling recipe" in err


def test_dry_run_with_a_scaled_schedule(tmp_path, capsys):
    path = tmp_path / "agp.yaml"
    path.write_text("""
version: 1
pruners:
  agp: {class: AutomatedGradualPruner, initial_sparsity: 0.1, final_sparsity: 0.5,
        weights: [layer1.0.conv1.weight]}
policies:
  - pruner: {instance_name: agp}
    starting_epoch: 0
    ending_epoch: 100
    frequency: 10
""")
    assert main(["recipe", "dry-run", str(path), "--model", "resnet20", "--json",
                 "--schedule-scale", "0.1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs"] == 10  # epochs 0..9 (the last AGP step at 9), not 0..90
    layer = {r["name"]: r for r in out["layers"]}["layer1.0.conv1"]
    assert layer["nnz"] == layer["params"] - int(0.5 * layer["params"])


def test_a_case_on_the_wrong_model_says_which_models_fit(tmp_path):
    from benchsuite.pipeline.run import validate
    from benchsuite.recipe import RecipeError
    from benchsuite.recipe.case import Case

    path = tmp_path / "filters.yaml"
    path.write_text(FILTERS)
    with pytest.raises(RecipeError, match=r"fit resnet32, resnet44, resnet56, not resnet20"):
        validate(Case(recipe=str(path), model="resnet20"))


def _library_copy(tmp_path, names):
    """A recipe folder with some of the library's recipes (their names kept)."""
    from benchsuite.core.paths import schedules_dir

    folder = tmp_path / "lib"
    for name in names:
        dest = folder / f"{name}.yaml"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text((schedules_dir() / f"{name}.yaml").read_text())
    return folder


def test_recipe_list_says_which_recipes_fit_any_model(tmp_path, monkeypatch, capsys):
    from tinymodel import write_mymodels

    folder = _library_copy(tmp_path, ["l1_filters", "tp_uniform", "resnet20/filters_oneshot",
                                      "resnet20/block_removal", "resnet56/filters_l1_oneshot"])
    monkeypatch.setenv("BENCHSUITE_SCHEDULES", str(folder))
    write_mymodels(tmp_path, "mymodels_list")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the import adds the current directory
    try:
        assert main(["recipe", "list", "--model", "mymodels_list:tiny"]) == 0
    finally:
        sys.modules.pop("mymodels_list", None)
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert lines["l1_filters"].endswith(" any model")
    assert lines["tp_uniform"].endswith(" any model")
    assert lines["resnet20/filters_oneshot"].endswith(
        "model-specific: names weights only resnet20, resnet32, resnet44, resnet56, "
        "resnet20_half, resnet50 have")
    assert lines["resnet56/filters_l1_oneshot"].endswith(
        "model-specific: names weights only resnet56 have")
    assert lines["resnet20/block_removal"].endswith(
        "models with residual blocks (binds to resnet20 (a CIFAR ResNet), not to small_cnn "
        "(a plain CNN))")
    assert "classes: L1RankedStructureParameterPruner, FilterRemover\n" in out
    assert "template: sparsity=0.5, round_to=1\n" in out
    assert "on mymodels_list:tiny: ok\n" in out  # l1_filters, tp_uniform
    assert "on mymodels_list:tiny: pruners.filters.weights[0]: no parameter " \
           "'module.layer1.0.conv1.weight' in the model" in out
    assert out.splitlines()[-1] == (
        "5 recipes: 2 fit any model (they name no weights and bind to small_cnn and resnet20), "
        "2 name their weights (model-specific), 1 bind to some models only")


def test_recipe_list_json_covers_the_library(capsys):
    """Every top-level recipe of the library fits any model (block removal and the latency
    budget: any model with residual blocks); the model folders' recipes name their weights or
    need residual blocks."""
    assert main(["recipe", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    top = {n for n in rows if "/" not in n}
    residual = {"remove_blocks", "latency_budget"}
    assert top == {"dense", "level_elementwise", "l1_filters", "l1_channels", "agp_filters",
                   "tp_uniform", *residual}
    for name in top - residual:
        assert rows[name]["any_model"], (name, rows[name]["fits"])
        assert rows[name]["written_for"] is None
    for name in residual:
        assert rows[name]["fits"].startswith("models with residual blocks"), rows[name]
    assert rows["resnet20/filters_oneshot"]["written_for"] == "resnet20"
    assert rows["l1_filters"]["template"] == {"sparsity": "0.5", "round_to": "1"}
    assert rows["l1_filters"]["classes"] == ["L1RankedStructureParameterPruner", "FilterRemover"]
    for name, row in rows.items():
        if name.startswith(("resnet20/", "resnet56/")) and not row["any_model"]:
            assert row["fit"]["names_weights"] or "residual blocks" in row["fits"], name
