"""A torch model's convolutions as the latency model sees them (prune side: torch, no openvino)."""

from __future__ import annotations

import torch
from torch import nn

from benchsuite.latency.spec import ConvSpec
from benchsuite.models.modes import forward_with_hooks


def conv_specs(model: nn.Module, example_input: torch.Tensor) -> dict[str, ConvSpec]:
    """Module name -> ConvSpec of every Conv2d the forward pass runs, in forward order."""
    specs: dict[str, ConvSpec] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            def hook(m: nn.Conv2d, inp: tuple[torch.Tensor, ...], _out: torch.Tensor,
                     name: str = name) -> None:
                _, cin, h, w = inp[0].shape
                specs[name] = ConvSpec(int(cin), int(m.out_channels), int(m.kernel_size[0]),
                                       int(m.stride[0]), int(h), int(w))
            hooks.append(module.register_forward_hook(hook))
    forward_with_hooks(model, example_input, hooks)
    return specs
