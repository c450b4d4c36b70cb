"""Datasets: Fashion-MNIST (the default, Debian's `dataset-fashion-mnist`), the embedded digits
(a smoke test: the suite's own fast data), CIFAR-10 from a local folder, an image folder
(`imagefolder:PATH`) or the user's own (`module:callable`).

`load_case_data` is what a stage trains and evaluates on: the dataset with its validation split
held out of the training images (`VAL_FRACTION`, at most `VAL_MAX` images, stratified, drawn
with the case's seed) and, with `train_images`, a training subset of that size."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from benchsuite.core.errors import UserError
from benchsuite.core.userspec import is_reference
from benchsuite.data.cifar10 import find_cifar10, load_cifar10_splits
from benchsuite.data.custom import load_custom
from benchsuite.data.digits import load_digits_splits
from benchsuite.data.fashion_mnist import find_fashion_mnist, load_fashion_mnist_splits
from benchsuite.data.imagefolder import PREFIX as IMAGEFOLDER
from benchsuite.data.imagefolder import image_shape, load_imagefolder
from benchsuite.data.split import Splits, holdout

DATASETS = ("fashion-mnist", "digits", "cifar10", "imagefolder:PATH", "module:callable")
DEFAULT_DATASET = "fashion-mnist"
SMOKE_DATASETS = ("digits",)  # figures on these are smoke tests, never benchmarks
# the validation split: this share of the training images, at most VAL_MAX (Fashion-MNIST:
# 5,000 of 60,000, so one validation image is 0.02 pt; digits: 180 of 898)
VAL_FRACTION = 0.2
VAL_MAX = 5000


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


@functools.lru_cache(maxsize=1)
def _fashion(data_dir: str | None) -> Splits:  # 60,000 images: 2 s to read, kept for the stages
    return load_fashion_mnist_splits(data_dir)


def validation_size(train_size: int) -> int:
    return max(1, min(VAL_MAX, round(VAL_FRACTION * train_size)))


def load_case_data(name: str, seed: int, data_dir: str | Path | None = None,
                   train_images: int | None = None, split_seed: int = 0) -> Splits:
    """The data of one case: the dataset (its test split drawn with `split_seed` where the
    dataset has no official one), its validation split held out of the training images with
    `seed`, and with `train_images` a training subset of that size."""
    data = load_dataset(name, seed=split_seed, data_dir=data_dir)
    try:
        return holdout(data, validation_size(len(data.y_train)), seed, train_images)
    except ValueError as e:
        raise UserError(str(e)) from None


def describe_dataset(name: str, data_dir: str | Path | None = None
                     ) -> tuple[tuple[int, int, int], int]:
    """Fail fast on a bad name or path; returns the sample shape (C, H, W) and the number of
    classes (reads one image of an image folder; loads a `module:callable` dataset)."""
    if name == "digits":
        return (1, 32, 32), 10
    if name == "fashion-mnist":
        find_fashion_mnist(data_dir)
        return (1, 28, 28), 10
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
    if name == "fashion-mnist":
        return _fashion(str(data_dir) if data_dir else None)
    if name == "cifar10":
        return load_cifar10_splits(_cifar_root(data_dir))
    if name.startswith(IMAGEFOLDER):
        return load_imagefolder(name.removeprefix(IMAGEFOLDER))
    if is_reference(name):
        return _custom(name)
    raise _unknown(name)


__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "SMOKE_DATASETS",
    "Splits",
    "check_dataset",
    "describe_dataset",
    "find_cifar10",
    "find_fashion_mnist",
    "holdout",
    "load_case_data",
    "load_cifar10_splits",
    "load_dataset",
    "load_digits_splits",
    "load_fashion_mnist_splits",
    "load_imagefolder",
    "validation_size",
]
