"""The table of recipe errors: each names the key path and fails before training."""

import pytest
import torch

from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler
from benchsuite.recipe import RecipeError, parse_recipe

BASE = """
version: 1
pruners:
  agp:
    class: AutomatedGradualPruner
    initial_sparsity: 0.05
    final_sparsity: 0.5
    weights: [module.layer1.0.conv1.weight, module.layer1.0.conv2.weight]
  level:
    class: SparsityLevelParameterPruner
    levels: {module.layer1.0.conv2.weight: 0.3}
regularizers:
  lasso:
    class: GroupLassoRegularizer
    reg_regims: {module.layer2.0.conv1.weight: [0.001, Filters]}
lr_schedulers:
  lr:
    class: StepLR
    step_size: 2
policies:
  - pruner: {instance_name: agp}
    starting_epoch: 0
    ending_epoch: 3
  - pruner: {instance_name: level}
    epochs: [5]
  - regularizer: {instance_name: lasso}
    starting_epoch: 0
    ending_epoch: 3
  - lr_scheduler: {instance_name: lr}
    starting_epoch: 0
    ending_epoch: 10
"""

# (what is wrong, edit of BASE, the message)
ERRORS = [
    ("unknown class", ("class: SparsityLevelParameterPruner", "class: LevelPruner"),
     "pruners.level.class: unknown pruner class 'LevelPruner' (known: ActivationAPoZ"),
    ("bad sparsity", ("final_sparsity: 0.5", "final_sparsity: 1.2"),
     "pruners.agp.final_sparsity: must be in [0, 1), got 1.2"),
    ("sparsity not a number", ("final_sparsity: 0.5", "final_sparsity: half"),
     "pruners.agp.final_sparsity: must be a number in [0, 1), got 'half'"),
    ("unknown argument", ("initial_sparsity: 0.05", "initial_sparsity: 0.05\n    foo: 1"),
     "pruners.agp.foo: unknown argument (accepted: final_sparsity, initial_sparsity, weights)"),
    ("unknown weight", ("module.layer1.0.conv2.weight]", "module.layer1.0.conv3.weight]"),
     "pruners.agp.weights[1]: no parameter 'module.layer1.0.conv3.weight' in the model; "
     "did you mean layer1.0.conv2.weight"),
    ("unknown instance", ("{instance_name: level}", "{instance_name: levels}"),
     "policies[1].pruner.instance_name: no pruner named 'levels' in pruners "
     "(defined: agp, level)"),
    ("overlapping epochs", ("epochs: [5]", "epochs: [2, 5]"),
     "policies[1].pruner.instance_name: pruner 'level' overlaps policies[0] (pruner 'agp'): "
     "both prune layer1.0.conv2.weight at epoch(s) 2"),
    ("unknown policy arg", ("{instance_name: level}", "{instance_name: level, args: {foo: 1}}"),
     "policies[1].pruner.args.foo: unknown argument (accepted: discard_masks_at_minibatch_end"),
    ("bad policy arg", ("{instance_name: level}",
                        "{instance_name: level, args: {mini_batch_pruning_frequency: -1}}"),
     "policies[1].pruner.args.mini_batch_pruning_frequency: must be >= 0, got -1"),
    ("lr scheduler argument", ("step_size: 2", "stepsize: 2"),
     "lr_schedulers.lr.stepsize: unknown argument of StepLR (accepted: step_size, gamma, "
     "last_epoch)"),
    ("lr scheduler missing argument", ("    step_size: 2\n", ""),
     "lr_schedulers.lr: StepLR: "),
    ("unknown lr scheduler", ("class: StepLR", "class: StepLRR"),
     "lr_schedulers.lr.class: unknown lr scheduler class 'StepLRR'"),
    ("regularizer group type", ("[0.001, Filters]", "[0.001, Kernels]"),
     "regularizers.lasso.reg_regims.module.layer2.0.conv1.weight[1]: must be one of Filters, "
     "3D, Channels, 2D, 4D, Rows, Cols, Rows+Cols, Cols+Rows, Channels+4D, 4D+Channels, "
     "got 'Kernels'"),
    ("regularizer group type of another rank", ("[0.001, Filters]", "[0.001, Rows]"),
     "regularizers.lasso.reg_regims.module.layer2.0.conv1.weight[1]: Rows groups a 2D weight "
     "(fully-connected); layer2.0.conv1.weight is 4D"),
    ("regularizer weight", ("layer2.0.conv1.weight: [", "layer2.0.conv7.weight: ["),
     "regularizers.lasso.reg_regims.module.layer2.0.conv7.weight: no parameter"),
    ("ending before starting", ("ending_epoch: 10", "ending_epoch: 0"),
     "policies[3].ending_epoch: must be greater than starting_epoch (0), got 0"),
    ("policy kind", ("  - lr_scheduler: {instance_name: lr}", "  - scheduler: {instance_name: lr}"),
     "policies[3]: must name exactly one of pruner, regularizer, lr_scheduler, extension"),
]


@pytest.mark.parametrize("old_new,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_recipe_error_table(old_new, message):
    old, new = old_new
    assert old in BASE
    text = BASE.replace(old, new, 1)
    model = build_model("resnet20", 10, 1)
    with pytest.raises(RecipeError) as e:
        CompressionScheduler(parse_recipe(text, "r.yaml"), model, torch.zeros(1, 1, 32, 32))
    assert str(e.value).startswith("r.yaml: " + message), str(e.value)


def test_the_base_recipe_binds():
    """The table above changes one thing each of this recipe, which binds as it is: each pruner
    to the weights it names (Distiller's `module.` prefix dropped)."""
    model = build_model("resnet20", 10, 1)
    scheduler = CompressionScheduler(parse_recipe(BASE, "r.yaml"), model,
                                     torch.zeros(1, 1, 32, 32))
    assert sorted(scheduler.pruners) == ["agp", "level"]
    assert sorted(scheduler.pruners["agp"].weights()) == ["layer1.0.conv1.weight",
                                                         "layer1.0.conv2.weight"]
    assert sorted(scheduler.pruners["level"].weights()) == ["layer1.0.conv2.weight"]


@pytest.mark.parametrize("pruner,message", [
    ("class: BlockRemover\n    blocks_per_stage: 1\n    fraction: 0.5",
     "pruners.p: give exactly one of blocks_per_stage, fraction"),
    ("class: ActivationAPoZRankedFilterPruner\n    group_type: Channels\n"
     "    desired_sparsity: 0.5\n    weights: [layer1.0.conv1.weight]",
     "pruners.p.group_type: must be one of Filters, 3D, got 'Channels'"),
    ("class: L1RankedStructureParameterPruner\n    group_type: Rows\n"
     "    desired_sparsity: 0.5\n    weights: [layer1.0.conv1.weight]",
     "pruners.p.weights[0]: layer1.0.conv1.weight is not a fully-connected weight"),
    ("class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
     "    group_dependency: Leader\n    desired_sparsity: 0.5\n"
     "    weights: [layer1.0.conv1.weight, layer2.0.conv1.weight]",
     "pruners.p.group_dependency: Leader needs weights with the same number of filters"),
])
def test_pruner_binding_errors(pruner, message):
    text = f"version: 1\npruners:\n  p:\n    {pruner}\npolicies:\n" \
           "  - pruner: {instance_name: p}\n    epochs: [0]\n"
    model = build_model("resnet20", 10, 1)
    with pytest.raises(RecipeError) as e:
        CompressionScheduler(parse_recipe(text, "r.yaml"), model, torch.zeros(1, 1, 32, 32))
    assert str(e.value).startswith("r.yaml: " + message), str(e.value)


@pytest.mark.parametrize("pruner", [
    "class: ActivationAPoZRankedFilterPruner\n    group_type: Filters\n"
    "    desired_sparsity: 0.5\n    weights: [layer1.0.conv1.weight]",
    "class: BlockRemover\n    blocks_per_stage: 1",
])
def test_data_driven_pruners_bind_without_data_but_refuse_to_guess(pruner):
    """Binding (validation) needs no data; pruning without a calibration batch is an error."""
    text = f"version: 1\npruners:\n  p:\n    {pruner}\npolicies:\n" \
           "  - pruner: {instance_name: p}\n    epochs: [0]\n"
    model = build_model("resnet20", 10, 1)
    sched = CompressionScheduler(parse_recipe(text, "r.yaml"), model, torch.zeros(1, 1, 32, 32))
    with pytest.raises(RecipeError, match=r"pruners\.p\.class: .* calibration batch"):
        sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
