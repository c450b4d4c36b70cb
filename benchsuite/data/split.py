"""Dataset splits held as tensors (every dataset here fits in memory).

A dataset loader gives the training and test images; `holdout` then draws the validation
split from the training images (stratified, fixed by the seed) and, optionally, a training
subset of a given size. What chooses (early stopping, a sweep's objective, the best case)
reads the validation split; a case's verdict reads the test split, once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch


@dataclass
class Splits:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    x_val: torch.Tensor | None = None  # held out from the training images (`holdout`)
    y_val: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one sample."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def val_images(self) -> int:
        return 0 if self.y_val is None else len(self.y_val)


def stratified_take(labels: torch.Tensor, count: int, seed: int) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """Indices of `count` samples drawn per class in proportion (largest remainders), and of
    the rest; both sorted, fixed by `seed`."""
    import numpy as np

    y = labels.numpy()
    n = len(y)
    if not 0 < count < n:
        raise ValueError(f"cannot take {count} of {n} samples")
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(y, return_counts=True)
    share = sizes * count / n
    quota = np.floor(share).astype(int)
    short = count - int(quota.sum())
    quota[np.argsort(-(share - quota), kind="stable")[:short]] += 1
    taken = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:q]
                            for c, q in zip(classes, quota, strict=True)])
    mask = np.zeros(n, dtype=bool)
    mask[taken] = True
    return torch.from_numpy(np.flatnonzero(mask)), torch.from_numpy(np.flatnonzero(~mask))


def holdout(splits: Splits, val_images: int, seed: int,
            train_images: int | None = None) -> Splits:
    """`val_images` of the training images held out as the validation split (stratified, drawn
    with `seed`), then, with `train_images`, at most that many of the rest kept for training
    (a stratified subset; all of them when there are no more). The test split is untouched."""
    if splits.y_val is not None:
        raise ValueError(f"{splits.name}: the validation split is already held out")
    n = len(splits.y_train)
    if val_images < 1 or val_images > n // 2:
        raise ValueError(f"{splits.name}: {val_images} validation images of {n} training images "
                         f"(between 1 and {n // 2})")
    if train_images is not None and train_images < 1:
        raise ValueError(f"{splits.name}: train_images {train_images}: at least 1")
    val, rest = stratified_take(splits.y_train, val_images, seed)
    if train_images is not None and train_images < len(rest):
        keep, _ = stratified_take(splits.y_train[rest], train_images, seed + 1)
        rest = rest[keep]
    return replace(splits, x_train=splits.x_train[rest], y_train=splits.y_train[rest],
                   x_val=splits.x_train[val], y_val=splits.y_train[val])
