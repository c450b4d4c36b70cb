"""One sweep as seen by one agent: claim a trial, build its case, report back; the best result.

Used by the pytest plugin (one test item per trial), by `agent_entry` (W&B agent) and by the
benchmark. Knows nothing of pytest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchsuite.core.paths import found_dir
from benchsuite.core.progress import StopStage
from benchsuite.core.result import TRIAL, CaseResult, Row, keys_for
from benchsuite.core.threshold import Threshold
from benchsuite.pipeline.grid import found_recipe_info  # noqa: F401  (re-exported: the header reader)
from benchsuite.recipe.case import Case, shown
from benchsuite.sweep.config import SweepSpec
from benchsuite.sweep.engines import StoredEngine
from benchsuite.sweep.fidelity import EpochWatch, epochs_spent
from benchsuite.sweep.store import DAMAGED, FINISHED, RUNNING, Trial

REPORT_KEYS = keys_for(TRIAL)
log = logging.getLogger(__name__)


@dataclass
class TrialRun:
    number: int
    params: dict[str, Any]
    case: Case
    threshold: Threshold
    watch: EpochWatch | None = None  # the sweep stops trials early (fidelity.py)

    @property
    def stopped(self) -> str | None:
        """Why the engine stopped this trial early, or None."""
        return self.watch.stopped if self.watch is not None else None


class SweepSession:
    def __init__(self, spec: SweepSpec, engine: StoredEngine, base: Case,
                 threshold: Threshold, sweep_id: str) -> None:
        self.spec, self.engine, self.base = spec, engine, base
        self.threshold = spec.threshold(threshold)  # the sweep's floor (a trial may set its own)
        self.sweep_id = sweep_id
        self.ran: list[int] = []  # trials this agent ran
        self.outcomes: list[str] = []

    def constant_case_skip(self, reason: Callable[[str, str | None], str | None]) -> str | None:
        """`reason(device, precision)` for the sweep's fixed device and precision (the file's
        `value:` or the command line's), before any trial is claimed; None when searched."""
        params = self.spec.config["parameters"]
        if any("value" not in params.get(k, {"value": None}) for k in ("device", "precision")):
            return None  # searched: each trial's case is checked when it runs
        device = self.spec.constant("device") or self.base.device
        precision = self.spec.constant("precision") if "precision" in params \
            else self.base.precision
        why = reason(device, None if precision == "default" else precision)
        return f"sweep {self.sweep_id}: {why}" if why else None

    def claim(self) -> TrialRun | None:
        """The next trial (None when the sweep's budget is used up)."""
        got = self.engine.suggest()
        if got is None:
            return None
        number, params = got
        watch = EpochWatch(self.engine, number) if self.engine.early_stopping else None
        return TrialRun(number, params, self.spec.case_for(params, self.base),
                        self.spec.threshold(self.threshold, params), watch)

    @contextlib.contextmanager
    def running(self, trial: TrialRun) -> Iterator[None]:
        """Renew the trial's lease while it runs; a trial that raises is told as failed, one
        the engine stopped early (`StopStage` from its `watch`) as stopped, with its epochs
        (then the block ends quietly: check `trial.stopped`)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(max(self.engine.lease / 3, 0.2)):
                with contextlib.suppress(Exception):
                    self.engine.heartbeat(trial.number)

        thread = threading.Thread(target=beat, daemon=True, name=f"sweep-lease-{trial.number}")
        thread.start()
        try:
            yield
        except StopStage:
            stop.set()
            thread.join()
            if trial.watch is None or trial.watch.stopped is None:
                raise  # not this trial's stop
            self.engine.tell(trial.number, None, False, trial.watch.metrics(), stopped=True)
            self.outcomes.append(trial.watch.stopped)
        except KeyboardInterrupt:  # Ctrl-C: hand the trial back untold, stop the sweep
            stop.set()
            thread.join()
            try:
                self.engine.release(trial.number)
                self.outcomes.append(f"trial {trial.number}: interrupted, handed back (the "
                                     "next run of this sweep re-runs it)")
            except Exception as exc:  # the interrupt stays what the caller sees
                log.warning("sweep %s: could not hand back trial %d (%s); it is re-run once "
                            "its lease runs out", self.sweep_id, trial.number, exc)
            raise
        except BaseException as exc:
            stop.set()
            thread.join()
            if trial.number in self.engine.claimed:
                try:
                    self.engine.tell(trial.number, None, False, {"error": repr(exc)[:500]},
                                     failed=True)
                    self.outcomes.append(f"trial {trial.number}: failed ({exc!r:.200})")
                except Exception as told:  # keep the trial's own error, not this one
                    log.warning("sweep %s: could not record trial %d as failed: %s",
                                self.sweep_id, trial.number, told)
            raise
        finally:
            stop.set()
            thread.join()

    def hand_back(self) -> list[int]:
        """Hand back every trial this agent still holds (the session ends, perhaps on Ctrl-C
        outside `running`): the next agent re-runs them at once, not after their lease."""
        try:
            return self.engine.release()
        except Exception as exc:
            log.warning("sweep %s: could not hand back this agent's trials: %s",
                        self.sweep_id, exc)
            return []

    def no_trial_reason(self) -> str:
        """Why `claim` gave no trial: the budget is used up, or its last trials are still
        leased by other agents (live ones, or gone ones whose lease has not run out: then the
        next run of the sweep re-runs them), or the engine has nothing left to propose."""
        trials = self.trials()
        now = self.engine.store.now()
        leased = [t for t in trials if t.status == RUNNING and not t.stale(now)
                  and t.owner != self.engine.owner]
        if leased:
            held = ", ".join(f"trial {t.number} by {t.owner or '?'} (lease "
                             f"{max(0.0, t.lease_until - now):.0f} s more)" for t in leased)
            return (f"sweep {self.sweep_id}: no trial free, {held} still running; if that "
                    "agent is gone, run the sweep again once its lease is over to re-run it")
        if len(trials) < self.engine.budget:
            return (f"sweep {self.sweep_id}: the engine proposes no further trial after "
                    f"{len(trials)} (of a budget of {self.engine.budget})")
        return (f"sweep {self.sweep_id}: budget of {self.engine.budget} trials reached "
                "(other agents ran the rest)")

    def record(self, trial: TrialRun, row: Row) -> str:
        """Tell the engine; returns a one-line verdict with the figures."""
        metrics = {k: row.get(k) for k in REPORT_KEYS} | {
            "finetune_epochs_spent": row.get("finetune_epochs"),
            "epoch_top1": trial.watch.history if trial.watch else None}
        # the search chooses on the validation split; the test split is the case's verdict
        val_top1, val_floor, feasible = _record(row).on_validation(trial.threshold)
        metrics |= {"val_top1": val_top1, "val_floor": val_floor}
        objective = self.spec.objective(row)
        self.engine.tell(trial.number, objective, feasible, metrics)
        self.ran.append(trial.number)
        verdict = (f"trial {trial.number} {'feasible' if feasible else 'INFEASIBLE'}: "
                   f"{self.spec.metric} {objective:.4g}, validation Top-1 {val_top1:.4f} vs "
                   f"floor {val_floor:.4f} (threshold {trial.threshold}); test Top-1 "
                   f"{row['top1']:.4f} vs {row['threshold']:.4f} (dense "
                   f"{row['dense_top1']:.4f}), speed-up {row['speedup']:.2f}x; params "
                   f"{json.dumps(_searched(self.spec, trial.params), sort_keys=True)}")
        self.outcomes.append(verdict)
        return verdict

    # --- results ---------------------------------------------------------------------------
    def trials(self) -> list[Trial]:
        return self.engine.store.trials()

    def best(self) -> Trial | None:
        return best_trial(self.spec, self.trials())

    @staticmethod
    def no_gain(best: Trial) -> str | None:
        """Why the best feasible trial is not worth saving (its speed-up's interval does not
        lie above 1: no faster than the dense model), or None."""
        speedup = best.metrics.get("speedup")
        if not isinstance(speedup, int | float):
            return None
        low, high = best.metrics.get("speedup_ci_low"), best.metrics.get("speedup_ci_high")
        known = isinstance(low, int | float) and isinstance(high, int | float)
        if (low if known else speedup) > 1.0:
            return None
        interval = f" [{low:.3f}, {high:.3f}]" if known else ""
        return (f"best feasible trial {best.number}: {speedup:.3f}x{interval} is no gain over "
                "the dense model: not saved to schedules/found/")

    def save_found(self, best: Trial, folder: Path | None = None) -> Path:
        """The best configuration as a plain recipe (rendered, no placeholders)."""
        return write_found_recipe(
            self.spec.case_for(best.params, self.base),
            found_by=f"sweep {self.sweep_id} ({self.spec.path or self.spec.name}), engine "
                     f"{type(self.engine).__name__}, method {self.spec.method}",
            result={k: best.metrics.get(k) for k in ("speedup", "top1", "threshold",
                                                     "latency_median_us")},
            path=Path(folder or found_dir()) / f"{_slug(self.sweep_id)}.yaml", trial=best.number)

    def summary_lines(self) -> list[str]:
        trials = self.trials()
        done = sum(1 for t in trials if t.status != "running")
        lines = [f"sweep {self.sweep_id}: {done}/{self.engine.budget} trials done "
                 f"({len(self.ran)} by this agent), engine {type(self.engine).__name__}, "
                 f"method {self.spec.method}, objective {self.spec.metric} "
                 f"({self.spec.goal}) s.t. Top-1 >= floor ({self.threshold}); "
                 f"fine-tuning epochs spent: {epochs_spent(trials)}"
                 + (f" (early_terminate: {self.spec.config['early_terminate']})"
                    if self.engine.early_stopping else "")]
        for t in trials:
            figures = (f"{self.spec.metric} {t.objective:.4g}, Top-1 {t.metrics.get('top1')}"
                       if t.objective is not None
                       else t.metrics.get("error", "") or t.metrics.get(DAMAGED, "")
                       or (f"held-out Top-1 {t.history}" if t.history else ""))
            spent = t.metrics.get("finetune_epochs_spent")
            lines.append(f"  trial {t.number:3d} {t.status:10s} {figures}"
                         f"{f', {spent} epochs' if spent is not None else ''}  "
                         f"{json.dumps(_searched(self.spec, t.params), sort_keys=True)}")
        best = best_trial(self.spec, trials)
        if best is None:
            lines.append("no feasible trial yet")
        else:
            lines.append(f"best feasible: trial {best.number}, {self.spec.metric} "
                         f"{best.objective:.4g}, Top-1 {best.metrics.get('top1')}, params "
                         f"{json.dumps(_searched(self.spec, best.params), sort_keys=True)}")
        return lines


def _record(row: Row) -> CaseResult:
    return row if isinstance(row, CaseResult) else CaseResult.from_dict(dict(row))


def best_trial(spec: SweepSpec, trials: list[Trial]) -> Trial | None:
    feasible = [t for t in trials if t.status == FINISHED and t.objective is not None]
    if not feasible:
        return None
    pick = max if spec.goal == "maximize" else min
    return pick(feasible, key=lambda t: t.objective)


def _searched(spec: SweepSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that vary (constants left out, for readable lines)."""
    cfg = spec.config["parameters"]
    return {k: float(shown(v)) if isinstance(v, float) else v
            for k, v in params.items() if "value" not in cfg.get(k, {})}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def log_best(tracker: Any, session: SweepSession, best: Trial, found: Path | None) -> None:
    """One W&B run `sweep-best-<id>`: the best trial's parameters and figures, all trials."""
    if tracker is None or tracker.mode == "disabled":
        return
    import os

    wandb = tracker._module()  # through the tracker: its close() stops wandb-core
    run = wandb.init(project=tracker.project, group=tracker.group, job_type="sweep-best",
                     name=f"sweep-best-{session.sweep_id}", mode=tracker.mode,
                     dir=os.environ["WANDB_DIR"], reinit="finish_previous",
                     config={"sweep_id": session.sweep_id, "sweep_config": session.spec.config,
                             "params": best.params, "trial": best.number})
    try:
        run.summary.update({k: v for k, v in best.metrics.items() if k != "label"}
                           | {"found_recipe": str(found) if found else None})
        rows = [[t.number, t.status, t.objective, json.dumps(t.params, sort_keys=True)]
                for t in session.trials()]
        run.log({"trials": wandb.Table(columns=["trial", "status", "objective", "params"],
                                       data=rows)})
    finally:
        run.finish()


def write_found_recipe(case: Case, found_by: str, result: dict[str, Any], path: Path,
                       trial: int | None = None) -> Path:
    """A found configuration as a plain recipe in schedules/found/: the case's rendered recipe
    under a header (`grid.found_recipe_info` reads it) naming what found it, the case settings
    it was measured with and its figures."""
    header = {
        "found_by": found_by, "trial": trial,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "from_recipe": case.recipe_name, "template_parameters": case.params,
        "case": {"model": case.model, "dataset": case.dataset, "device": case.device,
                 "precision": case.precision, "epochs": case.epochs,
                 "dense_epochs": case.dense_epochs, "train_images": case.train_images,
                 "seed": case.seed},
        "result": result,
    }
    comment = "".join(f"# {line}\n" for line in
                      yaml.safe_dump(header, sort_keys=False).splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comment + case.recipe_text())
    return path
