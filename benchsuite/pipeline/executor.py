"""The stage contract and the in-process executor.

A pipeline stage (train, prune, bench, ...) is a `Stage` object: a name, the kind of worker that
serves it, and a function

    run(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult

whose ``spec`` (a TypedDict of `core/stage_specs.py`) and ``StageResult.result`` are JSON and
whose artifacts are files. That is what lets the broker put Redis between the stages: it ships
the JSON as messages and the files as content-addressed blobs. An executor runs a `Stage`:
``LocalExecutor`` in this process, ``broker.RedisExecutor`` on a worker over Redis (the job
message carries the stage's name; the worker finds the object in `pipeline.stages.STAGES`).
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
from benchsuite.core.stage_specs import check_spec


@dataclass
class StageResult:
    """What a stage returns: a JSON-serialisable ``result`` and named artifact files."""

    result: dict
    files: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        json.dumps(self.result)  # fail early on anything that cannot cross the broker


StageFn = Callable[[dict, dict[str, Path], Path], StageResult]


@dataclass(frozen=True)
class Stage:
    """A pipeline stage, as an executor runs it: its name (what a job message carries), the
    kind of worker that serves it ("prune": torch; "bench": OpenVINO), the function and the
    TypedDict its spec must fit (`core/stage_specs.py`; None: not checked)."""

    name: str
    kind: str
    run: StageFn
    spec: type | None = None
    check_settings: Callable[[str, dict], None] | None = None  # the spec's "settings" object

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"stage {self.name!r}: kind must be one of {KINDS}, got "
                             f"{self.kind!r}")

    def check(self, spec: dict) -> None:
        """A spec that does not fit is a UserError naming the field (before any work: the
        executors call it before they run or submit a job, the worker before it runs one)."""
        if self.check_settings is not None and isinstance(spec, dict) \
                and isinstance(spec.get("settings"), dict):  # an unknown key: named first
            self.check_settings(self.name, spec["settings"])
        if self.spec is not None:
            check_spec(self.name, spec, self.spec)


KINDS = ("prune", "bench")
EXTRA_STAGES_ENV = "BENCHSUITE_EXTRA_STAGES"


def extra_stages(value: str | None = None) -> dict[str, str]:
    """Stages a test (or a plugin) adds to the workers, which are separate processes:
    ``$BENCHSUITE_EXTRA_STAGES`` = ``name=module:ATTRIBUTE,...``, each attribute a `Stage`.
    Returns {name: target}; a target is imported when a job names it (`load_stage`)."""
    value = os.environ.get(EXTRA_STAGES_ENV, "") if value is None else value
    out = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, target = item.partition("=")
        if not name.strip() or ":" not in target:
            raise ValueError(f"bad {EXTRA_STAGES_ENV} entry {item!r}: want name=module:ATTR")
        out[name.strip()] = target.strip()
    return out


def load_stage(target: str) -> Stage:
    """The `Stage` object at "module:ATTRIBUTE"."""
    module, _, attr = target.partition(":")
    stage = getattr(importlib.import_module(module), attr)
    if not isinstance(stage, Stage):
        raise TypeError(f"{target} is a {type(stage).__name__}, not a Stage")
    return stage


class Executor(Protocol):
    def run(self, stage: Stage, spec: dict, files: dict[str, Path],
            progress: Progress | None = None) -> StageResult:
        """Run a stage; `progress` receives its progress lines (epochs) as they come."""
        ...


class LocalExecutor:
    """Runs stages in the current process; work files go under ``workdir/<stage>/<n>``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self._count = 0

    def run(self, stage: Stage, spec: dict, files: dict[str, Path],
            progress: Progress | None = None) -> StageResult:
        stage.check(spec)  # a malformed spec: a UserError naming the field
        self._count += 1
        out = self.workdir / stage.name / f"{self._count:04d}"
        out.mkdir(parents=True, exist_ok=True)
        with forward(progress):  # the spec as it would cross the broker: JSON
            return stage.run(json.loads(json.dumps(spec)), dict(files), out)
