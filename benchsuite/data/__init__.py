"""Datasets: the embedded digits (default), CIFAR-10 from a local folder, an image folder
(`imagefolder:PATH`) or the user's own (`module:callable`)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import UserError
from ..userspec import is_reference
from .base import Splits
from .cifar10 import find_cifar10, load_cifar10_splits
from .custom import load_custom
from .digits import load_digits_splits
from .imagefolder import PREFIX as IMAGEFOLDER
from .imagefolder import image_shape, load_imagefolder

DATASETS = ("digits", "cifar10", "imagefolder:PATH", "module:callable")


def _cifar_root(data_dir: str | Path | None) -> Path:
    root = data_dir or os.environ.get("BENCHSUITE_CIFAR10_DIR")
    if not root:
        raise UserError(
            "dataset cifar10 needs a local folder: pass --data-dir PATH or set "
            "BENCHSUITE_CIFAR10_DIR (the folder holding data_batch_1..5 and test_batch)"
        )
    return Path(root)


def _unknown(name: str) -> UserError:
    return UserError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


@functools.lru_cache(maxsize=2)
def _custom(name: str) -> Splits:  # validation and an in-process stage load it once
    return load_custom(name)


def describe_dataset(name: str, data_dir: str | Path | None = None
                     ) -> tuple[tuple[int, int, int], int]:
    """Fail fast on a bad name or path; returns the sample shape (C, H, W) and the number of
    classes (reads one image of an image folder; loads a `module:callable` dataset)."""
    if name == "digits":
        return (1, 32, 32), 10
    if name == "cifar10":
        find_cifar10(_cifar_root(data_dir))
        return (3, 32, 32), 10
    if name.startswith(IMAGEFOLDER):
        return image_shape(Path(name.removeprefix(IMAGEFOLDER)).expanduser())
    if is_reference(name):
        splits = _custom(name)
        return splits.input_shape, splits.num_classes
    raise _unknown(name)


def check_dataset(name: str, data_dir: str | Path | None = None) -> tuple[int, int, int]:
    """Fail fast on a bad name or path; returns the sample shape (C, H, W)."""
    return describe_dataset(name, data_dir)[0]


def load_dataset(name: str, seed: int = 0, data_dir: str | Path | None = None) -> Splits:
    """Load a dataset by name. CIFAR-10 reads `data_dir` (or $BENCHSUITE_CIFAR10_DIR)."""
    if name == "digits":
        return load_digits_splits(seed=seed)
    if name == "cifar10":
        return load_cifar10_splits(_cifar_root(data_dir))
    if name.startswith(IMAGEFOLDER):
        return load_imagefolder(name.removeprefix(IMAGEFOLDER))
    if is_reference(name):
        return _custom(name)
    raise _unknown(name)


__all__ = [
    "DATASETS", "Splits", "check_dataset", "describe_dataset", "find_cifar10",
    "load_cifar10_splits", "load_dataset", "load_digits_splits", "load_imagefolder",
]
