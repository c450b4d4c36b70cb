"""Element-wise (fine-grained) pruners: zero individual weights, as masks.

Masks keep tensor shapes, so on a dense runtime they change MACs and latency by nothing; they
are here because that is one of the paradigms the research compares.

- SparsityLevelParameterPruner (`levels: {name or '*': s}`): the s fraction of smallest |w|;
- MagnitudeParameterPruner (`thresholds: {name or '*': t}`): |w| <= t;
- SensitivityPruner (`sensitivities: {name or '*': s}`): |w| <= s * std(w) (Han et al. 2015);
- SplicingPruner (`sensitivities`, `low_thresh_mult`, `hi_thresh_mult`,
  `sensitivity_multiplier`): network surgery, below;
- AutomatedGradualPruner (`initial_sparsity`, `final_sparsity`, `weights`; without `weights`
  every conv and linear weight): the AGP target's fraction of smallest |w|.

SplicingPruner (Guo et al. 2016, "Dynamic Network Surgery"): with t = (mean|w| + s * std|w|)
(statistics of the weight when first pruned), a weight is masked when |w| < t * low_thresh_mult,
unmasked (spliced back) when |w| >= t * hi_thresh_mult, and keeps its previous mask in between;
`sensitivity_multiplier` grows s linearly with the epochs since the policy started. Its masks let
gradients through (straight-through), so masked weights keep training and can come back; run it
with the policy arg `mini_batch_pruning_frequency: 1`, as Distiller's recipe did.
"""

from __future__ import annotations

import torch
from torch import nn

from benchsuite.prune.levels import agp_target, policy_agp_target
from benchsuite.prune.masks import combine_mask, effective, get_mask, set_mask, split_name
from benchsuite.prune.names import prunable_weights, resolve_list, resolve_map
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.recipe import Component

__all__ = [
    "AutomatedGradualPruner", "MagnitudeParameterPruner", "SensitivityPruner",
    "SparsityLevelParameterPruner", "SplicingPruner", "agp_target", "magnitude_mask",
]


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Distiller's level criterion: t = the k-th smallest |w| with k = int(sparsity * numel);
    every |w| <= t is masked. Weights already at zero are at or below any threshold, so they
    stay masked (at least k weights are masked; more when there are ties at t)."""
    k = int(sparsity * weight.numel())
    if k <= 0:
        return torch.ones_like(weight, dtype=torch.float32)
    threshold = weight.abs().flatten().kthvalue(k).values
    return (weight.abs() > threshold).float()


def threshold_mask(weight: torch.Tensor, threshold: float) -> torch.Tensor:
    """Distiller's threshold criterion: |w| <= threshold is masked."""
    return (weight.abs() > threshold).float()


def _dense(model: nn.Module, name: str) -> torch.Tensor:
    """The trained values, masked or not (`weight_orig` when a mask is set)."""
    module_name, attr = split_name(name)
    module = model.get_submodule(module_name)
    orig = getattr(module, attr + "_orig", None)
    return (orig if orig is not None else getattr(module, attr)).detach()


class _MapPruner(Pruner):
    """A pruner configured by a {weight name or '*': value} map under `key`."""

    key = ""

    def __init__(self, component: Component, model: nn.Module) -> None:
        super().__init__(component, model)
        self.values = resolve_map(model, self.args[self.key], f"{self.path}.{self.key}")

    def weights(self) -> list[str]:
        return list(self.values)

    def items(self, model: nn.Module) -> list[tuple[str, object]]:
        """(weight, value) for the weights still in the model (blocks may have been removed)."""
        return [(n, v) for n, v in self.values.items() if _alive(model, n)]


class SparsityLevelParameterPruner(_MapPruner):
    """Prune each weight to a fixed sparsity level (`levels: {name or '*': level}`)."""

    key = "levels"

    def apply(self, ctx: PruneContext) -> None:
        for name, level in self.items(ctx.model):
            combine_mask(ctx.model, name, magnitude_mask(effective(ctx.model, name),
                                                             float(level)))


class MagnitudeParameterPruner(_MapPruner):
    """Zero every weight whose magnitude is at most its threshold (`thresholds`)."""

    key = "thresholds"

    def apply(self, ctx: PruneContext) -> None:
        for name, t in self.items(ctx.model):
            combine_mask(ctx.model, name, threshold_mask(effective(ctx.model, name), float(t)))


class SensitivityPruner(_MapPruner):
    """Threshold = sensitivity x the standard deviation of the weight tensor (Han et al.)."""

    key = "sensitivities"

    def apply(self, ctx: PruneContext) -> None:
        for name, s in self.items(ctx.model):
            w = effective(ctx.model, name)
            combine_mask(ctx.model, name, threshold_mask(w, float(s) * float(w.std())))


class SplicingPruner(_MapPruner):
    """Network surgery: prune below a low threshold, splice back above a high one."""

    key = "sensitivities"

    def __init__(self, component: Component, model: nn.Module) -> None:
        super().__init__(component, model)
        self._stats: dict[str, tuple[float, float]] = {}

    def apply(self, ctx: PruneContext) -> None:
        start = ctx.policy.scheduled_epochs()[0]
        for name, s in self.items(ctx.model):
            w = _dense(ctx.model, name)
            if name not in self._stats:
                self._stats[name] = (float(w.abs().mean()), float(w.abs().std()))
            mean, std = self._stats[name]
            s = float(s)
            if self.args["sensitivity_multiplier"] > 0:
                s *= (ctx.epoch - start) * self.args["sensitivity_multiplier"] + 1
            t = mean + std * s
            old = get_mask(ctx.model, name)
            mask = torch.ones_like(w) if old is None else old.clone()
            mask[w.abs() < t * self.args["low_thresh_mult"]] = 0.0
            mask[w.abs() >= t * self.args["hi_thresh_mult"]] = 1.0
            set_mask(ctx.model, name, mask, straight_through=True)


class AutomatedGradualPruner(Pruner):
    """AGP: magnitude pruning whose target grows on a cubic schedule across the policy's epochs."""

    def __init__(self, component: Component, model: nn.Module) -> None:
        super().__init__(component, model)
        # no weights named: every conv and linear weight, as '*' in a levels map
        self._weights = (prunable_weights(model) if self.args.get("weights") is None
                         else resolve_list(model, self.args["weights"], f"{self.path}.weights"))

    def weights(self) -> list[str]:
        return self._weights

    def target(self, ctx: PruneContext) -> float:
        return policy_agp_target(self.args["initial_sparsity"], self.args["final_sparsity"],
                                 ctx.policy, ctx.epoch)

    def apply(self, ctx: PruneContext) -> None:
        level = self.target(ctx)
        for name in self._weights:
            if _alive(ctx.model, name):
                combine_mask(ctx.model, name, magnitude_mask(effective(ctx.model, name), level))


def _alive(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(split_name(name)[0])
    except AttributeError:
        return False  # its block was removed
    return True
