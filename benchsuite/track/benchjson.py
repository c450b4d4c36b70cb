"""The session's cases as pytest-benchmark benchmarks, so `pytest-benchmark list`, `compare` and
`compare --histogram` read them.

Two benchmarks per case, in one group named by the case and its speed-up: the dense and the
pruned model's latency over the paired measurement's rounds (each round's median, in seconds as
pytest-benchmark expects), their statistics (quartiles, outliers, ...) computed by
`pytest_benchmark.stats`, the very code that computes a `benchmark` fixture's. The speed-up with
its interval and method, Top-1 with its interval and the conditions go in `extra_info`.

The plugin hands them to pytest-benchmark's own session when `--benchmark-json`,
`--benchmark-save` or `--benchmark-autosave` is given (pytest-benchmark then writes its files,
names them and shows its table); `write_benchmark_json` writes the same benchmarks to the
session's own file (`experiments/results/pytest-benchmark/<time>.json`).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchsuite.core.result import BENCH, Row, keys_for

if TYPE_CHECKING:
    from pytest_benchmark.stats import Metadata

PYTEST_BENCHMARK_FORMAT = "5.3.1"
MODELS = ("dense", "pruned")  # the two benchmarks of a case


@dataclass
class _Measured:
    """What `pytest_benchmark.stats.Metadata` reads from a benchmark fixture."""

    name: str
    fullname: str
    group: str
    param: str
    params: dict[str, str]
    extra_info: dict[str, Any]
    cprofile_stats: None = None
    has_error: bool = False
    options: dict[str, Any] = field(default_factory=dict)


def group_name(row: Row) -> str:
    """``<label>: speed-up 1.64x [1.60, 1.68]`` (with the summary's ! and ~ marks)."""
    from benchsuite.track.summary import speedup_text

    return f"{row['label']}: speed-up {speedup_text(row)}"


def round_medians_us(row: Row, model: str) -> list[float]:
    """A model's latency per round (µs); its median alone for a row that has no rounds."""
    prefix = "" if model == "pruned" else "dense_"
    rounds = row.get(f"{model}_round_medians_us") or []
    return [float(v) for v in rounds] or [float(row[f"{prefix}latency_median_us"])]


def case_benchmarks(row: Row) -> list[Metadata]:
    """The case's dense and pruned benchmarks as pytest-benchmark's own records."""
    from pytest_benchmark.stats import Metadata

    label = row["label"]
    out = []
    for model in MODELS:
        rounds = round_medians_us(row, model)
        name = f"test_latency[{label}-{model}]"
        measured = _Measured(
            name=name, fullname=f"experiments/test_latency.py::{name}", group=group_name(row),
            param=f"{label}-{model}", params={"case": label, "model": model},
            extra_info={k: row.get(k) for k in keys_for(BENCH)})
        options = {"timer": row.get("speedup_method") or "benchmark_app",
                   "min_rounds": len(rounds)}
        bench = Metadata(measured, iterations=1, options=options)
        for value in rounds:
            bench.update(value / 1e6)
        out.append(bench)
    return out


def benchmark_entries(row: Row) -> list[dict]:
    """The case's benchmarks as they stand in a pytest-benchmark JSON file (with the data)."""
    return [b.as_dict(include_data=True) for b in case_benchmarks(row)]


def write_benchmark_json(rows: list[Row], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine_info": {"node": platform.node(), "processor": platform.processor(),
                         "machine": platform.machine(), "python_version": platform.python_version(),
                         "system": platform.system()},
        "commit_info": {"id": rows[0].get("git_sha") if rows else None},
        "benchmarks": [entry for r in rows for entry in benchmark_entries(r)],
        "datetime": dt.datetime.now(dt.UTC).isoformat(), "version": PYTEST_BENCHMARK_FORMAT,
    }
    path.write_text(json.dumps(doc, indent=1, default=str))
    return path
