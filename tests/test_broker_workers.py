"""Real worker subprocesses against a real redis-server: reclaim, exactly once, dead letters,
graceful stop, heartbeats."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

import pytest
import redis
from broker_stages import (
    BROKEN_IMPORT,
    ECHO_FILE,
    FAIL,
    FAIL_BENCH,
    NO_SUCH_STAGE,
    NOOP,
    NOOP_BENCH,
    SLEEP,
    SLEEP_BENCH,
    results_for,
)

from benchsuite.broker import JobFailed, JobTimeout
from benchsuite.broker.local import PACKAGE_ROOT, wait_for_workers
from benchsuite.broker.streams import DEAD, GROUP, dead_letters, job_stream, workers

pytest_plugins = ["broker_support"]

PRUNE = job_stream("prune")
BENCH = job_stream("bench", "CPU")


def _wait_running(r: redis.Redis, job_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for beat in workers(r):
            if any(j["job_id"] == job_id for j in beat.get("running", [])):
                return beat
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} never seen running")


def _assert_drained(r: redis.Redis, *streams: str) -> None:
    for stream in streams:
        assert r.xpending(stream, GROUP)["pending"] == 0, stream
        assert r.xlen(stream) == 0, stream


def test_round_trip_with_files(redis_server, r, start_worker, executor_for, tmp_path) -> None:
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    src = tmp_path / "in.bin"
    src.write_bytes(bytes(range(256)) * 5000)
    res = ex.run(ECHO_FILE, {"x": 1}, {"input": src})
    assert res.result == {"size": src.stat().st_size}
    assert res.files["output"].read_bytes() == src.read_bytes()[::-1]
    _assert_drained(r, PRUNE)


def test_sigkill_mid_job_is_reclaimed(redis_server, r, start_worker, executor_for) -> None:
    doomed = start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    wait_for_workers(r, 1, PRUNE)
    job = ex.submit(SLEEP, {"seconds": 1.5, "n": 1})
    victim = _wait_running(r, job)
    doomed.kill()
    start_worker(redis_server.url, "prune")
    res = ex.wait(job, timeout=30)
    assert res.result == {"slept": 1.5, "n": 1}
    mine = [m for m in results_for(r, ex.session_id) if m["job_id"] == job]
    assert len(mine) == 1
    assert mine[0]["worker"] != victim["worker_id"] and mine[0]["attempts"] == 2
    _assert_drained(r, PRUNE)


def test_sigkill_with_two_jobs_running(redis_server, r, start_worker, executor_for) -> None:
    doomed = start_worker(redis_server.url, "bench", "--concurrency", "2")
    ex = executor_for(redis_server.url)
    wait_for_workers(r, 1, BENCH)
    jobs = [ex.submit(SLEEP_BENCH, {"seconds": 1.0, "n": i}) for i in range(3)]
    for job in jobs[:2]:
        _wait_running(r, job)
    doomed.kill()
    start_worker(redis_server.url, "bench")
    assert [ex.wait(job, timeout=30).result["n"] for job in jobs] == [0, 1, 2]
    assert Counter(m["job_id"] for m in results_for(r, ex.session_id)) == Counter(jobs)
    _assert_drained(r, BENCH)


def test_twenty_jobs_two_workers_each(redis_server, r, start_worker, executor_for) -> None:
    for kind in ("prune", "prune", "bench", "bench"):
        start_worker(redis_server.url, kind)
    ex = executor_for(redis_server.url)
    wait_for_workers(r, 4)
    jobs = [ex.submit(SLEEP if i % 2 else SLEEP_BENCH, {"seconds": 0.05, "n": i})
            for i in range(20)]
    for i, job in enumerate(jobs):
        assert ex.wait(job, timeout=30).result["n"] == i
    results = results_for(r, ex.session_id)
    assert Counter(m["job_id"] for m in results) == Counter(jobs)  # each exactly once
    by_kind = {(m["stage"], m["worker"]) for m in results}
    assert len({w for s, w in by_kind if s == "sleep"}) == 2
    assert len({w for s, w in by_kind if s == "sleep_bench"}) == 2
    _assert_drained(r, PRUNE, BENCH)


def test_dead_letters_and_workers_keep_serving(redis_server, r, start_worker,
                                               executor_for) -> None:
    start_worker(redis_server.url, "prune")
    start_worker(redis_server.url, "bench")
    ex = executor_for(redis_server.url)
    r.xadd(PRUNE, {"data": b"\x80\x04 not json"})
    r.xadd(PRUNE, {"payload": "no data field"})
    bad = {"schema": 1, "type": "job", "job_id": "malformed-1", "stage": "noop",
           "spec": "not an object", "reply_to": ex.results_key}
    ex.submit_raw(PRUNE, json.dumps(bad), "malformed-1")
    with pytest.raises(JobFailed, match="malformed message: 'spec' must be a JSON object"):
        ex.wait("malformed-1", timeout=20)
    with pytest.raises(JobFailed, match="unknown stage 'no_such_stage'"):
        ex.run(NO_SUCH_STAGE, {}, {})
    with pytest.raises(JobFailed, match="cannot load stage 'broken_import'"):
        ex.run(BROKEN_IMPORT, {}, {})
    with pytest.raises(JobFailed, match="RuntimeError: kaboom") as info:
        ex.run(FAIL, {"message": "kaboom"}, {})
    assert info.value.result is not None and info.value.result.attempts == 2
    with pytest.raises(JobFailed, match="benchmark_app exploded"):
        ex.run(FAIL_BENCH, {"message": "benchmark_app exploded"}, {})
    # the workers are still there and serve the next jobs
    assert ex.run(NOOP, {"after": True}, {}).result["echo"] == {"after": True}
    assert ex.run(NOOP_BENCH, {"after": 2}, {}).result["echo"] == {"after": 2}
    reasons = [d["reason"] for d in dead_letters(r)]
    assert len(reasons) == r.xlen(DEAD) == 7
    for fragment in ("not JSON", "no 'data' field", "'spec' must be", "unknown stage",
                     "cannot load stage", "kaboom", "benchmark_app exploded"):
        assert any(fragment in reason for reason in reasons), fragment
    _assert_drained(r, PRUNE, BENCH)


def test_duplicate_delivery_makes_one_result(redis_server, r, start_worker, executor_for) -> None:
    ex = executor_for(redis_server.url)
    from benchsuite.broker.messages import Job

    job = Job(job_id="dup-1", stage="noop", spec={"v": 1}, files={}, reply_to=ex.results_key)
    ex.submit_raw(PRUNE, job.to_json(), job.job_id, "noop")
    ex.submit_raw(PRUNE, job.to_json(), job.job_id, "noop")
    start_worker(redis_server.url, "prune")
    assert ex.wait("dup-1", timeout=20).result["echo"] == {"v": 1}
    deadline = time.monotonic() + 10
    while r.xlen(PRUNE) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m["job_id"] for m in results_for(r, ex.session_id)] == ["dup-1"]
    _assert_drained(r, PRUNE)


def test_sigterm_finishes_current_job(redis_server, r, start_worker, executor_for) -> None:
    worker = start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    wait_for_workers(r, 1, PRUNE)
    job = ex.submit(SLEEP, {"seconds": 1.0})
    _wait_running(r, job)
    assert worker.stop(timeout=10) == 0
    res = ex.wait(job, timeout=1)  # already there: the worker finished before exiting
    assert res.result["slept"] == 1.0
    assert not [w for w in workers(r) if w["stream"] == PRUNE]  # heartbeat removed


def test_sigterm_hands_back_long_job(redis_server, r, start_worker, executor_for) -> None:
    worker = start_worker(redis_server.url, "prune", "--grace", "0.2")
    ex = executor_for(redis_server.url)
    wait_for_workers(r, 1, PRUNE)
    job = ex.submit(SLEEP, {"seconds": 3.0})
    _wait_running(r, job)
    t0 = time.monotonic()
    assert worker.stop(timeout=10) == 0
    assert time.monotonic() - t0 < 2.5  # did not wait for the job
    assert "handed back job" in worker.log_text()
    start_worker(redis_server.url, "prune")
    res = ex.wait(job, timeout=20)
    assert res.result["slept"] == 3.0
    mine = [m for m in results_for(r, ex.session_id) if m["job_id"] == job]
    assert len(mine) == 1 and mine[0]["attempts"] == 1  # a hand-back is not a failure


def test_concurrency(redis_server, r, start_worker, executor_for) -> None:
    start_worker(redis_server.url, "prune", "--concurrency", "3")
    ex = executor_for(redis_server.url)
    (beat,) = wait_for_workers(r, 1, PRUNE)
    assert beat["concurrency"] == 3
    t0 = time.monotonic()
    jobs = [ex.submit(SLEEP, {"seconds": 1.0, "n": i}) for i in range(3)]
    assert [ex.wait(j, timeout=20).result["n"] for j in jobs] == [0, 1, 2]
    assert time.monotonic() - t0 < 2.5  # serially: 3 s at least


def test_heartbeat_records_versions(redis_server, r, start_worker) -> None:
    start_worker(redis_server.url, "bench", "--benchmark-app", "/opt/ov/benchmark_app",
                 "--device", "cpu", python=sys.executable)
    (beat,) = wait_for_workers(r, 1, BENCH)
    env = beat["env"]
    assert env["python"] == platform.python_version() and env["executable"] == sys.executable
    for package in ("torch", "openvino"):
        try:
            expected = metadata.version(package)
        except metadata.PackageNotFoundError:
            expected = "absent"
        assert env[package] == expected
    assert beat["kind"] == "bench" and beat["device"] == "cpu"
    assert beat["benchmark_app"] == "/opt/ov/benchmark_app"
    assert beat["state"] in ("idle", "busy") and time.time() - beat["beat"] < 5


@pytest.mark.parametrize("kind, present, absent", [("prune", "torch", "openvino"),
                                                   ("bench", "openvino", "torch")])
def test_tox_env_workers_have_only_their_stack(redis_server, r, start_worker, kind, present,
                                               absent) -> None:
    python = Path(PACKAGE_ROOT) / ".tox" / kind / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"tox env {kind!r} not built (tox -e {kind} --notest)")
    start_worker(redis_server.url, kind)  # WorkerProcess picks the env's interpreter
    (beat,) = wait_for_workers(r, 1, job_stream(kind), timeout=60)
    assert beat["env"]["executable"] == str(python)
    assert beat["env"][present] != "absent" and beat["env"][absent] == "absent"


def test_no_worker_fails_the_wait_instead_of_hanging(redis_server, r, executor_for) -> None:
    ex = executor_for(redis_server.url, timeout=None, no_worker_timeout=1.0)
    job = ex.submit(SLEEP_BENCH, {"seconds": 0, "settings": {"device": "MYRIAD"}})
    t0 = time.monotonic()
    with pytest.raises(JobTimeout, match="no live worker serves bs:jobs:bench:MYRIAD"):
        ex.wait(job)
    assert time.monotonic() - t0 < 4
    with pytest.raises(JobTimeout, match=r"within 0\.2 s"):
        ex.wait(job, timeout=0.2)


def test_a_job_cannot_choose_the_program_a_bench_worker_runs(redis_server, r, start_worker,
                                                             executor_for) -> None:
    """A job's `settings.executable` used to be run (and even overrode the worker's own
    --benchmark-app): only the worker's operator chooses what it executes."""
    start_worker(redis_server.url, "bench")
    ex = executor_for(redis_server.url)
    echo = ex.run(NOOP_BENCH, {"settings": {"executable": "/bin/echo", "niter": 5}}, {})
    assert echo.result["echo"]["settings"] == {"executable": None, "niter": 5}
