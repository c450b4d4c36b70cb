import pytest
import torch

from benchsuite.models import MODEL_NAMES, build_model
from benchsuite.pipeline.grid import found_recipe_info
from benchsuite.prune import CompressionScheduler
from benchsuite.recipe import RecipeError, load_recipe, parse_recipe, render, template_parameters

LEVEL = """
version: 1
pruners:
  p:
    class: SparsityLevelParameterPruner
    levels: {'*': %s}
policies:
  - pruner: {instance_name: p}
    epochs: [0]
"""

FILTERS = """
version: 1
pruners:
  f:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [%s]
policies:
  - pruner: {instance_name: f}
    epochs: [0]
"""


def bind(text):
    model = build_model("resnet20", 10, 1)
    return CompressionScheduler(parse_recipe(text, "r.yaml"), model, torch.zeros(1, 1, 32, 32))


@pytest.mark.parametrize("text,match", [
    (LEVEL.replace("SparsityLevelParameterPruner", "NoSuchPruner") % 0.5,
     r"pruners\.p\.class: unknown pruner class 'NoSuchPruner'"),
    (LEVEL % 1.2, r"pruners\.p\.levels\.\*: must be in \[0, 1\), got 1.2"),
    (LEVEL % -0.1, r"pruners\.p\.levels\.\*: must be in \[0, 1\)"),
    (LEVEL.replace("instance_name: p", "instance_name: q") % 0.5,
     r"policies\[0\]\.pruner\.instance_name: no pruner named 'q'"),
    (LEVEL.replace("levels:", "level:") % 0.5, r"pruners\.p\.level: unknown argument"),
    (LEVEL.replace("version: 1", "version: 1\nquantizers: {}") % 0.5,
     r"quantizers: unknown top-level key"),
    (LEVEL.replace("epochs: [0]", "starting_epoch: 3\n    ending_epoch: 1") % 0.5,
     r"policies\[0\]\.ending_epoch: must be greater than starting_epoch"),
    (FILTERS.replace("desired_sparsity: 0.5", "desired_sparsity: 1.0") % "conv1.weight",
     r"pruners\.f\.desired_sparsity: must be in \[0, 1\), got 1.0"),
])
def test_grammar_errors_name_the_key(text, match):
    with pytest.raises(RecipeError, match=match) as e:
        parse_recipe(text, "r.yaml")
    assert str(e.value).startswith("r.yaml: ")


def test_unknown_weight_name_fails_when_bound_with_suggestion():
    expected = (r"pruners\.f\.weights\[1\]: no parameter 'module.layer1.0.conv9.weight'"
                r".*did you mean .*layer1.0.conv1.weight")
    with pytest.raises(RecipeError, match=expected) as e:
        bind(FILTERS % "module.layer1.0.conv1.weight, module.layer1.0.conv9.weight")
    assert str(e.value).startswith("r.yaml: ")


def test_distiller_module_prefix_is_accepted():
    s = bind(FILTERS % "module.layer1.0.conv1.weight, layer2.1.conv1.weight")
    assert s.pruners["f"].weights() == ["layer1.0.conv1.weight", "layer2.1.conv1.weight"]


def test_structured_pruner_refuses_non_conv_weights():
    with pytest.raises(RecipeError, match=r"weights\[0\]: fc.weight is not a convolution"):
        bind(FILTERS % "fc.weight")


def test_template_render_defaults_and_errors():
    text = "a: ${x=0.5}\nb: ${y}\nc: ${x}"
    assert template_parameters(text) == {"x": "0.5", "y": None}
    assert render(text, {"y": [1, 2]}) == "a: 0.5\nb: [1, 2]\nc: 0.5"
    with pytest.raises(RecipeError, match=r"\$\{y\} has no value"):
        render(text, {})
    with pytest.raises(RecipeError, match="parameter\\(s\\) z not in the recipe template"):
        render(text, {"y": 1, "z": 2})


# the reference recipe: nothing pruned (dense fine-tuned, or dense -> INT8 with --precision int8)
PRUNES_NOTHING = {"dense"}


def test_shipped_recipes_parse(tmp_path):
    from benchsuite.core.paths import schedules_dir
    from benchsuite.pipeline.grid import recipe_files

    files = recipe_files(schedules_dir())
    assert {"level_elementwise", "l1_filters"} <= set(files)
    for name, path in files.items():
        recipe = load_recipe(path)
        assert bool(recipe.policies) is (name not in PRUNES_NOTHING), path



def _library():
    from benchsuite.core.paths import schedules_dir
    from benchsuite.pipeline.grid import recipe_files

    return sorted(recipe_files(schedules_dir()).values())  # sweep configs are not recipes


@pytest.mark.parametrize("path", _library(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_recipe_parses_and_binds_to_its_model(path, digits):
    """Every recipe in schedules/ (subfolders too) parses, has a header comment, and binds to
    the model its folder names (top level: resnet20; found/: its header's) with its template
    defaults."""
    text = path.read_text()
    assert text.startswith("#"), f"{path}: needs a header comment saying what it tests"
    recipe = load_recipe(path)
    name = path.parent.name if path.parent.name in MODEL_NAMES else "resnet20"
    if path.parent.name == "found":  # a sweep's best: run on the model it was found with
        name = found_recipe_info(path)["case"]["model"]
    model = build_model(name, 10, 1)
    calib = (digits.x_train[:8], digits.y_train[:8])
    sched = CompressionScheduler(recipe, model, torch.zeros(1, 1, 32, 32), calibration=calib)
    assert bool(sched.pruners or sched.regularizers) is (path.stem not in PRUNES_NOTHING)
    assert recipe.last_epoch() <= 6  # fine-tuning kept short


def test_library_covers_every_paradigm():
    classes = set()
    for path in _library():
        recipe = load_recipe(path)
        classes |= {c.cls for c in recipe.pruners.values()}
        classes |= {c.cls for c in recipe.regularizers.values()}
        classes |= {c.cls for c in recipe.extensions.values()}
    assert {"SparsityLevelParameterPruner", "MagnitudeParameterPruner", "SensitivityPruner",
            "SplicingPruner", "AutomatedGradualPruner", "L1RankedStructureParameterPruner",
            "L1RankedStructureParameterPruner_AGP", "ActivationAPoZRankedFilterPruner_AGP",
            "BlockRemover", "GroupLassoRegularizer", "L1Regularizer", "FilterRemover",
            "ChannelRemover"} <= classes
