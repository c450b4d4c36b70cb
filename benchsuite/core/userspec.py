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
import sys
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
