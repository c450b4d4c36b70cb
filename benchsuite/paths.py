"""Where things live: the recipe library, the cache of trained models and results, the results.

In a checkout (the folder holding `pyproject.toml` next to the package) everything stays inside
it; an installed benchsuite writes under the current directory. The environment overrides:
`BENCHSUITE_CACHE` (default `<root>/.cache/benchsuite`), `BENCHSUITE_RESULTS` (default
`<root>/experiments/results`), `BENCHSUITE_SCHEDULES` (default: the recipe library shipped in
the package as `benchsuite/schedules/`; in a checkout that is a link to `schedules/`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
LIBRARY_DIR = PACKAGE_DIR / "schedules"  # the recipe library, grid.yaml, sweep configs


def in_checkout() -> bool:
    """True when this benchsuite is a source checkout (or an editable install of one)."""
    return (PACKAGE_DIR.parent / "pyproject.toml").is_file()


def project_root() -> Path:
    """The checkout, else the current directory (an installed benchsuite never writes into
    site-packages)."""
    return PACKAGE_DIR.parent if in_checkout() else Path.cwd()


def cache_dir() -> Path:
    path = Path(os.environ.get("BENCHSUITE_CACHE") or project_root() / ".cache" / "benchsuite")
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    path = Path(os.environ.get("BENCHSUITE_RESULTS") or project_root() / "experiments" / "results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def output_problems() -> list[str]:
    """Why the results or cache folder cannot be written (empty when both can): checked before
    any work, so a bad folder does not fail a case after its training and benchmark."""
    problems = []
    for what, env, get in (("results", "BENCHSUITE_RESULTS", results_dir),
                           ("cache", "BENCHSUITE_CACHE", cache_dir)):
        try:
            with tempfile.TemporaryFile(dir=get()):
                pass
        except OSError as e:
            problems.append(f"the {what} folder cannot be written ({e.strerror}: "
                            f"{e.filename}); fix it or set ${env} to another folder")
    return problems


def schedules_dir() -> Path:
    """Recipes and the grid: `BENCHSUITE_SCHEDULES` or the packaged library."""
    return Path(os.environ.get("BENCHSUITE_SCHEDULES") or LIBRARY_DIR)


def found_dir() -> Path:
    """Where a sweep saves its best recipe: `<schedules>/found` in a checkout or with
    `BENCHSUITE_SCHEDULES`, else `./schedules/found` (not inside site-packages)."""
    if os.environ.get("BENCHSUITE_SCHEDULES") or in_checkout():
        return schedules_dir() / "found"
    return Path.cwd() / "schedules" / "found"
