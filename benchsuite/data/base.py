"""Dataset splits held as tensors (both datasets here fit in memory)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Splits:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one sample."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]
