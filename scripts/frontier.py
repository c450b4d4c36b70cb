"""The latency frontier of ResNet-56 on the digits: each method side by side in one run, every
case through the recording service (results table, W&B), then a Markdown table.

    python scripts/frontier.py --precisions f32,bf16 --int8 --out frontier.md

Methods (each a set of cases; a method's row is its fastest case that holds the floor):
  uniform TP       torch-pruning's default (tp_uniform: one L1 ratio for every layer), --tp-ratios
  best recipe      resnet56/blocks_and_filters at the sweep-found point (4 blocks, 0.45, round 8)
  per-stage        resnet56/per_stage at --per-stage (blocks removed and width per stage)
  per-stage + KD   the same with distillation from the dense model (0.7 KD, 0.3 CE, T = 4)
  latency budget   latency_budget at each of --budget-speedups (a predicted target)
  ... + INT8       (--int8) each of the above quantized with NNCF on the bench side

Conditions: CPU, batch 1, 1 inference thread, 1 stream, the paired in-process method; the
speed-up of an INT8 case is against the dense model at f32. Top-1 is the deployed model's.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

KD = {"kd_weight": 0.7, "kd_student_weight": 0.3, "kd_temperature": 4}


def _methods(args: argparse.Namespace) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    b1, b2, b3, w1, w2, w3 = (float(v) for v in args.per_stage.split(","))
    stage = {"blocks1": int(b1), "blocks2": int(b2), "blocks3": int(b3), "width1": w1,
             "width2": w2, "width3": w3, "round_to": 8}
    return {
        "uniform TP": [("tp_uniform", {"ratio": float(r), "round_to": 8})
                       for r in args.tp_ratios.split(",")],
        "best recipe": [("resnet56/blocks_and_filters",
                         {"blocks": 4, "sparsity": 0.45, "round_to": 8})],
        "per-stage": [("resnet56/per_stage", stage)],
        "per-stage + KD": [("resnet56/per_stage", stage | KD)],
        "latency budget": [("latency_budget", {"speedup": float(s)})
                           for s in args.budget_speedups.split(",")],
    }


def _interval(value: float | None, low: float | None, high: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if low is None or high is None:
        return format(value, fmt)
    return f"{format(value, fmt)} [{format(low, fmt)}, {format(high, fmt)}]"


def _line(method: str, precision: str, row: Any, cases: int) -> str:
    macs = row.macs / row.dense_macs if row.dense_macs else math.nan
    mark = " (disturbed)" if row.bench_disturbed else ""
    verdict = "holds" if row.passed else "under the floor"
    speed = _interval(row.speedup, row.speedup_ci_low, row.speedup_ci_high, ".2f")
    top1 = _interval(row.top1 * 100, (row.top1_ci_low or 0) * 100,
                     (row.top1_ci_high or 0) * 100, ".2f")
    return (f"| {method} | {precision} | `{row.label}` | {speed}x{mark} | {top1} % | "
            f"{row.threshold * 100:.2f} % | {macs:.3f} | {row.finetune_epochs} | {verdict} "
            f"(best of {cases}) |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precisions", default="f32", help="f32, bf16 (comma-separated)")
    ap.add_argument("--int8", action="store_true", help="also each method + INT8")
    ap.add_argument("--tp-ratios", default="0.3,0.5,0.7")
    ap.add_argument("--per-stage", default="6,6,6,0.5,0.5,0.5",
                    help="blocks1,blocks2,blocks3,width1,width2,width3")
    ap.add_argument("--budget-speedups", default="3,5")
    ap.add_argument("--methods", default="", help="only these methods (comma-separated)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--dense-epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", default="-1pt")
    ap.add_argument("--out", help="write the Markdown table here too")
    ap.add_argument("--save-found", action="store_true",
                    help="save each precision's fastest case that holds the floor in "
                         "schedules/found/resnet56_frontier-<precision>.yaml")
    args = ap.parse_args(argv)

    from benchsuite.core.paths import found_dir
    from benchsuite.core.threshold import Threshold
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.recipe.case import Case
    from benchsuite.sweep.trials import write_found_recipe
    from benchsuite.track.recording import Recorder, run_and_record

    threshold = Threshold.parse(args.threshold)
    methods = _methods(args)
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods.split(",")}
    precisions = args.precisions.split(",") + (["int8"] if args.int8 else [])
    executor = LocalExecutor(Path(os.environ.get("TMPDIR", "/tmp")) / "frontier-work")
    recorder = Recorder()
    lines = ["| method | precision | best case | speed-up [95 %] | deployed Top-1 [95 %] | "
             "floor | MACs / dense | fine-tuning epochs | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    spent = 0
    for precision in precisions:
        winners = []
        for method, recipes in methods.items():
            rows = []
            for recipe, params in recipes:
                case = replace(Case(recipe, params, model="resnet56", seed=args.seed,
                                    epochs=args.epochs, dense_epochs=args.dense_epochs),
                               precision=precision)
                t0 = time.time()
                row = run_and_record(case, executor, threshold, recorder,
                                     progress=lambda m, c=case: print(f"  {c.label}: {m}",
                                                                      flush=True))
                spent += 0 if row.cached else int(row.finetune_epochs or 0)
                speed = _interval(row.speedup, row.speedup_ci_low, row.speedup_ci_high, ".2f")
                print(f"{method} {precision}: {row.label}: speed-up {speed}x, Top-1 "
                      f"{row.top1:.4f} (floor {row.threshold:.4f}), {time.time() - t0:.0f} s",
                      flush=True)
                rows.append(row)
                winners += [(row, case, method)] if row.passed else []
            feasible = [r for r in rows if r.passed] or rows
            best = max(feasible, key=lambda r: r.speedup)
            lines.append(_line(method, precision, best, len(rows)))
        if args.save_found and winners:
            row, case, method = max(winners, key=lambda w: w[0].speedup)
            path = write_found_recipe(
                case, found_by=f"scripts/frontier.py, method {method}: the fastest case at "
                               f"{precision} that held the floor ({args.threshold})",
                result={k: row.get(k) for k in ("speedup", "speedup_ci_low", "speedup_ci_high",
                                                "top1", "threshold", "latency_median_us")},
                path=found_dir() / f"resnet56_frontier-{precision}.yaml")
            print(f"saved {path}")
    lines.append(f"\nfine-tuning epochs spent in this run (cached cases not counted): {spent}")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
