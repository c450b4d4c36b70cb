"""A Redis that restarts mid-run (AOF on): workers and the executor reconnect, no job is lost."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from broker_stages import results_for

from benchsuite.broker.connection import connect
from benchsuite.broker.local import wait_for_workers
from benchsuite.broker.server import RedisServer
from benchsuite.broker.streams import GROUP, job_stream

pytest_plugins = ["broker_support"]


@pytest.fixture
def aof_server(tmp_path):
    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        yield server


def test_restart_mid_run_loses_nothing(aof_server: RedisServer, start_worker,
                                       executor_for) -> None:
    started = [start_worker(aof_server.url, kind) for kind in ("prune", "bench")]
    ex = executor_for(aof_server.url)
    r = connect(aof_server.url)
    wait_for_workers(r, 2)
    jobs = [ex.submit("sleep" if i % 2 else "sleep_bench", {"seconds": 0.25, "n": i})
            for i in range(12)]
    assert ex.wait(jobs[0], timeout=20).result["n"] == 0
    time.sleep(0.1)  # a job is running on each worker now
    aof_server.stop()
    time.sleep(0.5)  # workers and executor see the server gone
    aof_server.start()
    for i, job in enumerate(jobs[1:], 1):
        assert ex.wait(job, timeout=40).result["n"] == i
    r = connect(aof_server.url)
    assert Counter(m["job_id"] for m in results_for(r, ex.session_id)) == Counter(jobs)
    # the workers did lose the server, and the same processes, reconnected, keep serving
    assert all("Redis unavailable" in w.log_text() for w in started)
    assert all(w.alive() for w in started)
    assert ex.run("noop", {"after": "restart"}, {}).result["echo"] == {"after": "restart"}
    for stream in (job_stream("prune"), job_stream("bench")):
        assert r.xpending(stream, GROUP)["pending"] == 0


def test_a_job_lost_by_a_restart_without_aof_is_resubmitted(tmp_path, start_worker,
                                                              executor_for) -> None:
    """Redis without persistence restarts while a job is queued: the waiting side used to wait
    forever (no output until killed). It now notices the job is gone and queues it again."""
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        ex = executor_for(server.url)
        job = ex.submit("noop", {"n": 1})  # no worker yet: it stays queued
        server.stop()
        server.start()  # empty: the queued job is gone
        worker = start_worker(server.url, "prune")
        assert ex.wait(job, timeout=120).result["echo"] == {"n": 1}
        assert worker.alive()
