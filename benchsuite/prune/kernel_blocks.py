"""Distiller's `group_type: Blocks`: rank and mask blocks of a conv weight by their norm.

`kwargs: {block_shape: [repetitions, depth, 1, 1]}` (Distiller's layout; only 1x1 blocks in
height and width). With depth > 1 a block is `repetitions x depth` consecutive kernels of the
weight (filter-major, channel-minor order) at one kernel position; with depth 1 it is
`repetitions` consecutive filters at one (channel, kernel position) element. The blocks with the
smallest L1 (or L2) norm are masked, `int(sparsity x blocks)` of them and any tied at the
threshold. Masks only: shapes stay (a block sparsity for sparse kernels, not thinning).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from benchsuite.prune.levels import policy_agp_target
from benchsuite.prune.masks import combine_mask, effective
from benchsuite.prune.names import resolve_list
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.recipe import Component, RecipeError


def _view_dims(shape: torch.Size, block: list[int]) -> tuple[int, int, int]:
    reps, depth = block[0], block[1]
    filters, channels = shape[0], shape[1]
    if depth > 1:
        return filters * channels // (reps * depth), reps * depth, shape[2] * shape[3]
    return filters // reps, reps, channels * shape[2] * shape[3]


def block_mask(weight: torch.Tensor, sparsity: float, block: list[int],
               norm: str = "l1") -> torch.Tensor:
    rows, size, cols = _view_dims(weight.shape, block)
    view = weight.reshape(rows, size, cols)
    mags = view.abs().sum(1) if norm == "l1" else view.pow(2).sum(1).sqrt()
    k = int(sparsity * mags.numel())
    if k <= 0:
        return torch.ones_like(weight, dtype=torch.float32)
    threshold = mags.flatten().kthvalue(k).values
    keep = (mags > threshold).float()  # (rows, cols)
    return keep.unsqueeze(1).expand(rows, size, cols).reshape(weight.shape)


class RankedBlocksPruner(Pruner):
    """L1/L2-ranked blocks, one-shot (`desired_sparsity`) or AGP; built by the registry for
    `group_type: Blocks`."""

    def __init__(self, component: Component, model: nn.Module, norm: str, gradual: bool) -> None:
        super().__init__(component, model)
        self.norm, self.gradual = norm, gradual
        path = f"{self.path}.kwargs"
        kwargs = self.args.get("kwargs")
        block = kwargs.get("block_shape") if isinstance(kwargs, dict) else None
        if not (isinstance(block, list) and len(block) == 4
                and all(isinstance(v, int) and v > 0 for v in block)):
            raise RecipeError(f"{path}.block_shape", f"Blocks needs kwargs: {{block_shape: "
                              f"[repetitions, depth, 1, 1]}}, got {kwargs!r}")
        if block[2:] != [1, 1]:
            raise RecipeError(f"{path}.block_shape", f"only blocks of height and width 1 are "
                              f"supported (as in Distiller), got {block}")
        self.block = block
        if self.args.get("weights") is None:
            raise RecipeError(f"{self.path}.weights", "group_type Blocks has no selection rule: "
                              "name the weights")
        self._weights = resolve_list(model, self.args["weights"], f"{self.path}.weights")
        for i, name in enumerate(self._weights):
            w = model.get_parameter(name)
            if w.dim() != 4 or w.numel() % math.prod(block) or (
                    block[1] == 1 and w.shape[0] % block[0]):
                raise RecipeError(f"{self.path}.weights[{i}]", f"block {block} does not tile "
                                  f"{name} of shape {list(w.shape)}")

    def weights(self) -> list[str]:
        return self._weights

    def apply(self, ctx: PruneContext) -> None:
        level = (policy_agp_target(self.args["initial_sparsity"], self.args["final_sparsity"],
                                   ctx.policy, ctx.epoch) if self.gradual
                 else self.args["desired_sparsity"])
        for name in self._weights:
            try:
                w = effective(ctx.model, name)
            except AttributeError:
                continue  # removed with its block
            combine_mask(ctx.model, name, block_mask(w, level, self.block, self.norm))
