"""Where things live: project root, the cache of trained models and results, the results table.

Everything stays inside the project folder unless the environment says otherwise:
`BENCHSUITE_CACHE` (default `<root>/.cache/benchsuite`), `BENCHSUITE_RESULTS`
(default `<root>/experiments/results`), `BENCHSUITE_SCHEDULES` (default `<root>/schedules`).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout holding `schedules/` (else the current directory)."""
    here = PACKAGE_DIR.parent
    return here if (here / "schedules").is_dir() else Path.cwd()


def cache_dir() -> Path:
    path = Path(os.environ.get("BENCHSUITE_CACHE") or project_root() / ".cache" / "benchsuite")
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    path = Path(os.environ.get("BENCHSUITE_RESULTS") or project_root() / "experiments" / "results")
    path.mkdir(parents=True, exist_ok=True)
    return path


def schedules_dir() -> Path:
    """Recipes and the grid: `BENCHSUITE_SCHEDULES` or `<root>/schedules`."""
    return Path(os.environ.get("BENCHSUITE_SCHEDULES") or project_root() / "schedules")
