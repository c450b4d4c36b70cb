"""Does the search help? bayes vs random at the same budget and seeds, on the same space.

    benchsuite sweep bench measure --sweep FILE --step 0.1 --out table.csv
    benchsuite sweep bench compare --sweep FILE --budget 20 --seeds 0,1,2 \
        [--table table.csv]          # surrogate: nearest measured case (fast)
                                     # without --table: the real pipeline (cached cases)

`measure` runs every point of the sweep's space on a grid (real cases, cached) and writes the
rows to a CSV; `compare` then runs each method with each seed against the objective and
reports, per method, the best feasible objective after k trials (mean over seeds) and the trial
at which each run got within 5% of its own final best.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchsuite.core.progress import StopStage
from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.recipe.case import CASE_SETTINGS, Case
from benchsuite.sweep.config import RECIPE_KEY, SweepSpec
from benchsuite.sweep.engines import SweepsEngine
from benchsuite.sweep.fidelity import EpochWatch
from benchsuite.sweep.store import MemoryStore
from benchsuite.track.recording import Recorder, run_and_record

# params[, watch] -> (objective, feasible, metrics with finetune_epochs when known); an
# objective that takes a watch (CaseObjective) can be stopped early through it
Objective = Callable[..., tuple[float | None, bool, dict[str, Any]]]


def grid_values(p: dict[str, Any], step: float | None) -> list[Any]:
    if "value" in p:
        return [p["value"]]
    if "values" in p:
        return list(p["values"])
    lo, hi = p["min"], p["max"]
    if isinstance(lo, int) and isinstance(hi, int) and p.get("distribution", "int_uniform") \
            == "int_uniform":
        return list(range(lo, hi + 1))
    q = step or p.get("q") or (hi - lo) / 8
    n = math.floor((hi - lo) / q + 1e-9)
    return [round(lo + i * q, 10) for i in range(n + 1)]


def space_points(spec: SweepSpec, step: float | None = None,
                 only: dict[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """Every grid point of the space, per recipe only its own template parameters (`only`:
    the values to take for some parameters instead of their whole range)."""
    params = dict(spec.config["parameters"]) | {k: {"values": v} for k, v in
                                                (only or {}).items()}
    points, seen = [], set()
    for recipe in spec.recipes:
        keys = [k for k in params if k != RECIPE_KEY and
                (k not in spec.template_keys or k in spec.templates[recipe])]
        for values in itertools.product(*(grid_values(params[k], step) for k in keys)):
            point = {RECIPE_KEY: recipe, **dict(zip(keys, values, strict=True))}
            key = json.dumps(point, sort_keys=True)
            if key not in seen:
                seen.add(key)
                points.append(point)
    return points


class CaseObjective:
    """The real pipeline: each trial runs its case (results cached by case hash)."""

    def __init__(self, spec: SweepSpec, base: Case, threshold: Threshold, workdir: Path,
                 progress: Callable[[str], None] | None = None,
                 recorder: Recorder | None = None) -> None:
        from benchsuite.pipeline.executor import LocalExecutor

        self.spec, self.base, self.threshold = spec, base, threshold
        self.executor = LocalExecutor(workdir)
        self.progress = progress
        self.recorder = recorder or Recorder()  # every case in the results table
        self.rows: list[dict] = []

    accepts_watch = True

    def __call__(self, params: dict[str, Any], watch: EpochWatch | None = None
                 ) -> tuple[float | None, bool, dict[str, Any]]:
        def progress(line: str) -> None:
            if self.progress is not None:
                self.progress(line)
            if watch is not None:
                watch(line)

        case = self.spec.case_for(params, self.base)
        row = run_and_record(case, self.executor, self.spec.threshold(self.threshold, params),
                             self.recorder, progress=progress, epoch_top1=watch is not None)
        self.rows.append(json.loads(row.to_json(compact=True))
                         | {"sweep_params": json.dumps(params, sort_keys=True)})
        val_top1, val_floor, feasible = row.on_validation(self.spec.threshold(self.threshold,
                                                                              params))
        return self.spec.objective(row), feasible, {
            "top1": row.top1, "threshold": row.threshold, "val_top1": val_top1,
            "val_floor": val_floor, "finetune_epochs": row.finetune_epochs}


class TableObjective:
    """Surrogate: the measured row nearest to the trial's parameters (same recipe)."""

    def __init__(self, spec: SweepSpec, table: Path, threshold: Threshold) -> None:
        import pandas as pd

        self.spec, self.threshold = spec, threshold
        frame = pd.read_csv(table)
        self.rows = frame.to_dict("records")
        for r in self.rows:
            r["_params"] = json.loads(r["sweep_params"]) if "sweep_params" in r else (
                json.loads(r["recipe_params"]) | {RECIPE_KEY: r["recipe"]})
        self.ranges = {}
        for k, p in spec.config["parameters"].items():
            if "min" in p:
                self.ranges[k] = float(p["max"] - p["min"]) or 1.0

    def _distance(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        d = 0.0
        for k in self.spec.template_keys:
            if k not in a or k not in b:
                continue
            if k in self.ranges:
                d += abs(float(a[k]) - float(b[k])) / self.ranges[k]
            else:
                d += 0.0 if a[k] == b[k] else 1.0
        return d

    def __call__(self, params: dict[str, Any]) -> tuple[float | None, bool, dict[str, Any]]:
        recipe = str(params.get(RECIPE_KEY) or self.spec.recipes[0])
        rows = [r for r in self.rows if str(r["_params"].get(RECIPE_KEY)) == recipe]
        if not rows:
            raise ValueError(f"the table has no measured case of recipe {recipe!r}")
        own = {k: v for k, v in params.items() if k in self.spec.templates[recipe]}
        row = min(rows, key=lambda r: self._distance(own, r["_params"]))
        threshold = self.spec.threshold(self.threshold, params)
        floor = threshold.floor(row["dense_top1"])
        val_top1, val_floor, feasible = CaseResult.from_dict(row).on_validation(threshold)
        return float(row[self.spec.metric]), feasible, {
            "top1": row["top1"], "threshold": floor, "val_top1": val_top1, "val_floor": val_floor,
            "finetune_epochs": row.get("finetune_epochs")}


# objective, feasible, fine-tuning epochs spent (None: unknown, e.g. a table without them)
Outcome = tuple[float | None, bool, int | None]
# (trial number from 1, its parameters, its outcome)
TrialHook = Callable[[int, dict[str, Any], Outcome], None]


def run_search(spec: SweepSpec, method: str, budget: int, seed: int,
               objective: Objective, on_trial: TrialHook | None = None) -> list[Outcome]:
    """One sweep in memory; returns (objective, feasible, epochs spent) per trial, in trial
    order. With the sweep's `early_terminate` and a real-pipeline objective, trials the
    engine stops early count the epochs they ran (objective None). `on_trial(k, params,
    outcome)` is called after each trial (progress, saving as it goes)."""
    cfg = dict(spec.config) | {"method": method}
    engine = SweepsEngine(replace(spec, config=cfg), MemoryStore(), budget, seed)
    early = engine.early_stopping and getattr(objective, "accepts_watch", False)
    out: list[Outcome] = []
    while (got := engine.suggest()) is not None:
        number, params = got
        watch = EpochWatch(engine, number) if early else None
        try:
            value, feasible, metrics = objective(params, watch) if watch else objective(params)
        except StopStage:
            if watch is None or watch.stopped is None:
                raise
            engine.tell(number, None, False, watch.metrics(), stopped=True)
            out.append((None, False, watch.epochs))
        else:
            engine.tell(number, value, feasible, metrics)
            spent = metrics.get("finetune_epochs")
            out.append((value, feasible,
                        None if spent is None or spent != spent else int(spent)))
        if on_trial is not None:
            on_trial(len(out), params, out[-1])
    return out


def best_curve(trials: list[tuple], goal: str) -> list[float]:
    """Best feasible objective after k trials (nan until the first feasible one)."""
    best, curve = math.nan, []
    for value, feasible, *_ in trials:
        if feasible and value is not None:
            if math.isnan(best) or (value > best if goal == "maximize" else value < best):
                best = value
        curve.append(best)
    return curve


def within(curve: list[float], goal: str, tol: float = 0.05,
           target: float | None = None) -> int | None:
    """First trial (1-based) whose best is within `tol` of `target` (default: the run's own
    final best; a common target, e.g. the best any engine found, compares engines fairly)."""
    final = target if target is not None else (curve[-1] if curve else math.nan)
    if math.isnan(final):
        return None
    for k, v in enumerate(curve, 1):
        if not math.isnan(v) and (v >= final * (1 - tol) if goal == "maximize"
                                  else v <= final * (1 + tol)):
            return k
    return None


def compare(spec: SweepSpec, objective: Objective, methods: tuple[str, ...] = ("bayes",
            "random"), budget: int = 20, seeds: tuple[int, ...] = (0, 1, 2),
            checkpoints: tuple[int, ...] = (5, 10, 15, 20),
            on_trial: Callable[[str, int, int, dict[str, Any], Outcome], None] | None = None,
            ) -> dict[str, Any]:
    """Each method with each seed; `results["trials"][method][i]` keeps every trial of seed
    i (parameters, objective, feasible, epochs). `on_trial(method, seed, k, params, outcome)`
    after each trial."""
    results: dict[str, Any] = {"metric": spec.metric, "goal": spec.goal, "budget": budget,
                               "seeds": list(seeds), "methods": {}, "trials": {}}
    for method in methods:
        runs, kept = [], results["trials"].setdefault(method, [])
        for s in seeds:
            trials: list[dict[str, Any]] = []
            kept.append(trials)

            def hook(k: int, params: dict[str, Any], o: Outcome, s: int = s,
                     trials: list[dict[str, Any]] = trials, method: str = method) -> None:
                trials.append({"params": params, "value": o[0], "feasible": o[1],
                               "epochs": o[2]})
                if on_trial is not None:
                    on_trial(method, s, k, params, o)

            runs.append(run_search(spec, method, budget, s, objective, hook))
        curves = [best_curve(r, spec.goal) for r in runs]
        epochs = [None if any(e is None for *_, e in r) else sum(e for *_, e in r)
                  for r in runs]
        reached = [within(c, spec.goal) for c in curves]
        at = {k: _mean([c[k - 1] for c in curves]) for k in checkpoints if k <= budget}
        results["methods"][method] = {
            "final_best": [c[-1] for c in curves], "mean_final_best": _mean([c[-1]
                                                                             for c in curves]),
            "mean_best_at": at, "within_5pct_at": reached,
            "mean_within_5pct_at": _mean([r for r in reached if r is not None]),
            "epochs_spent": epochs, "stopped_early": [sum(1 for v, _, _ in r if v is None)
                                                      for r in runs],
        }
    return results


def _mean(values: list[float | int | None]) -> float:
    ok = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(ok) / len(ok) if ok else math.nan


def format_report(results: dict[str, Any]) -> str:
    lines = [f"best feasible {results['metric']} ({results['goal']}) after k trials, mean over "
             f"seeds {results['seeds']}, budget {results['budget']}:"]
    for method, r in results["methods"].items():
        at = ", ".join(f"k={k}: {v:.3f}" for k, v in r["mean_best_at"].items())
        finals = ", ".join(f"{v:.3f}" for v in r["final_best"])
        lines.append(f"  {method:7s} {at}; final per seed [{finals}], mean "
                     f"{r['mean_final_best']:.3f}; within 5% of own final best at trial "
                     f"{r['within_5pct_at']} (mean {r['mean_within_5pct_at']:.1f}); "
                     f"fine-tuning epochs spent per seed {r['epochs_spent']}, trials stopped "
                     f"early {r['stopped_early']}")
    return "\n".join(lines)


def _base(spec: SweepSpec) -> Case:
    return Case(recipe="").with_settings({k: spec.constant(k) for k in CASE_SETTINGS
                                          if spec.constant(k) is not None})


