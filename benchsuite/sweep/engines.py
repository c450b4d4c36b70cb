"""Sweep engines: a small seam between the search and where its trials live.

    engine.suggest() -> (trial_id, params) | None        # None: the sweep's budget is used up
    engine.tell(trial_id, objective, feasible, metrics)  # every trial, feasible or not

Engines keep their trials in a `TrialStore` (`store.RedisStore` to share one sweep between
agents and to resume a killed one; `store.MemoryStore` for one process):

- `SweepsEngine` (default): W&B's own engine, the `sweeps` package, offline. Each suggestion
  is computed from every trial in the store: finished feasible trials carry the metric in
  `summary_metrics`; infeasible and failed trials are `failed` runs (the engine imputes the
  worst value seen); trials still running are `running` runs (bayes accounts for them).
- `OptunaEngine`: Optuna's GPSampler, the accuracy floor as a constraint
  (`trial.set_constraint`), the study in Optuna's Redis journal storage.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import socket
import uuid
import warnings
from typing import Any

from benchsuite.sweep.config import SweepSpec
from benchsuite.sweep.fidelity import early_terminate, hyperband_stops, optuna_pruner
from benchsuite.sweep.store import FAILED, FINISHED, INFEASIBLE, RUNNING, STOPPED, Trial, TrialStore


def agent_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _seed_for(seed: int, number: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{number}".encode()).digest()[:4], "little")


class StoredEngine:
    """Claims trials in a store (atomically, with a lease) and asks `_propose` for params."""

    def __init__(self, spec: SweepSpec, store: TrialStore, budget: int, seed: int = 0,
                 owner: str | None = None, lease: float = 60.0) -> None:
        self.spec, self.store, self.budget, self.seed = spec, store, budget, seed
        self.owner = owner or agent_name()
        self.lease = lease
        self.claimed: dict[int, Trial] = {}
        self.told: list[int] = []

    def suggest(self) -> tuple[int, dict[str, Any]] | None:
        trial = self.store.claim(self.budget, self._propose, self.owner, self.lease)
        if trial is None:
            return None
        self.claimed[trial.number] = trial
        return trial.number, dict(trial.params)

    def heartbeat(self, trial_id: int) -> None:
        self.store.heartbeat(trial_id, self.owner, self.lease)

    def release(self, trial_id: int | None = None) -> list[int]:
        """Hand back this agent's running trial (all of them with None), untold: another
        agent, or this sweep resumed, re-runs it at once (an interrupted agent)."""
        numbers = self.store.release(self.owner, trial_id)
        for number in numbers:
            self.claimed.pop(number, None)
        return numbers

    @property
    def early_stopping(self) -> bool:
        """The sweep has `early_terminate`: trials report a value after every epoch."""
        return early_terminate(self.spec.config) is not None

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        """A running trial's held-out Top-1 after fine-tuning epoch `epoch` (from 1); True when
        the engine stops the trial (fidelity.py)."""
        self.store.report(trial_id, self.owner, value)
        return self.early_stopping and self._stop(trial_id, epoch, float(value))

    def tell(self, trial_id: int, objective: float | None, feasible: bool,
             metrics: dict[str, Any], failed: bool = False, stopped: bool = False) -> None:
        """`stopped`: the engine stopped the trial early (no objective)."""
        import time

        trial = self.claimed.pop(trial_id)
        if self.early_stopping:  # the values `report` stored while it ran
            trial.history = next((t.history for t in self.store.trials()
                                  if t.number == trial_id), trial.history)
        ok = objective is not None and math.isfinite(objective)
        trial.status = FAILED if failed or not ok else (FINISHED if feasible else INFEASIBLE)
        if stopped:
            trial.status = STOPPED
        trial.objective = objective if ok else None
        trial.metrics = dict(metrics)
        trial.finished = time.time()
        self._told(trial)
        self.store.finish(trial)
        self.told.append(trial_id)

    # engine specifics
    def _propose(self, number: int, trials: list[Trial]) -> tuple[dict[str, Any], Any] | None:
        raise NotImplementedError

    def _told(self, trial: Trial) -> None:
        pass

    def _stop(self, trial_id: int, epoch: int, value: float) -> bool:
        return False


class SweepsEngine(StoredEngine):
    """W&B's `sweeps` package (bayes, random, grid), run locally over the store's trials."""

    def _runs(self, trials: list[Trial]) -> list:
        from sweeps import RunState, SweepRun

        state = {FINISHED: RunState.finished, INFEASIBLE: RunState.failed,
                 FAILED: RunState.failed, RUNNING: RunState.running, STOPPED: RunState.killed}
        runs = []
        for t in trials:
            if not t.params:  # a record the store could not read: nothing to learn from
                continue
            summary = {self.spec.metric: t.objective} if t.status == FINISHED else {}
            runs.append(SweepRun(name=f"trial-{t.number}", state=state[t.status],
                                 config={k: {"value": v} for k, v in t.params.items()},
                                 summary_metrics=summary))
        return runs

    def _propose(self, number: int, trials: list[Trial]) -> tuple[dict[str, Any], Any] | None:
        import numpy as np
        import sweeps

        s = _seed_for(self.seed, number)  # reproducible per (seed, trial number)
        random.seed(s)
        np.random.seed(s)
        with warnings.catch_warnings():  # sklearn's GP fit warns on every few-point fit
            warnings.simplefilter("ignore")
            run = sweeps.next_run(dict(self.spec.config), self._runs(trials))
        if run is None:  # grid exhausted
            return None
        return {k: _plain(v["value"]) for k, v in run.config.items()}, None

    def _stop(self, trial_id: int, epoch: int, value: float) -> bool:
        return hyperband_stops(self.spec.config, self.store.trials(), trial_id)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python (JSON, YAML and the case hash want plain values)."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.10g}")  # q_uniform steps come back as 0.6000000000000001
    return value


def optuna_distributions(spec: SweepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Optuna distributions of the searched parameters, constant parameters)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dists: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for name, p in spec.config["parameters"].items():
        dist = p.get("distribution", "")
        if "value" in p:
            constants[name] = p["value"]
        elif "values" in p:
            dists[name] = CategoricalDistribution(p["values"])
        elif dist == "int_uniform" or (not dist and all(isinstance(p[k], int)
                                                        for k in ("min", "max"))):
            dists[name] = IntDistribution(p["min"], p["max"])
        elif dist in ("uniform", "q_uniform", ""):
            step = p.get("q") if dist == "q_uniform" else None
            dists[name] = FloatDistribution(float(p["min"]), float(p["max"]), step=step)
        elif dist in ("log_uniform_values", "q_log_uniform_values"):
            dists[name] = FloatDistribution(float(p["min"]), float(p["max"]), log=True)
        else:
            raise ValueError(f"parameters.{name}: distribution {dist!r} is not supported by "
                             "--sweep-engine optuna (use uniform, q_uniform, int_uniform, "
                             "log_uniform_values or values)")
    return dists, constants


class OptunaEngine(StoredEngine):
    """Optuna's GPSampler; accuracy floor as a constraint; study in Redis (journal storage)."""

    def __init__(self, spec: SweepSpec, store: TrialStore, budget: int, seed: int = 0,
                 owner: str | None = None, lease: float = 60.0, redis_url: str | None = None,
                 study_name: str | None = None) -> None:
        super().__init__(spec, store, budget, seed, owner, lease)
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalRedisBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage: Any = JournalStorage(JournalRedisBackend(redis_url)) if redis_url else None
        direction = "maximize" if spec.goal == "maximize" else "minimize"
        sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=3)
        self.study = optuna.create_study(storage=storage, sampler=sampler,
                                         pruner=optuna_pruner(spec.config),
                                         study_name=study_name or spec.name,
                                         direction=direction, load_if_exists=True)
        self.distributions, self.constants = optuna_distributions(spec)

    def _propose(self, number: int, trials: list[Trial]) -> tuple[dict[str, Any], Any] | None:
        trial = self.study.ask(self.distributions)
        return self.constants | dict(trial.params), trial._trial_id  # the storage's id

    def _told(self, trial: Trial) -> None:
        import optuna
        from optuna.trial import TrialState

        t = optuna.Trial(self.study, trial.engine_ref)
        if trial.status == STOPPED:
            self.study.tell(t, state=TrialState.PRUNED, skip_if_finished=True)
            return
        if trial.status == FAILED:
            self.study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
            return
        # the validation split's figures decide (older trials: the test split's)
        top1 = trial.metrics.get("val_top1", trial.metrics.get("top1"))
        floor = trial.metrics.get("val_floor", trial.metrics.get("threshold"))
        if top1 is not None and floor is not None:
            t.set_constraint("accuracy", float(floor) - float(top1))  # > 0: infeasible
        self.study.tell(t, trial.objective, skip_if_finished=True)


    def _stop(self, trial_id: int, epoch: int, value: float) -> bool:
        import optuna

        t = optuna.Trial(self.study, self.claimed[trial_id].engine_ref)
        maximize = self.study.direction == optuna.study.StudyDirection.MAXIMIZE
        # step = the W&B history index (epochs done - 1), so Optuna's rungs fall on the same
        # epochs as the sweeps package's bands (fidelity.py)
        t.report(value if maximize else 1.0 - value, epoch - 1)  # held-out Top-1 or error
        return t.should_prune()


ENGINES = {"sweeps": SweepsEngine, "optuna": OptunaEngine}


def make_engine(name: str, spec: SweepSpec, store: TrialStore, budget: int, seed: int = 0,
                redis_url: str | None = None, study_name: str | None = None,
                lease: float = 60.0) -> StoredEngine:
    if name not in ENGINES:
        raise ValueError(f"--sweep-engine: unknown engine {name!r} (one of "
                         f"{', '.join(ENGINES)})")
    if name == "optuna":
        return OptunaEngine(spec, store, budget, seed, lease=lease, redis_url=redis_url,
                            study_name=study_name)
    return SweepsEngine(spec, store, budget, seed, lease=lease)
