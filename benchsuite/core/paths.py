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

PACKAGE_DIR = Path(__file__).resolve().parents[1]
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


def results_dir(create: bool = True) -> Path:
    """Where the results table goes: `BENCHSUITE_RESULTS`, else `experiments/results` of the
    project (created, unless `create` is False: a command's --help creates nothing)."""
    path = Path(os.environ.get("BENCHSUITE_RESULTS") or project_root() / "experiments" / "results")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


PROBE_BYTES = 1 << 16  # written (and synced) into each output folder before any work


def probe_folder(folder: Path) -> None:
    """Write ``PROBE_BYTES`` into a temporary file in `folder` and sync it: an OSError here
    (read-only, no permission, a full disk or quota) rather than after a training."""
    with tempfile.TemporaryFile(dir=folder) as f:
        f.write(b"\0" * PROBE_BYTES)
        f.flush()
        os.fsync(f.fileno())


def unwritable_reason(e: OSError) -> str:
    return f"{e.strerror or e}: {e.filename}" if e.filename else f"{e.strerror or e}"


def schedules_dir() -> Path:
    """Recipes and the grid: `BENCHSUITE_SCHEDULES` or the packaged library."""
    return Path(os.environ.get("BENCHSUITE_SCHEDULES") or LIBRARY_DIR)


def found_dir() -> Path:
    """Where a sweep saves its best recipe: `<schedules>/found` in a checkout or with
    `BENCHSUITE_SCHEDULES`, else `./schedules/found` (not inside site-packages)."""
    if os.environ.get("BENCHSUITE_SCHEDULES") or in_checkout():
        return schedules_dir() / "found"
    return Path.cwd() / "schedules" / "found"
