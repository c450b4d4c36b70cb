"""Test-only stages for the broker tests, registered in workers via $BENCHSUITE_EXTRA_STAGES."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchsuite.pipeline.executor import Stage, StageResult

TESTS_DIR = str(Path(__file__).resolve().parent)

def noop(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    return StageResult({"echo": spec, "inputs": sorted(files)})


def sleep(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    time.sleep(float(spec.get("seconds", 1.0)))
    return StageResult({"slept": spec.get("seconds", 1.0), "n": spec.get("n")})


def fail(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    raise RuntimeError(spec.get("message", "boom"))


def user_fail(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    from benchsuite.core.errors import UserError

    raise UserError(spec.get("message", "your input is wrong"))


def echo_file(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    data = files["input"].read_bytes()
    out = workdir / "echo.bin"
    out.write_bytes(data[::-1])
    return StageResult({"size": len(data)}, {"output": out})


def progress(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    """Logs `spec["n"]` progress lines, as training does once per epoch."""
    from benchsuite.core.progress import log

    for i in range(1, int(spec.get("n", 3)) + 1):
        log.info("step %d/%d", i, spec.get("n", 3))
    return StageResult({"steps": spec.get("n", 3)})


NOOP = Stage("noop", "prune", noop)
NOOP_BENCH = Stage("noop_bench", "bench", noop)
SLEEP = Stage("sleep", "prune", sleep)
SLEEP_BENCH = Stage("sleep_bench", "bench", sleep)
FAIL = Stage("fail", "prune", fail)
FAIL_BENCH = Stage("fail_bench", "bench", fail)
USER_FAIL = Stage("user_fail", "prune", user_fail)
ECHO_FILE = Stage("echo_file", "prune", echo_file)
PROGRESS = Stage("progress", "prune", progress)
# registered with a module that does not exist: the worker fails to load it
BROKEN_IMPORT = Stage("broken_import", "prune", noop)
NO_SUCH_STAGE = Stage("no_such_stage", "prune", noop)  # registered nowhere

# name=module:ATTRIBUTE, as BENCHSUITE_EXTRA_STAGES wants it
_REGISTERED = {"NOOP": NOOP, "NOOP_BENCH": NOOP_BENCH, "SLEEP": SLEEP,
               "SLEEP_BENCH": SLEEP_BENCH, "FAIL": FAIL, "FAIL_BENCH": FAIL_BENCH,
               "USER_FAIL": USER_FAIL, "ECHO_FILE": ECHO_FILE, "PROGRESS": PROGRESS}
EXTRA_STAGES = ",".join([*(f"{s.name}=broker_stages:{attr}"
                           for attr, s in _REGISTERED.items()),
                         "broken_import=broker_stages_missing_module:NOTHING"])


def results_for(r, session: str) -> list[dict]:
    """All result messages of a session (to check that each job has exactly one)."""
    return [json.loads(fields[b"data"]) for _id, fields in r.xrange(f"bs:results:{session}")]
