"""Recording a case's result: the one service the pytest plugin, the W&B sweep agent and the
sweep benchmark all call.

`Recorder.record(result, threshold)` decides and records:
1. the accuracy floor (the threshold applied to the dense Top-1) and pass/fail;
2. one W&B run (offline by default), whose URL or local folder goes into the row;
3. the row in the results table (and its per-layer table);
4. the cache's `recorded` flag, last: a failure anywhere before leaves the case unrecorded, so
   the next run that finds it in the cache records it again (nothing lost).
A result taken from the cache that was already recorded is only decided.

`run_and_record(case, executor, threshold, recorder)` runs (or fetches) the case first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from benchsuite.core.paths import cache_dir, probe_folder, results_dir, unwritable_reason
from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.pipeline.run import mark_recorded, run_case
from benchsuite.recipe.case import Case

if TYPE_CHECKING:
    from benchsuite.pipeline.executor import Executor
    from benchsuite.track.wandb_log import WandbTracker


class Recorder:
    """Writes results to the results table (`results`: a folder, default the project's) and to
    W&B through `tracker` (None: no W&B run)."""

    def __init__(self, tracker: WandbTracker | None = None, results: Path | None = None,
                 wandb_every_time: bool = False) -> None:
        self.tracker = tracker
        self.results = results
        # a W&B sweep's agent: its run is the trial, so it gets the figures even when cached
        self.wandb_every_time = wandb_every_time

    def record(self, result: CaseResult, threshold: Threshold) -> CaseResult:
        from benchsuite.core.paths import results_dir
        from benchsuite.track.results_table import append_row, broken_table

        result = result.decided(threshold.floor(result.dense_top1))
        new = not (result.cached and result.recorded)
        table = Path(self.results or results_dir()) / "results.csv"
        if new and (error := broken_table(table)) is not None:
            raise error  # before the W&B run: a re-run after the fix logs it once
        if self.tracker is not None and (new or self.wandb_every_time):
            onnx = result.artifacts.get("pruned_onnx")
            run = self.tracker.log_case(result, Path(onnx) if onnx else None)
            result = replace(result, wandb_run=run or result.wandb_run)
        if not new:
            return result
        append_row(result, self.results)
        mark_recorded(result.case_id, result.wandb_run)
        return replace(result, recorded=True)


def run_and_record(case: Case, executor: Executor, threshold: Threshold, recorder: Recorder,
                   force: bool = False,
                   progress: Callable[[str], None] | None = None,
                   epoch_top1: bool = False) -> CaseResult:
    """Run one case (or take its cached result), decide it against `threshold`, record it
    (`epoch_top1`: see `run_case`)."""
    return recorder.record(run_case(case, executor, force=force, progress=progress,
                                    epoch_top1=epoch_top1), threshold)


def output_problems(wandb: bool = False, baseline: str | None = None) -> list[str]:
    """Why the results table, the cache or (`wandb`) the W&B folder cannot be written (empty
    when all can): checked before any work, so a bad folder or file does not fail a case after
    its training and benchmark. Each folder is written to (``probe_folder``); the results
    table's files are opened for append, and the table itself checked (a line that is not a
    row, named with its line: ``track.results.table_problem``); and where the session will
    save its latency baseline (`baseline`)."""
    problems = []
    for what, env, get in (("results", "BENCHSUITE_RESULTS", results_dir),
                           ("cache", "BENCHSUITE_CACHE", cache_dir)):
        try:
            probe_folder(get())
        except OSError as e:
            problems.append(f"the {what} folder cannot be written ({unwritable_reason(e)}); fix "
                            f"it or set ${env} to another folder")
    if not problems:
        problems += _results_table_problems(results_dir())
    if wandb:
        from benchsuite.track.wandb_log import wandb_dir

        folder = wandb_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe_folder(folder)
        except OSError as e:
            problems.append(f"the W&B folder cannot be written ({unwritable_reason(e)}); fix "
                            "it, set $WANDB_DIR to another folder or pass --wandb disabled")
    if baseline is not None:  # --save-latency-baseline: written at the end, checked now
        path = Path(baseline)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            probe_folder(path.parent)
            if path.is_dir():
                raise IsADirectoryError(21, "a folder, not a file", str(path))
        except OSError as e:
            problems.append(f"--save-latency-baseline {baseline}: cannot be written "
                            f"({unwritable_reason(e)})")
    return problems


def _results_table_problems(folder: Path) -> list[str]:
    from benchsuite.track.results_table import broken_table

    for name in (".lock", "results.csv", "results.parquet"):
        path = folder / name
        if name == ".lock" or path.exists():
            try:
                with open(path, "a"):
                    pass
            except OSError as e:
                return [f"the results table's file {path} cannot be opened for append "
                        f"({e.strerror}); fix it or set $BENCHSUITE_RESULTS to another folder"]
    per_layer = folder / "per_layer"
    if per_layer.exists():
        try:
            probe_folder(per_layer)
        except OSError as e:
            return [f"the per-layer tables' folder {per_layer} cannot be written "
                    f"({unwritable_reason(e)})"]
    error = broken_table(folder / "results.csv")
    return [str(error)] if error is not None else []
