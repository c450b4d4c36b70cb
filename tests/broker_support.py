"""Shared fixtures of the broker tests (loaded with ``pytest_plugins = ["broker_support"]``).

Real redis-server processes and real worker subprocesses; the test stages come from
``broker_stages`` (registered in the workers through $BENCHSUITE_EXTRA_STAGES).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from broker_stages import EXTRA_STAGES, TESTS_DIR

from benchsuite.broker.connection import connect
from benchsuite.broker.local import WorkerProcess, stop_all
from benchsuite.broker.redis_executor import RedisExecutor
from benchsuite.broker.server import RedisServer

# fast settings: reclaim after 1.5 s without a touch, heartbeat every 0.3 s
FAST_WORKER_ARGS = ["--heartbeat", "0.3", "--claim-idle", "1.5", "--grace", "5",
                    "--log-level", "DEBUG"]



def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "broker_bench: broker overhead/throughput measurement")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), appendonly=False)
    with server:
        yield server


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = connect(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def start_worker(tmp_path: Path, request: pytest.FixtureRequest
                 ) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(url, kind, *extra_args, python=None)``: a worker subprocess (in the kind's
    tox env if built, else this interpreter, unless ``python`` says), stopped after the test."""
    started: list[WorkerProcess] = []

    def start(url: str, kind: str, *args: str, python: str | None = None) -> WorkerProcess:
        worker = WorkerProcess(url, kind, args=[*FAST_WORKER_ARGS, *args], python=python,
                               env={"BENCHSUITE_EXTRA_STAGES": EXTRA_STAGES},
                               pythonpath=[TESTS_DIR],
                               log_path=tmp_path / f"worker-{kind}-{len(started)}.log")
        started.append(worker.start())
        return worker

    yield start
    stop_all(started, timeout=10)
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for worker in started:
            print(f"--- {worker.kind} worker {worker.pid} log ---\n{worker.log_text()[-4000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture
def executor_for(tmp_path: Path) -> Iterator[Callable[..., RedisExecutor]]:
    made: list[RedisExecutor] = []

    def make(url: str, **kwargs) -> RedisExecutor:
        kwargs.setdefault("timeout", 30)
        ex = RedisExecutor(url, workdir=tmp_path / f"executor-{len(made)}", **kwargs)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        try:
            ex.close(delete_results=False)
        except redis.RedisError:
            pass
