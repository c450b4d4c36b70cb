"""`benchsuite sweep bench measure|compare`: the command line of `sweep/search.py` (its
docstring is the help)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchsuite.core.threshold import Threshold
from benchsuite.frontends.cli import HelpFormatter
from benchsuite.sweep.config import METRICS, SweepSpec, load_sweep
from benchsuite.sweep.search import (
    CaseObjective,
    Objective,
    Outcome,
    TableObjective,
    _base,
    best_curve,
    compare,
    format_report,
    space_points,
)
from benchsuite.sweep.search import __doc__ as search_doc
from benchsuite.track.recording import Recorder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchsuite sweep bench", description=search_doc,
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("measure", "compare"):
        p = sub.add_parser(name, formatter_class=HelpFormatter, help={
            "measure": "run every point of the space on a grid (real, cached cases) into a CSV",
            "compare": "each engine at each seed against the real pipeline (or a --table)"}[name])
        p.add_argument("--sweep", required=True, help="sweep config file")
        p.add_argument("--accuracy-threshold", default="-1pt",
                       help="floor when the sweep file sets none")
        p.add_argument("--wandb", choices=("offline", "online", "disabled"), default=None,
                       help="W&B mode of the cases' runs [offline, unless WANDB_MODE or "
                            "WANDB_API_KEY say otherwise]; every case also goes to the "
                            "results table")
    m = sub.choices["measure"]
    m.add_argument("--step", type=float, default=None, help="grid step of min/max parameters")
    m.add_argument("--out", required=True, help="CSV of the measured rows")
    m.add_argument("--only", action="append", default=[], metavar="NAME=V1,V2",
                   help="measure only these values of a parameter (repeatable)")
    c = sub.choices["compare"]
    c.add_argument("--table", help="surrogate: a CSV written by `measure` (else real cases)")
    c.add_argument("--budget", type=int, default=20, help="trials per method and seed")
    c.add_argument("--seeds", default="0,1,2", help="the engines' seeds (comma-separated)")
    c.add_argument("--methods", default="bayes,random", help="the engines compared")
    c.add_argument("--json", help="write the results here too")
    c.add_argument("--metric", help="objective instead of the file's metric (e.g. macs), its "
                                    "goal from the known metrics")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    spec = load_sweep(args.sweep)
    if getattr(args, "metric", None):
        if args.metric not in METRICS:
            parser.error(f"--metric: one of {', '.join(METRICS)}")
        spec = replace(spec, config=dict(spec.config) | {
            "metric": {"name": args.metric, "goal": METRICS[args.metric]}})
    threshold = spec.threshold(Threshold.parse(args.accuracy_threshold))
    tracker = _tracker(args.wandb, spec.name) if args.command == "measure" or not args.table \
        else None
    try:
        return _run(args, spec, threshold, Recorder(tracker))
    finally:
        if tracker is not None:
            tracker.close()


def _tracker(mode: str | None, name: str):
    import datetime as dt

    from benchsuite.core.extras import default_wandb_mode
    from benchsuite.track.wandb_log import WandbTracker

    mode = default_wandb_mode(mode or "")
    if mode == "disabled":
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return WandbTracker(group=f"sweep-bench-{name}-{stamp}", mode=mode)


def _run(args: argparse.Namespace, spec: SweepSpec, threshold: Threshold,
         recorder: Recorder) -> int:
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory(prefix="bs-sweep-bench-") as work:
        if args.command == "measure":
            import pandas as pd

            obj = CaseObjective(spec, _base(spec), threshold, Path(work),
                                progress=lambda s: print(f"    {s}", flush=True),
                                recorder=recorder)
            only = {k: [yaml.safe_load(v) for v in vs.split(",")]
                    for k, _, vs in (o.partition("=") for o in args.only)}
            points = space_points(spec, args.step, only)
            for i, point in enumerate(points, 1):
                value, ok, _ = obj(point)
                print(f"[{i}/{len(points)}] {json.dumps(point, sort_keys=True)}: "
                      f"{spec.metric} {value:.4g} {'feasible' if ok else 'infeasible'}",
                      flush=True)
                pd.DataFrame(obj.rows).to_csv(args.out, index=False)  # after every case
            return 0
        objective: Objective = (
            TableObjective(spec, Path(args.table), threshold) if args.table
            else CaseObjective(spec, _base(spec), threshold, Path(work), recorder=recorder,
                               progress=lambda s: print(f"    {s}", flush=True)))
        seeds = tuple(int(s) for s in args.seeds.split(","))
        methods = tuple(args.methods.split(","))
        done: list[dict[str, Any]] = []

        def on_trial(method: str, seed: int, k: int, params: dict[str, Any],
                     o: Outcome) -> None:
            value, feasible, epochs = o
            done.append({"method": method, "seed": seed, "trial": k, "params": params,
                         "value": value, "feasible": feasible, "epochs": epochs})
            sofar = best_curve([(d["value"], d["feasible"]) for d in done
                                if (d["method"], d["seed"]) == (method, seed)], spec.goal)[-1]
            shown = "stopped early" if value is None else (
                f"{spec.metric} {value:.4g} {'feasible' if feasible else 'infeasible'}")
            print(f"[{method} seed {seed} {k}/{args.budget}; {len(done)}/"
                  f"{len(methods) * len(seeds) * args.budget}] "
                  f"{json.dumps(params, sort_keys=True)}: {shown}, {epochs} epochs; best "
                  f"{'none yet' if math.isnan(sofar) else f'{sofar:.4g}'}", flush=True)
            if args.json:  # every trial so far, in case the run stops before the end
                Path(args.json).write_text(json.dumps({"partial": True, "trials": done},
                                                      indent=1))

        results = compare(spec, objective, methods, args.budget, seeds, on_trial=on_trial)
    print(format_report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
