"""Measure LatencyBudgetPruner on ResNet-56 (digits, f32, CPU) at a few speed-up targets and a few
other ResNet-56 recipes with the latency model on, in-process (local executor); rows go to the
results table (or --results DIR). Then: `benchsuite latency-model report --results DIR`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--speedups", default="2,3,4")
    ap.add_argument("--extra", default="", help="other recipes, name:param=value;..., comma-"
                    "separated, e.g. resnet56/block_removal:blocks=6")
    ap.add_argument("--results", default=None)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--dense-epochs", type=int, default=30)
    ap.add_argument("--bench-seconds", type=float, default=20.0)
    args = ap.parse_args(argv)
    os.environ.setdefault("BENCHSUITE_LATENCY_MODEL", "1")  # predictions for the extra recipes
    from benchsuite.core.threshold import Threshold
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.recipe.case import Case
    from benchsuite.track.recording import Recorder, run_and_record

    cases = [Case("latency_budget", {"speedup": float(s)}, model="resnet56",
                  epochs=args.epochs, dense_epochs=args.dense_epochs,
                  bench_seconds=args.bench_seconds)
             for s in args.speedups.split(",") if s]
    for item in filter(None, args.extra.split(",")):
        name, _, params = item.partition(":")
        values = dict(p.split("=") for p in params.split(";") if p)
        cases.append(Case(name, {k: float(v) if "." in v else int(v) for k, v in values.items()},
                          model="resnet56", epochs=args.epochs, dense_epochs=args.dense_epochs,
                          bench_seconds=args.bench_seconds))
    executor = LocalExecutor(Path(os.environ.get("TMPDIR", "/tmp")) / "latency-budget-work")
    recorder = Recorder(results=Path(args.results) if args.results else None)
    for case in cases:
        t0 = time.time()
        row = run_and_record(case, executor, Threshold.parse("-1pt"), recorder,
                             progress=lambda m, c=case: print(f"{c.label}: {m}", flush=True))
        print(f"{case.label}: top1 {row['top1']:.4f} (dense {row['dense_top1']:.4f}) speed-up "
              f"{row['speedup']:.2f}x [{row['speedup_ci_low']:.2f}, {row['speedup_ci_high']:.2f}]"
              f" predicted {row.get('speedup_predicted') or float('nan'):.2f}x; latency "
              f"{row['latency_median_us']:.1f} µs predicted "
              f"{row.get('latency_predicted_us') or float('nan'):.1f} µs; "
              f"{time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
