"""`module:callable` references: the user's own model or dataset, named on the command line.

`mypkg.models:tiny` imports `mypkg.models` and takes its attribute `tiny` (dotted attributes
are followed: `mod:Factory.build`). As with `python -m`, a module not found on `sys.path` is
looked for in the current directory too, so `mymodels:tiny` works for a `mymodels.py` beside
the run, whatever the pytest entry point.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchsuite.core.errors import UserError


def is_reference(value: str) -> bool:
    """True for `module:callable` (not a Windows-style or URL path, not `imagefolder:...`)."""
    module, sep, attr = value.partition(":")
    return bool(sep and module and attr) and all(
        part.isidentifier() for part in (*module.split("."), *attr.split(".")))


def _import(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module.split(".")[0] or str(Path.cwd()) in sys.path:
            raise
    sys.path.insert(0, str(Path.cwd()))  # what `python -m` does: the current directory
    return importlib.import_module(module)


def load_callable(reference: str, what: str) -> Callable[..., Any]:
    """The callable `reference` names; a clear ValueError when it cannot be found."""
    if not is_reference(reference):
        raise UserError(f"{what}: {reference!r} is not module:callable")
    module_name, _, attr = reference.partition(":")
    try:
        obj: Any = _import(module_name)
    except ModuleNotFoundError as exc:
        raise UserError(f"{what} {reference}: cannot import {module_name!r} ({exc}); put it "
                         "on PYTHONPATH or in the current directory") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            owner = obj.__name__ if inspect.ismodule(obj) else repr(obj)
            raise UserError(f"{what} {reference}: {owner} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{what} {reference}: {attr} is not callable")
    return obj


def source_digest(reference: str) -> str:
    """A digest of the source file defining `reference` (so its cached results follow edits);
    empty when it has none."""
    try:
        module = _import(reference.partition(":")[0])
        path = inspect.getsourcefile(module)
    except (ImportError, TypeError):
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if path else ""


def call_user(fn: Callable[..., Any], reference: str, what: str, *args: Any) -> Any:
    """`fn(*args)`, the user's model or dataset callable: an exception it raises is a
    UserError naming the reference, the exception and where it was raised (its line in the
    user's file), instead of a traceback through the suite (a worker then refuses the job once
    rather than retrying it)."""
    try:
        return fn(*args)
    except UserError:
        raise
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        try:
            own = inspect.getsourcefile(fn)
        except TypeError:
            own = None
        mine = [f for f in frames if f.filename == own] or frames[-1:]
        where = f" ({Path(mine[-1].filename).name}:{mine[-1].lineno})" if mine else ""
        raise UserError(f"{what} {reference}: calling it raised {type(exc).__name__}: "
                        f"{str(exc)[:300]}{where}") from None


def check_arguments(fn: Callable[..., Any], reference: str, what: str, wanted: str,
                    *args: Any) -> None:
    """A clear ValueError when `fn` cannot be called with `args` (`wanted` describes them),
    rather than a TypeError from somewhere inside the run."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to check (some builtins)
        return
    try:
        signature.bind(*args)
    except TypeError:
        raise UserError(f"{what} {reference}: must take {wanted}; its signature is "
                         f"{signature}") from None


IMAGEFOLDER = "imagefolder:"
FOLDER_DATASETS = ("fashion-mnist", "cifar10")  # read from --data-dir when one is given


def folder_digest(root: str | Path) -> str:
    """A digest of the files under `root` (symlinks followed, each folder once): their paths
    relative to it, sizes and modification times, as make and rsync tell a changed file. A
    cache keyed on a data folder's name alone took a folder whose images had changed (classes
    swapped) for the old one. Empty when `root` is no folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return ""
    h = hashlib.sha256()
    seen: set[Path] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = Path(folder).resolve()
        if real in seen:  # a symlink loop, or one folder linked twice
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            try:
                st = path.stat()
            except OSError:  # a dangling link: its name still counts
                st = None
            h.update(f"{path.relative_to(root).as_posix()}\0{st and st.st_size}\0"
                     f"{st and st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:16]


def input_digests(model: str, dataset: str, data_dir: str | None = None) -> dict[str, str]:
    """What a result depends on beyond the names of its model and data: the source of a
    `module:callable` model or dataset, the files of an `imagefolder:PATH` or of the
    `--data-dir` a dataset is read from. Empty for the built-in models and data."""
    out = {}
    if is_reference(model):
        out["model"] = source_digest(model)
    if is_reference(dataset):
        out["dataset"] = source_digest(dataset)
    elif dataset.startswith(IMAGEFOLDER):
        out["dataset"] = folder_digest(dataset.removeprefix(IMAGEFOLDER))
    elif data_dir and dataset in FOLDER_DATASETS:
        out["data_dir"] = f"{Path(data_dir).expanduser().resolve()} {folder_digest(data_dir)}"
    return {k: v for k, v in out.items() if v}
