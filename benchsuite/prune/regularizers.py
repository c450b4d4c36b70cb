"""Regularizers: a loss term added before the backward pass while their policy is active.

- `L1Regularizer`: `reg_regims: {weight: strength}`; adds strength x sum |w|.
- `GroupLassoRegularizer`: `reg_regims: {weight: [strength, group_type]}`; adds strength x the
  sum of the groups' L2 norms (Wen et al. 2016, structured sparsity learning). Group types are
  Distiller's (`groups.py`): Filters / 3D, Channels, 2D, 4D, Channels+4D for convs; Rows
  (output rows), Cols, Rows+Cols for fully-connected weights.
- `GroupVarianceRegularizer`: `reg_regims: {weight: [strength, Channels]}`; adds strength /
  variance of the channels' L2 norms (Torfi et al. 2018), pushing channel norms apart.

`threshold_criteria` (`Mean_Abs` or `Max`), as Distiller's RegularizationPolicy: at the end of
every mini-batch of an active epoch the weights (L1: |w| <= strength) or groups (mean or max
|w| <= strength) are zeroed in place, a temporary mask: they may grow back with the next
steps. Only with the policy arg `keep_mask: true`, on the last mini-batch of the policy's last
epoch, does the mask stay (combined with the weight's other masks), so that a later thinning
removes what the regularizer emptied.
"""

from __future__ import annotations

import torch
from torch import nn

from benchsuite.prune.groups import GROUP_TYPES, channel_norms, lasso, threshold_keep
from benchsuite.prune.masks import combine_mask, effective, split_name
from benchsuite.prune.names import resolve
from benchsuite.recipe import Component, RecipeError


def _weight(model: nn.Module, name: str) -> torch.Tensor:
    """The weight as the forward pass used it (differentiable, masked if masked)."""
    module_name, attr = split_name(name)
    return getattr(model.get_submodule(module_name), attr)


def _stored(model: nn.Module, name: str) -> torch.Tensor:
    """The tensor that holds the trained values (`weight_orig` under a mask)."""
    module_name, attr = split_name(name)
    module = model.get_submodule(module_name)
    orig = getattr(module, attr + "_orig", None)
    return orig if orig is not None else getattr(module, attr)


class Regularizer:
    group_types: tuple[str, ...] = tuple(GROUP_TYPES)

    def __init__(self, component: Component, model: nn.Module) -> None:
        self.name = component.name
        self.path = component.path
        self.args = component.args
        self.regims: dict[str, tuple[float, str | None]] = {}
        for key, value in self.args["reg_regims"].items():
            where = f"{self.path}.reg_regims.{key}"
            name = resolve(model, key, where)
            strength, group = self._regim(value, where)
            if group is not None:
                rank = GROUP_TYPES[group][0]
                dim = model.get_parameter(name).dim()
                if dim != rank:
                    raise RecipeError(f"{where}[1]", f"{group} groups a {rank}D weight "
                                      f"({'conv' if rank == 4 else 'fully-connected'}); "
                                      f"{name} is {dim}D")
            self.regims[name] = (strength, group)

    def _regim(self, value: object, path: str) -> tuple[float, str | None]:
        ok = (isinstance(value, list) and len(value) == 2
              and isinstance(value[0], int | float) and not isinstance(value[0], bool)
              and value[0] >= 0)
        if not ok:
            raise RecipeError(path, f"must be [strength, group_type], got {value!r}")
        if value[1] not in self.group_types:
            raise RecipeError(f"{path}[1]", f"must be one of {', '.join(self.group_types)}, "
                              f"got {value[1]!r}")
        return float(value[0]), str(value[1])

    def weights(self) -> list[str]:
        return list(self.regims)

    def _alive(self, model: nn.Module) -> list[tuple[str, float, str | None]]:
        out = []
        for name, (strength, group) in self.regims.items():
            try:
                model.get_submodule(split_name(name)[0])
            except AttributeError:
                continue
            out.append((name, strength, group))
        return out

    def term(self, weight: torch.Tensor, strength: float, group: str | None) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model: nn.Module) -> torch.Tensor:
        terms = [self.term(_weight(model, n), s, g) for n, s, g in self._alive(model)]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def threshold(self, model: nn.Module, keep_mask: bool = False) -> None:
        """Zero what is at or below the strength (only with `threshold_criteria`); keep it as a
        mask when `keep_mask`."""
        crit = self.args.get("threshold_criteria")
        if crit is None:
            return
        for name, strength, group in self._alive(model):
            w = effective(model, name)
            if group is None:
                keep = (w.abs() > strength).float()
            else:
                keep = threshold_keep(w, group, strength, crit)
            with torch.no_grad():
                _stored(model, name).mul_(keep)
            if keep_mask:
                combine_mask(model, name, keep)


class L1Regularizer(Regularizer):
    def _regim(self, value: object, path: str) -> tuple[float, str | None]:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RecipeError(path, f"must be a strength >= 0, got {value!r}")
        return float(value), None

    def term(self, weight: torch.Tensor, strength: float, group: str | None) -> torch.Tensor:
        return strength * weight.abs().sum()


class GroupLassoRegularizer(Regularizer):
    def term(self, weight: torch.Tensor, strength: float, group: str | None) -> torch.Tensor:
        return strength * lasso(weight, group)


class GroupVarianceRegularizer(Regularizer):
    group_types = ("Channels",)

    def term(self, weight: torch.Tensor, strength: float, group: str | None) -> torch.Tensor:
        return strength / channel_norms(weight).var().clamp_min(1e-12)


REGULARIZER_CLASSES: dict[str, type[Regularizer]] = {
    c.__name__: c for c in (L1Regularizer, GroupLassoRegularizer, GroupVarianceRegularizer)
}


def group_norms(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """L2 norm of each structure along `dim` (0: filters, 1: input channels)."""
    return weight.transpose(0, dim).flatten(1).norm(dim=1)
