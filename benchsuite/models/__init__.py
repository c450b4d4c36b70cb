"""Model zoo: names -> constructors, and loading of thinned (re-shaped) checkpoints.

A model is a built-in name (CIFAR ResNets with Distiller's names, ImageNet ResNet-18/50 with
torchvision's, a small CNN, MobileNetV2 and a small ViT sized for 28x28 and 32x32 images) or
`module:callable`, the user's own: a callable `(num_classes: int, in_channels: int) ->
torch.nn.Module`.

The dense-zoo control trains a small dense family of the reference's kind: the fastest of them
that holds a pruning case's floor is what the pruning has to beat. `DENSE_FAMILY` is the
ResNets' (CIFAR ResNet-8/14/20 at full and half width, and a two-conv CNN with batch norm,
published at 93.4 % on Fashion-MNIST), the family of every model `DENSE_FAMILIES` does not name;
MobileNetV2 has its own at smaller widths, the ViT its own at fewer blocks (`dense_family`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from benchsuite.core.errors import UserError
from benchsuite.core.userspec import (
    call_user,
    check_arguments,
    is_reference,
    load_callable,
)
from benchsuite.models.blocks import restore_bypassed
from benchsuite.models.mobilenetv2 import MobileNetV2
from benchsuite.models.resnet_cifar import ResNetCifar
from benchsuite.models.resnet_imagenet import resnet18, resnet50
from benchsuite.models.small_cnn import SmallCNN, TwoConvBN
from benchsuite.models.vit import VisionTransformer

# vit_tiny: DeiT-Tiny's heads (3) and MLP ratio (4) at half its width (96) and depth (6), patches
# of 4x4 (models/vit.py); the zoo's smaller ones have fewer blocks
VIT_TINY = {"dim": 96, "depth": 6, "heads": 3, "mlp_ratio": 4.0, "patch": 4}

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "small_cnn": lambda **kw: SmallCNN(**kw),
    **{f"resnet{d}": (lambda d=d, **kw: ResNetCifar(d, **kw)) for d in (8, 14, 20, 32, 44, 56)},
    **{f"resnet{d}_half": (lambda d=d, **kw: ResNetCifar(d, widths=(8, 16, 32), **kw))
       for d in (8, 14, 20)},
    "cnn2_bn": lambda **kw: TwoConvBN(**kw),
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenetv2": lambda **kw: MobileNetV2(width=1.0, **kw),
    "mobilenetv2_050": lambda **kw: MobileNetV2(width=0.5, **kw),
    "mobilenetv2_035": lambda **kw: MobileNetV2(width=0.35, **kw),
    "vit_tiny": lambda **kw: VisionTransformer(**VIT_TINY, **kw),
    **{f"vit_tiny_d{d}": (lambda d=d, **kw: VisionTransformer(**(VIT_TINY | {"depth": d}), **kw))
       for d in (4, 2)},
    # DeiT-Tiny's own width (192): its linear layers' dimensions (192, 576, 768) are multiples
    # of 64, which OpenVINO's sparse weights decompression needs (vit_tiny's 96 is not)
    "vit_tiny_w192": lambda **kw: VisionTransformer(**(VIT_TINY | {"dim": 192}), **kw),
}
MODEL_NAMES = tuple(_BUILDERS)
DENSE_FAMILY = ("cnn2_bn", "resnet8_half", "resnet8", "resnet14_half", "resnet14",
                "resnet20_half", "resnet20")
# the dense family of a reference of another kind: the same network, narrower or shallower
DENSE_FAMILIES: dict[str, tuple[str, ...]] = {
    "mobilenetv2": ("mobilenetv2_035", "mobilenetv2_050"),
    "vit_tiny": ("vit_tiny_d2", "vit_tiny_d4"),
    "vit_tiny_w192": ("vit_tiny_d2", "vit_tiny_d4", "vit_tiny"),  # narrower, then shallower
}


def dense_family(model: str) -> tuple[str, ...]:
    """The dense-zoo family for the reference `model`: its own kind's when it has one
    (`DENSE_FAMILIES`, the members of a family sharing it), else the ResNets' `DENSE_FAMILY`."""
    key = model.removesuffix("_cifar")
    if key in DENSE_FAMILIES:
        return (*DENSE_FAMILIES[key], key)
    for reference, family in DENSE_FAMILIES.items():
        if key in family:
            return (*family, reference)
    return DENSE_FAMILY


def build_model(name: str, num_classes: int, in_channels: int) -> nn.Module:
    """Build a fresh model by name (Distiller's `resnet20_cifar` spelling is accepted) or by
    `module:callable`."""
    if is_reference(name):
        build = load_callable(name, "--model")
        check_arguments(build, name, "--model", "(num_classes, in_channels)", num_classes,
                        in_channels)
        model = call_user(build, name, "--model", num_classes, in_channels)
        if not isinstance(model, nn.Module):
            raise UserError(f"--model {name}: returned {type(model).__name__}, not a "
                             "torch.nn.Module")
        return model
    key = name.removesuffix("_cifar")
    if key not in _BUILDERS:
        raise UserError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}, or "
                         "module:callable")
    return _BUILDERS[key](num_classes=num_classes, in_channels=in_channels)


def check_model_io(name: str, model: nn.Module, shape: tuple[int, ...], num_classes: int
                   ) -> None:
    """A model that does not take the data's samples or does not give one logit per class
    fails here, saying so (not with a shape error deep inside training)."""
    batch = (2, *shape)
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(batch))
    except Exception as e:
        raise UserError(f"--model {name}: a forward pass on a batch of the dataset's samples "
                         f"{batch} failed ({type(e).__name__}: {str(e).splitlines()[0]})"
                         ) from None
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != (2, num_classes):
        raise UserError(f"--model {name}: gives {got} for a batch of {batch}; want (2, "
                         f"{num_classes}): one logit per class of the dataset")


def _resize(module: nn.Module, state: dict[str, torch.Tensor], prefix: str) -> nn.Module | None:
    """A replacement for `module` shaped like its saved tensors, or None if it already fits."""
    w = state.get(prefix + "weight")
    if w is None or w.shape == module.weight.shape:
        return None
    if isinstance(module, nn.Conv2d):
        groups = module.groups if module.groups == 1 else w.shape[0]
        return nn.Conv2d(
            w.shape[1] * groups, w.shape[0], module.kernel_size, module.stride, module.padding,
            module.dilation, groups, module.bias is not None,
        )
    if isinstance(module, nn.BatchNorm2d):
        return nn.BatchNorm2d(w.shape[0], module.eps, module.momentum)
    if isinstance(module, nn.Linear):
        return nn.Linear(w.shape[1], w.shape[0], module.bias is not None)
    raise ValueError(f"cannot resize {type(module).__name__} at {prefix!r}")


def load_thinned(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Load a state dict whose conv/bn/linear shapes may be smaller (a thinned model).

    Physical pruning changes tensor shapes, so a plain ``load_state_dict`` fails; the modules are
    re-created with the saved shapes first. Residual blocks whose convs the state dict lacks were
    removed (depth pruning, `blocks.py`) and become their shortcut. Checkpoints hold tensors only
    (``weights_only=True``).
    """
    restore_bypassed(model, state)
    for name, module in list(model.named_modules()):
        if not name:
            continue
        new = _resize(module, state, name + ".")
        if new is not None:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    model.load_state_dict(state)
    return model
