"""The `benchsuite` command.

  benchsuite report                     HTML report from the results table
  benchsuite sensitivity                per-layer pruning sensitivity (CSV + plot)
  benchsuite recipe check|dry-run FILE  validate a recipe / apply it without training
  benchsuite worker prune|bench         serve jobs from Redis (see README, "Distributed")
  benchsuite broker status|server       inspect the broker / run a private redis-server
  benchsuite blobs cleanup              drop expired artifact blobs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .paths import results_dir


def _report(args: argparse.Namespace) -> int:
    from .track.report import build_report

    path = build_report(Path(args.results), Path(args.out), cases=args.case or None)
    print(f"report: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchsuite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="HTML report with plots from the results table")
    report.add_argument("--results", default=str(results_dir()),
                        help="folder holding results.csv [experiments/results]")
    report.add_argument("--out", default=str(results_dir() / "report"),
                        help="output folder [experiments/results/report]")
    report.add_argument("--case", action="append",
                        help="case label whose per-layer latency to plot (repeatable; "
                             "default: the 3 fastest)")
    report.set_defaults(func=_report)
    from .sensitivity import add_subcommand as add_sensitivity

    add_sensitivity(sub)
    from .broker import cli as broker_cli

    broker_cli.add_subcommands(sub)
    from .recipe.cli import add_subcommand as add_recipe
    add_recipe(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("worker", "broker", "blobs"):
        from .broker import cli as broker_cli

        return broker_cli.run(args)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"benchsuite {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
