"""The peer baseline: Torch-Pruning's own default, as a recipe pruner (`TorchPruningUniform`).

What a user of torch-pruning gets from its README example: `MetaPruner` with
`MagnitudeImportance(p=1)` (L1 norm of each coupled group), the same `pruning_ratio` for every
prunable layer (no global ranking), the final classifier ignored, one step. The channels are
removed physically (the optimizer is rebuilt), so the recipe needs no thinning extension.
Benchmarked side by side with the suite's recipes, it answers "how much better than the usual
tool" in the same run instead of quoting it.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from benchsuite.models.modes import eval_mode
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.recipe import Component


def classifier(model: nn.Module) -> list[nn.Module]:
    """torch-pruning's usual ignored layer: the model's last Linear (its classifier)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1:]


class TorchPruningUniform(Pruner):
    """Uniform L1 filter pruning with torch-pruning's MetaPruner (physical: the optimizer is
    rebuilt). Args: `ratio` (fraction of every prunable layer's channels), `round_to`, `p`."""

    physical = True

    def __init__(self, component: Component, model: nn.Module,
                 example_input: torch.Tensor) -> None:
        super().__init__(component, model)
        self.example_input = example_input
        self.done = False

    def weights(self) -> list[str]:
        return []  # every prunable layer, decided by torch-pruning's graph

    def apply(self, ctx: PruneContext) -> bool:
        if self.done or self.args["ratio"] == 0:
            return False
        model = ctx.model
        with eval_mode(model):  # trace in eval mode (graph.py: BatchNorm kept with its conv)
            pruner = tp.pruner.MetaPruner(
                model, self.example_input,
                importance=tp.importance.MagnitudeImportance(p=self.args["p"]),
                pruning_ratio=self.args["ratio"], ignored_layers=classifier(model),
                round_to=self.args["round_to"] if self.args["round_to"] > 1 else None)
            pruner.step()
        self.done = True
        return True
