"""How well does one paired measurement's interval cover the next? (docs/measurements.md)

    python scripts/interval_coverage.py OUT_DIR [--trace 60] [--measurements 40]

Builds the ResNet-20 pair of `measure_noise.py` (dense vs 50 % L1 filters, random weights), then:

- a trace: `--trace` seconds of continuous paired rounds; prints its one-second medians, how
  widely the medians of consecutive blocks of rounds spread against what resampling single
  rounds predicts, and how often windows of 20 and 40 rounds held the trace's median with the
  bootstrap interval alone and with the suite's interval (`core/stats.py`);
- `--measurements` separate measurements with the suite's defaults, each in its own compile,
  with benchmark_app's cross-check runs between them (as a case runs); prints their spread and
  how many intervals held their median.

Writes OUT_DIR/coverage.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from benchsuite.bench import BenchSettings
from benchsuite.bench.paired import PairedSettings, measure_paired
from benchsuite.bench.runner import benchmark_interleaved
from benchsuite.core.stats import bootstrap_median_ci, estimate
from studies.resnet_report import build_variants


def trace(models: dict[str, Path], seconds: float) -> dict:
    r = measure_paired(models, PairedSettings(target_halfwidth=1e-6, max_seconds=seconds,
                                              max_rounds=10**6, check_every=100))
    x = np.log(np.asarray(r.ratios))
    rng = np.random.default_rng(0)
    spread = {}
    for b in (10, 20, 40, 80, 160):
        blocks = np.median(x[: len(x) // b * b].reshape(-1, b), axis=1)
        iid = np.std([np.median(rng.choice(x, b)) for _ in range(2000)])
        spread[b] = round(float(blocks.std() / iid), 2)
    truth, held = float(np.median(x)), {}
    for n in (20, 40):
        windows = [list(x[s:s + n]) for s in range(0, len(x) - n, n)]
        boot = [bootstrap_median_ci(np.asarray(w), 500, seed=i) for i, w in enumerate(windows)]
        suite = [estimate(w, 500, seed=i) for i, w in enumerate(windows)]
        held[n] = {"bootstrap": sum(lo <= truth <= hi for _, lo, hi in boot) / len(windows),
                   "suite": sum(np.log(e.ci_low) <= truth <= np.log(e.ci_high)
                                for e in suite) / len(windows)}
    per_s = max(1, round(r.rounds / r.seconds))
    seconds = np.exp(np.median(x[: len(x) // per_s * per_s].reshape(-1, per_s), axis=1))
    return {"rounds": r.rounds, "seconds": r.seconds, "block_spread_over_iid": spread,
            "one_second_medians": [round(float(v), 3) for v in seconds],
            "windows_held_median": held}


def measurements(models: dict[str, Path], n: int, work: Path) -> dict:
    bench = BenchSettings(precision="f32", niter=200, repeats=2)
    runs = []
    for i in range(n):
        benchmark_interleaved(models, work, bench)
        r = measure_paired(models, PairedSettings(seed=i), reference="dense")
        runs.append({"speedup": r.speedup, "low": r.ci_low, "high": r.ci_high,
                     "drifted": r.conditions["drifted"], "seconds": r.seconds})
        print(f"measurement {i + 1}/{n}: {r.speedup:.3f}x [{r.ci_low:.3f}, {r.ci_high:.3f}]",
              flush=True)
    s = [r["speedup"] for r in runs]
    mid = statistics.median(s)
    return {"runs": runs, "median": mid, "cv": statistics.stdev(s) / statistics.fmean(s),
            "held_median": sum(r["low"] <= mid <= r["high"] for r in runs),
            "median_halfwidth": statistics.median((r["high"] - r["low"]) / 2 / r["speedup"]
                                                  for r in runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--trace", type=float, default=60.0, help="seconds of rounds")
    parser.add_argument("--measurements", type=int, default=40)
    args = parser.parse_args(argv)
    (args.out / "models").mkdir(parents=True, exist_ok=True)
    variants = build_variants(20, args.out / "models", (1, 32, 32))
    models = {"dense": variants["dense"]["xml"], "pruned": variants["filters50"]["xml"]}
    doc = {"trace": trace(models, args.trace)}
    print(json.dumps(doc["trace"], indent=1), flush=True)
    doc["measurements"] = measurements(models, args.measurements, args.out / "reports")
    m = doc["measurements"]
    print(f"{args.measurements} measurements: CV {m['cv']:.2%}, intervals (median half-width "
          f"{m['median_halfwidth']:.2%}) held their median {m['held_median']} times")
    (args.out / "coverage.json").write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
