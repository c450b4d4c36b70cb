"""The private redis-server: unix socket only, persistence off or AOF, no orphan process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchsuite.broker.connection import connect
from benchsuite.broker.local import PACKAGE_ROOT
from benchsuite.broker.server import RedisServer, RedisServerError, find_redis_server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_start_stop_no_persistence(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    with server:
        r = connect(server.url)
        assert r.config_get("save")["save"] == "" and r.config_get("port")["port"] == "0"
        r.set("k", "v")
        pid = server.pid
        assert pid and _alive(pid)
    assert not _alive(pid)
    assert not list(tmp_path.glob("*.rdb")) and not list(tmp_path.glob("*.aof"))


def test_aof_survives_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path, appendonly=True) as server:
        connect(server.url).xadd("s", {"a": "1"})
        server.restart()
        assert connect(server.url).xlen("s") == 1


def test_bad_binary() -> None:
    with pytest.raises(RedisServerError):
        find_redis_server("/nonexistent/redis-server")


def _start_parent(code: str) -> tuple[subprocess.Popen, int]:
    """A Python process running `code`, which starts a server and prints its pid."""
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)})
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def _kill_and_wait_gone(parent: subprocess.Popen, pid: int, timeout: float = 5.0) -> bool:
    """SIGKILL `parent` (no clean-up runs); True once `pid` is gone within `timeout`."""
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_server_dies_with_its_parent(tmp_path: Path) -> None:
    parent, pid = _start_parent(
        "import sys, time; from benchsuite.broker.server import RedisServer; "
        f"s = RedisServer({str(tmp_path)!r}).start(); print(s.pid, flush=True); time.sleep(60)")
    assert _alive(pid)
    assert _kill_and_wait_gone(parent, pid), "redis-server outlived its parent"


def test_fixture_server_dies_with_a_killed_session(tmp_path: Path) -> None:
    # the session fixture's pytest-redis server: mirakuru gives it its own process group, so a
    # SIGKILLed pytest (whose clean-up never runs) must still take it down
    parent, pid = _start_parent(
        "import sys, time; from pathlib import Path; "
        "from benchsuite.broker.redis_proc import private_redis_executor; "
        "from benchsuite.broker.server import find_redis_server; "
        f"e = private_redis_executor(find_redis_server(), Path({str(tmp_path)!r})); "
        "e.start(); print(e.process.pid, flush=True); time.sleep(60)")
    assert _alive(pid) and os.getpgid(pid) != os.getpgid(parent.pid)
    assert _kill_and_wait_gone(parent, pid), \
        "the fixture's redis-server outlived its killed session"
