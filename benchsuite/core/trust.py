"""What a job may make a worker do: which data it may read, whose code it may import.

A job's spec comes over Redis from whoever can write to the broker. Two of its fields reach
further than the job itself:

- **data**: `data_dir` of a `cifar10` job names a folder of *pickles* the worker loads, and
  `imagefolder:PATH` a folder of images it reads. A worker reads data only under the roots its
  operator gave it (`benchsuite worker prune --data-root DIR`, repeatable); a path is resolved
  (`~`, `..`, symlinks) before it is compared, so a link inside a root that points outside it
  does not count as inside.
- **code**: `--model module:callable` and `--dataset module:callable` import a module and call
  it: a job naming one runs that code on the worker. A worker imports user modules only when its
  operator allowed them: `--allow-user-code MODULE` (repeatable; `MODULE` and its submodules) or
  `--allow-user-code` alone (any module the worker can import).

The built-in models and the embedded digits need neither. A refused job is dead-lettered at
once (never retried: another attempt would be refused the same way) with a reason that names
the path or module and the worker option that allows it. The session's own local workers are
started with the roots and modules the session was given (`session_trust`).

And a bench job never chooses the program its worker runs: `worker_spec` puts the operator's
`--benchmark-app` in place of any executable the job names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchsuite.core.errors import UserError
from benchsuite.core.userspec import is_reference

log = logging.getLogger(__name__)

IMAGEFOLDER = "imagefolder:"
REFUSED = "refused: "
ANY_MODULE = "*"


class JobRefused(UserError):
    """A job asked for something its worker's operator did not allow (not retried)."""


@dataclass(frozen=True)
class Trust:
    """A worker's operator's grants: data roots and importable user modules."""

    data_roots: tuple[Path, ...] = ()
    user_modules: tuple[str, ...] = ()  # module names; ANY_MODULE: every module

    @classmethod
    def make(cls, data_roots: Iterable[str | Path] = (),
             user_modules: Iterable[str] = ()) -> Trust:
        roots = tuple(dict.fromkeys(_resolve(p) for p in data_roots if str(p)))
        return cls(roots, tuple(dict.fromkeys(m for m in user_modules if m)))

    def args(self) -> list[str]:
        """The worker options that grant this (for a worker started by the session)."""
        out: list[str] = []
        for root in self.data_roots:
            out += ["--data-root", str(root)]
        for module in self.user_modules:
            out += ["--allow-user-code"] if module == ANY_MODULE else ["--allow-user-code",
                                                                       module]
        return out

    def allows_module(self, module: str) -> bool:
        return any(m == ANY_MODULE or module == m or module.startswith(m + ".")
                   for m in self.user_modules)

    def allows_path(self, path: Path) -> bool:
        return any(path.is_relative_to(root) for root in self.data_roots)


def _resolve(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def data_paths(spec: dict) -> list[tuple[str, str]]:
    """(what, path) of every folder the job's stage would read data from."""
    dataset = str(spec.get("dataset") or "")
    if dataset.startswith(IMAGEFOLDER):
        return [(f"--dataset {dataset}", dataset.removeprefix(IMAGEFOLDER))]
    if dataset in ("cifar10", "fashion-mnist") and spec.get("data_dir"):  # else the worker's
        return [("--data-dir", str(spec["data_dir"]))]
    return []


def user_code(spec: dict) -> list[tuple[str, str]]:
    """(option, reference) of every `module:callable` the job's stage would import."""
    return [(f"--{key}", spec[key]) for key in ("model", "dataset")
            if isinstance(spec.get(key), str) and is_reference(spec[key])
            and not spec[key].startswith(IMAGEFOLDER)]


def check_job(spec: dict, trust: Trust) -> None:
    """Raise JobRefused if the job would read data outside the worker's roots or import user
    code its operator did not allow (its spec's form is the stage's to check: `Stage.check`)."""
    if not isinstance(spec, dict):
        return
    for what, text in data_paths(spec):
        path = _resolve(text)
        if not trust.allows_path(path):
            roots = ", ".join(map(str, trust.data_roots)) or "none"
            raise JobRefused(
                f"{REFUSED}{what} reads {text!r} (resolved: {path}), outside this worker's data "
                f"roots ({roots}); start the worker with --data-root DIR to allow a folder")
    for option, reference in user_code(spec):
        module = reference.partition(":")[0]
        if not trust.allows_module(module):
            raise JobRefused(
                f"{REFUSED}{option} {reference} would import and run module {module!r} on this "
                f"worker, which its operator did not allow; start the worker with "
                f"--allow-user-code {module.split('.')[0]} (or --allow-user-code for any module)")


def session_trust(data_dirs: Iterable[str | None], datasets: Iterable[str],
                  models: Iterable[str]) -> Trust:
    """What the session's own local workers may do: read the session's data folders and import
    the modules the session named (the session itself reads and imports them anyway)."""
    roots: list[str] = [d for d in data_dirs if d]
    modules: list[str] = []
    for name in (*datasets, *models):
        if name.startswith(IMAGEFOLDER):
            roots.append(name.removeprefix(IMAGEFOLDER))
        elif is_reference(name):
            modules.append(name.partition(":")[0])
    # a folder that does not exist is no root (the case's own validation says it is missing)
    return Trust.make([r for r in roots if Path(r).expanduser().is_dir()], modules)


def worker_spec(spec: dict, kind: str, benchmark_app: str | None, job_id: str = "") -> dict:
    """A copy of the job's spec as the worker runs it: a bench worker runs its operator's
    benchmark_app (`--benchmark-app`, else its environment's), never one a job names."""
    spec = json.loads(json.dumps(spec))
    settings = spec.get("settings") if kind == "bench" else None
    if isinstance(settings, dict):
        if settings.get("executable") not in (None, benchmark_app):
            log.warning("job %s: its executable %r ignored", job_id, settings["executable"])
        settings["executable"] = benchmark_app
    return spec
