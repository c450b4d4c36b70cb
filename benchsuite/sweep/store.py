"""Where a sweep's trials live: Redis (shared by agents, survives a killed agent) or memory.

Redis keys, under `benchsuite:sweep:<sweep id>:`

- `counter`  INCR: trial numbers are claimed atomically, never twice;
- `trials`   hash, trial number -> JSON record (params, status, owner, lease, results);
- `lock`     held while a trial is claimed and its parameters suggested, so the engine's
  suggestion sees every other agent's trials (finished and running) and the budget check
  and the claim are one step;
- `config`   the sweep config the sweep started with (a resumed sweep must match it).

A running trial carries a lease its agent renews (`heartbeat`); a trial whose lease ran out
(its agent was killed) is handed to the next agent that claims, with the same number and
parameters, so a killed sweep resumes at the right trial count.  In Redis, leases are times
of Redis's own clock (`TIME`), never an agent's: an agent whose clock runs ahead must not take
a healthy agent's running trials for expired ones.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchsuite.core.errors import OperatorError

log = logging.getLogger(__name__)

RUNNING, FINISHED, INFEASIBLE, FAILED = "running", "finished", "infeasible", "failed"
STOPPED = "stopped"  # stopped early by the engine (multi-fidelity: `early_terminate`)
DONE = (FINISHED, INFEASIBLE, FAILED, STOPPED)
DAMAGED = "damaged"  # Trial.metrics key of a record that could not be read (`RedisStore.trials`)


class SweepStoreError(OperatorError):
    """The sweep store cannot serve the sweep (lost while it ran, damaged, or its private
    redis-server does not start); the message says which and what to do. A session stops on it
    at once: every later trial would meet it too."""


@contextlib.contextmanager
def private_store(folder: Path) -> Iterator[str]:
    """The URL of the private sweep store kept in `folder` (its append-only file), served by a
    redis-server of its own while the block runs. A store that does not start (its AOF
    damaged) is a `SweepStoreError` naming the file and the repair, not a traceback."""
    from benchsuite.broker.server import RedisServer, RedisServerError

    try:
        server = RedisServer(folder, appendonly=True).start()
    except RedisServerError as e:
        aof = folder / "appendonly.aof"
        raise SweepStoreError(
            f"the sweep store in {folder} does not start: redis-server says "
            f"{(e.reason or str(e).splitlines()[0])[:300]!r}; repair its append-only file "
            f"(redis-check-aof --fix {aof}, after a backup) or move {folder} aside to start "
            "the sweeps afresh (their cases come from the result cache)") from None
    try:
        yield server.url
    finally:
        server.stop()


@dataclass
class Trial:
    number: int
    params: dict[str, Any]
    status: str = RUNNING
    owner: str = ""
    lease_until: float = 0.0
    engine_ref: Any = None  # e.g. Optuna's trial number
    objective: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    started: float = field(default_factory=time.time)
    finished: float | None = None
    history: list[float] = field(default_factory=list)  # held-out Top-1 after each epoch

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Trial:
        return cls(**json.loads(text))

    def stale(self, now: float | None = None) -> bool:
        return self.status == RUNNING and self.lease_until < (now or time.time())


def _bad_trial(t: Trial, name: str) -> str | None:
    """Why a parsed trial record is not one, or None."""
    if not isinstance(t.number, int) or str(t.number) != name:
        return f"its number {t.number!r} is not its field {name!r}"
    if not isinstance(t.params, dict) or not isinstance(t.metrics, dict):
        return "params or metrics not a map"
    if t.status not in (RUNNING, *DONE):
        return f"unknown status {t.status!r}"
    if not isinstance(t.lease_until, int | float) or not isinstance(t.history, list):
        return "lease_until or history of the wrong type"
    return None


# propose(number, all trials so far) -> (params, engine_ref)
Propose = Callable[[int, list["Trial"]], tuple[dict[str, Any], Any] | None]


class TrialStore(Protocol):
    def claim(self, budget: int, propose: Propose, owner: str, lease: float) -> Trial | None: ...
    def finish(self, trial: Trial) -> None: ...
    def heartbeat(self, number: int, owner: str, lease: float) -> None: ...
    def report(self, number: int, owner: str, value: float) -> None: ...
    def release(self, owner: str, number: int | None = None) -> list[int]: ...
    def now(self) -> float: ...
    def trials(self) -> list[Trial]: ...


def _hand_back(t: Trial) -> None:
    """A running trial its agent gives up (Ctrl-C): no owner, its lease over, so the next
    claim of any agent re-runs it with the same number and parameters."""
    t.owner, t.lease_until = "", 0.0


def _pick(trials: list[Trial], budget: int, now: float) -> tuple[Trial | None, bool]:
    """(stale trial to re-run, or None; whether the budget still allows a new trial), with
    leases compared to `now` (the store's clock)."""
    stale = sorted((t for t in trials if t.stale(now)), key=lambda t: t.number)
    if stale:
        return stale[0], False
    used = sum(1 for t in trials if t.status in DONE or t.status == RUNNING)
    return None, used < budget


class MemoryStore:
    """One process, no sharing: for the surrogate benchmark and quick experiments."""

    def __init__(self) -> None:
        self._trials: dict[int, Trial] = {}
        self._lock = threading.Lock()

    def claim(self, budget: int, propose: Propose, owner: str, lease: float) -> Trial | None:
        with self._lock:
            stale, room = _pick(list(self._trials.values()), budget, time.time())
            if stale is not None:
                stale.owner, stale.lease_until = owner, time.time() + lease
                stale.attempts += 1
                return stale
            if not room:
                return None
            number = len(self._trials) + 1
            proposal = propose(number, self.trials())
            if proposal is None:
                return None
            params, ref = proposal
            trial = Trial(number, params, owner=owner, lease_until=time.time() + lease,
                          engine_ref=ref)
            self._trials[number] = trial
            return trial

    def finish(self, trial: Trial) -> None:
        with self._lock:
            self._trials[trial.number] = trial

    def heartbeat(self, number: int, owner: str, lease: float) -> None:
        with self._lock:
            t = self._trials.get(number)
            if t is not None and t.owner == owner and t.status == RUNNING:
                t.lease_until = time.time() + lease

    def report(self, number: int, owner: str, value: float) -> None:
        """Append a running trial's intermediate value (held-out Top-1 after an epoch)."""
        with self._lock:
            t = self._trials.get(number)
            if t is not None and t.owner == owner and t.status == RUNNING:
                t.history.append(float(value))

    def release(self, owner: str, number: int | None = None) -> list[int]:
        """Hand back `owner`'s running trials (or only trial `number`); their numbers."""
        with self._lock:
            mine = [t for t in self._trials.values() if t.owner == owner
                    and t.status == RUNNING and number in (None, t.number)]
            for t in mine:
                _hand_back(t)
            return sorted(t.number for t in mine)

    def now(self) -> float:
        return time.time()

    def trials(self) -> list[Trial]:
        return [Trial.from_json(t.to_json()) for t in sorted(self._trials.values(),
                                                             key=lambda t: t.number)]


class RedisStore:
    """The trials of sweep `sweep_id` in the Redis at `url` (shared by every agent)."""

    def __init__(self, url: str, sweep_id: str, config: dict | None = None) -> None:
        from benchsuite.broker.connection import connect

        self.url, self.sweep_id = url, sweep_id
        self.r = connect(url)
        self.prefix = f"benchsuite:sweep:{sweep_id}:"
        self.agent = config is not None  # an agent of the sweep (else a reader: sweep show)
        self._warned: set[str] = set()
        if config is not None:
            self._check_config(config)

    def key(self, name: str) -> str:
        return self.prefix + name

    def now(self) -> float:
        """Redis's clock (`TIME`): the one clock every agent's leases are measured on."""
        seconds, micros = self.r.time()
        return float(seconds) + micros / 1e6

    def _check_config(self, config: dict) -> None:
        text = json.dumps(config, sort_keys=True)
        if not self.r.set(self.key("config"), text, nx=True):
            stored = self.r.get(self.key("config"))
            stored = stored.decode() if isinstance(stored, bytes) else stored
            if stored != text:
                raise ValueError(f"sweep {self.sweep_id!r} in Redis was started with another "
                                 "config; use another --sweep-id (or delete the old sweep)")

    def _still_there(self) -> None:
        """An agent's check that the store still holds its sweep: a Redis restarted without
        persistence (or flushed) under a running sweep used to take the next trials under the
        numbers of lost ones, overwriting records, and say nothing."""
        if self.agent and not self.r.exists(self.key("config")):
            from benchsuite.broker.connection import mask_url

            raise SweepStoreError(
                f"sweep {self.sweep_id}: its store at {mask_url(self.url)} lost it while this "
                "agent ran (its config and trials are gone: a Redis restarted without "
                "persistence, or flushed); the sweep stops. Run it again to start it over (its "
                "cases come from the result cache), on a Redis with --appendonly yes")

    def claim(self, budget: int, propose: Propose, owner: str, lease: float) -> Trial | None:
        with self.r.lock(self.key("lock"), timeout=120, blocking_timeout=300):
            self._still_there()
            now = self.now()
            stale, room = _pick(self.trials(), budget, now)
            if stale is not None:
                stale.owner, stale.lease_until = owner, now + lease
                stale.attempts += 1
                self.r.hset(self.key("trials"), str(stale.number), stale.to_json())
                return stale
            if not room:
                return None
            number = int(self.r.get(self.key("counter")) or 0) + 1
            proposal = propose(number, self.trials())
            if proposal is None:  # the engine has nothing left (grid exhausted)
                return None
            params, ref = proposal
            claimed = int(self.r.incr(self.key("counter")))  # atomic: never twice
            if claimed != number:
                raise RuntimeError(f"sweep {self.sweep_id}: trial counter moved under the lock")
            trial = Trial(number, params, owner=owner, lease_until=self.now() + lease,
                          engine_ref=ref)
            self.r.hset(self.key("trials"), str(number), trial.to_json())
            return trial

    def finish(self, trial: Trial) -> None:
        self._still_there()
        self.r.hset(self.key("trials"), str(trial.number), trial.to_json())

    def heartbeat(self, number: int, owner: str, lease: float) -> None:
        """Renew the lease (to Redis's clock), atomically (WATCH/MULTI): never overwrites a
        finished record."""
        until = self.now() + lease
        self._update_running(number, owner, lambda t: setattr(t, "lease_until", until))

    def report(self, number: int, owner: str, value: float) -> None:
        """Append a running trial's intermediate value, atomically (WATCH/MULTI)."""
        self._update_running(number, owner, lambda t: t.history.append(float(value)))

    def release(self, owner: str, number: int | None = None) -> list[int]:
        """Hand back `owner`'s running trials (or only trial `number`), each atomically: the
        next claim of any agent re-runs them at once, instead of after their lease. Returns
        the numbers handed back."""
        numbers = [t.number for t in self.trials() if t.owner == owner
                   and t.status == RUNNING and number in (None, t.number)]
        return [n for n in numbers if self._update_running(n, owner, _hand_back)]

    def _update_running(self, number: int, owner: str, change: Callable[[Trial], None]) -> bool:
        """Apply `change` to trial `number` only while `owner` still runs it, in one
        WATCH/MULTI transaction (a trial finished or taken over meanwhile is left alone);
        True when it was applied."""
        key = self.key("trials")
        applied = [False]

        def update(pipe) -> None:
            raw = pipe.hget(key, str(number))
            if raw is None:
                return
            t = Trial.from_json(raw)
            if t.owner == owner and t.status == RUNNING:
                change(t)
                pipe.multi()
                pipe.hset(key, str(number), t.to_json())
                applied[0] = True

        self.r.transaction(update, key)
        return applied[0]

    def trials(self) -> list[Trial]:
        """The sweep's trials. A record that cannot be read (not JSON, a field missing or of
        the wrong type) counts as a failed trial under its number, with a warning naming it;
        a trials key that is no hash is a `SweepStoreError`."""
        import redis

        key = self.key("trials")
        try:
            raw = self.r.hgetall(key)
        except redis.ResponseError as e:
            if "WRONGTYPE" not in str(e):
                raise
            raise SweepStoreError(
                f"sweep {self.sweep_id}: {key} is a {self.r.type(key).decode()}, not the hash "
                "of its trials: the store is damaged; delete that key (the sweep starts over) "
                "or use another --sweep-id") from None
        out = []
        for field_name, value in raw.items():
            name = field_name.decode(errors="replace")
            trial = self._read(name, value)
            if trial is not None:
                out.append(trial)
        return sorted(out, key=lambda t: t.number)

    def _read(self, name: str, value: bytes) -> Trial | None:
        try:
            trial = Trial.from_json(value)
            why = _bad_trial(trial, name)
        except (ValueError, TypeError) as e:  # not JSON, fields missing or unknown
            why = f"{type(e).__name__}: {e}"
        if why is None:
            return trial
        where = f"{self.key('trials')} field {name!r}"
        if where not in self._warned:
            self._warned.add(where)
            log.warning("sweep %s: %s is unreadable (%s); counted as a failed trial",
                        self.sweep_id, where, why[:200])
        if not name.isdigit():
            return None
        return Trial(int(name), {}, status=FAILED, metrics={
            DAMAGED: f"unreadable record ({why[:200]})"})

    def delete(self) -> None:
        self.r.delete(*(self.key(k) for k in ("counter", "trials", "lock", "config")))

    def close(self) -> None:
        self.r.close()
