"""The embedded dataset: scikit-learn's bundled digits (1,797 8x8 images, 10 classes).

Upsampled to 32x32 (bilinear), one channel, scaled to [0, 1] and standardised with the training
split's mean and std; stratified, seeded 50/50 split (898 training, 899 test images), so one test
image is 0.11 points of Top-1 and a -1 pt floor is 9 images, not the 3.6 of an 80/20 split:
no single image decides a verdict. Ships with scikit-learn: nothing downloads.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from benchsuite.data.split import Splits


def load_digits_splits(seed: int = 0, size: int = 32, test_fraction: float = 0.5) -> Splits:
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed
    )
    x = torch.from_numpy(images).unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    mean, std = x[idx_train].mean(), x[idx_train].std()
    x = (x - mean) / std
    y = torch.from_numpy(labels)
    return Splits(
        name="digits", x_train=x[idx_train], y_train=y[idx_train],
        x_test=x[idx_test], y_test=y[idx_test], num_classes=10,
    )
