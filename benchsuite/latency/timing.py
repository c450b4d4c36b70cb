"""Paired rounds timed in CPU time per inference: the latency table's clock.

The table is built with the paired method's rounds (`bench/paired.py`: both models compiled in
this process with the same settings, warmed up, then random-order rounds of `round_size`
inferences each), but each model's figure of a round is the process's CPU time per inference
rather than the wall-clock latency. At 1 inference thread with the sync API the CPU time of an
inference is its compute; the wall-clock one also counts the time the process waits for a core.
On the shared 2-vCPU machine (load ~9) every round of a whole ResNet-56 was preempted (CPU
share 0.38): its wall-clock median read 7.5 ms, CPU time ~2.9 ms, about what an idle run
measures (docs/measurements.md: 2.5 ms). Tiny per-conv models ran clean while the whole
network could not, so wall clock would have put the load into the overhead; CPU time keeps the
table and the overhead on one clock whatever the load. The Python call per inference (a few
µs) is in every model's figure and cancels in a unit's difference.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.bench.interval import bootstrap_median_ci
from benchsuite.bench.paired import PairedSettings, TimedModel, compiled_property

MIN_HALFWIDTH_US = 1.0  # a grid point is good enough within ±1 µs


def _cpu_per_inference(t: TimedModel, n: int) -> tuple[float, float]:
    """CPU µs per inference over n inferences, and the CPU share of the round."""
    c0, w0 = time.process_time(), time.perf_counter()
    t.run(n)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return cpu / n * 1e6, cpu / max(wall, 1e-9)


def cpu_paired(models: dict[str, Path], settings: PairedSettings,
               difference: tuple[str, str] | None = None) -> dict[str, Any]:
    """Median CPU µs per inference of each model over paired random-order rounds. With
    `difference` (a, b) the rounds stop once the interval of the per-round a - b is within
    `target_halfwidth` of it (or MIN_HALFWIDTH_US), else once each model's is; `max_seconds`
    caps them."""
    import openvino as ov

    core = ov.Core()
    names = list(models)
    timed = {n: TimedModel(core, Path(p), settings, settings.seed + i)
             for i, (n, p) in enumerate(models.items())}
    for t in timed.values():
        t.run(settings.warmup)
    rng = random.Random(settings.seed)
    per: dict[str, list[float]] = {n: [] for n in names}
    shares: list[float] = []
    t0 = time.perf_counter()
    while len(per[names[0]]) < settings.max_rounds:
        order = names[:]
        rng.shuffle(order)
        for n in order:
            cpu, share = _cpu_per_inference(timed[n], settings.round_size)
            per[n].append(cpu)
            shares.append(share)
        done = len(per[names[0]])
        if done < settings.min_rounds or done % settings.check_every:
            continue
        series = ([np.subtract(per[difference[0]], per[difference[1]])] if difference
                  else [np.asarray(v) for v in per.values()])
        converged = True
        for s in series:
            mid, low, high = bootstrap_median_ci(s, settings.bootstrap, seed=settings.seed)
            bound = max(settings.target_halfwidth * abs(mid), MIN_HALFWIDTH_US)
            converged &= (high - low) / 2 <= bound
        if converged or time.perf_counter() - t0 >= settings.max_seconds:
            break
    compiled = timed[names[0]].compiled
    return {
        "cpu_us": {n: float(np.median(v)) for n, v in per.items()},
        "round_cpu_us": per,
        "difference_us": (float(np.median(np.subtract(per[difference[0]], per[difference[1]])))
                          if difference else None),
        "rounds": len(per[names[0]]), "cpu_share": float(np.median(shares)),
        "precision": compiled_property(compiled, "INFERENCE_PRECISION_HINT", settings.precision),
        "threads": compiled_property(compiled, "INFERENCE_NUM_THREADS", settings.threads),
        "streams": compiled_property(compiled, "NUM_STREAMS", settings.streams),
        "clock": "cpu time per inference",
    }
