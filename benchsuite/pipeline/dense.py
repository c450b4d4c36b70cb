"""The dense baseline (prune worker): trained once per (model, dataset, seed, epochs, training
images) and the code that trains it, cached by content hash on the worker's disk
(`folder_cache.py`); and what every torch-side stage shares with it: the case's data, the
scores of a model, its checkpoint.

This module is part of the dense models' cache key (`TRAIN_CODE`): an edit here trains every
dense model again. What does not change a trained model (the stages' plumbing) lives in
`pipeline/stages.py`.

Torch is imported inside the functions: the bench worker imports the stage table without it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from benchsuite.core.hashing import code_version, content_hash
from benchsuite.core.paths import cache_dir
from benchsuite.core.userspec import input_digests
from benchsuite.pipeline.executor import StageResult
from benchsuite.pipeline.folder_cache import cached_folder

log = logging.getLogger(__name__)

# dense models are cached by (model, dataset, seed, epochs) and the code that trains them
TRAIN_CODE = ("models", "data", "prune/training.py", "pipeline/dense.py")
DATA_SPLIT_SEED = 0  # one fixed split, so every seed is evaluated on the same test images
EVAL_DATA = "eval_data.npz"  # calibration subset + test split for the bench worker
FILE_NAMES = ("model.pt", "model.onnx", EVAL_DATA)


def load_data(spec: dict):
    """The case's data: training images less the validation split, the validation and test
    splits (`data.load_case_data`)."""
    from benchsuite.data import load_case_data

    return load_case_data(spec["dataset"], spec["seed"], spec.get("data_dir"),
                          spec.get("train_images"), split_seed=DATA_SPLIT_SEED)


def scores(model, data) -> dict:
    """Top-1/Top-5 on the test split and Top-1 on the validation split; a model whose logits
    are not finite (NaN weights, a diverged run) is an error that says so."""
    from benchsuite.core.errors import UserError
    from benchsuite.prune.training import evaluate

    test = evaluate(model, data.x_test, data.y_test)
    val = evaluate(model, data.x_val, data.y_val)
    if not (math.isfinite(test["loss"]) and math.isfinite(val["loss"])):
        raise UserError("the model's logits are NaN or infinite (its weights hold NaN or Inf, "
                        "or training diverged): its accuracy would mean nothing")
    return {"top1": test["top1"], "top5": test["top5"], "test_images": test["test_images"],
            "val_top1": val["top1"], "val_images": val["test_images"]}


def save_checkpoint(model, spec: dict, data, path: Path) -> Path:
    import torch

    from benchsuite.prune.masks import clone_model, make_permanent

    clone = clone_model(model)
    make_permanent(clone)
    torch.save({
        "state_dict": clone.state_dict(), "model": spec["model"],
        "num_classes": data.num_classes, "in_channels": data.input_shape[0],
    }, path)
    return path


def load_checkpoint(path: Path, model: str | None = None):
    """Rebuild a (possibly thinned) model from a checkpoint; tensors only, weights_only=True.
    With `model`, a checkpoint naming another model is refused (the name is imported: a job's
    checkpoint must not bring in a module that the job's checked spec does not name)."""
    import torch

    from benchsuite.core.trust import REFUSED, JobRefused
    from benchsuite.models import build_model, load_thinned

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if model is not None and ckpt.get("model") != model:
        raise JobRefused(f"{REFUSED}the checkpoint is of model {ckpt.get('model')!r}, the job's "
                         f"spec names {model!r}")
    model = build_model(ckpt["model"], ckpt["num_classes"], ckpt["in_channels"])
    return load_thinned(model, ckpt["state_dict"]).eval()


def dense_key(spec: dict) -> str:
    """The dense model's cache key: its settings, the training code and what the model and
    data are beyond their names (a user's model source, an image folder's files, a --data-dir:
    `input_digests`), so an edited model or changed data is trained afresh."""
    keys = ("model", "dataset", "seed", "epochs")
    from benchsuite.prune.training import train_threads  # the numbers depend on the thread count

    subset = spec.get("train_images")
    threads = train_threads()
    inputs = input_digests(spec["model"], spec["dataset"], spec.get("data_dir"))
    return content_hash({k: spec[k] for k in keys} | {"code": code_version(*TRAIN_CODE)}
                        | ({"train_threads": threads} if threads != 1 else {})
                        | ({"train_images": subset} if subset is not None else {})
                        | ({"inputs": inputs} if inputs else {}))


def train_stage(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    """spec: model, dataset, seed, epochs[, data_dir]. Cached by content hash; concurrent
    callers (pytest-xdist workers, several prune workers on one machine) train it once."""
    key = dense_key(spec)
    meta, paths, hit = cached_folder(cache_dir() / "dense", key, FILE_NAMES,
                                     lambda tmp: _train(spec, key, tmp), what="dense model")
    artifacts = {"checkpoint": paths["model.pt"], "onnx": paths["model.onnx"],
                 "eval_data": paths[EVAL_DATA]}
    return StageResult(meta | {"cached": hit}, artifacts)


def _train(spec: dict, key: str, folder: Path) -> dict:
    import torch

    from benchsuite.bench.evaldata import write_eval_data
    from benchsuite.export.onnx import export_onnx
    from benchsuite.models import build_model
    from benchsuite.prune import model_stats
    from benchsuite.prune.training import DENSE_LR, DENSE_WARMUP, seed_everything, train

    data = load_data(spec)
    seed_everything(spec["seed"])
    model = build_model(spec["model"], data.num_classes, data.input_shape[0])
    t0 = time.perf_counter()
    train(model, data, spec["epochs"], DENSE_LR, spec["seed"], warmup=DENSE_WARMUP,
          log=lambda e: log.info("dense %s epoch %d loss %.3f", spec["model"], e.epoch, e.loss))
    seconds = time.perf_counter() - t0
    metrics = scores(model, data)
    stats = model_stats(model, torch.zeros(1, *data.input_shape))
    save_checkpoint(model, spec, data, folder / "model.pt")
    export_onnx(model, data.input_shape, folder / "model.onnx")
    # the bench stage's data (bench/evaldata.py): a calibration subset of the training split
    # and the test split, as numpy arrays (the bench worker has no torch)
    write_eval_data(folder / EVAL_DATA, data.x_train.numpy(), data.x_test.numpy(),
                    data.y_test.numpy())
    return {"dense_key": key, **metrics,
            "params": stats["params"], "macs": stats["macs"], "train_seconds": seconds,
            "train_images": len(data.y_train), "epochs": spec["epochs"],
            "input_shape": list(data.input_shape), "num_classes": data.num_classes}
