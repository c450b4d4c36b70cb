"""The broker under careless or hostile use: malformed job specs and the user's own errors are
dead-lettered once (never retried) and raised as UserError; a local worker killed under the
session is restarted; a second signal makes a worker hand its job back at once."""

from __future__ import annotations

import shutil
import signal
import time

import pytest

from benchsuite.broker import JobFailed
from benchsuite.broker.executor import JobUserError
from benchsuite.broker.local import Watchdog, wait_for_workers
from benchsuite.broker.streams import job_stream, workers
from benchsuite.errors import UserError

pytest_plugins = ["broker_support"]


@pytest.mark.parametrize(("spec", "message"), [
    ({"model": "resnet20", "dataset": {"a": 1}, "seed": 0, "epochs": 1},
     "malformed train job: spec.dataset must be str, got dict"),
    ({"model": "resnet20", "dataset": "digits", "seed": 0, "epochs": "1"},
     "malformed train job: spec.epochs must be int, got str '1'"),
    ({"dataset": "digits", "seed": 0, "epochs": 1}, "malformed train job: its spec lacks 'model'"),
    ({"model": "resnet20", "dataset": "cifar10", "data_dir": ["/etc"], "seed": 0, "epochs": 1},
     "spec.data_dir must be str or null, got list"),
])
def test_a_malformed_spec_is_a_user_error_not_retried(redis_server, r, start_worker,
                                                      executor_for, spec, message) -> None:
    """These were AttributeError/TypeError/KeyError tracebacks inside the stage, retried."""
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    with pytest.raises(JobUserError, match=message) as info:
        ex.run("train", spec, {})
    assert info.value.result is not None and info.value.result.attempts == 1


def test_a_stages_user_error_is_dead_lettered_once_and_raised_as_such(
        redis_server, r, start_worker, executor_for) -> None:
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    with pytest.raises(UserError, match="imagefolder: no images") as info:
        ex.run("user_fail", {"message": "imagefolder: no images under /x/val"}, {})
    assert isinstance(info.value, JobFailed) and info.value.result.attempts == 1
    with pytest.raises(JobFailed) as other:  # the suite's own failures are still retried
        ex.run("fail", {"message": "boom"}, {})
    assert not isinstance(other.value, UserError) and other.value.result.attempts == 2


def test_a_killed_local_worker_is_restarted(redis_server, r, start_worker) -> None:
    """The session used to wait for the dead worker's job for 5 minutes, silently."""
    worker = start_worker(redis_server.url, "prune")
    wait_for_workers(r, 1, job_stream("prune"))
    watchdog = Watchdog([worker], period=0.1).start()
    try:
        first = worker.pid
        worker.proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (worker.alive() and worker.pid != first):
            time.sleep(0.1)
        assert worker.alive() and worker.pid != first and watchdog.restarts == [1]
        deadline = time.monotonic() + 30  # the new worker serves the stream
        while time.monotonic() < deadline and not any(b["pid"] == worker.pid
                                                      for b in workers(r)):
            time.sleep(0.1)
        assert any(b["pid"] == worker.pid for b in workers(r))
        worker.proc.send_signal(signal.SIGINT)  # a clean stop (Ctrl-C): not restarted
        worker.proc.wait(20)
        time.sleep(0.5)
        assert worker.proc.returncode == 0 and not worker.alive() and watchdog.restarts == [1]
    finally:
        watchdog.stop()


def test_a_second_signal_hands_the_job_back_at_once(redis_server, r, start_worker,
                                                    executor_for) -> None:
    """The grace deadline was fixed at the first signal: Ctrl-C then the session's SIGTERM
    still waited the whole --grace (30 s) for a running stage."""
    worker = start_worker(redis_server.url, "prune", "--grace", "60")
    ex = executor_for(redis_server.url)
    wait_for_workers(r, 1, job_stream("prune"))
    job = ex.submit("sleep", {"seconds": 30, "n": 1})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(
            w.get("running") for w in workers(r)):
        time.sleep(0.05)
    worker.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    t0 = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    worker.proc.wait(20)
    assert time.monotonic() - t0 < 10
    assert "handed back job" in worker.log_text() and job


def test_two_workers_with_one_name_get_one_heartbeat_each(redis_server, r) -> None:
    """Two containers on one host's network both run their worker as pid 7: they used to share
    one heartbeat key and consumer name, so `broker status` showed one worker of two."""
    from benchsuite.broker.worker import Worker, WorkerConfig

    first, second = (Worker(WorkerConfig(url=redis_server.url, kind="prune", worker_id="dup"))
                     for _ in range(2))
    assert first.worker_id == "dup" and second.worker_id.startswith("dup-")
    assert {w["worker_id"] for w in workers(r)} == {"dup", second.worker_id}
    for w in (first, second):
        shutil.rmtree(w.base, ignore_errors=True)
        w.r.close()


def test_a_yaml_bomb_as_a_prune_jobs_recipe_is_dead_lettered_once_naming_it(
        redis_server, r, start_worker, executor_for) -> None:
    """The issue-21 billion laughs sent as a prune job's recipe: two attempts of 41 s each, then
    a dead letter that did not name the cause. Now the worker's parse_recipe refuses the alias:
    a user error, dead-lettered at the first attempt, with the reason."""
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url, timeout=120)
    dense = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1}
    trained = ex.run("train", dense, {})
    levels = ["&a [" + ",".join(["lol"] * 9) + "]"]
    levels += [f"&{name} [" + ",".join([f"*{below}"] * 9) + "]"
               for below, name in zip("abcdefgh", "bcdefghi", strict=True)]
    bomb = "pruners: [" + ", ".join(levels) + "]\n"
    t0 = time.monotonic()
    with pytest.raises(JobUserError, match=r"bomb: line 1, column 57: YAML alias \*a refused") \
            as info:
        ex.run("prune", dense | {"recipe_text": bomb, "recipe_name": "bomb"},
               {"checkpoint": trained.files["checkpoint"]})
    assert info.value.result.attempts == 1
    assert time.monotonic() - t0 < 30
    assert len(str(info.value)) < 600
