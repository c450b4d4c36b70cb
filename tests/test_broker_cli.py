"""The broker's CLI: status, a private server, add_subcommands in another argparse CLI."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import pytest

from benchsuite.broker.connection import BrokerConnectionError, connect
from benchsuite.broker.local import PACKAGE_ROOT, wait_for_workers
from benchsuite.frontends.broker_cli import add_subcommands
from benchsuite.frontends.broker_cli import main as cli_main

pytest_plugins = ["broker_support"]


def test_status(redis_server, r, start_worker, capsys: pytest.CaptureFixture) -> None:
    start_worker(redis_server.url, "prune", python=sys.executable)
    wait_for_workers(r, 1)
    r.xadd("bs:jobs:prune", {"data": "garbage"})
    assert cli_main(["broker", "status", "--redis-url", redis_server.url]) == 0
    out = capsys.readouterr().out
    assert "worker prune-" in out and "python 3." in out and "bs:dead" in out


def test_a_reserved_worker_id_is_not_a_worker_up(r) -> None:
    """Between reserving its id and its first beat a worker has no stream and no environment:
    waiting for workers must not stop there (test_status once read such a worker under load)."""
    from benchsuite.broker.streams import unique_worker_id

    unique_worker_id(r, "prune-reserved-1")
    with pytest.raises(TimeoutError, match="0 of 1 workers up"):
        wait_for_workers(r, 1, timeout=0.3)


def test_server_command(tmp_path) -> None:
    """`--dir` relative to the current folder (it used to end in a traceback: redis-server
    resolved it against its own working directory)."""
    proc = subprocess.Popen([sys.executable, "-m", "benchsuite.frontends.broker_cli", "broker",
                             "server", "--dir", "redis-data", "--aof"], stdout=subprocess.PIPE,
                            text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)})
    try:
        line = proc.stdout.readline()
        url = line.split("--redis-url ")[1].strip()
        assert connect(url).ping()
        assert connect(url).config_get("appendonly")["appendonly"] == "yes"
        # the AOF in the folder named, relative to where the command ran
        assert any(p.name.startswith("appendonly") for p in (tmp_path / "redis-data").iterdir())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_server_command_stops_cleanly_on_an_early_sigterm(tmp_path) -> None:
    """SIGTERM the moment the URL is printed (the race CI hit under load: the handler used to be
    installed after the print, so the server died with -15 and left redis-server behind)."""
    proc = subprocess.Popen([sys.executable, "-m", "benchsuite.frontends.broker_cli", "broker",
                             "server",
                             "--dir", str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)})
    url = proc.stdout.readline().split("--redis-url ")[1].strip()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    with pytest.raises(BrokerConnectionError):  # the redis-server went with it
        connect(url, timeout=2)


def test_add_subcommands_to_another_cli() -> None:
    parser = argparse.ArgumentParser(prog="benchsuite")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["worker", "bench", "--redis-url", "redis://h:1/0", "--device",
                              "MYRIAD", "--benchmark-app", "/x/benchmark_app", "--concurrency",
                              "2"])
    assert (args.kind, args.device, args.benchmark_app, args.concurrency) == (
        "bench", "MYRIAD", "/x/benchmark_app", 2)
    assert callable(args.func)
    args = parser.parse_args(["blobs", "cleanup", "--older-than", "60", "--dry-run"])
    assert args.older_than == 60 and args.dry_run
