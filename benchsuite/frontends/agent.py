"""The program a `wandb agent` runs for each trial of an online W&B sweep.

    wandb sweep schedules/sweeps/resnet20_width.yaml   # prints the sweep id
    wandb agent ENTITY/PROJECT/SWEEP_ID                 # runs, per trial:
    /usr/bin/env python -m benchsuite.frontends.agent --recipe=l1_filters --sparsity=0.35 ...

The agent passes every sweep parameter as `--name=value` (its `${args}` macro: the value
formatted with Python's `str`), and also writes them to the YAML file named by
`$WANDB_SWEEP_PARAM_PATH` (`{name: {value: ...}}`), which `wandb.init` loads into
`wandb.config`; both are read here, the command line winning. The case runs in this process
(`LocalExecutor`), its row goes to the results table, and one W&B run (the agent's run:
`$WANDB_RUN_ID`) gets the summary, where W&B reads the sweep's metric. Exit status: 0 for a
feasible trial, 3 for an infeasible one (Top-1 under the floor: W&B marks the run failed and
its Bayesian search imputes the worst value, as the offline engine does), 2 for bad parameters.
Set `WANDB_AGENT_MAX_INITIAL_FAILURES` high, or the agent stops after 5 early infeasible runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file (`program: benchsuite/frontends/agent.py`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchsuite.recipe import RecipeError
from benchsuite.recipe.yamltext import load_yaml, load_yaml_file

EXIT_INFEASIBLE = 3


def _value(text: str) -> Any:
    if text == "None":
        return None
    try:
        return load_yaml(text)
    except RecipeError:
        return text


def parse_args(argv: list[str]) -> dict[str, Any]:
    """`--a=1 --b x c=2` -> {'a': 1, 'b': 'x', 'c': 2} (the agent's argument formats)."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        key, eq, text = arg.lstrip("-+").partition("=")
        if not key:
            raise ValueError(f"bad argument {arg!r}")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                text, i = argv[i + 1], i + 1
            else:
                text = "True"  # a bare boolean flag (args_no_boolean_flags)
        out[key.replace("-", "_")] = _value(text)
        i += 1
    return out


def sweep_params_file() -> dict[str, Any]:
    path = os.environ.get("WANDB_SWEEP_PARAM_PATH")
    if not path or not Path(path).is_file():
        return {}
    doc = load_yaml_file(Path(path)) or {}
    return {k: v["value"] if isinstance(v, dict) and "value" in v else v
            for k, v in doc.items() if k != "wandb_version"}


def build_case(params: dict[str, Any]):
    """(case, threshold or None, dropped parameter names) from one trial's parameters."""
    from dataclasses import replace

    from benchsuite.core.threshold import Threshold
    from benchsuite.recipe import template_parameters
    from benchsuite.recipe.case import CASE_SETTINGS, Case
    from benchsuite.sweep.config import RECIPE_KEY, THRESHOLD_KEY, recipe_path

    if RECIPE_KEY not in params:
        raise ValueError(f"no --{RECIPE_KEY}=NAME among the parameters {sorted(params)}")
    path = recipe_path(str(params[RECIPE_KEY]))
    if not Path(path).is_file():
        raise ValueError(f"--{RECIPE_KEY}={params[RECIPE_KEY]}: no recipe file {path}")
    known = template_parameters(Path(path).read_text())
    reserved = {RECIPE_KEY, THRESHOLD_KEY, *CASE_SETTINGS}
    template = {k: v for k, v in params.items() if k in known}
    dropped = sorted(k for k in params if k not in known and k not in reserved)
    case = replace(Case(recipe=path).with_settings({k: v for k, v in params.items()
                                                    if v is not None}), params=template)
    threshold = params.get(THRESHOLD_KEY)
    return case, (Threshold.parse(threshold) if threshold is not None else None), dropped


def main(argv: list[str] | None = None) -> int:
    from benchsuite.core.threshold import Threshold
    from benchsuite.pipeline.executor import LocalExecutor
    from benchsuite.track.recording import Recorder, run_and_record
    from benchsuite.track.wandb_log import WandbTracker

    parser = argparse.ArgumentParser(prog="benchsuite.frontends.agent", add_help=False)
    parser.add_argument("--help", "-h", action="store_true")
    known, rest = parser.parse_known_args(argv if argv is not None else sys.argv[1:])
    if known.help:
        print(__doc__)
        return 0
    try:
        params = sweep_params_file() | parse_args(rest)
        case, threshold, dropped = build_case(params)
    except ValueError as e:
        print(f"agent_entry: {e}", file=sys.stderr)
        return 2
    threshold = threshold or Threshold.parse(os.environ.get("BENCHSUITE_ACCURACY_THRESHOLD",
                                                            "-1pt"))
    if dropped:
        print(f"agent_entry: {case.recipe_name} has no template parameter(s) "
              f"{', '.join(dropped)}: ignored")
    print(f"agent_entry: {case.label} (threshold {threshold})", flush=True)
    sweep = os.environ.get("WANDB_SWEEP_ID", "local")
    tracker = WandbTracker(group=f"sweep-{sweep}")
    try:
        with tempfile.TemporaryDirectory(prefix="bs-agent-") as work:
            row = run_and_record(case, LocalExecutor(Path(work)), threshold,
                                 Recorder(tracker, wandb_every_time=True),
                                 progress=lambda stage: print(f"  {stage}", flush=True))
    finally:
        tracker.close()
    floor = row.threshold
    figures = (f"Top-1 {row['top1']:.4f} (floor {floor:.4f}), speed-up {row['speedup']:.2f}x, "
               f"latency {row['latency_median_us']:.1f} us")
    if not row["passed"]:
        print(f"agent_entry: infeasible: {figures}")
        return EXIT_INFEASIBLE
    print(f"agent_entry: feasible: {figures}")
    return 0


if __name__ == "__main__":
    if __package__ in (None, ""):
        from benchsuite.frontends.agent import main as _main

        sys.exit(_main())
    sys.exit(main())
