"""Stream and key names, consumer groups, reclaim, dead letters and idempotent results.

    bs:jobs:prune            job stream of the prune workers
    bs:jobs:bench:<DEVICE>   job stream of the bench workers of one device (CPU, MYRIAD, ...)
    bs:results:<session>     result stream of one executor (one pytest session)
    bs:dead                  dead-letter stream: {data, reason, job_id, stream, worker}
    bs:done:<job_id>         "this job has a result" (SET NX): a second delivery adds nothing
    bs:attempts:<job_id>     hash {n, last_error}: runs started, the last failure's text
    bs:worker:<id>           a worker's heartbeat (JSON, expires when the worker stops beating)
    bs:progress:<job_id>     a running job's progress lines ({line}; capped, expires)

Every transition of a job (result, dead letter, re-queue) is one Lua script, so the result is
written and the job acknowledged (and deleted from its stream) atomically: a worker that dies
between the two cannot leave a result behind without the ack, nor an ack without a result.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator

import redis

from benchsuite.broker.messages import FIELD, RESULTS_PREFIX, MessageError, parse_job, parse_result
from benchsuite.core.progress import StopStage

GROUP = "workers"
DEAD = "bs:dead"
DONE_TTL = 7 * 24 * 3600
RESULTS_TTL = 7 * 24 * 3600
WORKER_PREFIX = "bs:worker:"
log = logging.getLogger("benchsuite.worker")


def unique_worker_id(r: redis.Redis, wanted: str) -> str:
    """`wanted`, or `wanted` with a random suffix when a live worker already beats under it
    (two containers on one host's network both run pid 7): one heartbeat per worker, one
    consumer name each. The key is taken atomically, so two workers starting at once differ."""
    worker_id = wanted
    while not r.set(WORKER_PREFIX + worker_id, json.dumps(
            {"worker_id": worker_id, "state": "starting", "beat": time.time(), "stream": "",
             "kind": "", "pid": 0, "running": [], "counts": {}, "env": {}}), nx=True, ex=30):
        worker_id = f"{wanted}-{secrets.token_hex(2)}"
    if worker_id != wanted:
        log.warning("a live worker is already called %s: this one is %s", wanted, worker_id)
    return worker_id


def job_stream(kind: str, device: str = "CPU") -> str:
    if kind == "prune":
        return "bs:jobs:prune"
    if kind == "bench":
        return f"bs:jobs:bench:{device.upper()}"
    raise ValueError(f"unknown worker kind {kind!r} (prune or bench)")


def result_stream(session: str) -> str:
    return f"{RESULTS_PREFIX}{session}"


PROGRESS_TTL = 24 * 3600
PROGRESS_MAXLEN = 200


def progress_stream(job_id: str) -> str:
    return f"bs:progress:{job_id}"


def cancel_key(job_id: str) -> str:
    return f"bs:cancel:{job_id}"


def cancel_job(r: redis.Redis, job_id: str) -> None:
    """Ask the worker running the job to stop it at its next progress line (a trial the
    search engine stopped early); the worker then dead-letters it without another attempt."""
    r.set(cancel_key(job_id), 1, ex=PROGRESS_TTL)


def publish_progress(r: redis.Redis, job_id: str, line: str) -> None:
    """Append one progress line of a job (a capped stream that expires a day later). Never
    raises: progress must not fail the job it reports on."""
    key = progress_stream(job_id)
    try:
        pipe = r.pipeline()
        pipe.xadd(key, {"line": line[:1000]}, maxlen=PROGRESS_MAXLEN, approximate=True)
        pipe.expire(key, PROGRESS_TTL)
        pipe.execute()
    except redis.RedisError:
        pass


def done_key(job_id: str) -> str:
    return f"bs:done:{job_id}"


def attempts_key(job_id: str) -> str:
    return f"bs:attempts:{job_id}"


def ensure_group(r: redis.Redis, stream: str) -> None:
    """Create the stream and its consumer group if missing (safe to call any time)."""
    try:
        r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# KEYS: done, reply stream ('' for none), job stream, dead stream ('' for none)
# ARGV: result json, group, entry id, done ttl, dead fields json ('' for none), results ttl
_FINISH = """
local fresh = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[4])
if fresh then
  if KEYS[2] ~= '' then
    redis.call('XADD', KEYS[2], '*', 'data', ARGV[1])
    redis.call('EXPIRE', KEYS[2], ARGV[6])
  end
  if KEYS[4] ~= '' then
    local f = cjson.decode(ARGV[5])
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', '10000', '*', 'data', f.data,
               'reason', f.reason, 'job_id', f.job_id, 'stream', f.stream, 'worker', f.worker)
  end
end
redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[3], ARGV[3])
if fresh then return 1 end
return 0
"""

# KEYS: job stream, attempts; ARGV: group, entry id, job json, attempts delta
_REQUEUE = """
local new = redis.call('XADD', KEYS[1], '*', 'data', ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if tonumber(ARGV[4]) ~= 0 then redis.call('HINCRBY', KEYS[2], 'n', ARGV[4]) end
return new
"""

# KEYS: dead stream, job stream; ARGV: group, entry id, data, reason, worker
_DROP = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', '10000', '*', 'data', ARGV[3], 'reason', ARGV[4],
           'job_id', '',
           'stream', KEYS[2], 'worker', ARGV[5])
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1
"""

# KEYS: done, attempts; ARGV: ttl.  Count one more run of a job, unless it has a result already.
_BEGIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ''} end
local n = redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('EXPIRE', KEYS[2], ARGV[1])
return {n, redis.call('HGET', KEYS[2], 'last_error') or ''}
"""

# KEYS: stream; ARGV: group, entry id, consumer.  Reset the idle time of our own pending entry
# (XCLAIM to the owner itself), so a running job is never taken for a dead worker's.
_TOUCH = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if p[1] and p[1][2] == ARGV[3] then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
  return 1
end
return 0
"""


class Streams:
    """The job transitions, as atomic scripts on one Redis client."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self._finish = r.register_script(_FINISH)
        self._requeue = r.register_script(_REQUEUE)
        self._drop = r.register_script(_DROP)
        self._touch = r.register_script(_TOUCH)
        self._begin = r.register_script(_BEGIN)

    def progress(self, job_id: str, line: str) -> None:
        """Publish a running job's progress line; raises `StopStage` (nothing else) when the
        job's session cancelled it."""
        publish_progress(self.r, job_id, line)
        try:
            cancelled = self.r.exists(cancel_key(job_id))
        except redis.RedisError:
            return
        if cancelled:
            raise StopStage(f"job {job_id} cancelled by its session (stopped early)")

    def begin(self, job_id: str) -> tuple[int, str]:
        """Count a run of the job: (this run's number, the last failure's text); (0, "") when
        the job already has a result (a duplicate delivery: do not run it)."""
        n, last = self._begin(keys=[done_key(job_id), attempts_key(job_id)], args=[DONE_TTL])
        return int(n), last.decode(errors="replace") if isinstance(last, bytes) else str(last)

    def touch(self, stream: str, entry_id: str, consumer: str) -> bool:
        """Keep a running job's pending entry fresh; False if it is no longer ours."""
        return bool(self._touch(keys=[stream], args=[GROUP, entry_id, consumer]))

    def finish(self, stream: str, entry_id: str, job_id: str, reply_to: str, result_json: str,
               dead: dict | None = None) -> bool:
        """Write the job's result (once per job id), maybe a dead letter, ack and delete the entry.

        Returns False when the job already had a result (a duplicate delivery).
        """
        keys = [done_key(job_id), reply_to, stream, DEAD if dead else ""]
        args = [result_json, GROUP, entry_id, DONE_TTL, json.dumps(dead) if dead else "",
                RESULTS_TTL]
        return bool(self._finish(keys=keys, args=args))

    def requeue(self, stream: str, entry_id: str, job_json: str, attempts_delta: int,
                job_id: str) -> str:
        """Put a job back at the end of its stream (retry or hand-back); ack the old entry."""
        new = self._requeue(keys=[stream, attempts_key(job_id)],
                            args=[GROUP, entry_id, job_json, attempts_delta])
        return new.decode() if isinstance(new, bytes) else str(new)

    def drop(self, stream: str, entry_id: str, data: bytes | str, reason: str, worker: str) -> None:
        """Dead-letter an entry that names no job we can answer (unparseable)."""
        self._drop(keys=[DEAD, stream], args=[GROUP, entry_id, data, reason, worker])


def forget_idle_consumers(r: redis.Redis, stream: str, idle_s: float, keep: str = "") -> int:
    """Delete consumers of dead workers: no pending job and idle for ``idle_s`` seconds."""
    removed = 0
    for c in r.xinfo_consumers(stream, GROUP):
        name = c["name"].decode() if isinstance(c["name"], bytes) else c["name"]
        if c["pending"] == 0 and c["idle"] > idle_s * 1000 and not name.startswith(keep):
            r.xgroup_delconsumer(stream, GROUP, name)
            removed += 1
    return removed


def dead_letters(r: redis.Redis, count: int = 100) -> list[dict]:
    """The latest dead letters, newest first, as dicts of str."""
    out = []
    for entry_id, fields in r.xrevrange(DEAD, count=count):
        d = {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
        d["id"] = entry_id.decode()
        out.append(d)
    return out


def iter_keys(r: redis.Redis, pattern: str) -> Iterator[str]:
    for key in r.scan_iter(match=pattern, count=1000):
        yield key.decode() if isinstance(key, bytes) else key


def referenced_blobs(r: redis.Redis, skipped: list[str] | None = None) -> set[str]:
    """sha256s named by jobs still queued or pending and by results still kept.

    A message that cannot be read (or a key of those names that is not a stream) is skipped;
    with ``skipped``, a line naming it and why is appended there."""
    def skip(what: str) -> None:
        log.warning("skipped %s", what)
        if skipped is not None:
            skipped.append(what)

    shas: set[str] = set()
    for stream in [*iter_keys(r, "bs:jobs:*"), *iter_keys(r, RESULTS_PREFIX + "*")]:
        try:
            entries = r.xrange(stream)
        except redis.ResponseError as exc:  # WRONGTYPE: not a stream
            skip(f"{stream}: not a stream ({exc})")
            continue
        for entry_id, fields in entries:
            name = f"{stream} {entry_id.decode(errors='replace')}"
            raw = fields.get(FIELD.encode())
            if raw is None:
                skip(f"{name}: no {FIELD!r} field")
                continue
            try:
                msg = parse_job(raw) if stream.startswith("bs:jobs:") else parse_result(raw)
            except MessageError as exc:
                skip(f"{name}: {str(exc)[:200]}")
                continue
            shas.update(ref.sha256 for ref in msg.files.values())
    return shas


def workers(r: redis.Redis, skipped: list[str] | None = None) -> list[dict]:
    """The live workers' heartbeats. A heartbeat that cannot be read (not a JSON object with
    a string ``worker_id``) is skipped; with ``skipped``, a line naming it goes there."""
    out = []
    for key in iter_keys(r, WORKER_PREFIX + "*"):
        try:
            raw = r.get(key)
        except redis.ResponseError as exc:  # WRONGTYPE
            raw, why = None, str(exc)
        else:
            why = ""
        if raw:
            try:
                beat = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                why = f"not JSON: {str(exc)[:100]}"
            else:
                if isinstance(beat, dict) and isinstance(beat.get("worker_id"), str):
                    out.append(beat)
                    continue
                why = "not a heartbeat object"
        if why:
            log.warning("skipped heartbeat %s: %s", key, why)
            if skipped is not None:
                skipped.append(f"{key}: {why}")
    return sorted(out, key=lambda d: d.get("worker_id", ""))


def live_workers_for(r: redis.Redis, stream: str) -> list[dict]:
    """Workers serving a stream.  A heartbeat key expires when its worker stops beating, so its
    existence is the liveness test (no clock comparison across machines)."""
    return [w for w in workers(r) if w.get("stream") == stream]
