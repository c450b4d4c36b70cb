"""The `benchsuite` command, the one entry to the suite's tools.

  benchsuite report                     HTML report from the results table
  benchsuite sensitivity                per-layer pruning sensitivity (CSV + plot)
  benchsuite recipe check|dry-run FILE  validate a recipe / apply it without training
  benchsuite recipe list                the recipe library; which models each recipe fits
  benchsuite worker prune|bench         serve jobs from Redis (see README, "Distributed")
  benchsuite broker status|server       inspect the broker / run a private redis-server
  benchsuite blobs cleanup              drop expired artifact blobs
  benchsuite sweep bench measure|compare  bayes vs random search at equal budget
  benchsuite sweep show [ID]            the sweeps kept in Redis and their trials
  benchsuite latency-model build|report  per-op latency table; predicted vs measured
  benchsuite frontier                   each pruning method beside its controls, 3 seeds
  benchsuite select RESULTS --out SWEEP  the detrimental-pruner filter: a narrowed search space

`benchsuite COMMAND --help` gives each command's usage. The experiments themselves run under
pytest: `pytest -m latency` (see `pytest --help`, group "benchsuite").
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from benchsuite.core.errors import OperatorError
from benchsuite.core.extras import explain, install_hint
from benchsuite.core.paths import results_dir


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The commands' help: descriptions as written, every option's default shown."""


def input_shape(text: str) -> tuple[int, int, int]:
    """An `--input CxHxW` option's value (argparse `type`): one sample's shape."""
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
        if min(c, h, w) < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--input must be CxHxW, e.g. 3x32x32, got {text!r}") from None
    return c, h, w


# Where the subcommands come from, one line each: "module:function" adding them to the
# subparsers (each sets `func`; an optional `run` wraps it), the extra the module needs ("" if
# none) and the command names it adds (for a placeholder when that extra is missing).
SUBCOMMANDS: list[tuple[str, str, tuple[str, ...]]] = [
    ("benchsuite.frontends.cli:add_report", "", ("report",)),
    ("benchsuite.frontends.sensitivity_cli:add_subcommand", "", ("sensitivity",)),
    ("benchsuite.frontends.cli:add_broker", "broker", ("worker", "broker", "blobs")),
    ("benchsuite.frontends.cli:add_sweep", "", ("sweep",)),
    ("benchsuite.frontends.recipe_cli:add_subcommand", "", ("recipe",)),
    ("benchsuite.frontends.latency_model_cli:add_subcommand", "", ("latency-model",)),
]


def _report(args: argparse.Namespace) -> int:
    from benchsuite.track.html_report import build_report

    path = build_report(Path(args.results), Path(args.out), cases=args.case or None)
    print(f"report: {path}")
    return 0


def add_report(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", formatter_class=HelpFormatter,
                            help="HTML report with plots from the results table (speed-ups "
                                 "and MACs ratios with their intervals)")
    report.add_argument("--results", default=str(results_dir(create=False)),
                        help="folder holding results.csv")
    report.add_argument("--out", default=str(results_dir(create=False) / "report"),
                        help="output folder")
    report.add_argument("--case", action="append",
                        help="case label whose per-module time (dense and pruned) to plot "
                             "(repeatable; default: the 3 fastest)")
    report.set_defaults(func=_report)


def add_broker(sub: argparse._SubParsersAction) -> None:
    from benchsuite.frontends import broker_cli

    broker_cli.add_subcommands(sub)
    for name in ("worker", "broker", "blobs"):  # a connection error: one line, exit 2
        sub.choices[name].set_defaults(run=broker_cli.run)


# commands whose arguments all go to another program's own parser: (words) -> "module:main"
PASSTHROUGH: dict[tuple[str, ...], str] = {
    ("sweep", "bench"): "benchsuite.frontends.sweep_bench_cli:main",
    ("frontier",): "benchsuite.frontends.frontier_cli:main",
    ("select",): "benchsuite.frontends.select_cli:main"}


def add_sweep(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser("sweep", help="sweep tools (the sweeps themselves: pytest -m sweep)")
    sweep_sub = sweep.add_subparsers(dest="sweep_command", required=True)
    bench = sweep_sub.add_parser(
        "bench", add_help=False, usage="benchsuite sweep bench {measure,compare} ...",
        help="bayes vs random at equal budget (benchsuite sweep bench -h for its options)")
    bench.add_argument("args", nargs=argparse.REMAINDER)  # main() passes them through
    from benchsuite.frontends.sweep_show_cli import add_subcommand as add_show

    add_show(sweep_sub)


def _placeholder(sub: argparse._SubParsersAction, name: str, exc: ImportError,
                 extra: str) -> None:
    """A command whose module cannot load (its extra is not installed): it says so."""
    message = explain(exc, f"benchsuite {name}") or (
        f"benchsuite {name}: cannot load: {exc}" + (f" ({install_hint(extra)})" if extra else ""))
    short = f"needs {install_hint(extra)}" if extra else "cannot load"
    p = sub.add_parser(name, help=f"(not available here: {short})", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)

    def fail(_args: argparse.Namespace) -> int:
        print(message, file=sys.stderr)
        return 2

    p.set_defaults(func=fail)


def _resolve(target: str) -> Callable[[argparse._SubParsersAction], None] | None:
    module, _, func = target.partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except ModuleNotFoundError as exc:
        if exc.name == module:  # an optional command module not there (yet)
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchsuite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for target, extra, names in SUBCOMMANDS:
        try:
            if (add := _resolve(target)) is not None:
                add(sub)
        except ImportError as exc:  # an extra not installed: the commands say which
            for name in names:
                if name not in sub.choices:
                    _placeholder(sub, name, exc, extra)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    for words, target in PASSTHROUGH.items():
        if tuple(argv[:len(words)]) == words:
            module, _, func = target.partition(":")
            return int(getattr(importlib.import_module(module), func)(argv[len(words):]) or 0)
    args = build_parser().parse_args(argv)
    runner = getattr(args, "run", None) or args.func
    try:
        return int(runner(args) or 0)
    except ImportError as e:
        message = explain(e, f"benchsuite {args.command}")
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"benchsuite {args.command}: {e}", file=sys.stderr)
        return 2
    except OperatorError as e:  # a store or service that refuses: named, no traceback
        print(f"benchsuite {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
