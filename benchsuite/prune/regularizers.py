"""Regularizers: a loss term added before the backward pass while their policy is active.

- `L1Regularizer`: `reg_regims: {weight: strength}`; adds strength x sum |w|.
- `GroupLassoRegularizer`: `reg_regims: {weight: [strength, group_type]}` with group_type one
  of Filters, Channels, Rows (fc input features), Columns (fc output features); adds
  strength x sum over groups of ||w_g||_2 (Wen et al. 2016, structured sparsity learning).

`threshold_criteria` (Distiller's): `Mean_Abs` or `Max`. When set, at the end of each active
epoch the weights (L1) or groups (group lasso) whose mean |w| (or max |w|) falls below the
strength are masked to zero, so a later thinning can remove what the regularizer emptied.
"""

from __future__ import annotations

import torch
from torch import nn

from ..recipe import Component, RecipeError
from .masks import effective, get_mask, set_mask, split_name
from .names import resolve

_DIMS = {"Filters": 0, "Channels": 1, "Rows": 1, "Columns": 0}


def _weight(model: nn.Module, name: str) -> torch.Tensor:
    """The weight as the forward pass used it (differentiable, masked if masked)."""
    module_name, attr = split_name(name)
    return getattr(model.get_submodule(module_name), attr)


def group_norms(weight: torch.Tensor, dim: int) -> torch.Tensor:
    return weight.transpose(0, dim).flatten(1).norm(dim=1)


class Regularizer:
    def __init__(self, component: Component, model: nn.Module) -> None:
        self.name = component.name
        self.path = component.path
        self.args = component.args
        self.regims: dict[str, tuple[float, str | None]] = {}
        for key, value in self.args["reg_regims"].items():
            where = f"{self.path}.reg_regims.{key}"
            self.regims[resolve(model, key, where)] = self._regim(value, where)

    def _regim(self, value: object, path: str) -> tuple[float, str | None]:
        raise NotImplementedError

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

    def loss(self, model: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    def threshold(self, model: nn.Module) -> None:
        """Mask what fell below the strength (only with `threshold_criteria`)."""
        crit = self.args.get("threshold_criteria")
        if crit is None:
            return
        for name, strength, group in self._alive(model):
            w = effective(model, name)
            if group is None:
                keep = (w.abs() >= strength).float()
            else:
                dim = _DIMS[group]
                a = w.abs().transpose(0, dim).flatten(1)
                stat = a.mean(1) if crit == "Mean_Abs" else a.amax(1)
                shape = [1] * w.dim()
                shape[dim] = -1
                keep = (stat >= strength).float().view(shape).expand_as(w)
            old = get_mask(model, name)
            set_mask(model, name, keep if old is None else old * keep)


class L1Regularizer(Regularizer):
    def _regim(self, value: object, path: str) -> tuple[float, str | None]:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RecipeError(path, f"must be a strength >= 0, got {value!r}")
        return float(value), None

    def loss(self, model: nn.Module) -> torch.Tensor:
        terms = [s * _weight(model, n).abs().sum() for n, s, _ in self._alive(model)]
        return torch.stack(terms).sum() if terms else torch.zeros(())


class GroupLassoRegularizer(Regularizer):
    def _regim(self, value: object, path: str) -> tuple[float, str | None]:
        ok = (isinstance(value, list) and len(value) == 2
              and isinstance(value[0], int | float) and not isinstance(value[0], bool)
              and value[0] >= 0)
        if not ok:
            raise RecipeError(path, f"must be [strength, group_type], got {value!r}")
        if value[1] not in _DIMS:
            raise RecipeError(f"{path}[1]", f"must be one of {', '.join(_DIMS)}, "
                              f"got {value[1]!r}")
        return float(value[0]), str(value[1])

    def loss(self, model: nn.Module) -> torch.Tensor:
        terms = [s * group_norms(_weight(model, n), _DIMS[g]).sum()
                 for n, s, g in self._alive(model)]
        return torch.stack(terms).sum() if terms else torch.zeros(())


REGULARIZER_CLASSES: dict[str, type[Regularizer]] = {
    c.__name__: c for c in (L1Regularizer, GroupLassoRegularizer)
}
