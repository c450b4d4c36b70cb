"""The `benchsuite` command's help: every option of every subcommand says what it does, and
asking for help creates nothing."""

from __future__ import annotations

import argparse
import subprocess
import sys

from benchsuite.broker.local import PACKAGE_ROOT
from benchsuite.frontends import frontier_cli, select_cli, sweep_bench_cli
from benchsuite.frontends.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_of_every_command_has_help() -> None:
    roots = [("benchsuite", build_parser()),
             ("benchsuite frontier", frontier_cli.build_parser()),
             ("benchsuite select", select_cli.build_parser()),
             ("benchsuite sweep bench", sweep_bench_cli.build_parser())]
    missing = []
    for root_name, root in roots:
        for name, parser in _parsers(root, root_name):
            if parser.add_help is False:  # a placeholder passing its arguments on
                continue
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                    continue
                if not (action.help or "").strip():
                    missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing
    assert len(list(_parsers(build_parser(), "benchsuite"))) > 10  # the walk saw the commands


def test_help_creates_no_results_folder(tmp_path) -> None:
    results = tmp_path / "results"
    out = subprocess.run([sys.executable, "-m", "benchsuite.frontends.cli", "--help"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(PACKAGE_ROOT), "PATH": "/usr/bin:/bin",
                              "BENCHSUITE_RESULTS": str(results)})
    assert out.returncode == 0, out.stderr
    assert "benchsuite sweep show" in out.stdout
    assert not results.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
