"""Residual-block surgery: bypass whole blocks (depth pruning) and rebuild bypassed checkpoints.

A CIFAR ResNet block computes relu(branch(x) + shortcut(x)). Bypassing it keeps only
relu(shortcut(x)):
- identity shortcut: the block's input is already a ReLU output (non-negative), so
  relu(x) = x and the block becomes `nn.Identity()` (no parameters, no layers in the export);
- downsampling shortcut (1x1 conv + BN): the block becomes `Shortcut`, which keeps the
  `downsample` module under the same name, so its state-dict keys are unchanged.

A checkpoint of a bypassed model simply lacks the block's `conv1`/`conv2` keys;
`restore_bypassed` turns those blocks of a freshly built model into the same bypasses, so
`load_thinned` can load it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.models.resnet_cifar import BasicBlock


class Shortcut(nn.Module):
    """A bypassed downsampling block: relu(downsample(x))."""

    def __init__(self, downsample: nn.Module) -> None:
        super().__init__()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.downsample(x))


def residual_blocks(model: nn.Module) -> list[str]:
    """Names of the residual blocks still in the model, in forward order."""
    return [n for n, m in model.named_modules() if isinstance(m, BasicBlock)]


def bypass(model: nn.Module, name: str) -> nn.Module:
    """Replace block `name` by its shortcut; returns the replacement."""
    block = model.get_submodule(name)
    if not isinstance(block, BasicBlock):
        raise ValueError(f"{name} is not a residual block")
    new: nn.Module = nn.Identity() if block.downsample is None else Shortcut(block.downsample)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
    return new


def restore_bypassed(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Bypass the blocks whose convs a state dict lacks; returns their names."""
    removed = []
    for name in residual_blocks(model):
        if f"{name}.conv1.weight" not in state and f"{name}.conv1.weight_orig" not in state:
            bypass(model, name)
            removed.append(name)
    return removed
