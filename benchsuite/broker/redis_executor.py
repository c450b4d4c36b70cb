"""``RedisExecutor``: run a stage on a worker through Redis, with ``LocalExecutor``'s ``run``.

``run(stage, spec, files)`` uploads the input files as blobs, puts a job on the stream of the
worker kind that serves the stage (bench jobs per device: ``spec["settings"]["device"]``),
waits for the job's result on this executor's result stream, downloads the output files and
returns a ``StageResult``.  A dead-lettered job raises ``JobFailed`` with the worker's reason.
``submit`` / ``wait`` do the same in two steps, so several jobs can be in flight at once.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import uuid
from pathlib import Path

import redis

from benchsuite.broker.blobs import DEFAULT_TTL, LOST_BLOB_HINT, BlobMissing, BlobStore
from benchsuite.broker.connection import (
    DEFAULT_CONNECT_TIMEOUT,
    RedisRefused,
    call_until_available,
    connect,
    is_connection_error,
    mask_url,
    refusal,
)
from benchsuite.broker.messages import FIELD, Job, MessageError, Result, parse_result
from benchsuite.broker.streams import (
    attempts_key,
    cancel_job,
    done_key,
    ensure_group,
    job_stream,
    live_workers_for,
    progress_stream,
    result_stream,
)
from benchsuite.core.errors import OperatorError, UserError
from benchsuite.core.progress import Progress, StopStage
from benchsuite.pipeline.executor import Stage, StageResult

log = logging.getLogger(__name__)

RECONNECT_WAIT = 60.0


class JobFailed(RuntimeError):
    """The job was dead-lettered; the message carries the worker's reason."""

    def __init__(self, message: str, result: Result | None = None) -> None:
        super().__init__(message)
        self.result = result


class JobUserError(JobFailed, UserError):
    """Dead-lettered for the user's input (a refused grant, a bad recipe, model or data)."""


class JobRefused(JobFailed, OperatorError):
    """Dead-lettered because Redis refused to store its output (maxmemory, a full disk)."""


class JobTimeout(TimeoutError):
    """No result within the timeout."""


class RedisExecutor:
    def __init__(self, url: str, session_id: str | None = None, workdir: Path | None = None,
                 timeout: float | None = None, device: str = "CPU", max_attempts: int = 2,
                 blob_ttl: int | None = DEFAULT_TTL,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 no_worker_timeout: float | None = 300.0) -> None:
        """``timeout``: seconds to wait for a job's result (None: no limit).
        ``no_worker_timeout``: give up sooner when no live worker has served the job's stream for
        that long (a missing worker fails the wait instead of hanging it; None: never)."""
        self.url = url
        self.session_id = session_id or uuid.uuid4().hex[:16]
        self.results_key = result_stream(self.session_id)
        self.workdir = Path(workdir) if workdir else None
        self.timeout = timeout
        self.device = device
        self.max_attempts = max_attempts
        self.no_worker_timeout = no_worker_timeout
        self.r = connect(url, timeout=connect_timeout, socket_timeout=30.0)
        self.blobs = BlobStore(self.r, ttl=blob_ttl, url=url)
        self._results: dict[str, Result] = {}
        self._stages: dict[str, str] = {}
        self._streams: dict[str, str] = {}
        self._entries: dict[str, str] = {}  # job id -> its entry id in the job stream
        self._submitted: dict[str, tuple] = {}  # job id -> (stage, spec, files, case_id)
        self._last_id = "0-0"
        self._lock = threading.Lock()
        self._count = 0
        self._groups: set[str] = set()
        self._progress: dict[str, list] = {}  # progress stream -> [last id, callback]

    def __repr__(self) -> str:
        return f"RedisExecutor({mask_url(self.url)!r}, session_id={self.session_id!r})"

    # ---- the LocalExecutor interface ----------------------------------------------------------
    def run(self, stage: Stage, spec: dict, files: dict[str, Path],
            progress: Progress | None = None) -> StageResult:
        case_id = spec.get("case_id")
        job_id = uuid.uuid4().hex
        if progress is not None:  # before submitting: no line can come before it is watched
            with self._lock:
                self._progress[progress_stream(job_id)] = ["0-0", progress]
        try:
            return self.wait(self.submit(stage, spec, files, job_id=job_id,
                                         case_id=case_id if isinstance(case_id, str) else ""))
        except StopStage:  # the progress callback stopped it: the worker stops it too
            self._call(cancel_job, self.r, job_id)
            raise
        finally:
            with self._lock:
                self._progress.pop(progress_stream(job_id), None)

    # ---- two-step use ---------------------------------------------------------------------------
    def stream_for(self, stage: Stage, spec: dict) -> str:
        kind = stage.kind
        settings = spec.get("settings") if isinstance(spec.get("settings"), dict) else {}
        device = str(settings.get("device") or spec.get("device") or self.device)
        return job_stream(kind, device)

    def submit(self, stage: Stage, spec: dict, files: dict[str, Path] | None = None,
               case_id: str = "", job_id: str | None = None) -> str:
        """Queue a job; returns its id (pass it to ``wait``). A malformed spec (``Stage.check``:
        a missing field, an unknown settings key) raises UserError here, before anything is
        queued, as a spec past the message limits raises MessageError."""
        if isinstance(spec, dict):
            stage.check(spec)
        refs = {name: self._call(self.blobs.put, Path(path))
                for name, path in (files or {}).items()}
        job = Job(job_id=job_id or uuid.uuid4().hex, stage=stage.name, spec=spec, files=refs,
                  reply_to=self.results_key, session=self.session_id, case_id=case_id,
                  max_attempts=self.max_attempts)
        stream = self.stream_for(stage, spec)
        self._submitted[job.job_id] = (stage, spec, dict(files or {}), case_id)
        return self.submit_raw(stream, job.to_json(), job.job_id, stage.name)

    def submit_raw(self, stream: str, data: str, job_id: str, stage: str = "?") -> str:
        """Queue an already-serialised message (tests use it to send malformed ones)."""
        if stream not in self._groups:
            self._call(ensure_group, self.r, stream)
            self._groups.add(stream)
        entry = self._call(self.r.xadd, stream, {FIELD: data})
        self._entries[job_id] = entry.decode() if isinstance(entry, bytes) else str(entry)
        self._stages[job_id] = stage
        self._streams[job_id] = stream
        log.debug("submitted %s job %s to %s", stage, job_id, stream)
        return job_id

    def wait(self, job_id: str, timeout: float | None = None) -> StageResult:
        """Block until the job's result arrives; download its files; raise if it was dead."""
        return self.collect(job_id, self.wait_result(job_id, timeout), timeout)

    def collect(self, job_id: str, result: Result, timeout: float | None = None) -> StageResult:
        """The job's ``StageResult`` from its `result` (its output files downloaded); raise if
        it was dead-lettered. A blob that is gone (an input the worker could not find, or an
        output here), as a Redis restart without persistence loses it, makes this executor
        upload the job's input files and submit it again, once, as it does for a lost job."""
        stage = result.stage or self._stages.get(job_id, "?")
        if not result.ok:
            if result.missing_input and self._resubmit_missing(job_id, result.error):
                return self.wait(job_id, timeout)
            kind = (JobUserError if result.user_error else JobRefused
                    if f"{RedisRefused.__name__}: " in (result.error or "") else JobFailed)
            raise kind(f"{stage} job {job_id} failed: {result.error}", result)
        try:
            files = self._download(result)
        except BlobMissing as exc:
            if self._resubmit_missing(job_id, f"output file missing: {exc}"):
                return self.wait(job_id, timeout)
            raise JobFailed(f"{stage} job {job_id}: its output file is no longer in Redis at "
                            f"{mask_url(self.url)} ({exc}); {LOST_BLOB_HINT}", result) from None
        return StageResult(result.result, files)

    def _resubmit_missing(self, job_id: str, why: str) -> bool:
        """Upload a job's input files again and queue it again under the same id (its result
        and run count forgotten, so the workers run it afresh); False when it was re-submitted
        before (or was never submitted by ``submit``)."""
        stage, spec, files, case_id = self._submitted.pop(job_id, (None,) * 4)
        if stage is None:
            return False
        log.warning("%s job %s: a file of it is gone from Redis at %s (%s); uploading its "
                    "input files and submitting it again", stage.name, job_id, mask_url(self.url),
                    why.splitlines()[0][:300])
        self._call(self.r.delete, done_key(job_id), attempts_key(job_id))
        self._groups.clear()  # a restart took the consumer groups too
        self.submit(stage, spec, files, case_id=case_id, job_id=job_id)
        self._submitted.pop(job_id, None)  # re-submitted once: a second loss fails
        return True

    def wait_result(self, job_id: str, timeout: float | None = None) -> Result:
        timeout = self.timeout if timeout is None else timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = 0.1
        worker_seen = last_check = time.monotonic()
        missing = 0  # consecutive checks that found neither the job nor its result
        while True:
            with self._lock:
                if job_id in self._results:
                    return self._results.pop(job_id)
                now = time.monotonic()
                remaining = None if deadline is None else deadline - now
                if remaining is not None and remaining <= 0:
                    raise JobTimeout(self._timeout_text(job_id, f"within {timeout:g} s"))
                if (self.no_worker_timeout is not None
                        and now - last_check >= min(5.0, self.no_worker_timeout / 2)):
                    last_check = now
                    if self._has_worker(job_id):
                        worker_seen = now
                    else:  # workers that cannot beat: is it Redis refusing every write?
                        self._check_writable()
                    if now - worker_seen >= self.no_worker_timeout:
                        raise JobTimeout(self._timeout_text(
                            job_id, f"after {now - worker_seen:.0f} s without a live worker"))
                    missing = missing + 1 if self._vanished(job_id) else 0
                    if missing >= 2:  # two checks apart: not a result still on its way
                        missing = 0
                        self._resubmit_lost(job_id)
                block = 1000 if remaining is None else max(1, int(min(remaining, 1.0) * 1000))
                try:
                    self._read(block)
                    backoff = 0.1
                except Exception as exc:
                    if not is_connection_error(exc):
                        raise
                    log.warning("Redis unavailable while waiting for %s: %s", job_id, exc)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)

    def _read(self, block_ms: int) -> None:
        streams = {self.results_key: self._last_id} | {k: v[0] for k, v in self._progress.items()}
        resp = self.r.xread(streams, block=block_ms, count=100)
        for stream, entries in resp or []:
            if (watched := self._progress.get(stream.decode())) is not None:
                for entry_id, fields in entries:
                    watched[0] = entry_id.decode()
                    watched[1](fields.get(b"line", b"").decode(errors="replace"))
                continue
            for entry_id, fields in entries:
                self._last_id = entry_id.decode()
                try:
                    result = parse_result(fields.get(FIELD.encode(), b""))
                except MessageError as exc:
                    log.error("ignoring a malformed result %s: %s", self._last_id, exc)
                    continue
                # results are written once per job id; keep the first if one ever repeats
                self._results.setdefault(result.job_id, result)

    def _vanished(self, job_id: str) -> bool:
        """True when the job's entry is gone from its stream and no result came: Redis lost it
        (restarted without AOF while it was queued or running). A finished job's entry is
        deleted in the same script that writes its result, which `_read` picks up first."""
        stream, entry = self._streams.get(job_id), self._entries.get(job_id)
        if stream is None or entry is None:
            return False
        try:
            return not self.r.xrange(stream, entry, entry)
        except redis.RedisError:
            return False  # Redis itself is away: the reconnect logic deals with that

    def _resubmit_lost(self, job_id: str) -> None:
        """Queue a lost job again, once, under the same id (its input files uploaded again);
        a job lost twice fails the wait, saying why."""
        stage, spec, files, case_id = self._submitted.pop(job_id, (None,) * 4)
        if stage is None:
            raise JobFailed(f"{self._stages.get(job_id, '?')} job {job_id} was lost by Redis "
                            f"at {mask_url(self.url)} again after it was resubmitted (a Redis "
                            "without persistence restarting? turn on --appendonly)")
        log.warning("%s job %s vanished from Redis at %s (restarted without AOF?); submitting "
                    "it again", stage.name, job_id, mask_url(self.url))
        self._groups.clear()  # the consumer groups went with the data
        self.submit(stage, spec, files, case_id=case_id, job_id=job_id)  # takes no lock of ours
        self._submitted.pop(job_id, None)  # resubmitted once: a second loss fails

    def _check_writable(self) -> None:
        """Raise ``RedisRefused`` when Redis refuses writes (its maxmemory reached, its disk
        full): workers then cannot beat, store a file or write a result, and waiting for them
        would end only after ``no_worker_timeout`` with the wrong cause."""
        try:
            self.r.set(f"bs:probe:{self.session_id}", "1", ex=60)
        except redis.ResponseError as exc:
            if (refused := refusal(exc, self.url)) is not None:
                raise refused from None
            raise
        except redis.RedisError:
            pass  # Redis itself is away: the reconnect logic deals with that

    def _has_worker(self, job_id: str) -> bool:
        stream = self._streams.get(job_id)
        try:
            return stream is None or bool(live_workers_for(self.r, stream))
        except redis.RedisError:
            return True  # Redis itself is away: the reconnect logic deals with that

    def _timeout_text(self, job_id: str, when: str) -> str:
        text = f"no result for {self._stages.get(job_id, '?')} job {job_id} {when}"
        if not self._has_worker(job_id):
            text += (f"; no live worker serves {self._streams.get(job_id)} on "
                     f"{mask_url(self.url)} (start one: benchsuite worker ...)")
        return text

    def _download(self, result: Result) -> dict[str, Path]:
        if not result.files:
            return {}
        with self._lock:
            self._count += 1
            n = self._count
        base = self.workdir or Path(tempfile.gettempdir()) / f"benchsuite-{self.session_id}"
        out = base / (result.stage or "stage") / f"{n:04d}-{result.job_id[:8]}"
        return {name: self._call(self.blobs.get, ref, out / name / ref.filename)
                for name, ref in result.files.items()}

    def _call(self, op, *args):
        """Wait out a Redis restart (up to ``RECONNECT_WAIT`` seconds) around one operation; a
        Redis that refuses it (maxmemory, a full disk) raises ``RedisRefused`` naming why."""
        try:
            return call_until_available(op, *args,
                                        give_up=lambda waited: waited > RECONNECT_WAIT)
        except redis.ResponseError as exc:
            if (refused := refusal(exc, self.url)) is not None:
                raise refused from None
            raise

    def close(self, delete_results: bool = True) -> None:
        """Forget this session's result stream (its blobs then expire or are cleaned up)."""
        try:
            if delete_results:
                self.r.delete(self.results_key)
        except redis.ResponseError as exc:  # a full Redis: said while the session ran
            log.warning("could not delete %s: %s", self.results_key,
                        refusal(exc, self.url) or exc)
        finally:
            self.r.close()

    def __enter__(self) -> RedisExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
