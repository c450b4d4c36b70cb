"""What a session leaves when it ends: the pytest-benchmark file (where pytest-benchmark is
installed), a baseline if asked, the baseline check's coverage, and the lines of the
end-of-session summary. The pytest plugin calls
these with the session's results; anything else that runs a set of cases can too."""

from __future__ import annotations

import datetime as dt
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from benchsuite.core.paths import results_dir
from benchsuite.core.result import Row


@dataclass
class Coverage:
    """Which of the session's cases the latency baseline checked."""

    path: str
    checked: list[str]
    unchecked: list[str]

    def line(self) -> tuple[str, str | None]:
        """The summary line and its colour (None: plain)."""
        if not self.checked:
            return (f"latency baseline {self.path}: no case of this session is in it, so nothing "
                    "was checked (a baseline of another grid, model or precision?): session "
                    "failed", "red")
        extra = (f"; unchecked (not in the baseline): {', '.join(self.unchecked)}"
                 if self.unchecked else "")
        return (f"latency baseline {self.path}: {len(self.checked)} case(s) checked{extra}",
                "yellow" if self.unchecked else None)


@dataclass
class SessionOutputs:
    written: list[Path] = field(default_factory=list)
    coverage: Coverage | None = None
    errors: list[str] = field(default_factory=list)  # outputs that could not be written

    @property
    def failed(self) -> bool:
        """A baseline check that checked nothing, or an output not written, fails the
        session."""
        return bool(self.errors) or (self.coverage is not None and not self.coverage.checked)


def write_outputs(rows: list[Row], save_baseline_to: str | None,
                  check_baseline: str | None) -> SessionOutputs:
    from benchsuite.track.baseline import load_baseline, save_baseline
    from benchsuite.track.benchjson import write_benchmark_json

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = SessionOutputs()
    if importlib.util.find_spec("pytest_benchmark") is not None:  # its statistics, its reader
        out.written.append(write_benchmark_json(
            rows, results_dir() / "pytest-benchmark" / f"{stamp}.json"))
    if save_baseline_to:
        try:  # checked before any work; a disk that filled since is said, not a traceback
            out.written.append(save_baseline(rows, save_baseline_to))
        except OSError as e:
            out.errors.append(f"latency baseline not written to {save_baseline_to}: "
                              f"{e.strerror or e}")
    if check_baseline:
        known = load_baseline(check_baseline)
        labels = [r["label"] for r in rows]
        out.coverage = Coverage(check_baseline, [x for x in labels if x in known],
                                [x for x in labels if x not in known])
    return out


def summary_lines(rows: list[Row], calibrations: list[dict],
                  outputs: SessionOutputs | None) -> list[tuple[str, str | None]]:
    """(line, colour) of the end-of-session summary."""
    from benchsuite.track.summary import format_table

    lines: list[tuple[str, str | None]] = [(x, None) for x in
                                           format_table(rows, calibrations).splitlines()]
    if outputs is not None and outputs.coverage is not None:
        lines.append(outputs.coverage.line())
    lines.append((f"results table: {results_dir() / 'results.csv'}", None))
    lines.extend((f"written: {p}", None) for p in (outputs.written if outputs else []))
    lines.extend((error, "red") for error in (outputs.errors if outputs else []))
    return lines
