"""The results table: one row per case run, appended to experiments/results/results.csv.

Its columns are the `CaseResult` fields that go to the table (`benchsuite/core/result.py`). The
per-layer table of each case goes beside it as `per_layer/<case_id>.csv`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import tempfile
import warnings
from dataclasses import fields
from pathlib import Path

import pandas as pd
from filelock import FileLock

from benchsuite.core.errors import UserError
from benchsuite.core.hashing import git_sha
from benchsuite.core.paths import results_dir
from benchsuite.core.result import COLUMNS, TABLE, VERDICT_KEYS, CaseResult

__all__ = ["COLUMNS", "VERDICT_KEYS", "append_row", "git_sha", "read_results"]


def per_layer_frame(row: CaseResult | dict) -> pd.DataFrame | None:
    """The dense and pruned per-layer latencies of a row as one table (None if absent)."""
    per_layer = row.get("per_layer") or {}
    frames = [pd.DataFrame(rows).assign(model=name) for name, rows in per_layer.items() if rows]
    return pd.concat(frames, ignore_index=True) if frames else None


def _locked(folder: Path) -> FileLock:
    """One writer at a time (pytest-xdist workers, several sessions share the table)."""
    return FileLock(folder / ".lock")


class ResultsTableError(UserError):
    """The results table cannot be read; the message names the file and what to do (a user
    error: a case fails with the message alone)."""


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
# columns a new row writes as numbers or booleans: a text value there in the table (a garbage
# line) made the Parquet copy fail, after the CSV append
NUMBER_COLUMNS = frozenset(f.name for f in fields(CaseResult)
                           if f.name in COLUMNS and f.type.split(" |")[0] in ("int", "float"))
BOOL_COLUMNS = frozenset(f.name for f in fields(CaseResult)
                         if f.name in COLUMNS and f.type.split(" |")[0] == "bool")
BOOL_TEXT = ("", "True", "False")
QUOTE = 80  # characters of a bad line or value quoted in a message


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == ""
    return True


def table_problem(path: Path) -> str | None:
    """Why the results table at `path` cannot take another row, naming the file and the first
    bad line (a line with more fields than the header, a value of the wrong type in a number or
    true/false column, bytes that are not UTF-8, a file that cannot be read), or None when it
    can (or does not exist yet). A last line cut short by a killed writer is no problem: the
    next append quarantines it (``repair_tail``)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # no table yet (a bad folder: its own error)
        return None
    except OSError as e:
        return f"results table {path} cannot be read ({e.strerror})"
    if data and not data.endswith(b"\n"):
        data = data[:data.rfind(b"\n") + 1]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        return f"results table {path}, line {line}: not UTF-8 text (byte {e.start})"
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return None
        start = reader.line_num + 1
        for record in reader:
            if len(record) > len(header):
                return (f"results table {path}, line {start}: {len(record)} fields where the "
                        f"header has {len(header)} ({_cut(','.join(record))})")
            for name, value in zip(header, record, strict=False):
                if name in NUMBER_COLUMNS and not _number(value):
                    return (f"results table {path}, line {start}: column {name}: "
                            f"{_cut(value)!r} is not a number")
                if name in BOOL_COLUMNS and value not in BOOL_TEXT:
                    return (f"results table {path}, line {start}: column {name}: "
                            f"{_cut(value)!r} is not True or False")
            start = reader.line_num + 1
    except csv.Error as e:
        return f"results table {path}, line {start}: not CSV ({e})"
    return None


def _cut(text: str) -> str:
    return text if len(text) <= QUOTE else text[:QUOTE - 3] + "..."


def broken_table(path: Path) -> ResultsTableError | None:
    """`table_problem` as the error to raise, with what to do."""
    problem = table_problem(path)
    if problem is None:
        return None
    return ResultsTableError(f"{problem}; fix or delete that line, or move the table aside "
                             f"(e.g. to {path.name}.bad): cached results are recorded again")


def _read_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str))
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ResultsTableError(
            f"results table {path} is not a readable CSV ({e}); move it aside (e.g. to "
            f"{path.name}.bad) and re-run the cases (cached results are re-recorded), or "
            "repair it by hand") from None


def _replace_with(path: Path, write) -> None:
    """Write a file through a temporary one beside it, renamed into place: a failed write
    (a full disk) leaves the old file as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def append_row(row: CaseResult | dict, folder: Path | None = None) -> Path:
    """Append a result to results.csv (its table fields; a table written by an older version
    with other columns is widened), refresh results.parquet, and write the per-layer table to
    per_layer/<case_id>.csv. A partial last row left by a killed writer is quarantined first
    (``repair_tail``); a broken table (``table_problem``) raises ``ResultsTableError`` before
    anything is written. The row is recorded once: the Parquet copy is written (to a temporary
    file) before the CSV append and renamed into place after it, so it cannot fail an append
    that was made."""
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
            if (error := broken_table(path)) is not None:
                raise error
        old = _read_table(path) if path.is_file() and path.stat().st_size else None
        same = old is not None and list(old.columns) == list(new.columns)
        if same:
            full = pd.concat([old, new], ignore_index=True)
        else:
            frames = [f for f in (old, new) if f is not None]
            cols = list(dict.fromkeys([*COLUMNS, *(c for f in frames for c in f.columns)]))
            full = pd.concat(frames, ignore_index=True).reindex(columns=cols)
        parquet = folder / "results.parquet"
        fd, staged = tempfile.mkstemp(dir=folder, prefix=".results.parquet.", suffix=".tmp")
        os.close(fd)
        try:
            full.to_parquet(staged, index=False)  # fails here, before the CSV is touched
            if same:
                new.to_csv(path, mode="a", header=False, index=False)
            else:
                _replace_with(path, lambda tmp: full.to_csv(tmp, index=False))
            os.replace(staged, parquet)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
    return path


def read_results(folder: Path | None = None) -> pd.DataFrame:
    """The results table; a file that does not parse raises ``ResultsTableError`` naming it."""
    path = Path(folder or results_dir()) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no results table at {path}: run `pytest -m latency` first")
    return _read_table(path)
