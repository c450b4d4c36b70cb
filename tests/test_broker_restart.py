"""A Redis that restarts mid-run (AOF on): workers and the executor reconnect, no job is lost."""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest
from broker_stages import ECHO_FILE, NOOP, SLEEP, SLEEP_BENCH, results_for

from benchsuite.broker import JobFailed
from benchsuite.broker.blobs import BlobStore, file_sha256
from benchsuite.broker.connection import connect
from benchsuite.broker.local import wait_for_workers
from benchsuite.broker.messages import FileRef, Job
from benchsuite.broker.server import RedisServer
from benchsuite.broker.streams import GROUP, dead_letters, job_stream

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
    jobs = [ex.submit(SLEEP if i % 2 else SLEEP_BENCH, {"seconds": 0.25, "n": i})
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
    assert ex.run(NOOP, {"after": "restart"}, {}).result["echo"] == {"after": "restart"}
    for stream in (job_stream("prune"), job_stream("bench")):
        assert r.xpending(stream, GROUP)["pending"] == 0


def test_a_job_lost_by_a_restart_without_aof_is_resubmitted(tmp_path, start_worker,
                                                              executor_for) -> None:
    """Redis without persistence restarts while a job is queued: the waiting side used to wait
    forever (no output until killed). It now notices the job is gone and queues it again."""
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        ex = executor_for(server.url)
        job = ex.submit(NOOP, {"n": 1})  # no worker yet: it stays queued
        server.stop()
        server.start()  # empty: the queued job is gone
        worker = start_worker(server.url, "prune")
        assert ex.wait(job, timeout=120).result["echo"] == {"n": 1}
        assert worker.alive()


def _payload(tmp_path, data: bytes = b"0123456789" * 1000):
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    return path, data


def test_an_input_blob_lost_before_the_worker_reads_it_is_uploaded_again(
        tmp_path, start_worker, executor_for, caplog) -> None:
    """Issue 21 item 7: a blob lost (as a Redis restart without AOF between the upload and the
    queueing of its job loses it) made the worker dead-letter the job ("input file missing"):
    the session now uploads the file again and re-submits the job, saying why."""
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        r = connect(server.url)
        ex = executor_for(server.url)
        path, data = _payload(tmp_path)
        job = ex.submit(ECHO_FILE, {}, {"input": path})  # no worker yet: it stays queued
        assert BlobStore(r).delete(file_sha256(path)) > 0  # the blob is gone, the job is not
        start_worker(server.url, "prune")
        with caplog.at_level(logging.WARNING, logger="benchsuite.broker.redis_executor"):
            res = ex.wait(job, timeout=60)
        assert res.files["output"].read_bytes() == data[::-1]
        assert "submitting it again" in caplog.text and "restart" in caplog.text
        (letter,) = dead_letters(r)  # the first attempt's dead letter says why
        assert "input file missing" in letter["reason"] and "restart" in letter["reason"]


def test_a_blob_lost_twice_fails_naming_the_restart(tmp_path, start_worker,
                                                    executor_for) -> None:
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        ex = executor_for(server.url)
        start_worker(server.url, "prune")
        job = Job(job_id="lost-1", stage="echo_file", spec={}, reply_to=ex.results_key,
                  files={"input": FileRef("b" * 64, 10, "input.bin")})  # never uploaded
        ex.submit_raw(job_stream("prune"), job.to_json(), job.job_id, "echo_file")
        with pytest.raises(JobFailed, match="restart without persistence") as info:
            ex.wait(job.job_id, timeout=30)
        assert "Traceback" not in str(info.value)


def test_an_output_blob_lost_with_a_restart_is_made_again(tmp_path, start_worker,
                                                          executor_for) -> None:
    """The result came, then Redis restarted without AOF before its file was downloaded: the
    download was a BlobMissing traceback; now the job is re-submitted (files uploaded again)."""
    with RedisServer(tmp_path / "redis", appendonly=False) as server:
        ex = executor_for(server.url)
        start_worker(server.url, "prune")
        path, data = _payload(tmp_path)
        job = ex.submit(ECHO_FILE, {}, {"input": path})
        result = ex.wait_result(job, timeout=30)
        assert result.ok
        server.stop()
        server.start()  # empty: the job's input and output blobs are gone
        res = ex.collect(job, result, timeout=60)
        assert res.files["output"].read_bytes() == data[::-1]
