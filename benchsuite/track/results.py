"""The results table: one row per case run, appended to experiments/results/results.csv.

The per-layer table of each case goes beside it as `per_layer/<case_id>.csv`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..paths import project_root, results_dir

if TYPE_CHECKING:
    from ..case import Case

COLUMNS = [
    "case_id", "label", "recipe", "recipe_params", "model", "dataset", "seed", "sparsity",
    "device", "device_name", "precision", "precision_requested", "threads", "streams", "batch",
    "input_shape", "top1", "top1_ci_low", "top1_ci_high", "test_images", "top5", "dense_top1",
    "dense_top1_ci_low", "dense_top1_ci_high", "dense_top5", "params", "dense_params", "macs",
    "dense_macs", "weight_sparsity", "speedup", "speedup_ci_low", "speedup_ci_high",
    "speedup_method", "bench_rounds", "bench_cpu_share", "bench_disturbed",
    "speedup_benchmark_app", "latency_median_us",
    "dense_latency_median_us", "latency_avg_us", "latency_min_us", "latency_max_us",
    "latency_cv", "dense_latency_cv", "fps", "dense_fps", "runtime_version", "finetune_epochs",
    "dense_epochs", "train_seconds",
    "finetune_seconds", "export_seconds", "bench_seconds", "wall_seconds", "git_sha",
    "timestamp",
    # the latency model (benchsuite.latency), when the case had a table
    "latency_predicted_us", "speedup_predicted", "latency_table_sum_us",
    "dense_latency_table_sum_us",
]


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_root(),
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_row(case: Case, dense: dict, pruned: dict, bench: dict, wall_seconds: float) -> dict:
    """The result row of one case: the train, prune and bench stages' results joined.

    ``speedup`` and both latency medians come from the bench stage's headline method
    (``speedup_method``: in-process paired rounds, or benchmark_app where the runtime cannot run
    the device); benchmark_app's own statistics (avg/min/max, CV over runs, FPS) and its
    speed-up (``speedup_benchmark_app``) stand beside them. Top-1 carries its 95 % Wilson
    interval over ``test_images``."""
    from ..threshold import wilson_interval

    d, p = bench["dense"], bench["pruned"]
    cond = bench.get("conditions") or {}
    params = case.effective_params()
    images = int(pruned.get("test_images") or dense.get("test_images") or 0)
    top1_ci = wilson_interval(pruned["top1"], images) if images else (None, None)
    dense_ci = wilson_interval(dense["top1"], images) if images else (None, None)
    return {
        "case_id": case.case_id, "label": case.label, "recipe": case.recipe_name,
        "recipe_params": json.dumps(params, sort_keys=True), "model": case.model,
        "dataset": case.dataset, "seed": case.seed, "sparsity": params.get("sparsity"),
        "device": p["device"], "device_name": cond.get("device_name",
                                                       p.get("device_name", "unknown")),
        "precision": cond.get("precision", p["precision"]),
        "precision_requested": case.precision, "threads": cond.get("threads", p.get("threads")),
        "streams": cond.get("streams", p.get("streams")), "batch": p.get("batch"),
        "input_shape": p.get("input_shape"),
        "top1": pruned["top1"], "top1_ci_low": top1_ci[0], "top1_ci_high": top1_ci[1],
        "test_images": images or None, "top5": pruned["top5"],
        "dense_top1": dense["top1"], "dense_top1_ci_low": dense_ci[0],
        "dense_top1_ci_high": dense_ci[1], "dense_top5": dense["top5"],
        "params": pruned["params"], "dense_params": dense["params"],
        "macs": pruned["macs"], "dense_macs": dense["macs"],
        "weight_sparsity": pruned["weight_sparsity"],
        "speedup": bench["speedup"], "speedup_ci_low": bench["speedup_ci_low"],
        "speedup_ci_high": bench["speedup_ci_high"], "speedup_method": bench["speedup_method"],
        "bench_rounds": bench["bench_rounds"], "bench_cpu_share": bench.get("bench_cpu_share"),
        "bench_disturbed": bench.get("bench_disturbed"),
        "speedup_benchmark_app": bench["speedup_benchmark_app"],
        "latency_median_us": bench["latency_median_us"],
        "dense_latency_median_us": bench["dense_latency_median_us"],
        "latency_avg_us": p["latency_avg_us"], "latency_min_us": p["latency_min_us"],
        "latency_max_us": p["latency_max_us"], "latency_cv": p.get("latency_cv"),
        "dense_latency_cv": d.get("latency_cv"),
        "fps": p["throughput_fps"], "dense_fps": d["throughput_fps"],
        "runtime_version": p["runtime_version"], "finetune_epochs": pruned["finetune_epochs"],
        "dense_epochs": case.dense_epochs, "train_seconds": dense["train_seconds"],
        "finetune_seconds": pruned["finetune_seconds"], "export_seconds": pruned["export_seconds"],
        "bench_seconds": bench["bench_seconds"], "wall_seconds": wall_seconds,
        "git_sha": git_sha(), "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "per_layer": {"dense": d.get("per_layer", []), "pruned": p.get("per_layer", [])},
        "pruned_round_medians_us": bench.get("pruned_round_medians_us") or [],
        # the latency model's prediction (benchsuite/latency/report.py), when there was a table
        **{k: bench.get(k) for k in ("latency_predicted_us", "speedup_predicted",
                                     "latency_table_sum_us", "dense_latency_table_sum_us")},
    }


NOT_IN_TABLE = ("per_layer", "artifacts", "cached", "recorded", "pruned_round_medians_us")
# The verdict's figures, each with its interval and the method that made it: W&B's summary,
# pytest-benchmark's extra_info and the report's table carry all of them.
VERDICT_KEYS = (
    "speedup", "speedup_ci_low", "speedup_ci_high", "speedup_method", "bench_rounds",
    "bench_cpu_share", "bench_disturbed", "speedup_benchmark_app", "latency_median_us",
    "dense_latency_median_us", "top1", "top1_ci_low", "top1_ci_high", "test_images",
    "dense_top1", "dense_top1_ci_low", "dense_top1_ci_high",
)


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


class ResultsTableError(ValueError):
    """The results table cannot be read; the message names the file and what to do."""


def repair_tail(path: Path) -> Path | None:
    """A writer killed mid-row leaves a last line without its newline (often inside a quoted
    field). Move that partial line to ``<name>.partial-<time>`` beside the table, cut the table
    back to its last complete line, warn naming both files; return the quarantine file."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    cut = data.rfind(b"\n") + 1
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    quarantine = path.with_name(f"{path.name}.partial-{stamp}")
    quarantine.write_bytes(data[cut:])
    with open(path, "r+b") as f:
        f.truncate(cut)
    lines = data[:cut].count(b"\n")
    warnings.warn(f"{path}: its last row was cut short (a writer was killed?); moved it to "
                  f"{quarantine} and kept the {lines} complete lines",
                  stacklevel=2)
    return quarantine


# identifiers stay text: a git sha such as 63834692e263 would otherwise parse as a float
TEXT_COLUMNS = ("case_id", "label", "recipe", "recipe_params", "git_sha", "timestamp")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str))
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ResultsTableError(
            f"results table {path} is not a readable CSV ({e}); move it aside (e.g. to "
            f"{path.name}.bad) and re-run the cases (cached results are re-recorded), or "
            "repair it by hand") from None


def append_row(row: dict, folder: Path | None = None) -> Path:
    """Append a row to results.csv (new columns widen the file), refresh results.parquet, and
    write the row's per-layer table to per_layer/<case_id>.csv. A partial last row left by a
    killed writer is quarantined first (``repair_tail``)."""
    folder = Path(folder or results_dir())
    folder.mkdir(parents=True, exist_ok=True)
    table = per_layer_frame(row)
    if table is not None:
        (folder / "per_layer").mkdir(exist_ok=True)
        table.to_csv(folder / "per_layer" / f"{row['case_id']}.csv", index=False)
    new = pd.DataFrame([{k: v for k, v in row.items() if k not in NOT_IN_TABLE}])
    path = folder / "results.csv"
    with _locked(folder):
        if path.is_file():
            repair_tail(path)
        old = _read_table(path) if path.is_file() and path.stat().st_size else None
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
    """The results table; a file that does not parse raises ``ResultsTableError`` naming it."""
    path = Path(folder or results_dir()) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no results table at {path}: run `pytest -m latency` first")
    return _read_table(path)
