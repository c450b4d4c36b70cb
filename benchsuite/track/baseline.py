"""Latency regression checks against a saved baseline.

A baseline holds, per case label, the speed-up (dense / pruned latency, both measured in the same
run, so it compares across machines far better than raw latencies) with its 95 % interval, and
the Top-1. A case regresses when even the upper end of its speed-up's interval lies below
baseline × (1 − tolerance): a verdict the measurement's own uncertainty cannot explain; and, when
the pair can be measured again, when it does so in every one of ``1 + CONFIRMATIONS``
measurements (``confirmed_check``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchsuite.core.result import BASELINE, CONDITION, Row, keys_for

VERSION = 2
READABLE = (1, 2)  # version 1: no intervals (its speed-ups are read as exact)
DEFAULT_TOLERANCE = 0.05
CONFIRMATIONS = 2  # a regression is measured again this many times before it fails the case
REMEASURED = ("speedup", "speedup_ci_low", "speedup_ci_high", "speedup_method",
              "latency_median_us", "dense_latency_median_us")
CONDITIONS = keys_for(CONDITION)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str
    note: str = ""  # the baseline's conditions that differ from this run's, if any


def load_baseline(path: str | Path) -> dict[str, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"latency baseline {path} not found (write one with "
                                f"--save-latency-baseline {path})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        cases = doc["cases"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, RecursionError) as e:
        raise ValueError(f"latency baseline {path} is not a benchsuite baseline: "
                         f"{type(e).__name__ if isinstance(e, RecursionError) else e}") from None
    if doc.get("version") not in READABLE:
        raise ValueError(f"latency baseline {path}: version {doc.get('version')!r}, "
                         f"expected one of {READABLE}")
    if not isinstance(cases, dict):
        raise ValueError(f"latency baseline {path}: 'cases' must map case labels to entries, "
                         f"got {type(cases).__name__}")
    for label, entry in cases.items():
        speed = entry.get("speedup") if isinstance(entry, dict) else None
        if not isinstance(speed, int | float) or speed <= 0:
            raise ValueError(f"latency baseline {path}: cases.{label}.speedup must be a "
                             f"positive number, got {speed!r}")
    return cases


def baseline_problem(path: str | Path) -> str | None:
    """Why the --latency-baseline file cannot be used (missing, truncated, not a baseline, not
    readable), in one line naming it; None when it loads. Checked before any work, so it is a
    usage error rather than a fixture's traceback at the first case."""
    try:
        load_baseline(path)
    except FileNotFoundError as e:
        return str(e)
    except OSError as e:
        return f"latency baseline {path} cannot be read ({e.strerror})"
    except ValueError as e:
        return str(e)
    return None


def save_baseline(rows: list[Row], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cases = {
        r["label"]: {k: r.get(k) for k in keys_for(BASELINE)}
        | {"conditions": {k: r.get(k) for k in CONDITIONS}}
        for r in rows
    }
    doc = {"version": VERSION, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "git_sha": rows[0].get("git_sha") if rows else None, "cases": cases}
    tmp = path.with_name(f".{path.name}.tmp")  # a failed write leaves the old file as it was
    try:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _interval(entry: dict) -> str:
    low, high = entry.get("speedup_ci_low"), entry.get("speedup_ci_high")
    if low is None or high is None:
        return f"{entry['speedup']:.3f}x (no interval recorded)"
    return f"{entry['speedup']:.3f}x [{low:.3f}, {high:.3f}]"


def check(row: Row, baseline: dict[str, dict], tolerance: float = DEFAULT_TOLERANCE) -> Verdict:
    """Compare one result row with its baseline entry (missing entry: ok, said so).

    Fails when the row's interval lies wholly below baseline × (1 − tolerance): its upper end
    (the point estimate when the row has no interval) is under that floor."""
    base = baseline.get(row["label"])
    if base is None:
        return Verdict(True, f"{row['label']}: not in the baseline (not checked)")
    floor = base["speedup"] * (1 - tolerance)
    other = conditions_differ(base.get("conditions") or {}, row)
    high = row.get("speedup_ci_high")
    high = row["speedup"] if high is None or high != high else high  # NaN: no interval
    now = _interval(row)
    if high < floor:
        return Verdict(False, (
            f"{row['label']}: speed-up regressed: {now} lies below the baseline "
            f"{_interval(base)} - {tolerance:.0%} = {floor:.3f}x (method: "
            f"{row.get('speedup_method') or 'unknown'}; pruned "
            f"{row['latency_median_us']:.1f} µs vs dense {row['dense_latency_median_us']:.1f} µs "
            f"in this run; baseline {base['latency_median_us']:.1f} vs "
            f"{base['dense_latency_median_us']:.1f} µs){other}"), other)
    return Verdict(True, f"{row['label']}: speed-up {now} reaches {floor:.3f}x{other}", other)


def confirmed_check(row: Row, baseline: dict[str, dict], tolerance: float = DEFAULT_TOLERANCE,
                    again: Callable[[], dict | None] | None = None,
                    confirmations: int = CONFIRMATIONS) -> Verdict:
    """`check`, and on a regression the pair measured again (``again()``: the bench stage's
    result fields, None when it cannot) up to ``confirmations`` times: the case regresses only
    when every measurement does. On a shared VM the ratio of two models leaves its level for a
    second or more now and then, and a measurement inside such a spell reads several percent
    low with a tight interval (docs/measurements.md, "Measurement noise"); a real regression
    reads low every time."""
    verdict = check(row, baseline, tolerance)
    readings: list[str] = []
    while not verdict.ok and again is not None and len(readings) < confirmations:
        bench = again()
        if bench is None:
            break
        retry = dict(row) | {k: bench[k] for k in REMEASURED}
        readings.append(_interval(retry))
        verdict = check(retry, baseline, tolerance)
    if not readings:
        return verdict
    said = f"measured again: {', '.join(readings)}"
    if verdict.ok:  # a first reading inside a spell: say so, do not fail
        return Verdict(True, verdict.message, f"{verdict.note}; first measurement regressed, "
                                              f"{said}")
    return Verdict(False, f"{verdict.message}; {said}", verdict.note)


def conditions_differ(base: dict, row: Row) -> str:
    """A note naming the conditions under which the baseline was measured that differ from
    this run's (another CPU, precision, thread count...), or "" when they match: a speed-up
    carries across load, far less across hardware (bf16 is native on one CPU, not another)."""
    diffs = [f"{k} {base[k]!r} vs {row.get(k)!r} now" for k in CONDITIONS
             if base.get(k) is not None and row.get(k) is not None and base[k] != row[k]]
    return f"; baseline measured under other conditions: {', '.join(diffs)}" if diffs else ""
