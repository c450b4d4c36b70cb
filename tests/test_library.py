"""Every library recipe runs all its policies on its model (no training: masks, removals and
thinning only) and changes the model the way its paradigm should."""

import pytest
import torch

from benchsuite.core.paths import schedules_dir
from benchsuite.models import MODEL_NAMES, build_model
from benchsuite.prune import CompressionScheduler, model_stats
from benchsuite.recipe import load_recipe

X = torch.zeros(1, 1, 32, 32)

# recipe -> (MACs ratio range, weight-sparsity range, blocks removed)
EXPECTED = {
    "dense": ((1, 1), (0, 0.01), 0),  # nothing pruned (dense -> INT8 with --precision int8)
    "level_elementwise": ((1, 1), (0.49, 0.51), 0),
    "l1_filters": ((0.45, 0.55), (0, 0), 0),
    "tp_uniform": ((0.22, 0.28), (0, 0), 0),  # torch-pruning's default at ratio 0.5
    "l1_channels": ((0.45, 0.55), (0, 0), 0),  # by rule: resnet20/channels_oneshot's convs
    "agp_filters": ((0.45, 0.55), (0, 0), 0),  # by rule: resnet20/filters_agp's convs
    "remove_blocks": ((0.6, 0.7), (0, 0), 3),  # as resnet20/block_removal
    "resnet20/agp_elementwise": ((1, 1), (0.45, 0.5), 0),
    "resnet20/magnitude": ((1, 1), (0.05, 0.6), 0),
    "resnet20/sensitivity_pruner": ((1, 1), (0.45, 0.55), 0),
    "resnet20/network_surgery": ((1, 1), (0.4, 0.7), 0),
    "resnet20/hybrid_agp": ((0.6, 0.9), (0.3, 0.6), 0),
    "resnet20/filters_oneshot": ((0.45, 0.55), (0, 0), 0),
    "resnet20/filters_agp": ((0.45, 0.55), (0, 0), 0),
    "resnet20/filters_masked": ((1, 1), (0.2, 0.3), 0),
    "resnet20/channels_oneshot": ((0.45, 0.55), (0, 0), 0),
    "resnet20/group_lasso": ((0.45, 0.55), (0, 0), 0),
    "resnet20/l1_regularized_level": ((1, 1), (0.49, 0.51), 0),
    "resnet20/block_removal": ((0.6, 0.7), (0, 0), 3),
    "resnet20/blocks_and_filters": ((0.25, 0.4), (0, 0), 3),
    "resnet20/per_stage": ((0.3, 0.45), (0, 0), 3),  # 1 + 1 + 1 blocks, width 0.4
    "resnet56/agp_elementwise": ((1, 1), (0.45, 0.5), 0),
    "resnet56/filters_l1_oneshot": ((0.62, 0.64), (0, 0), 0),  # Distiller: 1.59x fewer MACs
    "resnet56/channels_l1_oneshot": ((0.4, 0.7), (0, 0), 0),
    "resnet56/apoz_agp_filters": ((0.4, 0.7), (0, 0), 0),
    "resnet56/filters_global": ((0.4, 0.6), (0, 0), 0),
    "resnet56/block_removal": ((0.3, 0.35), (0, 0), 18),
    "resnet56/blocks_and_filters": ((0.1, 0.2), (0, 0), 18),
    "resnet56/per_stage": ((0.28, 0.32), (0, 0), 12),  # 4 + 4 + 4 blocks, width 0.4
    # expansion convs at 0.5: their depthwise convs and the projections' inputs go with them
    "mobilenetv2/expansion_channels": ((0.52, 0.6), (0, 0), 0),
    "mobilenetv2/block_removal": ((0.75, 0.82), (0, 0), 4),  # one of stages 3, 4, 5, 6 each
    "vit_tiny/heads": ((0.87, 0.9), (0, 0), 0),  # 1 of 3 heads a block: qkv and proj, 2/3
    "vit_tiny/mlp_width": ((0.64, 0.72), (0, 0), 0),  # half of the MLPs, 2/3 of the linear MACs
    "vit_tiny/block_removal": ((0.64, 0.72), (0, 0), 2),  # 4 of 6 encoder blocks left
}

# recipes that need a measured latency table to bind: tests/test_latency_budget.py runs them
NEEDS_LATENCY_TABLE = {"latency_budget"}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_table_lists_every_recipe():
    from benchsuite.pipeline.grid import recipe_files

    found = {n for n in recipe_files(schedules_dir()) if not n.startswith("found/")}
    # sweep-found recipes (schedules/found/) are not the library
    assert found == set(EXPECTED) | NEEDS_LATENCY_TABLE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_library_recipe_applies(name, digits):
    (lo, hi), (zlo, zhi), blocks = EXPECTED[name]
    recipe = load_recipe(schedules_dir() / f"{name}.yaml")
    torch.manual_seed(0)
    head = name.split("/")[0]
    model = build_model(head if "/" in name and head in MODEL_NAMES else "resnet20", 10, 1)
    dense = model_stats(model, X)
    sched = CompressionScheduler(recipe, model, X,
                                 calibration=(digits.x_train[:8], digits.y_train[:8]))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched.check(opt)  # as the train loop does
    for epoch in range(recipe.last_epoch() + 1):
        if sched.on_epoch_begin(epoch, opt):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(3):
            sched.on_minibatch_begin(epoch, step, 3)
        opt.step()  # no gradients: parameters unchanged
        sched.on_epoch_end(epoch, opt)
    stats = model_stats(model, X)
    assert lo <= stats["macs"] / dense["macs"] <= hi
    assert zlo <= stats["weight_sparsity"] <= zhi
    assert len(sched.removed_blocks) == blocks
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
