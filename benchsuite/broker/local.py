"""Start and stop worker subprocesses on this machine (for the fixtures, the tests, a demo).

A worker runs in the interpreter of its tox env when that env is built (``.tox/prune/bin/python``
or ``.tox/bench/bin/python`` under the project root), else in the current interpreter.  The
package root is put first on PYTHONPATH so the worker imports the same benchsuite as the caller.
A local worker gets SIGTERM when its parent dies (Linux), so a killed session leaves no worker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import benchsuite
from benchsuite.broker.connection import URL_ENV
from benchsuite.core.children import die_with_parent

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(benchsuite.__file__).resolve().parent.parent


def env_python(kind: str, root: Path | None = None) -> str:
    """The tox env's interpreter for a worker kind if that env is built, else sys.executable."""
    candidate = Path(root or PACKAGE_ROOT) / ".tox" / kind / "bin" / "python"
    return str(candidate) if candidate.is_file() else sys.executable


class WorkerProcess:
    """One ``python -m benchsuite.frontends.broker_cli worker KIND`` subprocess."""

    def __init__(self, url: str, kind: str, *, python: str | None = None,
                 args: list[str] | None = None, env: dict[str, str] | None = None,
                 log_path: Path | None = None, pythonpath: list[str] | None = None) -> None:
        self.url, self.kind = url, kind
        self.python = python or env_python(kind)
        self.args = list(args or [])
        self.env = dict(os.environ)
        paths = [str(PACKAGE_ROOT), *(pythonpath or [])]
        if self.env.get("PYTHONPATH"):
            paths.append(self.env["PYTHONPATH"])
        self.env["PYTHONPATH"] = os.pathsep.join(paths)
        self.env.update(env or {})
        self.env[URL_ENV] = url
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        self._terminated = False

    def command(self) -> list[str]:
        """The worker's command line; the URL (it may hold a password) goes through the
        environment ($BENCHSUITE_REDIS_URL), never argv, which `ps` shows to every user."""
        return [self.python, "-m", "benchsuite.frontends.broker_cli", "worker", self.kind,
                *self.args]

    def start(self) -> WorkerProcess:
        out = subprocess.DEVNULL
        if self._log_file:  # a restart
            self._log_file.close()
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = out = open(self.log_path, "ab")
        self._terminated = False
        self.proc = subprocess.Popen(self.command(), env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        log.info("started %s worker pid %d (%s)", self.kind, self.proc.pid, self.python)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-job, as a crashed machine would."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self) -> None:
        """Send SIGTERM once, without waiting (stop several workers at once, then ``stop`` each).

        Only once: a second SIGTERM tells a worker to hand back its job at once."""
        if self.alive() and not self._terminated:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait (the worker finishes or hands back its job), SIGKILL as a last resort."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s worker %d ignored SIGTERM for %gs; killing it", self.kind,
                            self.proc.pid, timeout)
                self.proc.kill()
                self.proc.wait()
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def wait_for_workers(r, count: int, stream: str | None = None, timeout: float = 20.0) -> list:
    """Wait until ``count`` workers (of a stream, if given) have beaten; returns their beats.

    A worker's id is reserved (state "starting", no stream, no environment yet) before its first
    beat: that is not a worker up (CI, under load, once read one between the two)."""
    from benchsuite.broker.streams import workers

    deadline = time.monotonic() + timeout
    while True:
        beats = [w for w in workers(r) if w.get("state") != "starting"
                 and (stream is None or w.get("stream") == stream)]
        if len(beats) >= count:
            return beats
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(beats)} of {count} workers up after {timeout:g} s")
        time.sleep(0.05)


class Watchdog:
    """Restarts the session's local workers that die under it (SIGKILL, the OOM killer), up to
    ``max_restarts`` times each: the new worker takes the dead one's job over after its
    ``--claim-idle``, instead of the session waiting for a worker that never comes back."""

    def __init__(self, workers: list[WorkerProcess], period: float = 1.0,
                 max_restarts: int = 3) -> None:
        self.workers, self.period, self.max_restarts = workers, period, max_restarts
        self.restarts = [0] * len(workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for i, w in enumerate(self.workers):
                if (w.alive() or w._terminated or w.proc is None or self._stop.is_set()
                        or w.proc.returncode == 0):  # 0: it stopped on a signal (Ctrl-C)
                    continue
                if self.restarts[i] >= self.max_restarts:
                    continue
                self.restarts[i] += 1
                code = w.proc.returncode
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
                w.start()
                text = (f"benchsuite: the local {w.kind} worker died ({how}); "
                        f"restarted it as pid {w.pid} ({self.restarts[i]}/{self.max_restarts});"
                        " its job is taken over once it has been idle for the claim time")
                log.warning(text)
                print(text, file=sys.__stderr__, flush=True)


def stop_all(workers: list[WorkerProcess], timeout: float = 30.0) -> None:
    """Stop workers in parallel: SIGTERM to all, then wait for each."""
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.stop(timeout)
