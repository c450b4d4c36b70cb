"""Progress of long stages (per-epoch training lines), from wherever the stage runs.

Training logs one line per epoch on the `benchsuite.core.progress` logger: `epoch 3/10 loss 0.412,
1.8 s/epoch, ETA 13 s`. `forward(callback)` hands the lines logged by the current thread to a
callback while a stage runs: the in-process executor passes them to the pytest session's
progress display, a Redis worker publishes them on the job's progress stream, which the
session's `RedisExecutor` reads while it waits for the result.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

LOGGER = "benchsuite.core.progress"
log = logging.getLogger(LOGGER)
Progress = Callable[[str], None]


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, s = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m:02d} min"


def epoch_line(epoch: int, epochs: int, loss: float, elapsed: float,
               top1: float | None = None) -> str:
    """`epoch i/N loss L, S s/epoch, ETA T` (epoch counted from 1; ETA from the mean so far),
    with `; held-out top1 A` when the stage evaluates after every epoch (multi-fidelity)."""
    done = epoch + 1
    per_epoch = elapsed / done
    eta = "done" if done >= epochs else f"ETA {format_seconds(per_epoch * (epochs - done))}"
    held_out = "" if top1 is None else f"; held-out top1 {top1:.4f}"
    return f"epoch {done}/{epochs} loss {loss:.3f}, {per_epoch:.1f} s/epoch, {eta}{held_out}"


_EPOCH_TOP1 = re.compile(r"epoch (\d+)/(\d+) .*; held-out top1 ([0-9.]+)")


def parse_epoch_top1(line: str) -> tuple[int, float] | None:
    """(epochs done, held-out Top-1) from an `epoch_line` that carries one, else None."""
    m = _EPOCH_TOP1.search(line)
    return (int(m.group(1)), float(m.group(3))) if m else None


class StopStage(Exception):
    """Raised by a progress callback to stop the stage that reports: a trial the search engine
    stops early (multi-fidelity). `forward` lets it through to the stage, which ends there; on
    a Redis worker the session marks the job cancelled and the worker stops at its next line."""


class _Forward(logging.Handler):
    def __init__(self, callback: Progress, thread: int) -> None:
        super().__init__(logging.INFO)
        self.callback, self.thread = callback, thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            self.callback(record.getMessage())
        except StopStage:
            raise
        except Exception:  # progress must never fail the work it reports on
            self.handleError(record)


@contextmanager
def forward(callback: Progress | None) -> Iterator[None]:
    """While the block runs, pass this thread's progress lines to `callback` (None: nothing)."""
    if callback is None:
        yield
        return
    handler = _Forward(callback, threading.get_ident())
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


CACHED_SECONDS = 1.0  # a case faster than this came from the result cache


class CaseCounter:
    """Case k of N and the session's ETA, from the mean time of the cases run so far (cases
    taken from the result cache count as done but not in the mean)."""

    def __init__(self, total: int = 0) -> None:
        self.total = total
        self.started = 0
        self.seconds: list[float] = []

    def start(self) -> str:
        """The line that opens a case: its number, and the session's ETA once one case ran."""
        self.started += 1
        total = max(self.total, self.started)
        text = f"case {self.started}/{total}"
        ran = [s for s in self.seconds if s >= CACHED_SECONDS]
        if ran:
            mean = sum(ran) / len(ran)
            text += (f", session ETA {format_seconds((total - self.started + 1) * mean)} "
                     f"(mean {format_seconds(mean)} a case)")
        return text

    def done(self, seconds: float) -> None:
        self.seconds.append(seconds)
