"""Multi-fidelity search: poor trials stop early, with the engines' own mechanisms.

A sweep file's `early_terminate` section (W&B's grammar: `{type: hyperband, min_iter: 1,
eta: 2}` or `{type: hyperband, max_iter: 8, s: 2, eta: 2}`) turns it on. The trial's prune
stage then evaluates the held-out Top-1 after every fine-tuning epoch and reports it on its
progress lines (`train.py`, `progress.epoch_line`), in-process or over the Redis progress
stream; `EpochWatch` hands each value to the engine, which decides:

- `sweeps` engine: W&B's own Hyperband stopping, offline (`sweeps.stop_runs` over every
  trial's history of held-out Top-1, maximised): a running trial whose best value so far is
  below the 1/eta quantile of all trials' values at the last band it passed stops. A band b
  indexes the history from 0: with min_iter 1, eta 2 (bands 1, 2, 4) the decisions fall after
  fine-tuning epochs 2, 3 and 5.
- `optuna` engine: `trial.report(value, epoch)` and `trial.should_prune()` with Optuna's
  `SuccessiveHalvingPruner(min_resource=min_iter, reduction_factor=eta,
  min_early_stopping_rate=0)`: the rule of W&B's bands (rungs at min_iter x eta^k, a trial
  continues while in the top 1/eta of those that reached the rung), with the epoch reported
  as the history index (epochs done - 1) so that the rungs fall on the same epochs.
  Optuna's HyperbandPruner would spread the trials over brackets by a hash of the study name
  and trial number, and a trial alone in its bracket is never stopped. The study's direction
  decides how values compare, so a minimising sweep (latency) reports the held-out error
  (1 - Top-1) instead.

A stopped trial raises `progress.StopStage` out of its case (a Redis worker is told to stop the
job), is stored with status `stopped` and its epochs, and is told to the engine (Optuna:
PRUNED; `sweeps`: a killed run, imputed as the worst value by bayes). The budget is counted in
fine-tuning epochs: `finetune_epochs_spent` per trial, their sum per sweep.
"""

from __future__ import annotations

from typing import Any, Protocol

from benchsuite.core.progress import StopStage, parse_epoch_top1
from benchsuite.sweep.store import RUNNING, Trial

INTERMEDIATE = "held_out_top1"  # the intermediate metric's name (W&B run history)


class Reporting(Protocol):
    def report(self, trial_id: int, epoch: int, value: float) -> bool: ...


def early_terminate(config: dict[str, Any]) -> dict[str, Any] | None:
    et = config.get("early_terminate")
    return dict(et) if et else None


def hyperband_stops(config: dict[str, Any], trials: list[Trial], number: int) -> bool:
    """W&B's Hyperband stopping (the `sweeps` package) on the held-out Top-1 histories: is
    running trial `number` among the runs to stop?"""
    import sweeps
    from sweeps import RunState, SweepRun

    cfg = dict(config) | {"metric": {"name": INTERMEDIATE, "goal": "maximize"}}
    runs = [SweepRun(name=f"trial-{t.number}",
                     state=RunState.running if t.status == RUNNING else RunState.finished,
                     config={k: {"value": v} for k, v in t.params.items()},
                     # by its alias: under pydantic 2 `history=` is silently dropped
                     sampledHistory=[{INTERMEDIATE: v} for v in t.history])
            for t in trials if t.history]
    return any(r.name == f"trial-{number}" for r in sweeps.stop_runs(cfg, runs))


def optuna_pruner(config: dict[str, Any]) -> Any:
    """Optuna's SuccessiveHalvingPruner with the sweep's `early_terminate` bands (NopPruner
    without one): first rung at min_iter, or at max_iter / eta^s (W&B's other form)."""
    import optuna

    et = early_terminate(config)
    if et is None:
        return optuna.pruners.NopPruner()
    eta = int(et.get("eta", 3))
    first = (int(et["min_iter"]) if "min_iter" in et
             else max(1, int(et["max_iter"] / eta ** int(et.get("s", 0)))))
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=eta,
                                                  min_early_stopping_rate=0)


class EpochWatch:
    """The progress-line callback of one trial: each epoch's held-out Top-1 goes to the engine;
    raises `StopStage` when the engine stops the trial."""

    def __init__(self, engine: Reporting, number: int, label: str = "") -> None:
        self.engine, self.number, self.label = engine, number, label
        self.history: list[float] = []
        self.epochs = 0  # fine-tuning epochs done (the budget spent)
        self.stopped: str | None = None

    def __call__(self, line: str) -> None:
        got = parse_epoch_top1(line)
        if got is None:
            return
        self.epochs, top1 = got
        self.history.append(top1)
        if self.engine.report(self.number, self.epochs, top1):
            self.stopped = (f"trial {self.number} stopped early after fine-tuning epoch "
                            f"{self.epochs}: held-out Top-1 {top1:.4f} "
                            f"(history {', '.join(f'{v:.4f}' for v in self.history)})")
            raise StopStage(self.stopped)

    def metrics(self) -> dict[str, Any]:
        return {"stopped": self.stopped, "finetune_epochs_spent": self.epochs,
                "epoch_top1": list(self.history)}


def epochs_spent(trials: list[Trial]) -> int:
    """Fine-tuning epochs the sweep's finished or stopped trials ran."""
    return sum(int(t.metrics.get("finetune_epochs_spent") or 0) for t in trials)
