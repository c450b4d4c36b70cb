"""Content hashes for caching: the same inputs give the same key on any machine."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def content_hash(obj: Any, length: int = 16) -> str:
    """sha256 of the canonical JSON of `obj` (sorted keys), shortened to `length` hex digits."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_digest(path: Path, length: int = 16) -> str:
    """sha256 of a file's bytes, shortened to `length` hex digits (a cache key's input file)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:length]


def code_version(*parts: str, length: int = 12) -> str:
    """Hash of the package's source files under `parts` (module files or folders, relative to
    the package): cached results are keyed by it, so a code change re-runs what it affects."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for part in parts:
        target = package / part
        if not target.exists():  # a module moved and its key not updated: say which
            raise FileNotFoundError(f"code_version: {part!r} is not in {package}")
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for f in files:
            h.update(f.relative_to(package).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:length]


def git_sha() -> str:
    """The project's commit (12 hex digits), or "unknown" outside a git checkout."""
    import subprocess

    from benchsuite.core.paths import project_root

    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=project_root(),
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
