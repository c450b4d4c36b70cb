"""Element-wise (fine-grained) pruners: zero individual weights by magnitude, as masks.

Masks keep tensor shapes, so on a dense runtime they change MACs and latency by nothing; they
are here because that is one of the paradigms the research compares.
"""

from __future__ import annotations

import torch
from torch import nn

from ..recipe import Component
from .base import PruneContext, Pruner
from .masks import effective, set_mask
from .names import resolve_list, resolve_map


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Mask zeroing exactly round(sparsity * numel) of the smallest-magnitude weights."""
    k = round(sparsity * weight.numel())
    mask = torch.ones_like(weight, dtype=torch.float32)
    if k > 0:
        idx = weight.abs().flatten().argsort(stable=True)[:k]
        mask.view(-1)[idx] = 0.0
    return mask


def agp_target(initial: float, final: float, start: int, end: int, freq: int, epoch: int) -> float:
    """Zhu & Gupta's cubic schedule, evaluated per epoch as Distiller did.

    span = ((end - start - 1) // freq) * freq; the target is `final` at start + span, the last
    epoch the policy acts in.
    """
    span = ((end - start - 1) // freq) * freq
    if span <= 0 or epoch >= start + span:
        return final
    progress = max(0.0, (epoch - start) / span)
    return final + (initial - final) * (1.0 - progress) ** 3


class SparsityLevelParameterPruner(Pruner):
    """Prune each weight to a fixed sparsity level (`levels: {name or '*': level}`)."""

    def __init__(self, component: Component, model: nn.Module) -> None:
        super().__init__(component, model)
        self.levels = resolve_map(model, self.args["levels"], f"{self.path}.levels")

    def weights(self) -> list[str]:
        return list(self.levels)

    def apply(self, ctx: PruneContext) -> None:
        for name, level in self.levels.items():
            set_mask(ctx.model, name, magnitude_mask(effective(ctx.model, name), float(level)))


class AutomatedGradualPruner(Pruner):
    """AGP: magnitude pruning whose target grows on a cubic schedule across the policy's epochs."""

    def __init__(self, component: Component, model: nn.Module) -> None:
        super().__init__(component, model)
        self._weights = resolve_list(model, self.args["weights"], f"{self.path}.weights")

    def weights(self) -> list[str]:
        return self._weights

    def target(self, ctx: PruneContext) -> float:
        p = ctx.policy
        epochs = p.scheduled_epochs()
        start = p.starting_epoch if p.epochs is None else epochs[0]
        end = p.ending_epoch if p.epochs is None else epochs[-1] + 1
        return agp_target(self.args["initial_sparsity"], self.args["final_sparsity"],
                          start, end, p.frequency, ctx.epoch)

    def apply(self, ctx: PruneContext) -> None:
        level = self.target(ctx)
        for name in self._weights:
            set_mask(ctx.model, name, magnitude_mask(effective(ctx.model, name), level))
