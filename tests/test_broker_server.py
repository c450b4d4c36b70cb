"""The private redis-server: unix socket only, persistence off or AOF, no orphan process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from redis_hammer import Hammer

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


def test_server_is_in_its_own_process_group(tmp_path: Path) -> None:
    # a Ctrl-C (SIGINT to the terminal's foreground process group) must reach the session, not
    # its redis-server, which the session closes after it has handed its work back
    with RedisServer(tmp_path) as server:
        assert server.pid and os.getpgid(server.pid) != os.getpgid(0)
        assert os.getsid(server.pid) == server.pid


def test_refused_without_password_from_the_first_moment(tmp_path: Path) -> None:
    """Issue 21 item 0: a local client trying the socket and the port from before the server
    starts until it is up gets no command run without the password, and can add no user."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = RedisServer(tmp_path / "d", password="the-pw", port=port)
    with Hammer(lambda: [str(server.socket), ("127.0.0.1", port)]) as hammer:
        time.sleep(0.05)  # trying before the process exists
        server.start()
        time.sleep(0.3)  # and for a while after it is up
    try:
        assert hammer.accepted == [], "commands run without the password"
        assert hammer.refused > 0, "the hammer never reached the server"
        r = connect(server.url)
        assert r.acl_users() == ["default"]
        assert r.config_get("protected-mode")["protected-mode"] == "yes"
        assert r.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        server.cleanup()


def test_password_not_in_argv(tmp_path: Path) -> None:
    # `ps` shows every user each process's argv (Redis rewrites its own title only once it
    # runs): the password goes on the server's stdin
    with RedisServer(tmp_path, password="s3cret-pw-in-argv?") as server:
        assert "s3cret-pw-in-argv?" not in " ".join(server.command())
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert b"s3cret-pw-in-argv?" not in cmdline
        assert connect(server.url).ping()


def test_tcp_is_never_open_without_a_password(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with RedisServer(tmp_path, port=port) as server:
        assert server.password
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
        assert connect(f"redis://:{server.password}@127.0.0.1:{port}/0").ping()


def test_socket_in_a_private_folder(tmp_path: Path) -> None:
    # a folder others can open (0755): the socket goes in a fresh 0700 folder instead, so no
    # other user can reach it in the moment between its bind and Redis's chmod
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    server = RedisServer(shared)
    try:
        assert server.socket.parent != shared
        assert server.socket.parent.stat().st_mode & 0o777 == 0o700
        with server:
            assert connect(server.url).ping()
    finally:
        server.cleanup()
    assert not server.socket.parent.exists()
