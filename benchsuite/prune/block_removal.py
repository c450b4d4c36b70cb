"""Depth pruning: remove whole residual blocks (`class: BlockRemover` in a recipe).

The blocks are found by rule, in every residual stage of the model (`models/blocks.py`: the CIFAR
and ImageNet ResNets' blocks, and any module laid out as torchvision's, checked on the
calibration batch to compute relu(last BN + shortcut); the additive blocks x + branch(x) of the
suite's MobileNetV2, its inverted residuals with a shortcut, and of its ViT, its encoder blocks);
a stage is the module holding blocks (`layer2`, `stage4`; the ViT's `blocks`: one stage).

At batch 1 on a CPU, latency has a floor set by the number of layers (docs/measurements.md),
which width pruning cannot pass; removing blocks does. The pruner ranks the residual blocks on the
calibration batch and bypasses the lowest-ranked ones physically (`models/blocks.py`: an
identity, or the block's downsampling shortcut), so the export has fewer layers.

Criteria (`criterion:`):
- `branch_norm` (default): ||branch(x)||_2 / ||shortcut(x)||_2 over the calibration batch, with
  branch = the output of the block's last BN (before the add: `bn2`, `bn3` of a bottleneck),
  shortcut = x or downsample(x); for an additive block, branch = its output - its input.
  A block whose residual adds little to its input changes the representation least
  (Veit et al. 2016: residual networks behave like ensembles of shallow paths).
- `bypass_loss`: the increase of the calibration batch's cross-entropy when that block alone is
  bypassed (exact, one forward pass per block).

How many: `blocks_per_stage: k` removes k blocks from every stage, `blocks_per_stage: [k1, k2,
k3]` k_i from stage i (in model order, e.g. layer1, layer2, layer3; a per-stage search space);
`fraction: f` removes
round(f x eligible blocks) ranked across stages. Every stage keeps at least one of its residual
blocks (a MobileNetV2 stage also keeps its first block, which has no shortcut).
Blocks with a downsampling shortcut are eligible only with `include_downsample: true`. The
counts refer to the original model, so the policy may fire more than once without removing more.
Other pruners of the recipe skip the weights of removed blocks; filter pruning on the remaining
blocks and thinning combine with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.models.blocks import (
    bypass,
    is_additive_block,
    is_residual_block,
    last_bn,
    not_bypassable,
    residual_blocks,
    shortcut_of,
)
from benchsuite.models.modes import eval_mode
from benchsuite.prune.criteria import Calibration
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.recipe import Component, RecipeError


def _stage(name: str) -> str:
    return name.rpartition(".")[0]


def branch_norm_scores(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, float]:
    stats: dict[str, dict[str, float]] = {n: {} for n in names}
    hooks = []
    for n in names:
        block = model.get_submodule(n)
        if is_additive_block(block):  # x + branch(x): the branch is output - input
            hooks.append(block.register_forward_hook(
                lambda _m, inp, out, n=n: stats[n].update(
                    branch=float((out - inp[0]).norm()), short=float(inp[0].norm()))))
            continue
        hooks.append(last_bn(block).register_forward_hook(
            lambda _m, _i, out, n=n: stats[n].__setitem__("branch", float(out.norm()))))
        if block.downsample is None:
            hooks.append(block.register_forward_pre_hook(
                lambda _m, inp, n=n: stats[n].__setitem__("short", float(inp[0].norm()))))
        else:
            hooks.append(block.downsample.register_forward_hook(
                lambda _m, _i, out, n=n: stats[n].__setitem__("short", float(out.norm()))))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return {n: s["branch"] / max(s["short"], 1e-12) for n, s in stats.items()}


def bypass_loss_scores(model: nn.Module, names: list[str], calib: Calibration) -> dict[str, float]:
    x, y = calib
    with torch.no_grad():
        base = float(F.cross_entropy(model(x), y))
        out = {}
        for n in names:
            block = model.get_submodule(n)
            parent, _, child = n.rpartition(".")
            bypass(model, n)
            out[n] = float(F.cross_entropy(model(x), y)) - base
            setattr(model.get_submodule(parent), child, block)
    return out


class BlockRemover(Pruner):
    """Bypass the lowest-ranked residual blocks (physical: the optimizer is rebuilt)."""

    physical = True

    def __init__(self, component: Component, model: nn.Module,
                 example_input: torch.Tensor | None = None,
                 calibration: Calibration | None = None) -> None:
        super().__init__(component, model)
        given = [k for k in ("blocks_per_stage", "fraction") if self.args.get(k) is not None]
        if len(given) != 1:
            raise RecipeError(self.path, "give exactly one of blocks_per_stage, fraction")
        self.calibration = calibration
        blocks = residual_blocks(model)
        if blocks and (calibration is not None or example_input is not None):
            x = calibration[0] if calibration is not None else \
                torch.randn(example_input.shape, generator=torch.Generator().manual_seed(0))
            refused = not_bypassable(model, blocks, x)
        else:
            refused = {}
        blocks = [b for b in blocks if b not in refused]
        if not blocks:
            reasons = list(refused.values())
            more = f"; +{len(reasons) - 3} more" if len(reasons) > 3 else ""
            why = f" ({'; '.join(reasons[:3])}{more})" if reasons else ""
            raise RecipeError(f"{self.path}.class", f"the model ({type(model).__name__}) has no "
                              "residual blocks BlockRemover can remove (it bypasses blocks "
                              "computing relu(branch + shortcut): the CIFAR and ImageNet "
                              f"ResNets', or modules laid out as torchvision's){why}")
        self.stages: dict[str, list[str]] = {}
        for b in blocks:
            self.stages.setdefault(_stage(b), []).append(b)
        self.eligible = [b for b in blocks if self.args["include_downsample"]
                         or shortcut_of(model.get_submodule(b)) is None]
        self.per_stage = self._per_stage(self.args.get("blocks_per_stage"))
        self.removed: list[str] = []

    def _per_stage(self, counts: int | list[int] | None) -> dict[str, int] | None:
        """`blocks_per_stage` as {stage: blocks to remove}; a list names one count a stage."""
        if counts is None:
            return None
        if isinstance(counts, int):
            return dict.fromkeys(self.stages, counts)
        if len(counts) != len(self.stages):
            raise RecipeError(f"{self.path}.blocks_per_stage",
                              f"{len(counts)} counts given for {len(self.stages)} stages "
                              f"({', '.join(self.stages)})")
        return dict(zip(self.stages, counts, strict=True))

    def weights(self) -> list[str]:
        return []

    def _quota(self, scores: dict[str, float]) -> list[str]:
        """Blocks to remove now, lowest score first, within the per-stage and total limits."""
        alive = {s: [b for b in bs if b not in self.removed] for s, bs in self.stages.items()}
        ranked = sorted(scores, key=lambda b: scores[b])
        chosen: list[str] = []
        if self.per_stage is not None:
            for stage, k in self.per_stage.items():
                done = sum(1 for b in self.removed if _stage(b) == stage)
                room = min(k - done, len(alive[stage]) - 1)
                chosen += [b for b in ranked if _stage(b) == stage][:max(0, room)]
            return chosen
        total = round(self.args["fraction"] * len(self.eligible)) - len(self.removed)
        for b in ranked:
            if len(chosen) >= total:
                break
            stage = _stage(b)
            if len(alive[stage]) - sum(1 for c in chosen if _stage(c) == stage) > 1:
                chosen.append(b)
        return chosen

    def scores(self, model: nn.Module) -> dict[str, float]:
        names = [b for b in self.eligible if b not in self.removed
                 and is_residual_block(model.get_submodule(b))]
        with eval_mode(model):
            if self.args["criterion"] == "bypass_loss":
                return bypass_loss_scores(model, names, self.calibration)
            return branch_norm_scores(model, names, self.calibration[0])

    def apply(self, ctx: PruneContext) -> bool:
        if self.calibration is None:
            raise RecipeError(f"{self.path}.class", "BlockRemover ranks blocks on a calibration "
                              "batch (CompressionScheduler(..., calibration=(x, y)))")
        chosen = self._quota(self.scores(ctx.model))
        for b in chosen:
            bypass(ctx.model, b)
        self.removed += chosen
        return bool(chosen)
