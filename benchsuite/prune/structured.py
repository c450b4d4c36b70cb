"""Structured pruners: zero whole filters, channels or fc rows, as masks.

One class, `StructurePruner`, combines an importance criterion (`criteria.py`: l1, l2, apoz,
taylor, random) with a schedule (one-shot `desired_sparsity`, or AGP `initial_sparsity` ->
`final_sparsity`) and a selection (keep the top-ranked, or Bernoulli sampling). Distiller's class
names are registered as combinations in `registry.py`.

Groups (Distiller's `group_type`): `Filters` = conv output channels (dim 0), `Channels` = conv
input channels (dim 1), `Rows` = fully-connected input features (dim 1 of a Linear weight, as
Distiller ranked them like channels).

Coupling: convs whose outputs meet in a residual add must lose the same filters for thinning to
remove any of them. Listed `Filters` weights that are coupled are ranked together (their scores
summed); coupled convs not listed get the same filter mask. With `group_dependency: Leader`
every listed weight takes the first (leader) weight's ranking, as in Distiller.

Selection: the listed `weights`, or, when a recipe lists none, every layer the group type's rule
selects on the model (`graph.prunable_layers`: for Filters every conv whose output feeds only
prunable layers, i.e. not tied to another layer by a residual add and not the model's output; on
the CIFAR ResNets these are the first convs of the blocks, the list Distiller's recipes name).

Ranking: `ranking: layer` (Distiller's, default) keeps the same fraction in every group;
`ranking: global` normalises each group's scores by their mean and drops the lowest-scored
structures across all groups (at least one kept per group), so sensitive layers keep more.
`round_to: N` keeps every group's count at a multiple of N.

The pruner only masks: the `net_thinning` extension (FilterRemover / ChannelRemover) removes the
zeroed structures physically. Without thinning the model keeps its shape (a paradigm too).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from benchsuite.prune.criteria import CRITERIA, NEEDS_DATA, Calibration
from benchsuite.prune.graph import GROUP_TYPES_BY_RULE, all_coupled_filters, layers_by_rule
from benchsuite.prune.levels import policy_agp_target
from benchsuite.prune.masks import combine_mask, effective
from benchsuite.prune.names import resolve_list
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.recipe import Component, RecipeError


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


def structure_mask(weight: torch.Tensor, keep: torch.Tensor, dim: int) -> torch.Tensor:
    """Mask of `weight`'s shape with the structures along `dim` not in the bool `keep` zeroed."""
    mask = torch.ones_like(weight, dtype=torch.float32)
    drop = (~keep).nonzero().flatten()
    mask.index_fill_(dim, drop, 0.0)
    return mask


def select_by_rule(model: nn.Module, example_input: torch.Tensor | None, group_type: str,
                   path: str) -> list[str]:
    """The weights a structured pruner without `weights` prunes (`graph.prunable_layers`)."""
    if example_input is None:
        raise RecipeError(f"{path}.weights", "selecting the layers by rule traces the model: "
                          "bind with an example input (CompressionScheduler does)")
    if group_type not in GROUP_TYPES_BY_RULE:
        raise RecipeError(f"{path}.weights", f"group_type {group_type} has no selection rule: "
                          "name the weights")
    selected = layers_by_rule(model, example_input, group_type)
    if not selected:
        what = {"Filters": "conv whose output feeds only prunable layers",
                "Channels": "conv whose input channels only such a conv writes",
                "Rows": "linear layer whose input features only such a layer writes"}
        raise RecipeError(f"{path}.weights", f"no weights named and the model "
                          f"({type(model).__name__}) has no {what[group_type]}: nothing to "
                          f"prune by rule (name the weights)")
    return selected


def _exists(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name.rpartition(".")[0])
    except AttributeError:
        return False
    return True


class StructurePruner(Pruner):
    """Criterion x schedule x selection; subclasses only set the three class attributes."""

    criterion: ClassVar[str] = "l1"
    gradual: ClassVar[bool] = False
    bernoulli: ClassVar[bool] = False

    def __init__(self, component: Component, model: nn.Module,
                 example_input: torch.Tensor | None = None,
                 calibration: Calibration | None = None) -> None:
        super().__init__(component, model)
        # Distiller's `3D` is its other name for Filters
        self.group_type = "Filters" if self.args["group_type"] == "3D" else self.args["group_type"]
        self.dim = 0 if self.group_type == "Filters" else 1
        self.by_rule = self.args.get("weights") is None
        self._weights = (select_by_rule(model, example_input, self.group_type, self.path)
                         if self.by_rule else
                         resolve_list(model, self.args["weights"], f"{self.path}.weights"))
        kind = nn.Linear if self.group_type == "Rows" else nn.Conv2d
        for i, name in enumerate(self._weights):
            module = model.get_submodule(name.rpartition(".")[0])
            if not isinstance(module, kind) or not name.endswith(".weight"):
                what = "fully-connected" if kind is nn.Linear else "convolution"
                raise RecipeError(f"{self.path}.weights[{i}]",
                                  f"{name} is not a {what} weight ({self.group_type} pruning "
                                  f"ranks {what} structures)")
        self.leader = self.args.get("group_dependency") == "Leader"
        if self.leader:
            sizes = {model.get_parameter(w).shape[self.dim] for w in self._weights}
            if len(sizes) > 1:
                raise RecipeError(f"{self.path}.group_dependency",
                                  f"Leader needs weights with the same number of "
                                  f"{self.group_type.lower()}, got sizes {sorted(sizes)}")
        self.cls = component.cls
        self.example_input = example_input
        self.calibration = calibration

    def weights(self) -> list[str]:
        return self._weights

    def sparsity(self, ctx: PruneContext) -> float:
        if not self.gradual:
            return self.args["desired_sparsity"]
        return policy_agp_target(self.args["initial_sparsity"], self.args["final_sparsity"],
                                 ctx.policy, ctx.epoch)

    def group_levels(self, level: float, n: int, epoch: int) -> list[float]:
        """The sparsity of each of `n` groups (the same level for all)."""
        return [level] * n

    def _coupled(self, model: nn.Module) -> dict[str, list[str]]:
        """Filter coupling of the model as it is now (after thinning or block removal too)."""
        if self.group_type != "Filters" or self.example_input is None:
            return {}
        return all_coupled_filters(model, self.example_input)

    def groups(self, model: nn.Module, live: list[str]) -> list[tuple[list[str], list[str]]]:
        """(ranked members, extra coupled convs masked alike) for each group of structures."""
        if self.leader:
            return [(live, [])]
        coupled = self._coupled(model)
        out: list[tuple[list[str], list[str]]] = []
        seen: set[str] = set()
        for name in live:
            if name in seen:
                continue
            tied = [name, *coupled.get(name, [])]
            members = [w for w in live if w in tied]
            extras = [w for w in tied if w not in live and _exists(model, w)]
            seen.update(members)
            out.append((members, extras))
        return out

    def _keep(self, scores: list[torch.Tensor], alive: list[torch.Tensor], level: float,
              epoch: int) -> list[torch.Tensor]:
        """Which structures each group keeps (bool per structure); dead ones stay dead."""
        round_to = self.args.get("round_to") or 1
        scores = [torch.where(a, s.float(), torch.full_like(s.float(), -1.0))
                  for s, a in zip(scores, alive, strict=True)]
        if self.bernoulli:
            gen = torch.Generator().manual_seed(epoch)
            keeps = []
            for s, a in zip(scores, alive, strict=True):
                # drop each live structure with the probability that makes the expected
                # fraction dropped equal `level` (structures already dropped stay dropped)
                dead = 1.0 - float(a.float().mean())
                p = max(0.0, (level - dead) / max(1e-12, 1.0 - dead))
                keep = (torch.rand(s.numel(), generator=gen) >= p) & a
                if not keep.any():
                    keep[s.argmax()] = True
                keeps.append(keep)
            return keeps
        if self.args.get("ranking", "layer") == "global":
            normed = [s / s.clamp_min(0).mean().clamp_min(1e-12) for s in scores]
            flat = torch.cat(normed)
            k = int(flat.numel() * level)
            threshold = flat.sort().values[k - 1] if k > 0 else -float("inf")
            counts = [kept_count(s.numel(), float((s <= threshold).sum()) / s.numel(), round_to)
                      for s in normed]
        else:
            counts = [kept_count(s.numel(), lvl, round_to)
                      for s, lvl in zip(scores, self.group_levels(level, len(scores), epoch),
                                        strict=True)]
        keeps = []
        for s, count in zip(scores, counts, strict=True):
            keep = torch.zeros(s.numel(), dtype=torch.bool)
            keep[s.argsort(descending=True, stable=True)[:count]] = True
            keeps.append(keep)
        return keeps

    def apply(self, ctx: PruneContext) -> None:
        model = ctx.model
        live = [w for w in self._weights if _exists(model, w)]  # blocks may have been removed
        if not live:
            return
        if self.criterion in NEEDS_DATA and self.calibration is None:
            raise RecipeError(f"{self.path}.class",
                              f"{self.cls} ranks by activations or gradients and needs a "
                              f"calibration batch (CompressionScheduler(..., calibration=(x, y)))")
        level = self.sparsity(ctx)
        scores = CRITERIA[self.criterion](model, live, self.dim, self.calibration, ctx.epoch)
        groups = self.groups(model, live)
        group_scores, alive = [], []
        for members, _ in groups:
            w = torch.stack([effective(model, m).abs().transpose(0, self.dim).flatten(1).sum(1)
                             for m in members])
            alive.append((w > 0).any(0))
            if self.leader:
                group_scores.append(scores[members[0]])
            else:
                group_scores.append(torch.stack([scores[m] for m in members]).sum(0))
        for (members, extras), keep in zip(groups, self._keep(group_scores, alive, level,
                                                                ctx.epoch),
                                           strict=True):
            for name in members:
                combine_mask(model, name, structure_mask(model.get_parameter(_param(name, model)),
                                                         keep, self.dim))
            for other in extras:
                w = model.get_parameter(_param(other, model))
                combine_mask(model, other, structure_mask(w, keep, 0))


def _param(name: str, model: nn.Module) -> str:
    """The parameter that holds `name`'s values (`weight_orig` once a mask is set)."""
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    return f"{name}_orig" if hasattr(module, attr + "_orig") else name


def structure_class(name: str, criterion: str, gradual: bool,
                    bernoulli: bool = False) -> type[StructurePruner]:
    """A registered combination, named as Distiller named it."""
    return type(name, (StructurePruner,), {
        "criterion": criterion, "gradual": gradual, "bernoulli": bernoulli,
        "__doc__": f"{'AGP' if gradual else 'One-shot'} structured pruning ranked by "
                   f"{'Bernoulli sampling' if bernoulli else criterion}.",
    })


L1RankedStructureParameterPruner = structure_class("L1RankedStructureParameterPruner", "l1",
                                                   False)


class RandomLevelStructureParameterPruner(StructurePruner):
    """Distiller's: L1-ranked structures at a level drawn uniformly from `sparsity_range`
    at every application, one draw per group of weights (seeded by the epoch and the number of
    applications, so a run is reproducible). With `discard_masks_at_minibatch_end` it is a
    DropFilter-like regulariser that drops the weakest filters."""

    criterion = "l1"

    def __init__(self, component: Component, model: nn.Module,
                 example_input: torch.Tensor | None = None,
                 calibration: Calibration | None = None) -> None:
        super().__init__(component, model, example_input, calibration)
        lo, hi = self.args["sparsity_range"]
        if hi < lo:
            raise RecipeError(f"{self.path}.sparsity_range", f"must be [low, high] with low <= "
                              f"high, got {[lo, hi]}")
        self._calls = 0

    def sparsity(self, ctx: PruneContext) -> float:
        return float(self.args["sparsity_range"][0])

    def group_levels(self, level: float, n: int, epoch: int) -> list[float]:
        self._calls += 1
        gen = torch.Generator().manual_seed(epoch * 1_000_003 + self._calls)
        lo, hi = self.args["sparsity_range"]
        return [lo + (hi - lo) * float(u) for u in torch.rand(n, generator=gen)]
