"""Datasets: the embedded digits (default) and CIFAR-10 from a local folder."""

from __future__ import annotations

import os
from pathlib import Path

from .base import Splits
from .cifar10 import find_cifar10, load_cifar10_splits
from .digits import load_digits_splits

DATASETS = ("digits", "cifar10")


def _cifar_root(data_dir: str | Path | None) -> Path:
    root = data_dir or os.environ.get("BENCHSUITE_CIFAR10_DIR")
    if not root:
        raise ValueError(
            "dataset cifar10 needs a local folder: pass --data-dir PATH or set "
            "BENCHSUITE_CIFAR10_DIR (the folder holding data_batch_1..5 and test_batch)"
        )
    return Path(root)


def check_dataset(name: str, data_dir: str | Path | None = None) -> tuple[int, int, int]:
    """Fail fast on a bad name or path; returns the sample shape (C, H, W)."""
    if name == "digits":
        return (1, 32, 32)
    if name == "cifar10":
        find_cifar10(_cifar_root(data_dir))
        return (3, 32, 32)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def load_dataset(name: str, seed: int = 0, data_dir: str | Path | None = None) -> Splits:
    """Load a dataset by name. CIFAR-10 reads `data_dir` (or $BENCHSUITE_CIFAR10_DIR)."""
    if name == "digits":
        return load_digits_splits(seed=seed)
    if name == "cifar10":
        return load_cifar10_splits(_cifar_root(data_dir))
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


__all__ = [
    "DATASETS", "Splits", "check_dataset", "find_cifar10", "load_cifar10_splits", "load_dataset",
    "load_digits_splits",
]
