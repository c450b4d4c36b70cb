"""The stage contract and the in-process executor.

Every pipeline stage (train, prune, bench) is a function

    stage(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult

whose ``spec`` and ``StageResult.result`` are JSON-serialisable and whose artifacts are files.
That is what lets the broker put Redis between the stages: it ships the JSON as messages and the
files as content-addressed blobs.  ``LocalExecutor`` runs a stage in this process;
``benchsuite.broker`` provides an executor with the same ``run`` signature over Redis.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from benchsuite.core.progress import Progress, forward


@dataclass
class StageResult:
    """What a stage returns: a JSON-serialisable ``result`` and named artifact files."""

    result: dict
    files: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        json.dumps(self.result)  # fail early on anything that cannot cross the broker


StageFn = Callable[[dict, dict[str, Path], Path], StageResult]

# stage name -> ("module:function", worker kind that serves it)
STAGES: dict[str, tuple[str, str]] = {
    "train": ("benchsuite.pipeline.stages:train_stage", "prune"),
    "prune": ("benchsuite.pipeline.stages:prune_stage", "prune"),
    "bench": ("benchsuite.pipeline.stages:bench_stage", "bench"),
    "calibrate": ("benchsuite.pipeline.stages:calibrate_stage", "bench"),
    "latency_table": ("benchsuite.pipeline.stages:latency_table_stage", "bench"),
}


EXTRA_STAGES_ENV = "BENCHSUITE_EXTRA_STAGES"


def register_stage(name: str, target: str, kind: str) -> None:
    """Add (or replace) a stage: ``target`` is "module:function", ``kind`` "prune" or "bench"."""
    if ":" not in target:
        raise ValueError(f"stage target must be 'module:function', got {target!r}")
    STAGES[name] = (target, kind)


def register_stages_from_env(value: str | None = None) -> None:
    """Register ``name=module:function:kind,...`` entries (default: $BENCHSUITE_EXTRA_STAGES).

    Workers are separate processes, so this is how a test (or a plugin) gives them extra stages.
    """
    value = os.environ.get(EXTRA_STAGES_ENV, "") if value is None else value
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, rest = item.partition("=")
        target, _, kind = rest.rpartition(":")
        if not name or not target or not kind:
            raise ValueError(f"bad {EXTRA_STAGES_ENV} entry {item!r}: want name=module:func:kind")
        register_stage(name.strip(), target, kind)


register_stages_from_env()


def resolve_stage(name: str) -> StageFn:
    """Import the function behind a stage name (lazily: a bench env has no torch)."""
    try:
        target, _kind = STAGES[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; known: {sorted(STAGES)}") from None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def worker_kind(stage: str) -> str:
    """Which kind of worker ('prune' or 'bench') serves a stage."""
    return STAGES[stage][1]


class Executor(Protocol):
    def run(self, stage: str, spec: dict, files: dict[str, Path],
            progress: Progress | None = None) -> StageResult:
        """Run a stage; `progress` receives its progress lines (epochs) as they come."""
        ...


class LocalExecutor:
    """Runs stages in the current process; work files go under ``workdir/<stage>/<n>``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self._count = 0

    def run(self, stage: str, spec: dict, files: dict[str, Path],
            progress: Progress | None = None) -> StageResult:
        from benchsuite.core.trust import check_spec

        check_spec(stage, spec)  # a malformed built-in spec: a UserError naming the field
        self._count += 1
        out = self.workdir / stage / f"{self._count:04d}"
        out.mkdir(parents=True, exist_ok=True)
        with forward(progress):
            return resolve_stage(stage)(json.loads(json.dumps(spec)), dict(files), out)
