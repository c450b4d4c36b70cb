"""A case's speed-up verdict: the paired in-process measurement, with benchmark_app beside it.

``measure_pair`` is what the bench stage runs on a (dense, pruned) pair of IRs:

- the headline speed-up, its 95 % interval and both latencies come from
  ``paired.measure_paired`` (one process, random-order rounds) whenever this environment's
  OpenVINO runtime has the device;
- benchmark_app still runs on both models (interleaved): its per-layer counters, its FPS, and
  its own speed-up as a cross-check column (``speedup_benchmark_app``);
- where the runtime cannot run the device in-process (the legacy 2021.4 env's MYRIAD, or a
  worker whose operator named another benchmark_app), benchmark_app's interleaved runs are the
  measurement, and ``speedup_method`` says so; the interval is then a bootstrap over its few
  per-repeat ratios and is as wide as it looks.

Every figure carries the name of the method that made it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.bench.measurement import BenchSettings
from benchsuite.bench.paired import PairedSettings, agreeing_interval, measure_paired
from benchsuite.bench.runner import benchmark_interleaved, speedup
from benchsuite.core.progress import log as progress_log
from benchsuite.core.stats import bootstrap_median_ci

BAPP_METHOD = "benchmark_app interleaved runs"


def in_process_usable(settings: BenchSettings) -> bool:
    """True when this environment's OpenVINO can time the device itself (no other
    benchmark_app was configured for it)."""
    if settings.executable:
        return False
    from benchsuite.bench.devices import available_devices

    base = settings.device.split(".")[0].split(":")[0]
    return any(d == settings.device or d.split(".")[0] == base for d in available_devices())


def paired_settings(bench: BenchSettings, options: dict[str, Any] | None) -> PairedSettings:
    """The paired measurement's settings: device, precision and the sparse weights rate from
    the bench settings."""
    return PairedSettings.from_dict(dict(options or {}) | {
        "device": bench.device, "precision": bench.precision,
        "sparse_weights_rate": bench.sparse_weights_rate})


def measure_pair(models: dict[str, Path], report_dir: Path, settings: BenchSettings,
                 paired: dict[str, Any] | None = None) -> dict[str, Any]:
    """models: {"dense": xml, "pruned": xml}. Returns the bench stage's result fields."""
    t0 = time.perf_counter()
    progress_log.info(f"benchmark_app on {' and '.join(models)}: {settings.repeats} run(s) of "
                      f"{settings.niter} iterations each (per-layer counters, cross-check)")
    bapp = benchmark_interleaved(models, report_dir, settings)
    bapp_speedup = speedup(bapp["dense"], bapp["pruned"])
    out: dict[str, Any] = {
        "dense": bapp["dense"].to_dict(), "pruned": bapp["pruned"].to_dict(),
        "speedup_benchmark_app": bapp_speedup,
    }
    if in_process_usable(settings):
        chosen = paired_settings(settings, paired)
        progress_log.info(f"paired rounds until the speed-up's interval is within "
                          f"±{chosen.target_halfwidth:.0%} or {chosen.max_seconds:g} s")
        result = measure_paired(models, chosen, reference="dense", progress=progress_log.info)
        out |= {
            "speedup": result.speedup, "speedup_ci_low": result.ci_low,
            "speedup_ci_high": result.ci_high, "speedup_method": result.method,
            "bench_rounds": result.rounds, "paired_seconds": result.seconds,
            "paired_converged": result.converged,
            "bench_cpu_share": result.conditions["cpu_share"],
            "bench_disturbed": result.conditions["disturbed"],
            "bench_drift": result.conditions["drift"],
            "bench_drifted": result.conditions["drifted"],
            "latency_median_us": result.latency_median_us["pruned"],
            "dense_latency_median_us": result.latency_median_us["dense"],
            "pruned_round_medians_us": result.round_medians_us["pruned"],
            "dense_round_medians_us": result.round_medians_us["dense"],
            "conditions": result.conditions,
        }
    else:
        logs = [math.log(d["latency_median_us"] / p["latency_median_us"])
                for d, p in zip(bapp["dense"].repeats, bapp["pruned"].repeats, strict=True)]
        _, low, high = bootstrap_median_ci(np.asarray(logs))
        # the figure is the ratio of the two median latencies: the interval holds it too
        low, high = agreeing_interval(math.exp(low), math.exp(high), bapp_speedup)
        p = bapp["pruned"]
        out |= {
            "speedup": bapp_speedup, "speedup_ci_low": low,
            "speedup_ci_high": high, "speedup_method": BAPP_METHOD,
            "bench_rounds": len(logs), "paired_seconds": 0.0, "paired_converged": False,
            "bench_cpu_share": None, "bench_disturbed": None, "bench_drift": None,
            "bench_drifted": None,
            "latency_median_us": p.latency_median_us,
            "dense_latency_median_us": bapp["dense"].latency_median_us,
            "pruned_round_medians_us": [r["latency_median_us"] for r in p.repeats],
            "dense_round_medians_us": [r["latency_median_us"] for r in bapp["dense"].repeats],
            "conditions": {k: getattr(p, k) for k in (
                "device", "device_name", "precision", "precision_requested", "threads", "streams",
                "batch", "input_shape", "runtime_version", "api")} | {"mode": "interleaved"},
        }
    out["bench_seconds"] = time.perf_counter() - t0
    return out


def calibrate(model: Path, settings: BenchSettings,
              paired: dict[str, Any] | None = None) -> dict[str, Any]:
    """A/A: the same IR compiled twice and measured against itself; ideally 1.000×."""
    if not in_process_usable(settings):
        return {"speedup": None, "speedup_method": BAPP_METHOD,
                "note": f"no in-process A/A: this runtime cannot run {settings.device}"}
    result = measure_paired({"a": model, "b": model}, paired_settings(settings, paired),
                            reference="a")
    return {"speedup": result.speedup, "speedup_ci_low": result.ci_low,
            "speedup_ci_high": result.ci_high, "speedup_method": result.method,
            "bench_rounds": result.rounds, "seconds": result.seconds,
            "bench_disturbed": result.conditions["disturbed"],
            "bench_drifted": result.conditions["drifted"], "conditions": result.conditions}
