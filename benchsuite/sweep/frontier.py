"""`benchsuite frontier`: each pruning method beside its controls, at several seeds, in one run.

    benchsuite frontier --model resnet20 --seeds 0,1,2 --precisions f32 --int8 --out frontier.md

Methods (each a set of cases; a method's point at a seed is its fastest case that holds the
floor on the VALIDATION split; its verdict is then read on the test split, once):

  uniform    the peer: Torch-Pruning's uniform L1 width (tp_uniform) at each --tp-ratios
  budget     the latency-budget pruner (recipe latency_budget: blocks and channel groups
             removed greedily by importance per µs saved, predicted from the per-op latency
             table measured on the target device and precision) at each --budget-speedups,
             groups of --budget-round-to channels (the table's grid step)
  search     the per-stage point found by a search (`sweeps` bayes; --engines bayes,random
             runs both, compared on a common target) within --search-trials trials over the
             per-stage space (--space: a sweep file, e.g. what `benchsuite select` wrote;
             default schedules/sweeps/<model>_per_stage.yaml).
             Each proposal is first *probed*: its pruned architecture is built untrained and
             its speed-up measured against dense (a few seconds: latency does not depend on the
             weights); one whose probe cannot beat the best feasible speed-up found so far is
             skipped without fine-tuning. The sweep's early_terminate stops poor trials after
             their first fine-tuning epochs (multi-fidelity).
  kd         the found point fine-tuned with distillation from the dense model (the found
             point: the search's; without --methods search, the budget's)
  int8       (--int8) the found point quantized by NNCF, against dense at f32
  scratch    control: the found point's architecture trained from scratch, same epochs,
             scored as deployed like the pruned model; with --int8 and int8 among the
             methods also quantized (the int8 point's case carries it: one INT8 case scores
             both, and the f32 case reuses its prune stage's models from the worker's cache)
  zoo        control: the fastest network of the dense family (models.DENSE_FAMILY) that holds
             the floor, trained from scratch for the same epochs, timed against the same dense;
             with --int8 and int8 among the methods also quantized by NNCF, against dense at
             f32 (the int8 point's control: INT8 against INT8)

Every case goes through the recording service (results table, W&B offline) and the result
cache, so an interrupted frontier resumes where it stopped. Conditions: those of the cases
(CPU, batch 1, 1 inference thread, the paired in-process method).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.pipeline.executor import Executor
from benchsuite.pipeline.stages import BENCH, TRAIN
from benchsuite.recipe.case import Case
from benchsuite.track.recording import Recorder, run_and_record

KD = {"kd_weight": 0.7, "kd_student_weight": 0.3, "kd_temperature": 4}
METHODS = ("uniform", "budget", "search", "kd", "int8", "scratch", "zoo")
CONTROLS = ("scratch", "zoo")
ENGINES = ("bayes", "random")  # the `sweeps` engine's methods over a continuous space


def _precision(text: str) -> str | None:
    return None if text == "default" else text


@dataclass
class Point:
    """One method's point at one seed and precision: its chosen case and how many it tried."""

    method: str
    seed: int
    precision: str
    row: CaseResult | None  # None: no case held the floor on the validation split
    case: Case | None  # the chosen row's case (to run it again with a change)
    tried: int
    epochs: int  # fine-tuning epochs spent (cached cases and cached prune stages count 0)
    note: str = ""


@dataclass
class Frontier:
    base: Case
    threshold: Threshold
    executor: Executor
    say: Callable[[str], None] = print
    recorder: Recorder = field(default_factory=Recorder)  # results table (+ W&B)
    points: list[Point] = field(default_factory=list)
    searches: dict[str, list[list[tuple]]] = field(default_factory=dict)

    # --- running cases -------------------------------------------------------------------
    def run(self, case: Case, epoch_top1: bool = False) -> CaseResult:
        t0 = time.time()
        row = run_and_record(case, self.executor, self.threshold, self.recorder,
                             progress=lambda m: self.say(f"    {case.label}: {m}"),
                             epoch_top1=epoch_top1)
        val, floor, holds = row.on_validation(self.threshold)
        speed = with_interval(row.speedup, row.speedup_ci_low, row.speedup_ci_high)
        verdict = "holds" if holds else "under"
        self.say(f"  {case.label}: speed-up {speed}x, validation Top-1 {val:.4f} ({verdict} "
                 f"{floor:.4f}), {time.time() - t0:.0f} s{' (cached)' if row.cached else ''}")
        return row

    def best(self, method: str, seed: int, precision: str,
             ran: list[tuple[Case, CaseResult]], note: str = "") -> Point:
        """The fastest of the cases run that holds the floor on the validation split."""
        holding = [(c, r) for c, r in ran if r.on_validation(self.threshold)[2]]
        case, row = max(holding, key=lambda cr: cr[1].speedup) if holding else (None, None)
        epochs = sum(int(r.finetune_epochs or 0) for _, r in ran
                     if not (r.cached or r.pruned_cached))
        point = Point(method, seed, precision, row, case, len(ran), epochs, note)
        self.points.append(point)
        return point

    # --- the methods ---------------------------------------------------------------------
    def uniform(self, seed: int, precision: str, ratios: list[float]) -> Point:
        cases = [self._case("tp_uniform", {"ratio": r, "round_to": 8}, seed, precision)
                 for r in ratios]
        return self.best("uniform", seed, precision, [(c, self.run(c)) for c in cases])

    def budget(self, seed: int, precision: str, speedups: list[float],
               round_to: int = 8) -> Point:
        cases = [self._case("latency_budget", {"speedup": s, "round_to": round_to}, seed,
                            precision) for s in speedups]
        return self.best("budget", seed, precision, [(c, self.run(c)) for c in cases])

    def search(self, seed: int, precision: str, space: Path, trials: int,
               engine: str = "bayes") -> Point:
        from benchsuite.recipe.case import CASE_SETTINGS
        from benchsuite.sweep.config import load_sweep
        from benchsuite.sweep.search import CaseObjective, run_search

        spec = load_sweep(space)
        # the frontier's case settings win over the sweep file's constants
        params = {k: v for k, v in spec.config["parameters"].items() if k not in CASE_SETTINGS}
        spec = replace(spec, config=dict(spec.config) | {"parameters": params})
        base = replace(self.base, seed=seed, precision=_precision(precision))
        with tempfile.TemporaryDirectory(prefix="bs-frontier-") as work:
            inner = CaseObjective(spec, base, self.threshold, Path(work),
                                  progress=lambda m: self.say(f"    {m}"),
                                  recorder=self.recorder)
            probed = ProbedObjective(inner, self, base)
            outcomes = run_search(spec, engine, trials, seed, probed,
                                  on_trial=lambda k, p, o: self.say(
                                      f"  search {engine} seed {seed} trial {k}/{trials}: "
                                      f"{json.dumps(p, sort_keys=True)} -> {_outcome(o)}"))
        self.searches.setdefault(f"{engine} {precision}", []).append(outcomes)
        ran = [(spec.case_for(json.loads(r["sweep_params"]), base), CaseResult.from_dict(r))
               for r in inner.rows]
        point = self.best("search" if engine == "bayes" else f"search ({engine})", seed,
                          precision, ran, note=f"{len(ran)} of {trials} proposals fine-tuned"
                          f", {probed.skipped} skipped by the latency probe")
        point.epochs = sum(int(e or 0) for *_, e in outcomes)
        return point

    def follow(self, point: Point, method: str, **change: Any) -> Point:
        """The point's case again with `change` (KD parameters, INT8, the scratch control)."""
        if point.case is None:
            return self.best(method, point.seed, point.precision, [], note="no point to follow")
        params = change.pop("params", None)
        case = replace(point.case, params=point.case.params | (params or {}), **change)
        return self.best(method, point.seed, change.get("precision") or point.precision,
                         [(case, self.run(case))])

    def int8(self, point: Point, scratch: bool = False) -> Point:
        """The point quantized by NNCF, against dense at f32. With `scratch`, its scratch
        control rides in the same case: trained in its prune stage, quantized and scored as
        deployed beside the pruned model, and put as a second point (scratch, at int8)."""
        out = self.follow(point, "int8", precision="int8", control="scratch" if scratch else "")
        if scratch:
            self.points.append(replace(out, method="scratch", epochs=0))
        return out

    def confirm(self, point: Point, seeds: list[int]) -> dict[int, CaseResult]:
        """The point's case at each of `seeds` (its own seed's row as it is, the others run
        from each seed's own dense model): is the point a property of the architecture and
        recipe, or of one seed's luck?"""
        assert point.case is not None and point.row is not None
        return {seed: point.row if seed == point.seed
                else self.run(replace(point.case, seed=seed)) for seed in seeds}

    def zoo(self, seed: int, precision: str, family: tuple[str, ...] | None = None) -> Point:
        from benchsuite.pipeline.grid import zoo_cases

        reference = self._case("dense", {}, seed, precision)
        return self.best("zoo", seed, precision,
                         [(c, self.run(c)) for c in zoo_cases([reference], family)])

    # --- helpers -----------------------------------------------------------------------------
    def _case(self, recipe: str, params: dict, seed: int, precision: str) -> Case:
        from benchsuite.core.paths import schedules_dir
        from benchsuite.pipeline.grid import recipe_files

        path = recipe_files(schedules_dir()).get(recipe)
        if path is None:
            raise ValueError(f"no recipe {recipe!r} in {schedules_dir()}")
        return replace(self.base, recipe=str(path), params=params, seed=seed,
                       precision=_precision(precision))


class ProbedObjective:
    """A search objective that first probes a proposal's latency (its pruned architecture,
    untrained, against dense: a few seconds) and skips the fine-tuning of one that cannot beat
    the best feasible speed-up found so far (its probe's upper bound below that best)."""

    accepts_watch = True

    def __init__(self, inner: Any, frontier: Frontier, base: Case) -> None:
        self.inner, self.frontier, self.base = inner, frontier, base
        self.best = math.nan
        self.skipped = 0

    def __call__(self, params: dict[str, Any], watch: Any = None
                 ) -> tuple[float | None, bool, dict[str, Any]]:
        case = self.inner.spec.case_for(params, self.base)
        probe, high = probe_speedup(case, self.frontier.executor)
        if not math.isnan(self.best) and high < self.best:
            self.skipped += 1
            self.frontier.say(f"    probe {probe:.2f}x (up to {high:.2f}x) cannot beat the best "
                              f"feasible {self.best:.2f}x: skipped, no fine-tuning")
            return probe, False, {"finetune_epochs": 0, "skipped": "latency probe"}
        value, feasible, metrics = (self.inner(params, watch) if watch is not None
                                    else self.inner(params))
        if feasible and value is not None and (math.isnan(self.best) or value > self.best):
            self.best = value
        return value, feasible, metrics


def probe_speedup(case: Case, executor: Executor) -> tuple[float, float]:
    """The speed-up of the case's pruned architecture, untrained, against its dense model:
    (estimate, upper end of its interval), from a short paired measurement."""
    from benchsuite.export.onnx import export_onnx
    from benchsuite.prune.dryrun import pruned_model
    from benchsuite.recipe import parse_recipe

    dense = executor.run(TRAIN, case.dense_spec(), {})
    shape = tuple(dense.result["input_shape"])
    model, _, _ = pruned_model(parse_recipe(case.recipe_text(), source=case.recipe_name),
                               case.model, shape, dense.result["num_classes"], case.seed)
    with tempfile.TemporaryDirectory(prefix="bs-probe-") as work:
        onnx = export_onnx(model, shape, Path(work) / "probe.onnx")
        result = executor.run(BENCH, {
            "input_shape": list(shape), "settings": case.bench_settings() | {"niter": 50},
            "paired": case.paired_settings() | {"max_seconds": 3.0}},
            {"dense_onnx": dense.files["onnx"], "pruned_onnx": onnx}).result
    return float(result["speedup"]), float(result.get("speedup_ci_high") or result["speedup"])


def with_interval(value: float | None, low: float | None, high: float | None,
                  fmt: str = ".2f") -> str:
    """`value [low, high]`; the value alone without an interval; n/a without a value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if low is None or high is None:
        return format(value, fmt)
    return f"{format(value, fmt)} [{format(low, fmt)}, {format(high, fmt)}]"


def _outcome(o: tuple) -> str:
    value, feasible, epochs = o
    if value is None:
        return f"stopped early after {epochs} epochs"
    return f"{value:.3f}x {'feasible' if feasible else 'infeasible'}, {epochs} epochs"
