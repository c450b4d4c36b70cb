"""`--dataset module:callable`: the user's own data.

The callable takes no arguments and returns either a `Splits` or a pair `(train, test)` of
map-style datasets (`len()` and `[i] -> (x, label)`, e.g. torch `Dataset`s or lists of
pairs). Samples are stacked into tensors held in memory (C, H, W each, or (H, W) for one
channel); the number of classes is `len(train.classes)` when the dataset has `classes`, else
the largest label + 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from benchsuite.core.errors import UserError
from benchsuite.core.userspec import call_user, check_arguments, load_callable
from benchsuite.data.split import Splits


def _stack(dataset: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        pairs: Sequence = [dataset[i] for i in range(len(dataset))]
        xs = [torch.as_tensor(x, dtype=torch.float32) for x, _ in pairs]
        ys = torch.tensor([int(y) for _, y in pairs], dtype=torch.int64)
    except (TypeError, ValueError) as e:
        raise UserError(f"{what}: samples must be (x, int label) pairs ({e})") from None
    if not xs:
        raise UserError(f"{what}: empty")
    if odd := next((i for i, t in enumerate(xs) if t.shape != xs[0].shape), None):
        raise UserError(f"{what}: samples differ in shape: {tuple(xs[0].shape)} (sample 0) "
                         f"and {tuple(xs[odd].shape)} (sample {odd})")
    x = torch.stack(xs)
    if not torch.isfinite(x).all():
        raise UserError(f"{what}: samples hold NaN or infinite values")
    if int(ys.min()) < 0:
        raise UserError(f"{what}: labels must be 0, 1, ...; got {int(ys.min())}")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise UserError(f"{what}: samples must be images (C, H, W) or (H, W), got "
                         f"{tuple(xs[0].shape)}")
    return x, ys


def load_custom(reference: str) -> Splits:
    what = f"--dataset {reference}"
    load = load_callable(reference, "--dataset")
    check_arguments(load, reference, "--dataset", "no arguments")
    out = call_user(load, reference, "--dataset")
    if isinstance(out, Splits):
        return out
    if not (isinstance(out, tuple | list) and len(out) == 2):
        raise UserError(f"{what}: must return a Splits or (train, test), got "
                         f"{type(out).__name__}")
    train, test = out
    x_train, y_train = _stack(train, f"{what} (train)")
    x_test, y_test = _stack(test, f"{what} (test)")
    classes = getattr(train, "classes", None)
    num_classes = len(classes) if classes else int(max(y_train.max(), y_test.max())) + 1
    if int(max(y_train.max(), y_test.max())) >= num_classes:
        raise UserError(f"{what}: a label >= the {num_classes} classes of train.classes")
    if num_classes < 2:
        raise UserError(f"{what}: at least 2 classes needed, got {num_classes}")
    return Splits(name=reference, x_train=x_train, y_train=y_train, x_test=x_test,
                  y_test=y_test, num_classes=num_classes)
