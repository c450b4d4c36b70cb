"""The results table: one row per case run, appended to experiments/results/results.csv.

Its columns are the `CaseResult` fields that go to the table (`benchsuite/result.py`). The
per-layer table of each case goes beside it as `per_layer/<case_id>.csv`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import warnings
from dataclasses import fields
from pathlib import Path

import pandas as pd

from ..hashing import git_sha
from ..paths import results_dir
from ..result import COLUMNS, TABLE, VERDICT_KEYS, CaseResult

__all__ = ["COLUMNS", "VERDICT_KEYS", "append_row", "git_sha", "read_results"]


def per_layer_frame(row: CaseResult | dict) -> pd.DataFrame | None:
    """The dense and pruned per-layer latencies of a row as one table (None if absent)."""
    per_layer = row.get("per_layer") or {}
    frames = [pd.DataFrame(rows).assign(model=name) for name, rows in per_layer.items() if rows]
    return pd.concat(frames, ignore_index=True) if frames else None


@contextlib.contextmanager
def _locked(folder: Path):
    """One writer at a time (pytest-xdist workers share the table)."""
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class ResultsTableError(ValueError):
    """The results table cannot be read; the message names the file and what to do."""


def repair_tail(path: Path) -> Path | None:
    """A writer killed mid-row leaves a last line without its newline (often inside a quoted
    field). Move that partial line to ``<name>.partial-<time>`` beside the table, cut the table
    back to its last complete line, warn naming both files; return the quarantine file."""
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return None
    cut = data.rfind(b"\n") + 1
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    quarantine = path.with_name(f"{path.name}.partial-{stamp}")
    quarantine.write_bytes(data[cut:])
    with open(path, "r+b") as f:
        f.truncate(cut)
    lines = data[:cut].count(b"\n")
    warnings.warn(f"{path}: its last row was cut short (a writer was killed?); moved it to "
                  f"{quarantine} and kept the {lines} complete lines",
                  stacklevel=2)
    return quarantine


# identifiers stay text: a git sha such as 63834692e263 would otherwise parse as a float
TEXT_COLUMNS = tuple(f.name for f in fields(CaseResult) if f.type in ("str", "str | None"))


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str))
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ResultsTableError(
            f"results table {path} is not a readable CSV ({e}); move it aside (e.g. to "
            f"{path.name}.bad) and re-run the cases (cached results are re-recorded), or "
            "repair it by hand") from None


def append_row(row: CaseResult | dict, folder: Path | None = None) -> Path:
    """Append a result to results.csv (its table fields; a table written by an older version
    with other columns is widened), refresh results.parquet, and write the per-layer table to
    per_layer/<case_id>.csv. A partial last row left by a killed writer is quarantined first
    (``repair_tail``)."""
    if not isinstance(row, CaseResult):
        row = CaseResult.from_dict(row)
    folder = Path(folder or results_dir())
    folder.mkdir(parents=True, exist_ok=True)
    table = per_layer_frame(row)
    if table is not None:
        (folder / "per_layer").mkdir(exist_ok=True)
        table.to_csv(folder / "per_layer" / f"{row['case_id']}.csv", index=False)
    new = pd.DataFrame([row.select(TABLE)])
    path = folder / "results.csv"
    with _locked(folder):
        if path.is_file():
            repair_tail(path)
        old = _read_table(path) if path.is_file() and path.stat().st_size else None
        if old is not None and list(old.columns) == list(new.columns):
            new.to_csv(path, mode="a", header=False, index=False)
            full = pd.concat([old, new], ignore_index=True)
        else:
            frames = [f for f in (old, new) if f is not None]
            cols = list(dict.fromkeys([*COLUMNS, *(c for f in frames for c in f.columns)]))
            full = pd.concat(frames, ignore_index=True).reindex(columns=cols)
            full.to_csv(path, index=False)
        full.to_parquet(folder / "results.parquet", index=False)
    return path


def read_results(folder: Path | None = None) -> pd.DataFrame:
    """The results table; a file that does not parse raises ``ResultsTableError`` naming it."""
    path = Path(folder or results_dir()) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no results table at {path}: run `pytest -m latency` first")
    return _read_table(path)
