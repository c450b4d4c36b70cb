"""Residual-block surgery: bypass whole blocks (depth pruning) and rebuild bypassed checkpoints.

A residual block here is one of the suite's (the CIFAR ResNets' `BasicBlock`, the ImageNet
ResNets' `BasicBlock` and `Bottleneck`) or any module laid out as torchvision's blocks are
(`conv1`, `bn1`, `conv2`, `bn2`, optionally `conv3`/`bn3`, and a `downsample` attribute, a module
or None), which a user's ResNet-like model usually copies. Such a block computes
relu(branch(x) + shortcut(x)), the branch ending in its last BN (`bn2`, or `bn3`). Bypassing it
keeps only relu(shortcut(x)):
- identity shortcut: the block's input is already a ReLU output (non-negative), so
  relu(x) = x and the block becomes `nn.Identity()` (no parameters, no layers in the export);
- downsampling shortcut (1x1 conv + BN): the block becomes `Shortcut`, which keeps the
  `downsample` module under the same name, so its state-dict keys are unchanged.
A module that only looks like a block is checked on a batch first (`not_bypassable`): its output
must be relu(last BN + shortcut) and, with an identity shortcut, its input non-negative.

*Additive* residual blocks compute x + branch(x) with no activation after the add: MobileNetV2's
inverted residuals with a shortcut (stride 1, as many output channels as input ones) and the
ViT's pre-norm encoder blocks (x + attn(norm1(x)), then + mlp(norm2(x))). Their bypass is an
identity, exact when the branch is zero, whatever the sign of the input; a MobileNetV2 block
without a shortcut is no residual block (nothing could replace it).

A checkpoint of a bypassed model simply lacks the block's `conv1`/`conv2` keys (an additive
block's: all of its keys); `restore_bypassed` turns those blocks of a freshly built model into the
same bypasses, so `load_thinned` can load it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.models.mobilenetv2 import InvertedResidual
from benchsuite.models.modes import forward_with_hooks
from benchsuite.models.resnet_cifar import BasicBlock as CifarBasicBlock
from benchsuite.models.resnet_imagenet import BasicBlock, Bottleneck
from benchsuite.models.vit import Block as EncoderBlock

# the suite's own blocks: known to compute relu(last BN + shortcut) on a non-negative input
KNOWN_BLOCKS = (CifarBasicBlock, BasicBlock, Bottleneck)
# the suite's own blocks that compute x + branch(x) (InvertedResidual only with its shortcut)
ADDITIVE_BLOCKS = (InvertedResidual, EncoderBlock)


class Shortcut(nn.Module):
    """A bypassed downsampling block: relu(downsample(x))."""

    def __init__(self, downsample: nn.Module) -> None:
        super().__init__()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.downsample(x))


def _laid_out_as_block(m: nn.Module) -> bool:
    """torchvision's block layout: conv1, bn1, conv2, bn2 and a `downsample` attribute."""
    return (all(isinstance(getattr(m, a, None), nn.Conv2d) for a in ("conv1", "conv2"))
            and all(isinstance(getattr(m, a, None), nn.BatchNorm2d) for a in ("bn1", "bn2"))
            and hasattr(m, "downsample")
            and (m.downsample is None or isinstance(m.downsample, nn.Module)))


def is_additive_block(m: nn.Module) -> bool:
    """One of the suite's blocks computing x + branch(x): its bypass is an identity."""
    return isinstance(m, ADDITIVE_BLOCKS) and getattr(m, "residual", True)


def is_residual_block(m: nn.Module) -> bool:
    return isinstance(m, KNOWN_BLOCKS) or is_additive_block(m) or _laid_out_as_block(m)


def shortcut_of(block: nn.Module) -> nn.Module | None:
    """The block's downsampling shortcut, None for an identity (an additive block's)."""
    return getattr(block, "downsample", None)


def last_bn(block: nn.Module) -> nn.Module:
    """The BN that ends the block's residual branch (`bn3` of a bottleneck, else `bn2`)."""
    bn3 = getattr(block, "bn3", None)
    return bn3 if isinstance(bn3, nn.BatchNorm2d) and hasattr(block, "conv3") else block.bn2


def residual_blocks(model: nn.Module) -> list[str]:
    """Names of the residual blocks still in the model, in forward order."""
    return [n for n, m in model.named_modules() if n and is_residual_block(m)]


def not_bypassable(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, str]:
    """Of the blocks `names` that are not the suite's own, those whose bypass would not be exact
    on the batch `x`, with the reason: the output is not relu(last BN + shortcut), or the
    shortcut is an identity and the input has negative values."""
    check = [n for n in names if not isinstance(model.get_submodule(n), KNOWN_BLOCKS)
             and not is_additive_block(model.get_submodule(n))]
    seen: dict[str, dict[str, torch.Tensor]] = {n: {} for n in check}
    hooks = []
    for n in check:
        block = model.get_submodule(n)
        hooks.append(block.register_forward_pre_hook(
            lambda _m, args, n=n: seen[n].__setitem__("input", args[0].detach())))
        hooks.append(block.register_forward_hook(
            lambda _m, _i, o, n=n: seen[n].__setitem__("output", o.detach())))
        hooks.append(last_bn(block).register_forward_hook(
            lambda _m, _i, o, n=n: seen[n].__setitem__("branch", o.detach())))
        if block.downsample is not None:
            hooks.append(block.downsample.register_forward_hook(
                lambda _m, _i, o, n=n: seen[n].__setitem__("short", o.detach())))
    forward_with_hooks(model, x, hooks)
    out: dict[str, str] = {}
    for n, s in seen.items():
        kind = type(model.get_submodule(n)).__name__
        if not {"input", "output", "branch"} <= set(s):
            out[n] = f"{n} ({kind}) was not run as a block on the calibration batch"
            continue
        short = s.get("short", s["input"])
        if short.shape != s["branch"].shape or not torch.allclose(
                s["output"], F.relu(s["branch"] + short), atol=1e-5, rtol=1e-4):
            out[n] = f"{n} ({kind}) does not compute relu(its last BN + its shortcut)"
        elif "short" not in s and bool((s["input"] < 0).any()):
            out[n] = f"{n} ({kind}) has an identity shortcut and a negative input: its bypass " \
                     "would not be an identity"
    return out


def bypass(model: nn.Module, name: str) -> nn.Module:
    """Replace block `name` by its shortcut; returns the replacement."""
    block = model.get_submodule(name)
    if not is_residual_block(block):
        raise ValueError(f"{name} is not a residual block")
    down = shortcut_of(block)
    new: nn.Module = nn.Identity() if down is None else Shortcut(down)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
    return new


def _kept(name: str, block: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Whether `state` holds block `name` (its conv1; an additive block: any of its keys)."""
    if is_additive_block(block):
        return any(k.startswith(f"{name}.") for k in state)
    return f"{name}.conv1.weight" in state or f"{name}.conv1.weight_orig" in state


def restore_bypassed(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Bypass the blocks whose convs a state dict lacks; returns their names."""
    removed = []
    for name in residual_blocks(model):
        if not _kept(name, model.get_submodule(name), state):
            bypass(model, name)
            removed.append(name)
    return removed
