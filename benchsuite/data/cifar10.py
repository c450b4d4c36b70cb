"""CIFAR-10 from a local folder in the standard python format (no download).

Expects the folder that the official `cifar-10-python.tar.gz` unpacks to: `data_batch_1` ...
`data_batch_5` and `test_batch`, each a pickled dict with `b'data'` (N x 3072 uint8, RGB planes)
and `b'labels'`. The parent folder is accepted too when it holds `cifar-10-batches-py/`.
Note: these files are pickles; load only a CIFAR-10 copy you trust.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from benchsuite.core.errors import UserError
from benchsuite.data.split import Splits

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
# per-channel statistics of the CIFAR-10 training set
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def find_cifar10(root: Path) -> Path:
    root = Path(root).expanduser()
    for candidate in (root, root / "cifar-10-batches-py"):
        if all((candidate / f).is_file() for f in (*TRAIN_FILES, TEST_FILE)):
            return candidate
    missing = [f for f in (*TRAIN_FILES, TEST_FILE) if not (root / f).is_file()]
    raise FileNotFoundError(
        f"CIFAR-10 not found at {root}: expected the python-format files "
        f"{', '.join((*TRAIN_FILES, TEST_FILE))} (as unpacked from cifar-10-python.tar.gz) "
        f"in that folder or in {root / 'cifar-10-batches-py'}; missing: {', '.join(missing)}"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError) as e:  # what a corrupt or foreign file raises
        raise UserError(f"{path} is not a CIFAR-10 python batch (it does not unpickle: "
                         f"{type(e).__name__}: {e}); re-extract cifar-10-python.tar.gz") from None
    try:
        data, labels = d[b"data"], d[b"labels"]
    except (KeyError, TypeError):
        raise UserError(f"{path} is not a CIFAR-10 python batch (no b'data'/b'labels')") from None
    return np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(labels, np.int64)


def _normalise(x: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(x.astype(np.float32) / 255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (t - mean) / std


def load_cifar10_splits(root: Path, limit: int | None = None) -> Splits:
    """Load CIFAR-10; `limit` keeps the first N training and N//5 test images (quick runs)."""
    folder = find_cifar10(root)
    parts = [_read_batch(folder / f) for f in TRAIN_FILES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = _read_batch(folder / TEST_FILE)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
        x_test, y_test = x_test[: max(1, limit // 5)], y_test[: max(1, limit // 5)]
    return Splits(
        name="cifar10", x_train=_normalise(x_train), y_train=torch.from_numpy(y_train),
        x_test=_normalise(x_test), y_test=torch.from_numpy(y_test), num_classes=10,
    )
