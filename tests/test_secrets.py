"""A Redis password given on the command line stays out of every file and process list."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from benchsuite.broker.local import WorkerProcess

SECRET = "s3cret-pw-4711"


def test_local_workers_get_the_url_through_the_environment(tmp_path: Path) -> None:
    url = f"redis://:{SECRET}@127.0.0.1:1/0"
    worker = WorkerProcess(url, "prune", python=sys.executable, log_path=tmp_path / "w.log")
    assert SECRET not in " ".join(worker.command())  # argv is what `ps` shows every user
    assert worker.env["BENCHSUITE_REDIS_URL"] == url


def test_wandb_run_files_hold_no_password_from_argv(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B records the process's arguments in its run file (`wandb sync` would upload them)."""
    pytest.importorskip("wandb")
    from benchsuite.track.wandb_log import WandbTracker

    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["pytest", "-m", "latency", "--redis-url",
                                      f"redis://:{SECRET}@redis-host:6379/0"])
    tracker = WandbTracker(group="secrets", mode="offline")
    try:
        folder = tracker.log_case({"case_id": "c0", "label": "resnet20-x-CPU-f32",
                                   "recipe": "x", "model": "resnet20", "recipe_params": "{}",
                                   "speedup": 2.0, "top1": 0.98})
    finally:
        tracker.close()
    # offline: log_case names the run's own folder, under WANDB_DIR (the files read below)
    assert folder is not None and Path(folder).is_dir() and tmp_path in Path(folder).parents
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files)
    leaked = [p for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaked, leaked
