"""Fashion-MNIST (Zalando SE, MIT licence) from Debian's `dataset-fashion-mnist` package.

`apt-get install dataset-fashion-mnist` puts the four official files in
`/usr/share/datasets/fashion-mnist/`: `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`, 60,000
training and 10,000 test images, grayscale 28x28, 10 balanced classes. `--data-dir` (or
$BENCHSUITE_FASHION_MNIST_DIR) points elsewhere, at a folder holding the same four files
(gzipped or not). Nothing downloads.

Images are kept at their native 28x28, one channel, scaled to [0, 1] and standardised with the
training set's mean and std. The test split is the official 10,000 images (one image is
0.01 pt of Top-1); the validation split and any training subset are drawn from the 60,000
training images (`data.holdout`).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from benchsuite.core.errors import UserError
from benchsuite.data.split import Splits

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV = "BENCHSUITE_FASHION_MNIST_DIR"
PACKAGE = "dataset-fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # the idx headers: 0x00000803 and 0x00000801
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")
SHAPE = (1, 28, 28)


def install_hint() -> str:
    return (f"Fashion-MNIST is Debian's package {PACKAGE}: run `sudo apt-get install -y {PACKAGE}`"
            f" (./run.sh does it when run as root), or pass --data-dir PATH (or set {ENV}) to a "
            f"folder holding {', '.join(n + '.gz' for pair in FILES.values() for n in pair)}")


def find_fashion_mnist(data_dir: str | Path | None = None) -> Path:
    """The folder holding the four files: `data_dir`, else $BENCHSUITE_FASHION_MNIST_DIR, else
    Debian's. A missing folder or file is a UserError saying how to get the data."""
    root = Path(data_dir or os.environ.get(ENV) or SYSTEM_DIR).expanduser()
    missing = [name for pair in FILES.values() for name in pair if _file(root, name) is None]
    if missing:
        raise UserError(f"Fashion-MNIST not found at {root} (missing "
                        f"{', '.join(n + '.gz' for n in missing)}). {install_hint()}")
    return root


def _file(root: Path, name: str) -> Path | None:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a truncated or foreign gzip file
        raise UserError(f"{path} cannot be read ({type(e).__name__}: {e}); reinstall "
                        f"{PACKAGE}") from None
    header = 4 * (1 + dims)
    if len(raw) < header:
        raise UserError(f"{path} is too short for an idx file ({len(raw)} bytes)")
    found, *shape = np.frombuffer(raw[:header], dtype=">i4").tolist()
    if found != magic:
        raise UserError(f"{path} is not an idx file of this kind (magic {found}, expected "
                        f"{magic})")
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise UserError(f"{path} holds {len(raw) - header} bytes of data, its header says "
                        f"{expected} ({'x'.join(map(str, shape))}): truncated; reinstall {PACKAGE}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_pair(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_name, labels_name = FILES[split]
    images = _read_idx(_file(root, images_name), IMAGE_MAGIC, 3)  # type: ignore[arg-type]
    labels = _read_idx(_file(root, labels_name), LABEL_MAGIC, 1)  # type: ignore[arg-type]
    if len(images) != len(labels):
        raise UserError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
    if labels.max(initial=0) >= len(CLASSES):
        raise UserError(f"Fashion-MNIST {split}: label {labels.max()} outside 0..9")
    return images, labels.astype(np.int64)


def load_fashion_mnist_splits(data_dir: str | Path | None = None) -> Splits:
    root = find_fashion_mnist(data_dir)
    x_train, y_train = _read_pair(root, "train")
    x_test, y_test = _read_pair(root, "test")
    train = torch.from_numpy(x_train.astype(np.float32) / 255.0).unsqueeze(1)
    test = torch.from_numpy(x_test.astype(np.float32) / 255.0).unsqueeze(1)
    mean, std = train.mean(), train.std()  # of the training images: 0.2860, 0.3530
    return Splits(name="fashion-mnist", x_train=(train - mean) / std,
                  y_train=torch.from_numpy(y_train), x_test=(test - mean) / std,
                  y_test=torch.from_numpy(y_test), num_classes=len(CLASSES))
