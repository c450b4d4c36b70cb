"""Test-only stages for the broker tests, registered in workers via $BENCHSUITE_EXTRA_STAGES."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchsuite.pipeline.executor import StageResult

TESTS_DIR = str(Path(__file__).resolve().parent)

# name=module:function:kind, as BENCHSUITE_EXTRA_STAGES wants it
EXTRA_STAGES = ",".join([
    "noop=broker_stages:noop:prune",
    "noop_bench=broker_stages:noop:bench",
    "sleep=broker_stages:sleep:prune",
    "sleep_bench=broker_stages:sleep:bench",
    "fail=broker_stages:fail:prune",
    "fail_bench=broker_stages:fail:bench",
    "user_fail=broker_stages:user_fail:prune",
    "echo_file=broker_stages:echo_file:prune",
    "progress=broker_stages:progress:prune",
    "broken_import=broker_stages_missing_module:nothing:prune",
])


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


def results_for(r, session: str) -> list[dict]:
    """All result messages of a session (to check that each job has exactly one)."""
    return [json.loads(fields[b"data"]) for _id, fields in r.xrange(f"bs:results:{session}")]
