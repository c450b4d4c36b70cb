"""`--dataset imagefolder:PATH`: images in the ImageFolder layout, read with Pillow.

    PATH/train/<class>/*.png|jpg|...    PATH/val/<class>/...

Classes are the sorted folder names of `train/`, each with images (`val/` may lack some, not
add any). The input
size is the data's: every image is converted to the first training image's mode (grayscale:
one channel, anything else: RGB) and resized (bilinear) to its size; pixels scaled to [0, 1]
and standardised per channel with the training split's mean and std. Held in memory as tensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchsuite.core.errors import UserError
from benchsuite.data.split import Splits

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
PREFIX = "imagefolder:"


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)


def _classes(root: Path) -> list[str]:
    train = root / "train"
    if not train.is_dir() or not (root / "val").is_dir():
        raise FileNotFoundError(f"imagefolder {root}: expected the folders train/ and val/, one "
                                "subfolder per class in each")
    classes = sorted(p.name for p in train.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise UserError(f"imagefolder {root}: train/ needs at least 2 class folders, found "
                         f"{classes}")
    extra = sorted(p.name for p in (root / "val").iterdir()
                   if p.is_dir() and p.name not in classes)
    if extra:
        raise UserError(f"imagefolder {root}: val/ has classes train/ lacks: {extra}")
    return classes


def _first_image(root: Path, classes: list[str]) -> Path:
    for c in classes:
        if files := _images(root / "train" / c):
            return files[0]
    raise UserError(f"imagefolder {root}: no images ({', '.join(EXTENSIONS)}) under train/")


def image_shape(root: Path) -> tuple[tuple[int, int, int], int]:
    """(C, H, W) of the samples and the number of classes, reading one image only."""
    from PIL import Image

    classes = _classes(root)
    first = _first_image(root, classes)
    try:
        with Image.open(first) as im:
            channels = 1 if im.mode in ("L", "1", "I;16", "I") else 3
            return (channels, im.height, im.width), len(classes)
    except Image.DecompressionBombError as e:
        raise UserError(f"imagefolder: {first}: {str(e).rstrip('.')}; shrink or remove it"
                        ) from None


def _read_split(folder: Path, classes: list[str], mode: str, size: tuple[int, int],
                every_class: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    arrays, labels = [], []
    for label, c in enumerate(classes):
        if not (folder / c).is_dir():
            continue
        if every_class and not _images(folder / c):
            raise UserError(f"imagefolder: class {c!r} has no images under {folder / c}; add "
                            "some or remove the folder")
        for path in _images(folder / c):
            try:
                with Image.open(path) as im:
                    im = im.convert(mode)
                    if im.size != size:
                        im = im.resize(size, Image.Resampling.BILINEAR)
                    arrays.append(np.asarray(im, dtype=np.float32) / 255.0)
            except OSError as e:  # not an image, truncated, unreadable
                raise UserError(f"imagefolder: {path} is not a readable image ({e}); remove "
                                "or replace it") from None
            except Image.DecompressionBombError as e:  # failed the train job twice, traceback
                raise UserError(f"imagefolder: {path}: {str(e).rstrip('.')}; shrink or remove "
                                "it") from None
            labels.append(label)
    if not arrays:
        raise UserError(f"imagefolder: no images under {folder}")
    x = torch.from_numpy(np.stack(arrays))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.contiguous(), torch.tensor(labels, dtype=torch.int64)


def load_imagefolder(root: str | Path) -> Splits:
    root = Path(root).expanduser()
    (channels, height, width), _ = image_shape(root)
    classes = _classes(root)
    mode = "L" if channels == 1 else "RGB"
    x_train, y_train = _read_split(root / "train", classes, mode, (width, height), True)
    x_test, y_test = _read_split(root / "val", classes, mode, (width, height))
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return Splits(name=f"{PREFIX}{root}", x_train=(x_train - mean) / std, y_train=y_train,
                  x_test=(x_test - mean) / std, y_test=y_test, num_classes=len(classes))
