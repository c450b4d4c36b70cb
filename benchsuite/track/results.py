"""The results table: one row per case run, appended to experiments/results/results.csv.

The per-layer table of each case goes beside it as `per_layer/<case_id>.csv`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..paths import project_root, results_dir

if TYPE_CHECKING:
    from ..case import Case

COLUMNS = [
    "case_id", "label", "recipe", "recipe_params", "model", "dataset", "seed", "sparsity",
    "device", "device_name", "precision", "precision_requested", "threads", "streams", "batch",
    "input_shape", "top1", "top5", "dense_top1", "dense_top5", "params", "dense_params", "macs",
    "dense_macs",
    "weight_sparsity", "latency_median_us", "latency_avg_us", "latency_min_us",
    "latency_max_us", "latency_cv", "dense_latency_median_us", "dense_latency_cv", "speedup",
    "fps", "dense_fps", "runtime_version", "finetune_epochs", "dense_epochs", "train_seconds",
    "finetune_seconds", "export_seconds", "bench_seconds", "wall_seconds", "git_sha",
    "timestamp",
]


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_root(),
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_row(case: Case, dense: dict, pruned: dict, bench: dict, wall_seconds: float) -> dict:
    d, p = bench["dense"], bench["pruned"]
    params = case.effective_params()
    return {
        "case_id": case.case_id, "label": case.label, "recipe": case.recipe_name,
        "recipe_params": json.dumps(params, sort_keys=True), "model": case.model,
        "dataset": case.dataset, "seed": case.seed, "sparsity": params.get("sparsity"),
        "device": p["device"], "device_name": p.get("device_name", "unknown"),
        "precision": p["precision"],
        "precision_requested": case.precision, "threads": p.get("threads"),
        "streams": p.get("streams"), "batch": p.get("batch"), "input_shape": p.get("input_shape"),
        "top1": pruned["top1"], "top5": pruned["top5"],
        "dense_top1": dense["top1"], "dense_top5": dense["top5"],
        "params": pruned["params"], "dense_params": dense["params"],
        "macs": pruned["macs"], "dense_macs": dense["macs"],
        "weight_sparsity": pruned["weight_sparsity"],
        "latency_median_us": p["latency_median_us"], "latency_avg_us": p["latency_avg_us"],
        "latency_min_us": p["latency_min_us"], "latency_max_us": p["latency_max_us"],
        "latency_cv": p.get("latency_cv"), "dense_latency_median_us": d["latency_median_us"],
        "dense_latency_cv": d.get("latency_cv"), "speedup": bench["speedup"],
        "fps": p["throughput_fps"], "dense_fps": d["throughput_fps"],
        "runtime_version": p["runtime_version"], "finetune_epochs": pruned["finetune_epochs"],
        "dense_epochs": case.dense_epochs, "train_seconds": dense["train_seconds"],
        "finetune_seconds": pruned["finetune_seconds"], "export_seconds": pruned["export_seconds"],
        "bench_seconds": bench["bench_seconds"], "wall_seconds": wall_seconds,
        "git_sha": git_sha(), "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "per_layer": {"dense": d.get("per_layer", []), "pruned": p.get("per_layer", [])},
        "pruned_repeat_medians_us": [r["latency_median_us"] for r in p.get("repeats", [])],
    }


NOT_IN_TABLE = ("per_layer", "artifacts", "cached", "pruned_repeat_medians_us")


def per_layer_frame(row: dict) -> pd.DataFrame | None:
    """The dense and pruned per-layer latencies of a row as one table (None if absent)."""
    per_layer = row.get("per_layer") or {}
    frames = [pd.DataFrame(rows).assign(model=name) for name, rows in per_layer.items() if rows]
    return pd.concat(frames, ignore_index=True) if frames else None


@contextlib.contextmanager
def _locked(folder: Path):
    """One writer at a time (pytest-xdist workers share the table)."""
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_row(row: dict, folder: Path | None = None) -> Path:
    """Append a row to results.csv (new columns widen the file), refresh results.parquet, and
    write the row's per-layer table to per_layer/<case_id>.csv."""
    folder = Path(folder or results_dir())
    folder.mkdir(parents=True, exist_ok=True)
    table = per_layer_frame(row)
    if table is not None:
        (folder / "per_layer").mkdir(exist_ok=True)
        table.to_csv(folder / "per_layer" / f"{row['case_id']}.csv", index=False)
    new = pd.DataFrame([{k: v for k, v in row.items() if k not in NOT_IN_TABLE}])
    path = folder / "results.csv"
    with _locked(folder):
        old = pd.read_csv(path) if path.is_file() else None
        if old is not None and list(old.columns) == list(new.columns):
            new.to_csv(path, mode="a", header=False, index=False)
            full = pd.concat([old, new], ignore_index=True)
        else:
            frames = [f for f in (old, new) if f is not None]
            cols = list(dict.fromkeys([*COLUMNS, *(c for f in frames for c in f.columns)]))
            full = pd.concat(frames, ignore_index=True).reindex(columns=cols)
            full.to_csv(path, index=False)
        full.to_parquet(folder / "results.parquet", index=False)
    return path


def read_results(folder: Path | None = None) -> pd.DataFrame:
    path = Path(folder or results_dir()) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no results table at {path}: run `pytest -m latency` first")
    return pd.read_csv(path)
