"""`benchsuite frontier`: the command line of `sweep/frontier.py` (its docstring is the help)."""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchsuite.core.threshold import Threshold
from benchsuite.frontends.cli import HelpFormatter
from benchsuite.pipeline.executor import LocalExecutor
from benchsuite.recipe.case import Case
from benchsuite.sweep.frontier import ENGINES, KD, METHODS, Frontier
from benchsuite.sweep.frontier import __doc__ as frontier_doc
from benchsuite.sweep.frontier_report import margins, search_lines, table


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _images(text: str) -> int | None:
    return None if text.strip().lower() == "all" else _count(text)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="benchsuite frontier", description=frontier_doc,
                                 formatter_class=HelpFormatter)
    base = Case(recipe="")
    ap.add_argument("--model", default="resnet20", help="the dense reference")
    ap.add_argument("--dataset", default=base.dataset, help="the dataset (as pytest's --dataset)")
    ap.add_argument("--data-dir", default=None, help="the dataset's folder, where it needs one")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated")
    ap.add_argument("--precisions", default="f32", help="f32, bf16, default (comma-separated)")
    ap.add_argument("--int8", action="store_true", help="also the found point + INT8")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help=f"comma-separated subset of {', '.join(METHODS)}")
    ap.add_argument("--tp-ratios", default="0.3,0.5,0.7", help="uniform's ratios")
    ap.add_argument("--budget-speedups", default="1.5,2,2.5",
                    help="budget's target speed-ups (predicted, dense / pruned)")
    ap.add_argument("--budget-round-to", type=_count, default=8,
                    help="budget's channel group (and the latency table's grid step: a "
                         "MobileNetV2 table at 1x28x28 has 26,020 points at 8, 1,743 at 32)")
    ap.add_argument("--space", default=None, help="the search's sweep file (default: "
                                                  "schedules/sweeps/<model>_per_stage.yaml)")
    ap.add_argument("--search-trials", type=int, default=10, help="the search's budget")
    ap.add_argument("--engines", default="bayes",
                    help=f"the search's engines, comma-separated: {', '.join(ENGINES)}")
    ap.add_argument("--zoo-models", default="", help="the dense-zoo family (comma-separated; "
                    "default: the model's own, models.dense_family)")
    ap.add_argument("--epochs", type=int, default=base.epochs,
                    help="fine-tuning epochs")
    ap.add_argument("--dense-epochs", type=int, default=base.dense_epochs,
                    help="the dense model's training epochs")
    ap.add_argument("--train-images", type=_images, default=base.train_images,
                    help="at most this many training images, or all")
    ap.add_argument("--threshold", default="-1pt", help="the accuracy floor")
    ap.add_argument("--out", help="write the Markdown table here too")
    ap.add_argument("--save-found", action="store_true",
                    help="per precision, the fastest found point (search's, any engine, else "
                         "budget's; each chosen on the validation split) is run again at every "
                         "other seed; it is saved "
                         "in schedules/found/<model>-<dataset>-frontier-<precision>.yaml only "
                         "if it holds the floor on the test split at every seed")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if unknown := sorted(set(methods) - set(METHODS)):
        ap.error(f"--methods: unknown {', '.join(unknown)} (known: {', '.join(METHODS)})")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or (unknown := sorted(set(engines) - set(ENGINES))):
        ap.error(f"--engines: unknown {', '.join(unknown) if engines else 'none given'} "
                 f"(known: {', '.join(ENGINES)})")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds: comma-separated integers expected, got {args.seeds!r}")
    try:
        threshold = Threshold.parse(args.threshold)
    except ValueError as e:
        ap.error(f"--threshold: {e}")
    from benchsuite.core.paths import schedules_dir

    space = Path(args.space) if args.space else (
        schedules_dir() / "sweeps" / f"{args.model}_per_stage.yaml")
    if "search" in methods and not space.is_file():
        ap.error(f"--space: no sweep file {space} (write one with `benchsuite select`, or pass "
                 "--methods without search)")
    base = replace(Case(recipe=""), model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                   epochs=args.epochs, dense_epochs=args.dense_epochs,
                   train_images=args.train_images)
    from benchsuite.recipe.case import check_settings

    check_settings(base)
    work = Path(tempfile.mkdtemp(prefix="bs-frontier-work-"))
    frontier = Frontier(base, threshold, LocalExecutor(work),
                        say=lambda m: print(m, flush=True))
    from benchsuite.models import MODEL_NAMES

    family = tuple(m.strip() for m in args.zoo_models.split(",") if m.strip()) or None
    if family and (bad := sorted(set(family) - set(MODEL_NAMES))):
        ap.error(f"--zoo-models: unknown {', '.join(bad)} (known: {', '.join(MODEL_NAMES)})")
    try:
        budgets = [float(b) for b in args.budget_speedups.split(",") if b.strip()]
    except ValueError:
        ap.error(f"--budget-speedups: numbers > 1 expected, got {args.budget_speedups!r}")
    if "budget" in methods and (not budgets or min(budgets) <= 1):
        ap.error(f"--budget-speedups: numbers > 1 expected, got {args.budget_speedups!r}")
    if "budget" in methods:  # its recipe fits the ResNets, MobileNetV2, the ViT: say so first
        from benchsuite.core.errors import UserError
        from benchsuite.pipeline.run import validate

        try:
            params = {"speedup": budgets[0], "round_to": args.budget_round_to}
            validate(frontier._case("latency_budget", params, seeds[0],
                                    args.precisions.split(",")[0]))
        except UserError as e:
            ap.error(f"--methods budget: {e} (pass --methods without budget)")
    t0 = time.time()
    precisions = args.precisions.split(",")
    for precision in precisions:
        for seed in seeds:
            print(f"== {precision}, seed {seed} ({time.time() - t0:.0f} s)", flush=True)
            if "uniform" in methods:
                frontier.uniform(seed, precision, [float(r) for r in args.tp_ratios.split(",")])
            found = None  # the point kd, int8 and scratch follow: the search's, else the budget's
            if "budget" in methods:
                found = frontier.budget(seed, precision, budgets, args.budget_round_to)
            if "search" in methods:
                found = None
                for engine in engines:
                    point = frontier.search(seed, precision, space, args.search_trials, engine)
                    found = found or point
            if found is not None:
                if "kd" in methods:
                    frontier.follow(found, "kd", params=KD)
                if args.int8 and "int8" in methods:
                    frontier.int8(found, scratch="scratch" in methods)
                if "scratch" in methods:
                    frontier.follow(found, "scratch", control="scratch")
            if "zoo" in methods:
                frontier.zoo(seed, precision, family)
                if args.int8 and "int8" in methods and precision == precisions[0]:
                    frontier.zoo(seed, "int8", family)  # the int8 point's like-for-like control
    lines = [*table(frontier.points, threshold), "", *margins(frontier.points), "",
             *search_lines(frontier.searches), f"\nwall time {time.time() - t0:.0f} s"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.save_found:
        _save_found(frontier, args, seeds, "search" if "search" in methods else "budget")
    return 0


def _save_found(frontier: Frontier, args: argparse.Namespace, seeds: list[int],
                leader: str = "search") -> None:
    """Per precision, one candidate: the fastest point of the `leader` method (the search's,
    any engine; else the budget's; each seed's point was chosen on the validation split). It
    is run again at the other seeds and saved only if it holds the floor on the test split at
    every seed: the test split is read once per case, and no second candidate is tried after a
    failed verdict (that would select on test)."""
    from benchsuite.core.paths import found_dir
    from benchsuite.sweep.trials import write_found_recipe

    for precision in args.precisions.split(","):
        points = [p for p in frontier.points if p.method.startswith(leader)
                  and p.precision == precision and p.row is not None and p.case is not None]
        if not points:
            print(f"not saved ({precision}): no {leader} point held the floor on validation")
            continue
        best = max(points, key=lambda p: p.row.speedup)
        row, case = best.row, best.case
        assert row is not None and case is not None
        if row.speedup_ci_high is not None and row.speedup_ci_high <= 1.0:
            print(f"not saved ({precision}): {row.speedup:.3f}x is no gain")
            continue
        if others := [str(s) for s in seeds if s != best.seed]:
            print(f"confirming {case.label} ({best.method}, seed {best.seed}) at seeds "
                  f"{', '.join(others)}", flush=True)
        rows = frontier.confirm(best, seeds)
        per_seed = {seed: {k: r.get(k) for k in ("speedup", "speedup_ci_low", "speedup_ci_high",
                                                 "top1", "test_images", "val_top1", "threshold",
                                                 "passed")}
                    for seed, r in rows.items()}
        under = [seed for seed, r in rows.items() if not r.passed]
        if under:
            print(f"not saved ({precision}): {case.label} is under the floor on the test split "
                  f"at seed(s) {', '.join(map(str, under))}")
            continue
        path = write_found_recipe(
            case,
            found_by=f"benchsuite frontier: the fastest {leader} point at {precision} "
                     f"({best.method}, seed {best.seed}, chosen on the validation split), run "
                     f"again at seeds {', '.join(map(str, seeds))}: held the floor "
                     f"({frontier.threshold}) on the test split at each",
            result={"per_seed": per_seed},
            path=found_dir() / f"{args.model}-{args.dataset}-frontier-{precision}.yaml")
        print(f"saved {path}")
