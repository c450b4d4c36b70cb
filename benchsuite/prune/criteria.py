"""Importance criteria for structured pruning: small callables, separate from the schedule.

A criterion maps weight names to one score per structure along `dim` (0: filters = output
channels, 1: channels / fc rows = input channels); a higher score means more important. The
structured pruner (`structured.py`) decides how many structures to keep (one-shot or AGP,
per layer or global) and keeps the highest-scored ones.

- `l1`: mean |w| (Distiller's L1 norm divided by the structure size);
- `l2`: L2 norm of w / sqrt(structure size);
- `apoz`: 1 - APoZ, the fraction of the filter's post-BN ReLU outputs that are non-zero on the
  calibration batch (Hu et al. 2016); needs data (the BN after a conv: by Distiller's naming,
  else the one the dependency graph shows reading the conv alone; none: the conv's output);
- `activation_mean`: mean of the filter's post-BN ReLU output on the calibration batch;
- `taylor`: |sum over the filter of w * dL/dw| on the calibration batch (first-order Taylor,
  Molchanov et al. 2017); needs data;
- `random`: uniform random, seeded by the epoch and the weight name.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.models.modes import eval_mode, forward_with_hooks
from benchsuite.prune.graph import following_batchnorms
from benchsuite.prune.masks import effective

Calibration = tuple[torch.Tensor, torch.Tensor]
Criterion = Callable[[nn.Module, list[str], int, Calibration | None, int], dict[str, torch.Tensor]]


def _reduce_dims(weight: torch.Tensor, dim: int) -> list[int]:
    return [d for d in range(weight.dim()) if d != dim]


def l1(model: nn.Module, names: list[str], dim: int, calib: Calibration | None,
       epoch: int) -> dict[str, torch.Tensor]:
    out = {}
    for n in names:
        w = effective(model, n)
        out[n] = w.abs().mean(dim=_reduce_dims(w, dim))
    return out


def l2(model: nn.Module, names: list[str], dim: int, calib: Calibration | None,
       epoch: int) -> dict[str, torch.Tensor]:
    out = {}
    for n in names:
        w = effective(model, n)
        out[n] = w.pow(2).mean(dim=_reduce_dims(w, dim)).sqrt()
    return out


def random(model: nn.Module, names: list[str], dim: int, calib: Calibration | None,
           epoch: int) -> dict[str, torch.Tensor]:
    out = {}
    for n in names:
        gen = torch.Generator().manual_seed(epoch * 100_003 + zlib.crc32(n.encode()))
        out[n] = torch.rand(effective(model, n).shape[dim], generator=gen)
    return out


def _following_bn(model: nn.Module, conv_name: str,
                  example_input: torch.Tensor | None = None) -> nn.Module | None:
    """The BatchNorm that normalises a conv's output, by Distiller's ResNet naming (`conv1` ->
    `bn1`, `downsample.0` -> `downsample.1`), else, given an example input, the one the
    dependency graph shows reading the conv's output alone (any model's names)."""
    parent, _, leaf = conv_name.rpartition(".")
    candidates = [leaf.replace("conv", "bn")] if leaf.startswith("conv") else []
    if leaf.isdigit():  # downsample.0 -> downsample.1
        candidates.append(str(int(leaf) + 1))
    for c in candidates:
        name = f"{parent}.{c}" if parent else c
        try:
            module = model.get_submodule(name)
        except AttributeError:
            continue
        if isinstance(module, nn.BatchNorm2d):
            return module
    if example_input is not None:
        bn = following_batchnorms(model, example_input).get(conv_name)
        if bn is not None:
            return model.get_submodule(bn)
    return None


def _activation_stat(model: nn.Module, names: list[str], calib: Calibration | None,
                     stat: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """`stat` of each filter's post-BN ReLU output (N, C, H, W) -> (C,) on the calibration
    batch."""
    assert calib is not None, "activation ranking needs a calibration batch"
    stats: dict[str, torch.Tensor] = {}
    hooks = []
    for n in names:
        conv_name = n.rpartition(".")[0]
        module = _following_bn(model, conv_name, calib[0][:1]) or model.get_submodule(conv_name)

        def hook(_m, _i, out, n=n):
            stats[n] = stat(F.relu(out))

        hooks.append(module.register_forward_hook(hook))
    forward_with_hooks(model, calib[0], hooks)
    return stats


def apoz(model: nn.Module, names: list[str], dim: int, calib: Calibration | None,
         epoch: int) -> dict[str, torch.Tensor]:
    """1 - average percentage of zeros of each filter's activation (Hu et al. 2016)."""
    return _activation_stat(model, names, calib, lambda a: (a > 0).float().mean(dim=(0, 2, 3)))


def activation_mean(model: nn.Module, names: list[str], dim: int, calib: Calibration | None,
                    epoch: int) -> dict[str, torch.Tensor]:
    """Mean of each filter's activation (Molchanov et al. 2017; Distiller's
    ActivationMeanRankedFilterPruner)."""
    return _activation_stat(model, names, calib, lambda a: a.mean(dim=(0, 2, 3)))


def _param(model: nn.Module, name: str) -> nn.Parameter:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    orig = getattr(module, attr + "_orig", None)
    return orig if orig is not None else getattr(module, attr)


def taylor(model: nn.Module, names: list[str], dim: int, calib: Calibration | None,
           epoch: int) -> dict[str, torch.Tensor]:
    """|sum over the structure of w * dL/dw| on the calibration batch (Molchanov et al. 2017;
    Distiller's GradientRankedFilterPruner ranked by the same product)."""
    assert calib is not None, "Taylor ranking needs a calibration batch"
    params = {n: _param(model, n) for n in names}
    saved = {n: p.grad for n, p in params.items()}
    for p in params.values():
        p.grad = None
    try:
        with eval_mode(model), torch.enable_grad():
            F.cross_entropy(model(calib[0]), calib[1]).backward()
        out = {}
        for n, p in params.items():
            w = effective(model, n)
            g = p.grad if p.grad is not None else torch.zeros_like(w)
            out[n] = (w * g).sum(dim=_reduce_dims(w, dim)).abs()
    finally:
        for p in model.parameters():
            p.grad = None
        for n, p in params.items():
            p.grad = saved[n]
    return out


CRITERIA: dict[str, Criterion] = {
    "l1": l1, "l2": l2, "apoz": apoz, "activation_mean": activation_mean, "taylor": taylor,
    "random": random,
}
NEEDS_DATA = {"apoz", "activation_mean", "taylor"}
