"""A torch model's ops as the latency model sees them (prune side: torch, no openvino)."""

from __future__ import annotations

import torch
from torch import nn

from benchsuite.latency.spec import AttentionSpec, ConvSpec, DepthwiseSpec, LinearSpec, OpSpec
from benchsuite.models.modes import forward_with_hooks


def conv_specs(model: nn.Module, example_input: torch.Tensor) -> dict[str, ConvSpec]:
    """Module name -> ConvSpec of every (ungrouped) Conv2d the forward pass runs, in forward
    order."""
    return {n: s for n, s in op_specs(model, example_input).items() if isinstance(s, ConvSpec)}


def _is_attention(m: nn.Module) -> bool:
    """timm's layout, as `models/vit.py` and `prune/heads.py` (a layer above) know it: a `qkv`
    linear layer, `head_dim`, `num_heads`."""
    return (isinstance(getattr(m, "qkv", None), nn.Linear)
            and isinstance(getattr(m, "head_dim", None), int) and hasattr(m, "num_heads"))


def _conv(m: nn.Conv2d, cin: int, h: int, w: int) -> OpSpec:
    k, s = int(m.kernel_size[0]), int(m.stride[0])
    if m.groups == 1:
        return ConvSpec(cin, int(m.out_channels), k, s, h, w)
    if m.groups == cin == m.out_channels:
        return DepthwiseSpec(cin, k, s, h, w)
    raise ValueError(f"a grouped convolution of {cin} -> {m.out_channels} channels in "
                     f"{m.groups} groups: the latency model has convolutions and depthwise ones")


def op_specs(model: nn.Module, example_input: torch.Tensor) -> dict[str, OpSpec]:
    """Module name -> spec of every Conv2d (`ConvSpec` or `DepthwiseSpec`), Linear (its tokens:
    the rows of its input per sample) and attention module (`AttentionSpec` from its input's
    sequence length, `num_heads`, `head_dim`) the forward pass runs, in the order they finish.
    The OpenVINO side (`bench/latency_table.ops_from_ir`) lists the same ops of the export."""
    specs: dict[str, OpSpec] = {}
    hooks = []

    def hook(m: nn.Module, inp: tuple[torch.Tensor, ...], _out: torch.Tensor, name: str) -> None:
        x = inp[0]
        if isinstance(m, nn.Conv2d):
            _, cin, h, w = x.shape
            specs[name] = _conv(m, int(cin), int(h), int(w))
        elif isinstance(m, nn.Linear):
            tokens = x.numel() // (x.shape[0] * m.in_features) if x.dim() > 1 else 1
            specs[name] = LinearSpec(int(tokens), int(m.in_features), int(m.out_features))
        else:
            specs[name] = AttentionSpec(int(x.shape[1]), int(m.num_heads), int(m.head_dim))

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear) or _is_attention(module):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: hook(m, i, o, name)))
    forward_with_hooks(model, example_input, hooks)
    return specs
