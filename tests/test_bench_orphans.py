"""A killed bench worker leaves no benchmark_app running: an orphan (parent PID 1) would load
the machine the next benchmark runs on. The stand-in benchmark_app here is a shell script that
answers `-h` and then sleeps silently, so without PR_SET_PDEATHSIG it would outlive its parent
by ten minutes (a real benchmark_app may die earlier of SIGPIPE, or may not)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FAKE_APP = """#!/bin/sh
if [ "$1" = "-h" ]; then
  echo "  -m MODEL  -d DEVICE  -api API  -niter N  -hint HINT  -report_type T  -report_folder D"
  exit 0
fi
exec sleep 600
"""
WORKER = """
import sys
from pathlib import Path
from benchsuite.bench import BenchSettings, run_benchmark
run_benchmark(Path(sys.argv[1]), Path(sys.argv[2]), BenchSettings(executable=sys.argv[3],
              per_layer=False, input_precision=None))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _sleeping_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid), "sleep"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_benchmark_app_dies_with_a_killed_worker(tmp_path: Path) -> None:
    app = tmp_path / "benchmark_app"
    app.write_text(FAKE_APP)
    app.chmod(0o755)
    (tmp_path / "m.xml").write_text("<net/>")
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "m.xml"),
                               str(tmp_path / "r"), str(app)])
    deadline = time.monotonic() + 60
    children: list[int] = []
    while not children and time.monotonic() < deadline:
        children = _sleeping_children(worker.pid)
        time.sleep(0.1)
    assert children, "the stand-in benchmark_app did not start"
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 30  # far below the 600 s it would live as an orphan
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [c for c in children if _alive(c)]
    for c in alive:
        os.kill(c, signal.SIGKILL)
    assert not alive, "benchmark_app outlived its worker"
