"""The worker loop: serve one kind of stage ("prune" or "bench") from its job stream.

Each of ``concurrency`` threads is a consumer of the stream's group.  A thread takes a job (first
any job left pending by a dead worker for longer than ``claim_idle``, via XAUTOCLAIM; else a new
one), downloads its input blobs, runs the stage, uploads the output files and then, in one Lua
script, writes the result, acknowledges and deletes the job.  While a job runs, the main thread
keeps its pending entry fresh (so no live worker's job is reclaimed) and beats a heartbeat key.

Failures: a malformed message, an unknown stage, a missing input blob or a job its worker's
trust refuses (data outside its roots, user code it was not allowed: ``trust.py``) is
dead-lettered at once; a stage that raises is re-queued until the job's ``max_attempts`` runs
have failed, then dead-lettered with the error text.  Each dead letter also goes to the job's
result stream, so the waiting executor raises with the reason.  SIGTERM (or SIGINT): stop taking
jobs, finish the running ones within ``grace`` seconds, hand back the rest (re-queued, attempt
not counted)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import redis

from benchsuite.broker.blobs import DEFAULT_TTL, LOST_BLOB_HINT, BlobMissing, BlobStore
from benchsuite.broker.connection import (
    call_until_available,
    connect,
    is_connection_error,
    mask_url,
)
from benchsuite.broker.health import environment
from benchsuite.broker.messages import FIELD, Job, MessageError, Result, parse_job, salvage_address
from benchsuite.broker.streams import (
    GROUP,
    WORKER_PREFIX,
    Streams,
    attempts_key,
    ensure_group,
    forget_idle_consumers,
    job_stream,
    unique_worker_id,
)
from benchsuite.core.errors import OperatorError, UserError
from benchsuite.core.progress import StopStage, forward
from benchsuite.core.trust import Trust, check_job, worker_spec
from benchsuite.pipeline.stages import stage_named

log = logging.getLogger("benchsuite.worker")

@dataclass
class WorkerConfig:
    url: str
    kind: str  # "prune" or "bench"
    device: str = "CPU"
    concurrency: int = 1
    benchmark_app: str | None = None
    workdir: Path | None = None
    claim_idle: float = 60.0  # s a job may sit pending untouched before another worker takes it
    heartbeat: float = 5.0
    grace: float = 30.0  # s to finish running jobs after SIGTERM before handing them back
    block: float = 1.0
    blob_ttl: int | None = DEFAULT_TTL
    worker_id: str = ""
    trust: Trust = field(default_factory=Trust)  # data roots, user modules (trust.py)


@dataclass
class _Running:
    entry_id: str
    consumer: str
    raw: bytes
    job: Job | None = None
    since: float = field(default_factory=time.time)
    attempt: int = 0
    state: str = "running"  # running | finishing | handed_back


class Worker:
    def __init__(self, cfg: WorkerConfig) -> None:
        self.cfg = cfg
        self.stream = job_stream(cfg.kind, cfg.device)
        self.r = connect(cfg.url, socket_timeout=cfg.block + 10)
        self.worker_id = unique_worker_id(  # an id no live worker has (containers share pids)
            self.r, cfg.worker_id or f"{cfg.kind}-{socket.gethostname()}-{os.getpid()}")
        self.stop = threading.Event()
        self.running: dict[str, _Running] = {}
        self.lock = threading.Lock()
        self.counts = {"done": 0, "failed": 0, "dead": 0, "reclaimed": 0}
        self.started = time.time()
        self.env = environment()
        self.base = Path(cfg.workdir or tempfile.mkdtemp(prefix=f"bs-{cfg.kind}-worker-"))
        self.streams = Streams(self.r)
        self.blobs = BlobStore(self.r, ttl=cfg.blob_ttl, url=cfg.url)
        self._last_reclaim = 0.0

    def run(self) -> int:  # the main thread: heartbeats and keeping running jobs claimed
        cfg = self.cfg
        self._retry(ensure_group, self.r, self.stream)
        if cfg.kind == "bench" and cfg.benchmark_app:
            os.environ["BENCHSUITE_BENCHMARK_APP"] = cfg.benchmark_app
        log.info("worker %s serving %s on %s (concurrency %d, claim idle %gs); env %s",
                 self.worker_id, self.stream, mask_url(cfg.url), cfg.concurrency, cfg.claim_idle,
                 json.dumps({k: self.env[k] for k in ("python", "torch", "openvino")}))
        self._install_signals()
        threads = [threading.Thread(target=self._serve, args=(f"{self.worker_id}-{i}",),
                                    name=f"consumer-{i}", daemon=True)
                   for i in range(cfg.concurrency)]
        for t in threads:
            t.start()
        tick = max(0.05, min(cfg.heartbeat, cfg.claim_idle / 4))
        last_beat = last_tidy = 0.0
        while not self.stop.is_set():
            self._keep_alive()
            if time.time() - last_beat >= cfg.heartbeat:
                self._beat("busy" if self.running else "idle")
                last_beat = time.time()
            if time.time() - last_tidy >= 10 * cfg.claim_idle:
                last_tidy = time.time()
                self._tidy()
            self.stop.wait(tick)
        self._shutdown(threads, tick)
        return 0

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, _frame: object) -> None:
            if self.stop.is_set():
                log.warning("second %s: handing back running jobs now", signal.Signals(signum).name)
                self.cfg.grace = 0
            log.info("%s: finishing running jobs (up to %gs), taking no new ones",
                     signal.Signals(signum).name, self.cfg.grace)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        # a worker started with SIGINT ignored (its session runs in the background: `cmd &` in
        # a script) keeps ignoring it, as its session does: a SIGINT to the process group
        # stopped the workers while the session went on waiting for them
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, handler)

    def _shutdown(self, threads: list[threading.Thread], tick: float) -> None:
        stopping = time.time()
        self._beat("stopping")  # a second signal sets grace to 0: the deadline moves with it
        while any(t.is_alive() for t in threads) and time.time() < stopping + self.cfg.grace:
            self._keep_alive()
            time.sleep(min(tick, 0.1))
        with self.lock:
            left = [run for run in self.running.values() if run.state == "running"]
            for run in left:
                run.state = "handed_back"
        for run in left:
            job_id = run.job.job_id if run.job else "none"
            try:
                self.streams.requeue(self.stream, run.entry_id, run.raw.decode(),
                                     -1 if run.attempt else 0, job_id)
                log.info("handed back job %s (%s)", job_id, run.job.stage if run.job else "?")
            except redis.RedisError as exc:
                log.warning("could not hand back %s (%s); it will be reclaimed", run.entry_id, exc)
        with contextlib.suppress(redis.RedisError):
            self.r.delete(WORKER_PREFIX + self.worker_id)
        shutil.rmtree(self.base, ignore_errors=True) if self.cfg.workdir is None else None
        log.info("worker %s stopped: %s", self.worker_id, self.counts)

    # ---- health ------------------------------------------------------------------------------
    def _beat(self, state: str) -> None:
        with self.lock:
            running = [{"job_id": run.job.job_id if run.job else "", "entry_id": run.entry_id,
                        "stage": run.job.stage if run.job else "", "since": run.since,
                        "attempt": run.attempt} for run in self.running.values()]
        beat = {"worker_id": self.worker_id, "kind": self.cfg.kind, "device": self.cfg.device,
                "stream": self.stream, "pid": os.getpid(), "state": state, "beat": time.time(),
                "started": self.started, "concurrency": self.cfg.concurrency,
                "benchmark_app": self.cfg.benchmark_app or "", "running": running,
                "counts": dict(self.counts), "env": self.env}
        ttl = max(3 * self.cfg.heartbeat, 10)
        try:
            self.r.set(WORKER_PREFIX + self.worker_id, json.dumps(beat), ex=int(ttl) + 1)
        except redis.RedisError as exc:
            log.warning("heartbeat failed: %s", exc)

    def _tidy(self) -> None:
        try:
            if n := forget_idle_consumers(self.r, self.stream, 10 * self.cfg.claim_idle,
                                          keep=self.worker_id):
                log.info("forgot %d idle consumer(s) of stopped workers", n)
        except redis.RedisError as exc:
            log.debug("tidy failed: %s", exc)

    def _keep_alive(self) -> None:
        """Reset the idle time of our running jobs' pending entries (so nobody reclaims them)."""
        with self.lock:
            entries = [(run.entry_id, run.consumer) for run in self.running.values()]
        for entry_id, consumer in entries:
            try:
                self.streams.touch(self.stream, entry_id, consumer)
            except redis.RedisError as exc:
                log.debug("touch %s failed: %s", entry_id, exc)

    # ---- the consumer threads ----------------------------------------------------------------
    def _serve(self, consumer: str) -> None:
        backoff = 0.1
        while not self.stop.is_set():
            try:
                entry = self._next(consumer)
                backoff = 0.1
                if entry is not None:
                    self._handle(consumer, *entry)
            except Exception as exc:
                if is_connection_error(exc):
                    log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                else:
                    log.exception("unexpected error in %s", consumer)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _next(self, consumer: str) -> tuple[str, dict] | None:
        now = time.time()
        if now - self._last_reclaim >= self.cfg.claim_idle / 2:
            self._last_reclaim = now
            resp = self.r.xautoclaim(self.stream, GROUP, consumer,
                                     int(self.cfg.claim_idle * 1000), "0-0", count=1)
            for entry_id, fields in resp[1]:
                if entry_id is None:
                    continue
                self._last_reclaim = 0.0  # there may be more: the next free consumer looks again
                self.counts["reclaimed"] += 1
                log.warning("reclaimed %s: pending > %gs on a worker that stopped beating",
                            entry_id.decode(), self.cfg.claim_idle)
                return entry_id.decode(), fields or {}
        try:
            resp = self.r.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=1,
                                     block=int(self.cfg.block * 1000))
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("consumer group missing (Redis lost its data?); recreating it")
            ensure_group(self.r, self.stream)
            return None
        for _stream, entries in resp or []:
            for entry_id, fields in entries:
                return entry_id.decode(), fields
        return None

    def _handle(self, consumer: str, entry_id: str, fields: dict) -> None:
        raw = fields.get(FIELD.encode())
        if raw is None:
            log.error("dead letter %s: no %r field", entry_id, FIELD)
            self._retry(self.streams.drop, self.stream, entry_id, json.dumps(
                {k.decode(errors="replace"): v.decode(errors="replace")
                 for k, v in fields.items()})[:10000], f"malformed message: no {FIELD!r} field",
                self.worker_id)
            self.counts["dead"] += 1
            return
        run = _Running(entry_id, consumer, raw)
        with self.lock:
            self.running[entry_id] = run
        try:
            self._run_job(run)
        finally:
            with self.lock:
                self.running.pop(entry_id, None)

    def _run_job(self, run: _Running) -> None:
        try:
            job = run.job = parse_job(run.raw)
        except MessageError as exc:
            job_id, reply_to = salvage_address(run.raw)
            self._dead(run, f"malformed message: {exc}", job_id=job_id, reply_to=reply_to)
            return
        if self.stop.is_set():  # taken while we were told to stop: give it straight back
            if not self._claim_finish(run):
                return
            self._retry(self.streams.requeue, self.stream, run.entry_id, run.raw.decode(), 0,
                        job.job_id)
            log.info("job %s handed back unstarted (stopping)", job.job_id)
            return
        n, last = self._retry(self.streams.begin, job.job_id)
        if n == 0:
            log.info("job %s already has a result: dropping the duplicate", job.job_id)
            self._retry(self.streams.finish, self.stream, run.entry_id, job.job_id, "", "{}")
            return
        run.attempt = n
        if n > job.max_attempts:
            why = last or "the worker running it died or was killed"
            self._dead(run, f"gave up after {n - 1} attempt(s) of stage {job.stage!r}: {why}")
            return
        try:
            stage = stage_named(job.stage)
        except KeyError as exc:
            self._dead(run, str(exc.args[0]))
            return
        except Exception as exc:
            self._dead(run, f"cannot load stage {job.stage!r}: {type(exc).__name__}: {exc}")
            return
        if stage.kind != self.cfg.kind:
            self._dead(run, f"stage {job.stage!r} is served by {stage.kind} workers, not "
                            f"{self.stream}")
            return
        try:  # its spec, and the data and code it would reach: refused at once, never retried
            stage.check(job.spec)
            check_job(job.spec, self.cfg.trust)
        except UserError as exc:
            self._dead(run, str(exc), user_error=True)
            return
        work = self.base / f"{job.job_id}-{n}"
        try:
            inputs = {}
            for name, ref in job.files.items():
                inputs[name] = self._retry(self.blobs.get, ref, work / "in" / name / ref.filename)
        except BlobMissing as exc:  # the session uploads it again and re-submits the job
            shutil.rmtree(work, ignore_errors=True)
            self._dead(run, f"input file missing: {exc}; {LOST_BLOB_HINT}", missing_input=True)
            return
        out = work / "out"
        out.mkdir(parents=True, exist_ok=True)
        log.info("job %s: %s (attempt %d/%d, case %s)", job.job_id, job.stage, n,
                 job.max_attempts, job.case_id or "-")
        t0 = time.perf_counter()
        try:  # the stage's progress lines go to the job's progress stream
            with forward(lambda line: self.streams.progress(job.job_id, line)):
                staged = stage.run(worker_spec(job.spec, self.cfg.kind, self.cfg.benchmark_app,
                                         job.job_id), inputs, out)
            refs = {name: self._retry(self.blobs.put, Path(path))
                    for name, path in staged.files.items()}
        except UserError as exc:  # deterministic: the same input fails the same way again
            self._dead(run, str(exc), user_error=True)
            return
        except Exception as exc:
            self._failed(run, exc, time.perf_counter() - t0)
            return
        finally:
            shutil.rmtree(work, ignore_errors=True)
        seconds = time.perf_counter() - t0
        result = Result(job_id=job.job_id, status="ok", result=staged.result, files=refs,
                        stage=job.stage, case_id=job.case_id, worker=self.worker_id,
                        attempts=n, stage_seconds=seconds)
        if not self._claim_finish(run):
            return
        fresh = self._retry(self.streams.finish, self.stream, run.entry_id, job.job_id,
                            job.reply_to, result.to_json())
        self.counts["done"] += 1
        log.info("job %s: %s done in %.3fs%s", job.job_id, job.stage, seconds,
                 "" if fresh else " (duplicate: result already there)")

    def _claim_finish(self, run: _Running) -> bool:
        with self.lock:
            if run.state == "handed_back":
                log.info("job %s finished after it was handed back; dropping its result",
                         run.job.job_id if run.job else run.entry_id)
                return False
            run.state = "finishing"
            return True

    def _failed(self, run: _Running, exc: BaseException, seconds: float) -> None:
        job = run.job
        assert job is not None
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        text = f"{type(exc).__name__}: {exc}"
        shown = text if isinstance(exc, OperatorError) else f"{text}\n{tb[-2000:]}"
        log.error("job %s: %s failed after %.3fs (attempt %d/%d): %s\n%s", job.job_id, job.stage,
                  seconds, run.attempt, job.max_attempts, text, tb[-4000:])
        self.counts["failed"] += 1
        self._retry(self.r.hset, attempts_key(job.job_id), "last_error", f"{text}\n{tb[-2000:]}")
        if not self._claim_finish(run):
            return
        if run.attempt < job.max_attempts and not isinstance(exc, StopStage):  # no re-run
            self._retry(self.streams.requeue, self.stream, run.entry_id, run.raw.decode(), 0,
                        job.job_id)
            log.info("job %s re-queued for another attempt", job.job_id)
        else:
            self._dead(run, f"stage {job.stage!r} failed on attempt {run.attempt}/"
                            f"{job.max_attempts}: {shown}", claimed=True)

    def _dead(self, run: _Running, reason: str, job_id: str = "", reply_to: str = "",
              claimed: bool = False, user_error: bool = False,
              missing_input: bool = False) -> None:
        if not claimed and not self._claim_finish(run):
            return
        job = run.job
        job_id, reply_to = (job.job_id, job.reply_to) if job else (job_id, reply_to)
        log.error("dead letter %s (job %s): %s", run.entry_id, job_id or "?",
                  reason.splitlines()[0])
        self.counts["dead"] += 1
        if not (job_id and reply_to):
            self._retry(self.streams.drop, self.stream, run.entry_id, run.raw, reason,
                        self.worker_id)
            return
        result = Result(job_id=job_id, status="error", error=reason,
                        stage=job.stage if job else "", case_id=job.case_id if job else "",
                        worker=self.worker_id, attempts=run.attempt, user_error=user_error,
                        missing_input=missing_input)
        dead = {"data": run.raw.decode(errors="replace"), "reason": reason, "job_id": job_id,
                "stream": self.stream, "worker": self.worker_id}
        self._retry(self.streams.finish, self.stream, run.entry_id, job_id, reply_to,
                    result.to_json(), dead)

    def _retry(self, op, *args, **kwargs):  # a Redis op, waiting out a restarting server
        return call_until_available(
            op, *args, give_up=lambda waited: self.stop.is_set() and waited > self.cfg.grace,
            **kwargs)
