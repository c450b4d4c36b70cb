"""Running a model for a look at it (a trace, statistics on a calibration batch) without
changing it: in eval mode (BatchNorm's running statistics untouched), its mode restored after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def forward_with_hooks(model: nn.Module, x: torch.Tensor,
                       hooks: list[torch.utils.hooks.RemovableHandle]) -> torch.Tensor:
    """One forward pass in eval mode without gradients, for the forward `hooks` already
    registered (removed afterwards, whatever happens)."""
    try:
        with eval_mode(model), torch.no_grad():
            return model(x)
    finally:
        for h in hooks:
            h.remove()
