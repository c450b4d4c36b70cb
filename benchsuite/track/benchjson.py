"""Write results in pytest-benchmark's JSON format, so `pytest-benchmark compare` reads them.

One benchmark per case: the pruned model's latency over the paired measurement's rounds (stats
of the per-round medians, in seconds as pytest-benchmark expects); the speed-up with its
interval and method, Top-1 with its interval, and the conditions go in `extra_info`.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import statistics
from pathlib import Path

from benchsuite.core.result import BENCH, Row, keys_for

PYTEST_BENCHMARK_FORMAT = "5.3.1"


def _stats(values_s: list[float]) -> dict:
    values = sorted(values_s)
    n = len(values)
    q = statistics.quantiles(values, n=4) if n >= 2 else [values[0]] * 3
    mean = statistics.fmean(values)
    return {
        "min": values[0], "max": values[-1], "mean": mean,
        "stddev": statistics.stdev(values) if n > 1 else 0.0, "rounds": n,
        "median": statistics.median(values), "iqr": q[2] - q[0], "q1": q[0], "q3": q[2],
        "iqr_outliers": 0, "stddev_outliers": 0, "outliers": "0;0",
        "ld15iqr": values[0], "hd15iqr": values[-1], "ops": 1 / mean if mean else 0.0,
        "total": sum(values), "iterations": 1,
    }


def benchmark_entry(row: Row) -> dict:
    repeats = row.get("pruned_round_medians_us") or [row["latency_median_us"]]
    name = f"test_latency[{row['label']}]"
    return {
        "group": row["recipe"], "name": name,
        "fullname": f"experiments/test_latency.py::{name}",
        "params": {"case": row["label"]}, "param": row["label"],
        "extra_info": {k: row.get(k) for k in keys_for(BENCH)},
        "options": {"timer": row.get("speedup_method") or "benchmark_app",
                    "min_rounds": len(repeats)},
        "stats": _stats([v / 1e6 for v in repeats]),
    }


def write_benchmark_json(rows: list[Row], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine_info": {"node": platform.node(), "processor": platform.processor(),
                         "machine": platform.machine(), "python_version": platform.python_version(),
                         "system": platform.system()},
        "commit_info": {"id": rows[0].get("git_sha") if rows else None},
        "benchmarks": [benchmark_entry(r) for r in rows],
        "datetime": dt.datetime.now(dt.UTC).isoformat(), "version": PYTEST_BENCHMARK_FORMAT,
    }
    path.write_text(json.dumps(doc, indent=1))
    return path
