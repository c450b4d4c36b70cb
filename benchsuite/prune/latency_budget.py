"""Prune to a latency budget (`class: LatencyBudgetPruner`), HALP / NetAdapt style.

Given a target (`speedup: 5`: the dense network's predicted latency / 5, or `latency_us: 300`)
and the latency table of the target device and precision (`benchsuite.latency`, measured by the
bench worker), the pruner removes, greedily, the unit with the least accuracy importance per
microsecond saved until the predicted latency meets the target:

- a residual block (bypassed as `BlockRemover` does; every stage keeps at least one block;
  downsampling blocks only with `include_downsample: true`), saving its convs' table latency;
- a group of `round_to` filters of a block's first conv (the listed `weights`, default every
  block's conv1), saving the table difference of that conv and the block's second conv (whose
  input channels go with them), lowest L1 filters first; channel counts stay multiples of
  `round_to` and at least `round_to`.

Importance, in one unit for both kinds (an estimate of the calibration loss's increase when the
unit is removed), computed once on the model as the policy finds it:
- `criterion: taylor` (default; Molchanov et al. 2017, the criterion HALP uses): per channel,
  |sum over its map of activation x dL/dactivation|, averaged over the calibration batch, of
  the block's inner activation (conv2's input, for filter groups) and of its residual branch
  (the last BN's output, for blocks); a unit's importance is the sum over its channels. One
  forward and backward pass.
- `criterion: loss`: measured: the block bypassed, or the group's channels zeroed at conv2's
  input (what thinning removes) on top of the lower-ranked groups of that conv. One forward
  pass per unit: exact but slow on a deep network (ResNet-56: about 130 passes).
Filters are ranked within their conv by the same criterion (L1 for `loss`). The savings are
recomputed from the table after every step (a conv's cost depends on both its channel counts).
The predicted latency is the table sum times the network's scale (the dense network's measured
latency over its table sum; `latency/spec.py`), so a speed-up target is a ratio of table sums.
The sum is over every op kind the table models (the classifier's linear layer too: what it
costs is in the dense latency and stays in the pruned one); the search changes convs only.

The pruner masks filters and bypasses blocks; the recipe's `FilterRemover` extension thins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.latency.arch import op_specs
from benchsuite.latency.spec import ConvSpec, LatencyTable
from benchsuite.models.blocks import bypass, residual_blocks
from benchsuite.models.modes import eval_mode
from benchsuite.models.resnet_cifar import BasicBlock
from benchsuite.prune.block_removal import bypass_loss_scores
from benchsuite.prune.criteria import Calibration
from benchsuite.prune.masks import combine_mask, effective
from benchsuite.prune.names import resolve_list
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.prune.structured import _param, structure_mask
from benchsuite.recipe import Component, RecipeError

log = logging.getLogger(__name__)
# a unit the table says saves nothing (a plateau of the monotone grid) is taken last, not never:
# the groups behind it may save more
MIN_SAVED_US = 1e-3


@dataclass
class Unit:
    """A removable unit: a block, or the next filter group of a block's conv1."""

    block: str
    kind: str  # "block" or "filters"
    importance: float
    saved_us: float
    keep: int = 0  # filters: the conv1 width after removing this group


def kept_counts(n: int, step: int) -> list[int]:
    """Widths a conv of n filters passes through: n, then multiples of `step` down to `step`."""
    return [n, *sorted((c for c in range(step, n, step)), reverse=True)]


def _loss(model: nn.Module, calib: Calibration) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(calib[0]), calib[1]))


def _l1_order(model: nn.Module, conv1: str) -> list[int]:
    """conv1's filters, least L1 first."""
    w = effective(model, conv1)
    return w.abs().flatten(1).sum(1).argsort(stable=True).tolist()


def group_losses(model: nn.Module, block: str, order: list[int], counts: list[int],
                 calib: Calibration, base: float) -> list[float]:
    """Loss increase of each successive filter group of `block` (removed cumulatively, least
    L1 first): the group's channels are zeroed at conv2's input, as thinning removes them."""
    conv2 = model.get_submodule(f"{block}.conv2")
    keep = torch.ones(conv2.in_channels)
    hook = conv2.register_forward_pre_hook(lambda _m, inp: (inp[0] * keep[None, :, None, None],))
    out, prev = [], base
    try:
        for k in counts[1:]:
            keep[order[:counts[0] - k]] = 0.0
            loss = _loss(model, calib)
            out.append(loss - prev)
            prev = loss
    finally:
        hook.remove()
    return out


def group_sums(scores: torch.Tensor, order: list[int], counts: list[int]) -> list[float]:
    """Each successive group's summed channel score (groups least-scored first)."""
    n = counts[0]
    return [float(scores[order[n - hi:n - lo]].sum())
            for hi, lo in pairwise(counts)]


def taylor_scores(model: nn.Module, inner: list[str], branches: list[str],
                  calib: Calibration) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Per-channel Taylor scores of each `inner` block's conv2 input, and the summed score of
    each `branches` block's residual branch (bn2 output)."""
    acts: dict[tuple[str, str], torch.Tensor] = {}
    hooks = []
    for b in inner:
        hooks.append(model.get_submodule(f"{b}.relu1").register_forward_hook(
            lambda _m, _i, out, b=b: acts.__setitem__((b, "inner"), out)))
    for b in branches:
        hooks.append(model.get_submodule(f"{b}.bn2").register_forward_hook(
            lambda _m, _i, out, b=b: acts.__setitem__((b, "branch"), out)))
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(calib[0]), calib[1])
            keys = list(acts)
            grads = torch.autograd.grad(loss, [acts[k] for k in keys], allow_unused=True)
    finally:
        for h in hooks:
            h.remove()
    scores = {}
    for k, g in zip(keys, grads, strict=True):
        a = acts[k].detach()
        g = torch.zeros_like(a) if g is None else g
        scores[k] = (a * g).sum((2, 3)).abs().mean(0)
    return ({b: scores[(b, "inner")] for b in inner},
            {b: float(scores[(b, "branch")].sum()) for b in branches})


class LatencyBudgetPruner(Pruner):
    """Remove blocks and filter groups, least importance per µs saved, to a latency target."""

    physical = True

    def __init__(self, component: Component, model: nn.Module,
                 example_input: torch.Tensor | None = None,
                 calibration: Calibration | None = None,
                 latency_table: dict | None = None) -> None:
        super().__init__(component, model)
        given = [k for k in ("speedup", "latency_us") if self.args.get(k) is not None]
        if len(given) != 1:
            raise RecipeError(self.path, "give exactly one target: speedup or latency_us")
        if self.args.get("speedup") is not None and self.args["speedup"] < 1:
            raise RecipeError(f"{self.path}.speedup", f"must be >= 1, got {self.args['speedup']}")
        # the CIFAR ResNets' blocks only (the latency table times their convs)
        blocks = [b for b in residual_blocks(model) if isinstance(model.get_submodule(b),
                                                                    BasicBlock)]
        if not blocks:
            raise RecipeError(f"{self.path}.class", f"the model ({type(model).__name__}) has no "
                              "residual blocks (LatencyBudgetPruner prunes the CIFAR ResNets)")
        names = self.args.get("weights") or [f"{b}.conv1.weight" for b in blocks]
        self._weights = resolve_list(model, names, f"{self.path}.weights")
        for i, w in enumerate(self._weights):
            parent = w.removesuffix(".conv1.weight")
            if parent == w or parent not in blocks:
                raise RecipeError(f"{self.path}.weights[{i}]", f"{w} is not the first conv of a "
                                  "residual block (the pruner removes a block's inner filters)")
        self.blocks = blocks
        self.stage = {b: b.rpartition(".")[0] for b in blocks}
        self.example_input = example_input
        self.calibration = calibration
        self.table = LatencyTable.from_dict(latency_table) if latency_table else None
        self.removed: list[str] = []
        self.plan: dict = {}

    def weights(self) -> list[str]:
        return self._weights

    def _step(self) -> int:
        return int(self.args.get("round_to") or (self.table.step if self.table else 8))

    def _check_ready(self) -> tuple[LatencyTable, Calibration, torch.Tensor]:
        if self.table is None:
            raise RecipeError(f"{self.path}.class", "LatencyBudgetPruner needs the latency table "
                              "of the target device (the case runs the bench worker's "
                              "latency_table stage first; CompressionScheduler(..., "
                              "latency_table=...))")
        if self.calibration is None or self.example_input is None:
            raise RecipeError(f"{self.path}.class", "LatencyBudgetPruner ranks on a calibration "
                              "batch (CompressionScheduler(..., calibration=(x, y)))")
        return self.table, self.calibration, self.example_input

    def apply(self, ctx: PruneContext) -> bool:
        if self.plan:  # planned once; a policy firing again does not prune further
            return False
        table, calib, example = self._check_ready()
        model = ctx.model
        with eval_mode(model):
            plan = self._plan(model, table, calib, example)
        for b in plan["blocks"]:
            bypass(model, b)
        for b, order, width in plan["filters"]:
            name = f"{b}.conv1.weight"
            keep = torch.zeros(len(order), dtype=torch.bool)
            keep[order[len(order) - width:]] = True
            combine_mask(model, name, structure_mask(model.get_parameter(_param(name, model)),
                                                     keep, 0))
        self.removed += plan["blocks"]
        self.plan = {k: v for k, v in plan.items() if k != "filters"} | {
            "widths": {b: w for b, _, w in plan["filters"]}}
        log.info("%s: predicted %.1f µs for a target of %.1f µs (dense %.1f µs): %d blocks "
                 "removed, widths %s", self.name, plan["predicted_us"], plan["target_us"],
                 plan["dense_us"], len(plan["blocks"]), self.plan["widths"])
        return bool(plan["blocks"])

    def _plan(self, model: nn.Module, table: LatencyTable, calib: Calibration,
              example: torch.Tensor) -> dict:
        ops = op_specs(model, example)
        specs = {n: s for n, s in ops.items() if isinstance(s, ConvSpec)}
        scale = table.scale()
        dense_us = scale * table.sum_us(list(ops.values()))  # every kind the table models
        target = (self.args["latency_us"] if self.args.get("latency_us") is not None
                  else dense_us / self.args["speedup"])
        step = self._step()
        live = [b for b in self.blocks if isinstance(model.get_submodule(b), BasicBlock)]
        prunable = [w.removesuffix(".conv1.weight") for w in self._weights
                    if w.removesuffix(".conv1.weight") in live]
        eligible = [b for b in live if self.args.get("blocks", True) and (
            self.args.get("include_downsample") or model.get_submodule(b).downsample is None)]
        counts = {b: kept_counts(specs[f"{b}.conv1"].cout, step) for b in prunable}
        if self.args.get("criterion", "taylor") == "loss":
            base = _loss(model, calib)
            block_imp = bypass_loss_scores(model, eligible, calib)
            orders = {b: _l1_order(model, f"{b}.conv1.weight") for b in prunable}
            group_imp = {b: group_losses(model, b, orders[b], counts[b], calib, base)
                         for b in prunable}
        else:
            channel, block_imp = taylor_scores(model, prunable, eligible, calib)
            orders = {b: channel[b].argsort(stable=True).tolist() for b in prunable}
            group_imp = {b: group_sums(channel[b], orders[b], counts[b]) for b in prunable}

        def block_cost(b: str, width: int) -> float:
            c1, c2 = specs[f"{b}.conv1"], specs[f"{b}.conv2"]
            return scale * (table.conv_us(c1.with_channels(cout=width))
                            + table.conv_us(c2.with_channels(cin=width)))

        width = {b: specs[f"{b}.conv1"].cout for b in live}
        done = dict.fromkeys(prunable, 0)  # filter groups removed per block
        removed: list[str] = []
        steps: list[list] = []  # [kind, block, importance, µs saved, predicted after]
        predicted = dense_us
        while predicted > target:
            units = self._candidates(live, removed, eligible, prunable, width, done, counts,
                                     block_imp, group_imp, block_cost)
            if not units:
                raise RecipeError(self.path, f"the target {target:.1f} µs is out of reach: the "
                                  f"smallest network this pruner can make is predicted at "
                                  f"{predicted:.1f} µs (dense {dense_us:.1f} µs)")
            best = min(units, key=lambda u: (max(u.importance, 0.0) / u.saved_us, -u.saved_us))
            predicted -= best.saved_us
            steps.append([best.kind, best.block, best.importance, best.saved_us, predicted])
            if best.kind == "block":
                removed.append(best.block)
            else:
                width[best.block] = best.keep
                done[best.block] += 1
        widths = [(b, orders[b], width[b]) for b in prunable
                  if b not in removed and width[b] < counts[b][0]]
        return {"target_us": target, "predicted_us": predicted, "dense_us": dense_us,
                "scale": scale, "blocks": removed, "filters": widths, "steps": steps}

    def _candidates(self, live, removed, eligible, prunable, width, done, counts, block_imp,
                    group_imp, block_cost) -> list[Unit]:
        alive = [b for b in live if b not in removed]
        units = []
        for b in eligible:
            stage_alive = sum(1 for o in alive if self.stage[o] == self.stage[b])
            if b in alive and stage_alive > 1:
                saved = max(block_cost(b, width[b]), MIN_SAVED_US)
                units.append(Unit(b, "block", block_imp[b], saved))
        for b in prunable:
            if b in alive and done[b] < len(counts[b]) - 1:
                keep = counts[b][done[b] + 1]
                saved = max(block_cost(b, width[b]) - block_cost(b, keep), MIN_SAVED_US)
                units.append(Unit(b, "filters", group_imp[b][done[b]], saved, keep))
        return units
