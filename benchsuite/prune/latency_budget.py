"""Prune to a latency budget (`class: LatencyBudgetPruner`), HALP / NetAdapt style.

Given a target (`speedup: 5`: the dense network's predicted latency / 5, or `latency_us: 300`)
and the latency table of the target device and precision (`benchsuite.latency`, measured by the
bench worker), the pruner removes, greedily, the unit with the least accuracy importance per
microsecond saved until the predicted latency meets the target:

- a residual block (bypassed as `BlockRemover` does; every stage keeps at least one block;
  downsampling blocks only with `include_downsample: true`), saving its ops' table latency;
- a group of `round_to` channels of a block's inner width (the listed `weights`, default every
  block's), lowest L1 filters first, saving the table difference of every op whose channels
  they are; channel counts stay multiples of `round_to` and at least `round_to`.

The blocks it knows (`Layout`): the CIFAR ResNets' `BasicBlock` (the inner width is conv1's
filters, which conv2's input channels follow), MobileNetV2's `InvertedResidual` (the hidden
width: the expansion conv `conv.0.0`'s filters, which the depthwise conv `conv.1.0` and the
projection `conv.2.0`'s input channels follow; only blocks with a shortcut can be removed, and a
stage's first block has none, so every stage keeps it) and the ViT's encoder blocks (the MLP's
hidden width: `mlp.fc1`'s output features, `mlp.fc2`'s inputs; whole blocks, at least one
kept). Attention heads are not among its units (`AttentionHeadPruner` removes them).

Importance, in one unit for both kinds (an estimate of the calibration loss's increase when the
unit is removed), computed once on the model as the policy finds it:
- `criterion: taylor` (default; Molchanov et al. 2017, the criterion HALP uses): per channel,
  |sum over its map of activation x dL/dactivation|, averaged over the calibration batch, of
  the block's inner activation (the input of the layer that reads the inner width: conv2, the
  projection, fc2) for filter groups and of its residual branch (what the block adds to its
  input: the last BN's output; an encoder block's attention and MLP outputs) for blocks; a
  unit's importance is the sum over its channels. One forward and backward pass.
- `criterion: loss`: measured: the block bypassed, or the group's channels zeroed at that
  layer's input (what thinning removes) on top of the lower-ranked groups of the block. One
  forward pass per unit: exact but slow on a deep network (ResNet-56: about 130 passes).
Filters are ranked within their conv by the same criterion (L1 for `loss`). The savings are
recomputed from the table after every step (a conv's cost depends on both its channel counts).
The predicted latency is the table sum times the network's scale (the dense network's measured
latency over its table sum; `latency/spec.py`), so a speed-up target is a ratio of table sums.
The sum is over every op kind the table models (the classifier's linear layer too: what it
costs is in the dense latency and stays in the pruned one); the search changes the ops of the
blocks it prunes.

The pruner masks conv filters and bypasses blocks, and the recipe's `FilterRemover` extension
thins; linear features (the ViT's MLP) it removes itself, as `AttentionHeadPruner` removes heads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from itertools import pairwise

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from benchsuite.latency.arch import op_specs
from benchsuite.latency.spec import ConvSpec, DepthwiseSpec, LatencyTable, LinearSpec, OpSpec
from benchsuite.models.blocks import bypass, is_residual_block
from benchsuite.models.mobilenetv2 import InvertedResidual
from benchsuite.models.modes import eval_mode
from benchsuite.models.resnet_cifar import BasicBlock
from benchsuite.models.vit import Block as EncoderBlock
from benchsuite.prune.block_removal import bypass_loss_scores
from benchsuite.prune.criteria import Calibration
from benchsuite.prune.masks import combine_mask, effective, masks_lifted
from benchsuite.prune.names import resolve_list
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.prune.structured import _param, structure_mask
from benchsuite.recipe import Component, RecipeError

log = logging.getLogger(__name__)
# a unit the table says saves nothing (a plateau of the monotone grid) is taken last, not never:
# the groups behind it may save more
MIN_SAVED_US = 1e-3


@dataclass(frozen=True)
class Layout:
    """Where a block's prunable inner width is (module names within the block): the `inner`
    layer's filters (output channels or features), the channels of the `follow` ops (a
    depthwise conv) and the input channels of the `reader` layer; `act` is the module whose
    output `reader` reads (the channels' Taylor scores); `branches` the modules whose outputs
    the block adds to its input (its bypass's Taylor score)."""

    inner: str
    follow: tuple[str, ...]
    reader: str
    act: str
    branches: tuple[str, ...]
    linear: bool = False  # inner and reader are linear layers: the pruner removes the features
    # itself (the recipe's FilterRemover thins conv filters only)


BASIC = Layout("conv1", (), "conv2", "relu1", ("bn2",))
INVERTED = Layout("conv.0.0", ("conv.1.0",), "conv.2.0", "conv.1.2", ("conv.2.1",))
ENCODER = Layout("mlp.fc1", (), "mlp.fc2", "mlp.act", ("attn.proj", "mlp.fc2"), linear=True)


LAYOUTS: dict[type[nn.Module], Layout] = {BasicBlock: BASIC, InvertedResidual: INVERTED,
                                           EncoderBlock: ENCODER}
KNOWN = tuple(LAYOUTS)


def _kind_layout(block: nn.Module) -> Layout:
    """The layout of the block's kind (one of `KNOWN`)."""
    return next(lay for cls, lay in LAYOUTS.items() if isinstance(block, cls))


def layout_of(block: nn.Module) -> Layout | None:
    """The block's layout; None for a block the pruner does not know, or one with no inner
    width to prune (an inverted residual without expansion: it removes such a block only)."""
    if not isinstance(block, KNOWN) or (isinstance(block, InvertedResidual)
                                        and not isinstance(block.conv[0], nn.Sequential)):
        return None
    return _kind_layout(block)


def known_blocks(model: nn.Module) -> list[str]:
    """The blocks the pruner works on, in forward order: residual CIFAR `BasicBlock`s, every
    `InvertedResidual` (with a shortcut or not) and the ViT's encoder blocks."""
    return [n for n, m in model.named_modules()
            if (isinstance(m, BasicBlock) and is_residual_block(m))
            or isinstance(m, InvertedResidual | EncoderBlock)]


def _inner_layout(model: nn.Module, block: str) -> Layout:
    layout = layout_of(model.get_submodule(block))
    if layout is None:
        raise ValueError(f"{block} has no inner width to prune")
    return layout


def resized(op: OpSpec, role: str, width: int) -> OpSpec:
    """`op` with the inner width `width` where its `role` ("inner", "follow", "reader") has it."""
    if isinstance(op, DepthwiseSpec):
        return replace(op, c=width)
    if isinstance(op, ConvSpec):
        return op.with_channels(cout=width) if role == "inner" else op.with_channels(cin=width)
    if isinstance(op, LinearSpec):
        return replace(op, fout=width) if role == "inner" else replace(op, fin=width)
    raise TypeError(f"{type(op).__name__} has no inner width")


def _on_channels(keep: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`keep` (one value per channel) shaped to multiply `x`: channels are dim 1 of a conv's
    maps (B, C, H, W), the last dim of tokens (B, N, C)."""
    return keep[None, :, None, None] if x.dim() == 4 else keep


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over every dim but the batch's and the channels' (B, C)."""
    return t.sum((2, 3)) if t.dim() == 4 else t.sum(1)


@dataclass
class Unit:
    """A removable unit: a block, or the next filter group of a block's inner width."""

    block: str
    kind: str  # "block" or "filters"
    importance: float
    saved_us: float
    keep: int = 0  # filters: the inner width after removing this group


def kept_counts(n: int, step: int) -> list[int]:
    """Widths a conv of n filters passes through: n, then multiples of `step` down to `step`."""
    return [n, *sorted((c for c in range(step, n, step)), reverse=True)]


def _loss(model: nn.Module, calib: Calibration) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(calib[0]), calib[1]))


def _l1_order(model: nn.Module, conv: str) -> list[int]:
    """The conv's filters (weight name `conv`), least L1 first."""
    w = effective(model, conv)
    return w.abs().flatten(1).sum(1).argsort(stable=True).tolist()


def group_losses(model: nn.Module, block: str, order: list[int], counts: list[int],
                 calib: Calibration, base: float, layout: Layout = BASIC) -> list[float]:
    """Loss increase of each successive filter group of `block` (removed cumulatively, least
    L1 first): the group's channels are zeroed at the reader conv's input, as thinning removes
    them."""
    reader = model.get_submodule(f"{block}.{layout.reader}")
    keep = torch.ones(reader.weight.shape[1])  # input channels (features) of a conv (linear)
    hook = reader.register_forward_pre_hook(
        lambda _m, inp: (inp[0] * _on_channels(keep, inp[0]),))
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
    """Per-channel Taylor scores of each `inner` block's inner activation (what its reader layer
    reads), and the summed score of each `branches` block's residual branch (of each output the
    block adds to its input: a ResNet block's last BN's, an encoder block's attention and MLP
    outputs)."""
    acts: dict[tuple[str, str], torch.Tensor] = {}
    hooks = []
    for b in inner:
        act = _inner_layout(model, b).act
        hooks.append(model.get_submodule(f"{b}.{act}").register_forward_hook(
            lambda _m, _i, out, b=b: acts.__setitem__((b, "inner"), out)))
    for b in branches:
        for i, name in enumerate(_kind_layout(model.get_submodule(b)).branches):
            hooks.append(model.get_submodule(f"{b}.{name}").register_forward_hook(
                lambda _m, _i, out, k=(b, f"branch{i}"): acts.__setitem__(k, out)))
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
        scores[k] = _per_channel(a * g).abs().mean(0)
    return ({b: scores[(b, "inner")] for b in inner},
            {b: sum(float(v.sum()) for (o, kind), v in scores.items()
                    if o == b and kind.startswith("branch")) for b in branches})


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
        blocks = known_blocks(model)
        if not blocks:
            raise RecipeError(f"{self.path}.class", f"the model ({type(model).__name__}) has no "
                              "residual blocks this pruner knows (LatencyBudgetPruner prunes "
                              "the CIFAR ResNets' residual blocks, MobileNetV2's inverted "
                              "residuals and the ViT's encoder blocks)")
        layouts = {b: layout_of(model.get_submodule(b)) for b in blocks}
        inner = {f"{b}.{lay.inner}.weight": b for b, lay in layouts.items() if lay is not None}
        names = self.args.get("weights") or list(inner)
        self._weights = resolve_list(model, names, f"{self.path}.weights")
        for i, w in enumerate(self._weights):
            if w not in inner:
                raise RecipeError(f"{self.path}.weights[{i}]", f"{w} is not the inner layer "
                                  "of a block (a residual block's conv1, an inverted residual's "
                                  "expansion conv.0.0, an encoder block's mlp.fc1): the pruner "
                                  "removes a block's inner filters")
        self.blocks = blocks
        self.layouts = layouts
        self.pruned = [inner[w] for w in self._weights]  # the blocks whose inner width it prunes
        self.stage = {b: b.rpartition(".")[0] for b in blocks}
        self.example_input = example_input
        self.calibration = calibration
        self.table = LatencyTable.from_dict(latency_table) if latency_table else None
        self.removed: list[str] = []
        self.thinned: dict[str, int] = {}  # linear features it removed itself, per layer
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
        linear = [(b, order, width) for b, order, width in plan["filters"]
                  if self.layouts[b].linear]
        for b, order, width in plan["filters"]:
            name = f"{b}.{self.layouts[b].inner}.weight"
            keep = torch.zeros(len(order), dtype=torch.bool)
            keep[order[len(order) - width:]] = True
            if not self.layouts[b].linear:
                combine_mask(model, name, structure_mask(
                    model.get_parameter(_param(name, model)), keep, 0))
        if linear:
            self._remove_features(model, linear)
        self.removed += plan["blocks"]
        self.plan = {k: v for k, v in plan.items() if k != "filters"} | {
            "widths": {b: w for b, _, w in plan["filters"]}}
        log.info("%s: predicted %.1f µs for a target of %.1f µs (dense %.1f µs): %d blocks "
                 "removed, widths %s", self.name, plan["predicted_us"], plan["target_us"],
                 plan["dense_us"], len(plan["blocks"]), self.plan["widths"])
        return bool(plan["blocks"] or linear)

    def _remove_features(self, model: nn.Module, groups: list[tuple[str, list[int], int]]
                         ) -> None:
        """Remove the planned hidden features of linear inner layers (a ViT MLP's fc1 rows and
        fc2's input features), lowest-ranked first; element-wise masks stay where the weights
        are still zero."""
        with masks_lifted(model):
            for b, order, width in groups:
                lay = self.layouts[b]
                drop = sorted(order[:len(order) - width])
                tp.prune_linear_out_channels(model.get_submodule(f"{b}.{lay.inner}"), drop)
                tp.prune_linear_in_channels(model.get_submodule(f"{b}.{lay.reader}"), drop)
                key = f"{b}.{lay.inner}"
                self.thinned[key] = self.thinned.get(key, 0) + len(drop)

    def _plan(self, model: nn.Module, table: LatencyTable, calib: Calibration,
              example: torch.Tensor) -> dict:
        ops = op_specs(model, example)
        scale = table.scale()
        dense_us = scale * table.sum_us(list(ops.values()))  # every kind the table models
        target = (self.args["latency_us"] if self.args.get("latency_us") is not None
                  else dense_us / self.args["speedup"])
        step = self._step()
        # the blocks still there (not bypassed by an earlier pruner)
        live = [b for b in self.blocks if isinstance(model.get_submodule(b), KNOWN)]
        prunable = [b for b in self.pruned if b in live]
        eligible = [b for b in live if self.args.get("blocks", True)
                    and is_residual_block(model.get_submodule(b)) and (
                        self.args.get("include_downsample")
                        or getattr(model.get_submodule(b), "downsample", None) is None)]
        # each block's ops but its shortcut's (a bypass keeps it), with the role of those its
        # inner width changes
        roles = {b: ({lay.inner: "inner", lay.reader: "reader"} | dict.fromkeys(lay.follow,
                                                                               "follow"))
                 if (lay := self.layouts[b]) else {} for b in live}
        block_ops = {b: [(ops[n], roles[b].get(n.removeprefix(f"{b}.")))
                         for n in ops if n.startswith(f"{b}.")
                         and not n.startswith(f"{b}.downsample.")] for b in live}
        inner = {b: f"{b}.{self.layouts[b].inner}" for b in prunable}
        counts = {b: kept_counts(ops[inner[b]].dims[1], step) for b in prunable}
        if self.args.get("criterion", "taylor") == "loss":
            base = _loss(model, calib)
            block_imp = bypass_loss_scores(model, eligible, calib)
            orders = {b: _l1_order(model, f"{inner[b]}.weight") for b in prunable}
            group_imp = {b: group_losses(model, b, orders[b], counts[b], calib, base,
                                         self.layouts[b]) for b in prunable}
        else:
            channel, block_imp = taylor_scores(model, prunable, eligible, calib)
            orders = {b: channel[b].argsort(stable=True).tolist() for b in prunable}
            group_imp = {b: group_sums(channel[b], orders[b], counts[b]) for b in prunable}

        def block_cost(b: str, width: int | None) -> float:
            """The block's ops in the table, its inner width at `width` (None: as they are)."""
            return scale * sum(table.op_us(op if role is None or width is None
                                           else resized(op, role, width))
                               for op, role in block_ops[b] if op.kind in table.kinds)

        width: dict[str, int | None] = {b: ops[inner[b]].dims[1] if b in inner else None
                                         for b in live}
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
