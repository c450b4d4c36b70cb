"""Benchmark engine: OpenVINO's benchmark_app (any version) as a subprocess, its reports parsed.

Public API::

    BenchSettings, BenchResult, BenchmarkAppError
    run_benchmark(model, report_dir, settings) -> BenchResult
    benchmark_interleaved({name: model}, report_dir, settings) -> {name: BenchResult}
    speedup(dense, pruned) -> float; paired_speedups(dense, pruned) -> per-repeat ratios + CV
    available_devices(), device_skip_reason(device) -> str | None, legacy_benchmark_app()
    DeviceUnavailableError (a BenchmarkAppError with .reason: a ready skip reason)
    parse_report_folder(folder) -> (summary dict, per-layer DataFrame)
    parse_stdout(text) -> dict
"""

from __future__ import annotations

import importlib
from typing import Any

# loaded on first use (PEP 562): a prune worker imports benchsuite.bench.evaldata (numpy only)
# without pulling in pandas, benchmark_app's parsers or openvino
_WHERE = {
    "available_devices": "devices", "device_skip_reason": "devices",
    "legacy_benchmark_app": "devices", "parse_report_folder": "bapp_output",
    "parse_stdout": "bapp_output", "BenchResult": "measurement", "BenchSettings": "measurement",
    "BenchmarkAppError": "runner", "DeviceUnavailableError": "runner",
    "benchmark_interleaved": "runner", "find_benchmark_app": "runner",
    "paired_speedups": "runner", "run_benchmark": "runner", "speedup": "runner",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "BenchResult",
    "BenchSettings",
    "BenchmarkAppError",
    "DeviceUnavailableError",
    "available_devices",
    "benchmark_interleaved",
    "device_skip_reason",
    "find_benchmark_app",
    "legacy_benchmark_app",
    "paired_speedups",
    "parse_report_folder",
    "parse_stdout",
    "run_benchmark",
    "speedup",
]
