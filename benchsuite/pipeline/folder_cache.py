"""A stage's outputs cached on the worker's disk: one folder per content key, written whole.

    meta, files = cached_folder(cache_dir() / "dense", key, ("model.pt", ...), produce)

`produce(tmp)` writes the named files into a fresh folder and returns the result's meta (JSON);
the folder is renamed into place after `meta.json` (the hit mark, written last, holding each
file's size), so a full disk or a killed worker leaves no half entry under the key. A damaged
entry (a missing or truncated file, an unreadable mark) is moved aside, said, and produced
again. Concurrent callers (pytest-xdist workers, several workers on one machine) produce an
entry once: the key's lock file serialises them.

The dense models (`pipeline/dense.py`) and the pruned ones (`pipeline/stages.py`) use it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

log = logging.getLogger(__name__)
MARK = "meta.json"


def cached_folder(root: Path, key: str, names: tuple[str, ...],
                  produce: Callable[[Path], dict[str, Any]], what: str = "entry"
                  ) -> tuple[dict[str, Any], dict[str, Path], bool]:
    """(meta, {name: path}, hit): the entry `key` under `root`, produced by `produce` when it
    is missing or damaged. Optional files `produce` did not write are left out of the paths."""
    folder = root / key
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / f"{key}.lock"):
        if folder.exists():
            meta = _intact(folder)
            if meta is not None:
                return meta, _present(folder, meta), True
            _quarantine(folder, what)
        # a worker killed by a signal while producing leaves its temporary folder; under the
        # key's lock no one else is producing this key, so every one of them is stale
        for stale in root.glob(f".{key}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f".{key}.{os.getpid()}.tmp"
        tmp.mkdir(parents=True)
        try:
            meta = produce(tmp)
            meta["files"] = {n: (tmp / n).stat().st_size for n in names if (tmp / n).exists()}
            (tmp / MARK).write_text(json.dumps(meta, indent=1))  # the hit mark, last
            tmp.rename(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return meta, _present(folder, meta), False


def _present(folder: Path, meta: dict[str, Any]) -> dict[str, Path]:
    return {name: folder / name for name in meta["files"]}


def _intact(folder: Path) -> dict[str, Any] | None:
    """The entry's meta when its mark is readable and every file it lists has the size the
    mark recorded; else None (a damaged entry)."""
    try:
        meta = json.loads((folder / MARK).read_text())
        sizes = meta["files"]
        if all((folder / name).stat().st_size == size for name, size in sizes.items()):
            return meta
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _quarantine(folder: Path, what: str) -> None:
    """Move a damaged entry aside (kept for a look, never read again) and say so."""
    aside = folder.with_name(f"{folder.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    log.warning("the cached %s %s is damaged (a missing or truncated file, or no readable "
                "meta.json): moved to %s and made again", what, folder, aside)
    folder.rename(aside)
