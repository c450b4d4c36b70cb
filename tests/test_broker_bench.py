"""Broker overhead and no-op throughput, through the full path with one worker.

Run with ``pytest -m broker_bench tests/test_broker_bench.py -s`` (pytest.ini deselects it
otherwise: a measurement, not a test).
Overhead per job = (submit -> result received) - the stage's own time measured by the worker.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings

import pytest
from broker_stages import ECHO_FILE, NOOP, SLEEP

from benchsuite.broker.local import wait_for_workers
from benchsuite.broker.streams import job_stream

pytest_plugins = ["broker_support"]

with warnings.catch_warnings():  # the marker is declared by the plugin, loaded after this import
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    pytestmark = pytest.mark.broker_bench


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def test_overhead_and_throughput(redis_server, r, start_worker, executor_for, tmp_path) -> None:
    start_worker(redis_server.url, "prune", "--log-level", "INFO")
    ex = executor_for(redis_server.url)
    wait_for_workers(r, 1, job_stream("prune"))
    for _ in range(20):  # warm-up
        ex.run(NOOP, {}, {})
    report: dict = {}

    # sequential round trips of a stage that sleeps 20 ms: overhead = round trip - stage time
    overheads = []
    for i in range(100):
        t0 = time.perf_counter()
        job = ex.submit(SLEEP, {"seconds": 0.02, "n": i})
        result = ex.wait_result(job, timeout=30)
        overheads.append(time.perf_counter() - t0 - result.stage_seconds)
    report["overhead_ms"] = {"median": 1e3 * statistics.median(overheads),
                             "p90": 1e3 * _pct(overheads, 0.9), "min": 1e3 * min(overheads)}

    # no-op jobs, one at a time (each waits for its result)
    n = 500
    t0 = time.perf_counter()
    for i in range(n):
        ex.run(NOOP, {"i": i}, {})
    report["noop_sequential_jobs_per_s"] = n / (time.perf_counter() - t0)

    # no-op jobs, all submitted first, then collected
    n = 2000
    t0 = time.perf_counter()
    jobs = [ex.submit(NOOP, {"i": i}) for i in range(n)]
    for job in jobs:
        ex.wait_result(job, timeout=60)
    report["noop_pipelined_jobs_per_s"] = n / (time.perf_counter() - t0)

    # a 16 MB artifact in and out (blob upload, download by the worker, and back)
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * (1 << 16))
    t0 = time.perf_counter()
    res = ex.run(ECHO_FILE, {}, {"input": src})
    report["echo_16MB_file_s"] = time.perf_counter() - t0
    assert res.files["output"].stat().st_size == src.stat().st_size

    print("\nbroker measurement:", json.dumps(report, indent=1))
    assert report["noop_sequential_jobs_per_s"] > 10
