"""Structured pruners: rank whole filters (output channels) or channels (input channels).

The pruner only masks: zeroed filters/channels keep their shapes until the `net_thinning`
extension (FilterRemover / ChannelRemover, see `thinning.py`) removes them physically through
torch-pruning's dependency graph. Without thinning the model keeps its shape, which is one of
the paradigms the research measures.

Coupled convolutions (a residual add ties the output channels of several convs) receive the same
filter mask, so that thinning can remove those channels from all of them.
"""

from __future__ import annotations

import torch
from torch import nn

from ..recipe import Component, RecipeError
from .base import PruneContext, Pruner
from .graph import coupled_out_convs
from .masks import effective, get_mask, set_mask
from .names import resolve_list


def kept_count(n: int, sparsity: float, round_to: int = 1) -> int:
    """How many of `n` structures to keep at `sparsity`, a multiple of `round_to`, at least 1."""
    keep = n - int(n * sparsity)
    if round_to > 1:
        keep = round_to * max(1, round(keep / round_to))
    return max(1, min(n, keep))


def l1_scores(weight: torch.Tensor, group_type: str) -> torch.Tensor:
    """Mean |w| per filter (dim 0) or per input channel (dim 1)."""
    dims = [d for d in range(weight.dim()) if d != (0 if group_type == "Filters" else 1)]
    return weight.abs().mean(dim=dims)


def structure_mask(weight: torch.Tensor, scores: torch.Tensor, keep: int,
                   group_type: str) -> torch.Tensor:
    drop = scores.argsort(stable=True)[: scores.numel() - keep]
    mask = torch.ones_like(weight, dtype=torch.float32)
    if group_type == "Filters":
        mask[drop] = 0.0
    else:
        mask[:, drop] = 0.0
    return mask


class L1RankedStructureParameterPruner(Pruner):
    """One-shot: keep the filters (or channels) with the largest L1 norm, per layer."""

    scores = staticmethod(l1_scores)

    def __init__(self, component: Component, model: nn.Module,
                 example_input: torch.Tensor | None = None) -> None:
        super().__init__(component, model)
        self.group_type = self.args["group_type"]
        self._weights = resolve_list(model, self.args["weights"], f"{self.path}.weights")
        for i, name in enumerate(self._weights):
            module = model.get_submodule(name.rpartition(".")[0])
            if not isinstance(module, nn.Conv2d) or name.rpartition(".")[2] != "weight":
                raise RecipeError(f"{self.path}.weights[{i}]",
                                  f"{name} is not a convolution weight ({self.group_type} "
                                  f"pruning ranks conv filters/channels)")
        self.leader = self.args.get("group_dependency") == "Leader"
        if self.leader:
            shapes = {model.get_parameter(w).shape[0] for w in self._weights}
            if len(shapes) > 1:
                raise RecipeError(f"{self.path}.group_dependency",
                                  "Leader needs weights with the same number of filters")
        self.coupled: dict[str, list[str]] = {}
        if self.group_type == "Filters" and example_input is not None:
            for name in self._weights:
                self.coupled[name] = coupled_out_convs(model, example_input, name)

    def weights(self) -> list[str]:
        return self._weights

    def sparsity(self, ctx: PruneContext) -> float:
        return self.args["desired_sparsity"]

    def apply(self, ctx: PruneContext) -> None:
        level = self.sparsity(ctx)
        round_to = self.args.get("round_to") or 1
        leader_scores = None
        if self.leader:
            leader_scores = self.scores(effective(ctx.model, self._weights[0]), self.group_type)
        for name in self._weights:
            w = effective(ctx.model, name)
            scores = leader_scores if leader_scores is not None else self.scores(w, self.group_type)
            dim = 0 if self.group_type == "Filters" else 1
            keep = kept_count(w.shape[dim], level, round_to)
            mask = structure_mask(w, scores, keep, self.group_type)
            set_mask(ctx.model, name, mask)
            for other in self.coupled.get(name, []):
                filt = mask.flatten(1)[:, 0]
                old = get_mask(ctx.model, other)
                w_other = effective(ctx.model, other)
                new = (old if old is not None else torch.ones_like(w_other)).clone()
                new[filt == 0] = 0.0
                set_mask(ctx.model, other, new)
