"""The frontier's report (`benchsuite frontier`): the Markdown table of each method's point
over the seeds, each method's margin over the dense zoo and its scratch gap, and the search
engines' best-so-far curves and trials to a common target."""

from __future__ import annotations

import math
import statistics

from benchsuite.core.result import CaseResult, scratch_gap
from benchsuite.core.threshold import Threshold
from benchsuite.sweep.frontier import Point, with_interval


def _mean_range(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return format(values[0], fmt)
    return (f"{format(statistics.fmean(values), fmt)} "
            f"[{format(min(values), fmt)}–{format(max(values), fmt)}]")


def table(points: list[Point], threshold: Threshold) -> list[str]:
    """The Markdown table: one line per method and precision, over the seeds."""
    lines = ["| method | precision | seeds holding (test) | speed-up, mean [range] | per seed "
             "[95 % interval] | test Top-1 %, mean [range] | validation Top-1 % | MACs / dense "
             "| fine-tuning epochs | case (seed 0) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[Point]] = {}
    for p in points:
        groups.setdefault((p.method, p.precision), []).append(p)
    for (method, precision), group in groups.items():
        rows = [p.row for p in group if p.row is not None]
        holding = sum(1 for r in rows if r.passed)
        speed = [r.speedup for r in rows]
        per_seed = "; ".join(with_interval(r.speedup, r.speedup_ci_low, r.speedup_ci_high)
                             for r in rows)
        top1 = [r.top1 * 100 for r in rows]
        val = [r.val_top1 * 100 for r in rows if r.val_top1 is not None]
        macs = [r.macs / r.dense_macs for r in rows if r.macs and r.dense_macs]
        epochs = sum(p.epochs for p in group)
        label = rows[0].label if rows else "none held the floor"
        if method == "scratch" and rows and rows[0].scratch_top1 is not None:
            top1 = [r.scratch_top1 * 100 for r in rows if r.scratch_top1 is not None]
            val = [r.scratch_val_top1 * 100 for r in rows if r.scratch_val_top1 is not None]
            holding = sum(1 for r in rows if r.scratch_top1 is not None
                          and r.threshold is not None and r.scratch_top1 >= r.threshold)
        lines.append(f"| {method} | {precision} | {holding}/{len(group)} | "
                     f"{_mean_range(speed, '.2f')}{'x' if speed else ''} | {per_seed or '-'} | "
                     f"{_mean_range(top1, '.2f')} | "
                     f"{_mean_range(val, '.2f')} | {_mean_range(macs, '.3f')} | {epochs} | "
                     f"`{label}` |")
    lines.append(f"\nfloor: {threshold} (of each seed's dense model; chosen on the validation "
                 "split, verdict on the test split); scratch: the found point's architecture "
                 "trained from scratch (its Top-1 as deployed at the row's precision where the "
                 "bench stage scored it, else torch's), same speed-up as its pruned model")
    return lines


def margins(points: list[Point]) -> list[str]:
    """Each pruning method's point against the dense zoo's at the same seed and precision (the
    int8 point against the zoo's network in INT8; both chosen on the validation split; < 1: the
    control is faster), with both verdicts on the test split, then the mean over seeds; and the
    pruned point against its architecture trained from scratch (`scratch_gap`: like with
    like)."""
    out = []
    zoo = {(p.seed, p.precision): p.row for p in points if p.method == "zoo" and p.row}
    for method in ("uniform", "budget", "search", "kd", "int8"):
        ratios = []
        for p in points:
            control = zoo.get((p.seed, p.precision))
            if p.method != method or p.row is None or control is None:
                continue
            ratio = p.row.speedup / control.speedup
            ratios.append(ratio)
            out.append(f"{method} ({p.precision}, seed {p.seed}): {p.row.speedup:.2f}x "
                       f"({_verdict(p.row)}) against the dense zoo's "
                       f"{str(control.control).removeprefix('zoo:')} {control.speedup:.2f}x "
                       f"({_verdict(control)}): margin {ratio:.2f}"
                       + ("" if ratio > 1 else ", the dense network is as fast or faster"))
        if len(ratios) > 1:
            out.append(f"{method}: mean margin over the dense zoo {statistics.fmean(ratios):.2f} "
                       f"over {len(ratios)} seeds")
    for p in points:
        got = scratch_gap(p.row) if p.method == "scratch" and p.row is not None else None
        if got is None:
            continue
        gap, how = got
        out.append(f"scratch ({p.precision}, seed {p.seed}): pruned {gap:+.2f} pt over the same "
                   f"architecture trained from scratch ({how})"
                   + (" (scratch is as good: the pruning bought an architecture)"
                      if gap <= 0 else ""))
    return out


def _verdict(row: CaseResult) -> str:
    return "holds on test" if row.passed else "under the floor on test"


def search_lines(searches: dict[str, list[list[tuple]]], goal: str = "maximize") -> list[str]:
    """Best-so-far curves of each engine (mean over seeds), and the trials to 95 % of the best."""
    from benchsuite.sweep.search import best_curve, within

    lines = []
    for name, runs in searches.items():
        curves = [best_curve(r, goal) for r in runs]
        width = max(len(c) for c in curves)
        mean = []
        for k in range(width):
            got = [c[k] for c in curves if k < len(c) and not math.isnan(c[k])]
            # a seed without a feasible point yet is not in the mean: say how many are
            partial = f" ({len(got)} of {len(curves)} seeds)" if 0 < len(got) < len(curves) else ""
            mean.append(f"{statistics.fmean(got):.2f}{partial}" if got else "-")
        reached = [within(c, goal) for c in curves]
        epochs = [sum(int(e or 0) for *_, e in r) for r in runs]
        lines.append(f"search {name}: best feasible (validation) after k trials, mean over "
                     f"{len(runs)} seed(s): {' '.join(mean)}; within 5 % of its final best at "
                     f"trial {reached}; fine-tuning epochs {epochs}")
    return lines + reach_lines(searches, goal)


def _dashed(values: list[int | None]) -> str:
    return " ".join("-" if v is None else str(v) for v in values)


def reach_lines(searches: dict[str, list[list[tuple]]], goal: str = "maximize",
                tol: float = 0.05) -> list[str]:
    """Engines compared on a common target: at each seed, the trials and fine-tuning epochs
    each engine spent until its best feasible point came within `tol` of the best feasible
    point ANY engine found at that seed ("-": never). Its own final best would reward an
    engine that settles early on a poor point. `searches` keys are "<engine> <precision>",
    each a list of runs in seed order (every engine runs the same seeds)."""
    from benchsuite.sweep.search import best_curve, within

    by_precision: dict[str, dict[str, list[list[tuple]]]] = {}
    for name, runs in searches.items():
        engine, _, precision = name.partition(" ")
        by_precision.setdefault(precision, {})[engine] = runs
    better = max if goal == "maximize" else min
    lines = []
    for precision, engines in by_precision.items():
        if len(engines) < 2:
            continue
        n = min(len(runs) for runs in engines.values())
        targets = []
        for i in range(n):
            finals = [best_curve(runs[i], goal)[-1] for runs in engines.values() if runs[i]]
            finals = [f for f in finals if not math.isnan(f)]
            targets.append(better(finals) if finals else math.nan)
        shown = ", ".join("-" if math.isnan(t) else f"{t:.2f}" for t in targets)
        lines.append(f"engines at {precision}, each seed's target = the best feasible any "
                     f"engine found ({shown}); trials / fine-tuning epochs to within "
                     f"{tol:.0%} of it:")
        for engine, runs in engines.items():
            trials, epochs = [], []
            for i in range(n):
                k = (None if math.isnan(targets[i])
                     else within(best_curve(runs[i], goal), goal, tol, targets[i]))
                trials.append(k)
                epochs.append(None if k is None else sum(int(e or 0) for *_, e in runs[i][:k]))
            got = [k for k in trials if k is not None]
            mean = (f"mean {statistics.fmean(got):.1f} trials over the {len(got)} seed(s) "
                    "that reached it" if got else "reached at no seed")
            lines.append(f"  {engine}: trials {_dashed(trials)}; epochs {_dashed(epochs)} "
                         f"({mean})")
    return lines


