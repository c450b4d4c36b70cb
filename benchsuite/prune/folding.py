"""Distiller's `fold_batchnorm` policy arg: pruners rank and threshold BN-folded weights.

With `fold_batchnorm: true` a pruner sees each conv weight whose output feeds a BatchNorm as
inference folds it: w * gamma / sqrt(running_var + eps) per filter (Krishnamoorthi 2018, eqs. 20-21,
as Distiller did, with the running statistics). The masks it sets are kept; the trained weights
are restored unchanged once it has acted. The BN that follows a conv is found by Distiller's
ResNet naming (`conv1` -> `bn1`, `downsample.0` -> `downsample.1`), else by the dependency graph
(the BN reading the conv's output alone, whatever the names); convs without one, and linear
layers, are seen as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from benchsuite.prune.criteria import _following_bn
from benchsuite.prune.masks import split_name


def _stored(model: nn.Module, name: str) -> torch.Tensor | None:
    module_name, attr = split_name(name)
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        return None  # removed with its block
    orig = getattr(module, attr + "_orig", None)
    return orig if orig is not None else getattr(module, attr, None)


def bn_scale(bn: nn.BatchNorm2d) -> torch.Tensor:
    gamma = bn.weight.detach() if bn.affine else torch.ones_like(bn.running_var)
    return gamma / torch.sqrt(bn.running_var + bn.eps)


@contextmanager
def folded(model: nn.Module, weights: list[str],
           example_input: torch.Tensor | None = None) -> Iterator[None]:
    """Scale the listed conv weights by their BN's factor for the duration of the block."""
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        for name in weights:
            param = _stored(model, name)
            if param is None or param.dim() != 4:
                continue
            bn = _following_bn(model, split_name(name)[0], example_input)
            if bn is None:
                continue
            saved.append((param, param.detach().clone()))
            param.mul_(bn_scale(bn).view(-1, 1, 1, 1))
    try:
        yield
    finally:
        with torch.no_grad():
            for param, values in saved:
                param.copy_(values)
