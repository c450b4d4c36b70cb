"""The peer baseline (`TorchPruningUniform`, schedules/tp_uniform.yaml): torch-pruning's own
default removes the same fraction of channels from every prunable conv, never the classifier's
outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchsuite.core.paths import schedules_dir
from benchsuite.prune.dryrun import bind
from benchsuite.recipe import RecipeError, load_recipe

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("ratio", "round_to"), [(0.5, 1), (0.3, 1), (0.3, 8)])
def test_every_prunable_conv_loses_the_ratio(ratio, round_to):
    recipe = load_recipe(schedules_dir() / "tp_uniform.yaml",
                         {"ratio": ratio, "round_to": round_to})
    model, sched = bind(recipe, "resnet20", (1, 32, 32))
    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))  # physical
    after = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    assert after.keys() == before.keys()
    for name, channels in before.items():
        kept = after[name]
        if round_to == 1:  # torch-pruning keeps int((1 - ratio) x channels), maybe one more
            assert channels * (1 - ratio) - 1 < kept <= channels * (1 - ratio) + 1, name
        else:
            assert kept % round_to == 0 and kept < channels, name
    assert model.fc.out_features == 10  # the classifier is ignored
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    assert not sched.on_epoch_begin(1, torch.optim.SGD(model.parameters(), lr=0.1))  # once


def test_ratio_is_checked_before_anything_is_built():
    with pytest.raises(RecipeError, match="ratio: must be in"):
        load_recipe(schedules_dir() / "tp_uniform.yaml", {"ratio": 1.2})
