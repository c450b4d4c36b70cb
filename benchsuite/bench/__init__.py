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

from benchsuite.bench.devices import (
    available_devices,
    device_skip_reason,
    legacy_benchmark_app,
)
from benchsuite.bench.report import parse_report_folder, parse_stdout
from benchsuite.bench.result import BenchResult, BenchSettings
from benchsuite.bench.runner import (
    BenchmarkAppError,
    DeviceUnavailableError,
    benchmark_interleaved,
    find_benchmark_app,
    paired_speedups,
    run_benchmark,
    speedup,
)

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
