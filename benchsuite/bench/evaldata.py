"""The evaluation blob: what the bench stage needs of a dataset, as one numpy ``.npz`` file.

The train stage (prune worker, torch) writes it beside the dense model; the bench stage (bench
worker, openvino + numpy, no torch) reads it for two things:

- ``x_calib``: a calibration subset of the TRAINING split (NNCF's post-training quantization
  sets its activation ranges on it; the test split is never seen by the quantizer);
- ``x_test`` / ``y_test``: the test split, on which the deployed model's Top-1 is measured.

Numpy only: this module is imported by the bench worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_SIZE = 300  # nncf.quantize's default subset_size
CALIBRATION_SEED = 0  # which training images calibrate: fixed, so INT8 models are repeatable
FORMAT_VERSION = 1


@dataclass(frozen=True)
class EvalData:
    x_calib: np.ndarray  # (N, C, H, W) float32, from the training split
    x_test: np.ndarray  # (M, C, H, W) float32
    y_test: np.ndarray  # (M,) int64

    @property
    def test_images(self) -> int:
        return len(self.y_test)


def calibration_indices(train_size: int, size: int = CALIBRATION_SIZE,
                        seed: int = CALIBRATION_SEED) -> np.ndarray:
    """A fixed random subset of the training split (all of it when it is smaller)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.permutation(train_size)[: min(size, train_size)])


def write_eval_data(path: Path, x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                    calibration_size: int = CALIBRATION_SIZE) -> Path:
    """Write the blob: a calibration subset of ``x_train`` and the whole test split."""
    idx = calibration_indices(len(x_train), calibration_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, version=np.int64(FORMAT_VERSION),
                        x_calib=np.ascontiguousarray(x_train[idx], dtype=np.float32),
                        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
                        y_test=np.asarray(y_test, dtype=np.int64))
    tmp.replace(path)
    return path


def read_eval_data(path: Path) -> EvalData:
    with np.load(path, allow_pickle=False) as blob:
        version = int(blob["version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: evaluation blob version {version}, expected "
                             f"{FORMAT_VERSION} (written by another benchsuite?)")
        return EvalData(blob["x_calib"], blob["x_test"], blob["y_test"])
