"""Per-layer shapes, non-zeros and MACs counted as Distiller counts them.

Distiller's `model_performance_summary` counts the multiply-accumulates of convolution and
fully-connected layers only, as direct convolution: a conv does volume(OFM) x (in_channels /
groups) x kh x kw MACs (bias ignored), a linear layer in x out per row of its output (one for a
classifier, one per token of a transformer's sequence; the products of two activations in
attention, q @ k^T and attn @ v, are not counted, as torch-pruning's counter does not count
them either). Its sparsity table counts the
conv and fc weights ("NNZ"). A dense CIFAR ResNet-56 on a 3x32x32 input has 125,747,840 MACs.
Masks are folded first, so masked weights count as zeros (but still as MACs: a dense runtime
computes them); thinned layers count with their smaller shapes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from benchsuite.prune.masks import clone_model, make_permanent


@dataclass
class LayerRow:
    name: str
    kind: str
    shape: list[int]
    params: int
    nnz: int
    macs: int

    def as_dict(self) -> dict:
        return asdict(self)


def layer_rows(model: nn.Module, example_input: torch.Tensor) -> list[LayerRow]:
    """One row per conv / linear layer reached by a forward pass of `example_input` (batch 1),
    in execution order."""
    clone = clone_model(model).eval()
    make_permanent(clone)
    names = {id(m): n for n, m in clone.named_modules()}
    rows: list[LayerRow] = []

    def hook(module: nn.Module, _inp, out) -> None:
        w = module.weight.detach()
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_image = out[0].numel()  # volume(OFM) of one image
            macs = per_image * (module.in_channels // module.groups) * kh * kw
            kind = "Conv2d"
        else:  # once per row of its output: per token of a transformer's sequence
            macs = w.numel() * (out[0].numel() // module.out_features)
            kind = "Linear"
        rows.append(LayerRow(names[id(module)], kind, list(w.shape), w.numel(),
                             int((w != 0).sum()), int(macs)))

    hooks = [m.register_forward_hook(hook) for m in clone.modules()
             if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        with torch.no_grad():
            clone(example_input[:1])
    finally:
        for h in hooks:
            h.remove()
    return rows


def totals(rows: list[LayerRow]) -> dict[str, int]:
    return {"macs": sum(r.macs for r in rows), "params": sum(r.params for r in rows),
            "nnz_params": sum(r.nnz for r in rows)}
