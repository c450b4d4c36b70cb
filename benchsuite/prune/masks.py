"""Element-wise masks on parameters, held by torch.nn.utils.prune.

A masked parameter `m.weight` becomes `m.weight_orig` (trained) times the buffer
`m.weight_mask`, recomputed before every forward pass, so the mask stays applied after every
optimizer step. `make_permanent` folds the masks in (for export, thinning, checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn.utils import prune


def split_name(param_name: str) -> tuple[str, str]:
    module, _, attr = param_name.rpartition(".")
    return module, attr


def effective(model: nn.Module, param_name: str) -> torch.Tensor:
    """The parameter as the forward pass sees it (masked if a mask is set)."""
    module_name, attr = split_name(param_name)
    module = model.get_submodule(module_name)
    if prune.is_pruned(module) and hasattr(module, attr + "_orig"):
        return getattr(module, attr + "_orig").detach() * getattr(module, attr + "_mask")
    return getattr(module, attr).detach()


def get_mask(model: nn.Module, param_name: str) -> torch.Tensor | None:
    module_name, attr = split_name(param_name)
    return getattr(model.get_submodule(module_name), attr + "_mask", None)


class StraightThroughMask(prune.BasePruningMethod):
    """A mask whose forward is `orig * mask` but whose gradient reaches every weight of `orig`.

    Distiller's `mask_on_forward_only` / `use_double_copies`: the weights under a zero keep
    training, so a pruner may splice them back (network surgery). With the default
    (`custom_from_mask`) the gradient of a masked weight is zero.
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, mask: torch.Tensor) -> None:
        self.mask = mask

    def compute_mask(self, t: torch.Tensor, default_mask: torch.Tensor) -> torch.Tensor:
        return default_mask * self.mask.to(dtype=default_mask.dtype)

    def apply_mask(self, module: nn.Module) -> torch.Tensor:
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return orig + (orig * mask - orig).detach()


def set_mask(model: nn.Module, param_name: str, mask: torch.Tensor,
             straight_through: bool = False) -> None:
    """Replace the parameter's mask (the weights under a zero are kept in `_orig`).

    `straight_through` (first mask of a parameter only) lets gradients reach masked weights.
    """
    module_name, attr = split_name(param_name)
    module = model.get_submodule(module_name)
    mask = mask.to(dtype=torch.float32).detach()
    existing = getattr(module, attr + "_mask", None)
    if existing is None:
        if straight_through:
            StraightThroughMask.apply(module, attr, mask=mask)
        else:
            prune.custom_from_mask(module, attr, mask)
    else:
        existing.copy_(mask)
        # refresh the derived attribute now, not only at the next forward
        setattr(module, attr, getattr(module, attr + "_orig") * existing)


def is_straight_through(model: nn.Module, param_name: str) -> bool:
    """Whether the parameter's mask lets gradients through (see StraightThroughMask)."""
    module_name, attr = split_name(param_name)
    module = model.get_submodule(module_name)
    return any(isinstance(h, StraightThroughMask) and h._tensor_name == attr
               for h in module._forward_pre_hooks.values())


def combine_mask(model: nn.Module, param_name: str, mask: torch.Tensor) -> None:
    """Set a pruner's mask so that masks of several pruners on one weight combine.

    With Distiller a mask zeroes the weight itself, so what one pruner masked stays zero for the
    next. Here the weights under a mask are kept in `_orig`; to keep Distiller's semantics the
    new mask is multiplied into the existing one (a weight masked by any pruner stays masked).
    A straight-through mask (`mask_on_forward_only`, network surgery) is replaced instead: its
    weights keep training and Distiller recomputes such masks from the unmasked values.
    """
    old = get_mask(model, param_name)
    if old is not None and not is_straight_through(model, param_name):
        mask = old * mask.to(old.dtype)
    set_mask(model, param_name, mask)


def drop_mask(model: nn.Module, param_name: str) -> None:
    """Remove a parameter's mask without folding it in: the weights under it come back."""
    module_name, attr = split_name(param_name)
    module = model.get_submodule(module_name)
    existing = getattr(module, attr + "_mask", None)
    if existing is None:
        return
    existing.fill_(1.0)
    prune.remove(module, attr)


def masked_names(model: nn.Module) -> list[str]:
    names = []
    for mname, module in model.named_modules():
        for buf, _ in module.named_buffers(recurse=False):
            if buf.endswith("_mask"):
                names.append(f"{mname}.{buf.removesuffix('_mask')}" if mname else buf[:-5])
    return names


def make_permanent(model: nn.Module) -> dict[str, torch.Tensor]:
    """Fold every mask into its parameter; returns the masks that were folded."""
    folded = {}
    for name in masked_names(model):
        module_name, attr = split_name(name)
        folded[name] = get_mask(model, name).clone()
        prune.remove(model.get_submodule(module_name), attr)
    return folded


@contextmanager
def masks_lifted(model: nn.Module) -> Iterator[None]:
    """Fold every mask in for a change of shapes (a structure removed: masked tensors must be
    plain parameters for torch-pruning to slice them); afterwards each folded parameter is masked
    again where its (possibly narrower) weight is still zero, so element-wise sparsity survives
    the thinning. On an error the masks stay folded: the model is not to be used further."""
    folded = make_permanent(model)
    yield
    for name in folded:
        set_mask(model, name, (model.get_parameter(name).detach() != 0).float())


def sparsity(tensor: torch.Tensor) -> float:
    return float((tensor == 0).sum().item()) / max(1, tensor.numel())


def clone_model(model: nn.Module) -> nn.Module:
    """Deep copy of a model that may hold masks (their derived tensors are not graph leaves)."""
    import copy

    for name in masked_names(model):
        module_name, attr = split_name(name)
        module = model.get_submodule(module_name)
        setattr(module, attr, effective(model, name))
    return copy.deepcopy(model)
