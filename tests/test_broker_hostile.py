"""The broker under careless or hostile use: malformed job specs and the user's own errors are
dead-lettered once (never retried) and raised as UserError; a local worker killed under the
session is restarted; a second signal makes a worker hand its job back at once."""

from __future__ import annotations

import shutil
import signal
import time

import pytest
from broker_stages import FAIL, NOOP, SLEEP, USER_FAIL

from benchsuite.broker import JobFailed
from benchsuite.broker.local import Watchdog, wait_for_workers
from benchsuite.broker.messages import MessageError
from benchsuite.broker.redis_executor import JobUserError
from benchsuite.broker.streams import DEAD, GROUP, dead_letters, job_stream, workers
from benchsuite.core.errors import UserError
from benchsuite.pipeline.stages import BENCH, CALIBRATE, LATENCY_TABLE, PRUNE, TRAIN

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
    """These were AttributeError/TypeError/KeyError tracebacks inside the stage, retried. The
    submitting side refuses them now; a worker sent one anyway refuses it once."""
    from benchsuite.broker.messages import Job

    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    with pytest.raises(UserError, match=message):
        ex.run(TRAIN, spec, {})
    job = Job(job_id="bad-spec", stage="train", spec=spec, files={}, reply_to=ex.results_key)
    ex.submit_raw(job_stream("prune"), job.to_json(), job.job_id, "train")
    with pytest.raises(JobUserError, match=message) as info:
        ex.wait(job.job_id, timeout=20)
    assert info.value.result is not None and info.value.result.attempts == 1


def test_a_stages_user_error_is_dead_lettered_once_and_raised_as_such(
        redis_server, r, start_worker, executor_for) -> None:
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    with pytest.raises(UserError, match="imagefolder: no images") as info:
        ex.run(USER_FAIL, {"message": "imagefolder: no images under /x/val"}, {})
    assert isinstance(info.value, JobFailed) and info.value.result.attempts == 1
    with pytest.raises(JobFailed) as other:  # the suite's own failures are still retried
        ex.run(FAIL, {"message": "boom"}, {})
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
    job = ex.submit(SLEEP, {"seconds": 30, "n": 1})
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


def _deep_job(job_id: str, reply_to: str) -> str:
    """A prune job whose data is JSON nested 200000 deep (issue 21 item 2)."""
    return ('{"schema": 1, "type": "job", "job_id": "' + job_id + '", "stage": "noop", '
            '"spec": {"data": ' + "[" * 200000 + "]" * 200000 + '}, "reply_to": "'
            + reply_to + '"}')


def test_a_deeply_nested_job_is_dead_lettered_once_not_reclaimed(
        redis_server, r, start_worker, executor_for) -> None:
    """It raised RecursionError (not a MessageError) in parse_job: never dead-lettered,
    claimed again every claim-idle interval forever."""
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    ex.submit_raw(job_stream("prune"), _deep_job("deep-1", ex.results_key), "deep-1")
    with pytest.raises(JobFailed, match=r"malformed message: .*nested more than"):
        ex.wait("deep-1", timeout=20)
    time.sleep(2 * 1.5 + 0.5)  # past two claim-idle intervals of the fast worker settings
    letters = dead_letters(r)
    assert len(letters) == 1 and letters[0]["job_id"] == "deep-1"
    assert "nested more than" in letters[0]["reason"]
    assert r.xlen(job_stream("prune")) == 0
    assert r.xpending(job_stream("prune"), GROUP)["pending"] == 0
    assert ex.run(NOOP, {"after": 1}, {}).result["echo"] == {"after": 1}


def test_too_deep_job_data_is_refused_when_submitted(redis_server, r, executor_for) -> None:
    ex = executor_for(redis_server.url)
    spec: dict = {"x": 1}
    for _ in range(100):
        spec = {"x": [spec]}
    with pytest.raises(MessageError, match="nested more than"):
        ex.submit(NOOP, spec, {})
    assert not r.exists(job_stream("prune"))


def test_cleanup_and_status_skip_what_they_cannot_read(redis_server, r, tmp_path,
                                                       capsys: pytest.CaptureFixture) -> None:
    """`blobs cleanup --dry-run` ended in a RecursionError traceback on the poison job; a
    garbage heartbeat or a result stream that is no stream broke `broker status`."""
    from benchsuite.broker.streams import ensure_group
    from benchsuite.frontends.broker_cli import main as cli_main

    ensure_group(r, job_stream("prune"))
    entry = r.xadd(job_stream("prune"), {"data": _deep_job("deep-2", "bs:results:x")}).decode()
    r.set("bs:results:notastream", "x")
    r.set("bs:worker:garbage", "{not json")
    r.xadd(DEAD, {"data": "x"})  # a dead letter without its reason
    assert cli_main(["blobs", "cleanup", "--redis-url", redis_server.url, "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"bs:jobs:prune {entry}" in err and "nested more than" in err
    assert "bs:results:notastream" in err
    assert cli_main(["broker", "status", "--redis-url", redis_server.url]) == 0
    out = capsys.readouterr().out
    assert "bs:jobs:prune: 1 queued" in out and "bs:worker:garbage" in out


BAD_SETTINGS = {"input_shape": [1, 3, 8, 8], "settings": {"niter": 5, "nosuch": 1}}


def test_unknown_settings_are_refused_when_submitted(redis_server, r, executor_for,
                                                     tmp_path) -> None:
    """Issue 21 item 8: one attempt wasted, then a worker TypeError traceback in a dead letter."""
    from benchsuite.pipeline.executor import LocalExecutor

    ex = executor_for(redis_server.url)
    for stage in (BENCH, CALIBRATE, LATENCY_TABLE):
        with pytest.raises(UserError, match=r"unknown settings key\(s\) 'nosuch'; known: "
                                            r"device, precision, niter") as info:
            ex.submit(stage, BAD_SETTINGS, {})
        assert "Traceback" not in str(info.value)
    assert not list(r.scan_iter("bs:jobs:*"))  # nothing was queued
    with pytest.raises(UserError, match="'nosuch'"):  # and in-process (--executor local)
        LocalExecutor(tmp_path).run(BENCH, BAD_SETTINGS, {})


def test_a_worker_refuses_unknown_settings_once(redis_server, r, start_worker,
                                                executor_for) -> None:
    """A job sent past the check (another client) is the user's error on the worker: once."""
    from benchsuite.broker.messages import Job

    start_worker(redis_server.url, "bench")
    ex = executor_for(redis_server.url)
    job = Job(job_id="nosuch-1", stage="bench", spec=BAD_SETTINGS, files={},
              reply_to=ex.results_key)
    ex.submit_raw(job_stream("bench", "CPU"), job.to_json(), job.job_id, "bench")
    with pytest.raises(JobUserError, match=r"unknown settings key.*'nosuch'") as info:
        ex.wait(job.job_id, timeout=20)
    assert info.value.result.attempts == 1 and "TypeError" not in str(info.value)


def _onnx_with_external_data_outside(folder) -> tuple:
    """A conv model whose weights are external data in `folder`/outside, its .onnx in
    `folder`/job naming them as '../outside/w.bin' (outside the job folder)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    (folder / "outside").mkdir()
    (folder / "job").mkdir()
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save_model(model, str(folder / "outside" / "m.onnx"), save_as_external_data=True,
                    location="w.bin", size_threshold=0)
    model = onnx.load(str(folder / "outside" / "m.onnx"), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../outside/w.bin"
    onnx.save_model(model, str(folder / "job" / "model.onnx"))
    return folder / "job" / "model.onnx"


def test_an_onnx_file_openvino_refuses_is_the_users_error(tmp_path) -> None:
    pytest.importorskip("openvino")
    from benchsuite.bench.ir import ModelRefused, onnx_to_ir

    onnx_path = _onnx_with_external_data_outside(tmp_path)
    with pytest.raises(ModelRefused, match="outside the base directory"):
        onnx_to_ir(onnx_path, tmp_path / "ir" / "model.xml", (3, 8, 8))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(UserError, match=r"OpenVINO cannot read the ONNX file garbage\.onnx"):
        onnx_to_ir(garbage, tmp_path / "ir2" / "model.xml", (3, 8, 8))


def test_a_bench_job_openvino_refuses_is_dead_lettered_at_once(redis_server, r, start_worker,
                                                                executor_for, tmp_path) -> None:
    """Issue 21 item 15: an ONNX file with external data outside the job folder was refused
    by OpenVINO, and the job retried once more (the same file fails the same way)."""
    pytest.importorskip("openvino")
    start_worker(redis_server.url, "bench")
    ex = executor_for(redis_server.url)
    onnx_path = _onnx_with_external_data_outside(tmp_path)
    with pytest.raises(JobUserError, match=r"OpenVINO cannot read the ONNX file model\.onnx"
                       ) as info:
        ex.run(CALIBRATE, {"input_shape": [3, 8, 8], "settings": {}},
               {"dense_onnx": onnx_path})
    assert info.value.result is not None and info.value.result.attempts == 1
    assert "outside the base directory" in str(info.value)


def test_a_yaml_bomb_as_a_prune_jobs_recipe_is_dead_lettered_once_naming_it(
        redis_server, r, start_worker, executor_for) -> None:
    """The issue-21 billion laughs sent as a prune job's recipe: two attempts of 41 s each, then
    a dead letter that did not name the cause. Now the worker's parse_recipe refuses the alias:
    a user error, dead-lettered at the first attempt, with the reason."""
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url, timeout=120)
    dense = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1}
    trained = ex.run(TRAIN, dense, {})
    levels = ["&a [" + ",".join(["lol"] * 9) + "]"]
    levels += [f"&{name} [" + ",".join([f"*{below}"] * 9) + "]"
               for below, name in zip("abcdefgh", "bcdefghi", strict=True)]
    bomb = "pruners: [" + ", ".join(levels) + "]\n"
    t0 = time.monotonic()
    with pytest.raises(JobUserError, match=r"bomb: line 1, column 57: YAML alias \*a refused") \
            as info:
        ex.run(PRUNE, dense | {"recipe_text": bomb, "recipe_name": "bomb"},
               {"checkpoint": trained.files["checkpoint"]})
    assert info.value.result.attempts == 1
    assert time.monotonic() - t0 < 30
    assert len(str(info.value)) < 600


# ---- hostile round 4 (2026-12-06) ------------------------------------------------------------
def test_a_blob_redis_refuses_at_its_maxmemory_is_not_left_half_stored(redis_server, r,
                                                                      tmp_path) -> None:
    """Redis at `maxmemory` refused a blob's chunk after the blob's meta key (its commit mark)
    was written in the same pipeline: the upload failed with an OOM reply, and every later
    upload of that file took the chunkless blob as stored; each case then failed with 'chunk 0
    of 2 is missing; a Redis restart ... most likely lost it', for the blob's 7-day TTL, even
    with memory to spare again."""
    import os

    from benchsuite.broker.blobs import BlobStore, _meta
    from benchsuite.broker.connection import RedisRefused

    path = tmp_path / "model.onnx"
    path.write_bytes(os.urandom(1_500_000))
    blobs = BlobStore(r, url=redis_server.url)
    r.config_set("maxmemory", "2mb")
    try:
        with pytest.raises(RedisRefused, match=r"is at its maxmemory and refuses to store more "
                                               r"\(OOM\): raise its maxmemory") as info:
            blobs.put(path)
        assert "pipeline" not in str(info.value) and len(str(info.value)) < 400
        assert not r.keys("bs:blob:*:meta")
    finally:
        r.config_set("maxmemory", "0")
    ref = blobs.put(path)
    r.delete(f"bs:blob:{ref.sha256}:0")  # what that upload left: a meta without its chunks
    assert r.exists(_meta(ref.sha256))
    again = blobs.put(path)  # uploads it again instead of trusting the meta
    assert blobs.get(again, tmp_path / "back.onnx").read_bytes() == path.read_bytes()


def test_a_wait_on_a_redis_that_refuses_writes_names_it_at_once(redis_server, r,
                                                                executor_for) -> None:
    """With the disk under Redis's data full (MISCONF), the workers could neither beat nor
    write results: the session waited 304 s, then blamed 'no live worker serves bs:jobs:prune
    (start one)', then a MISCONF traceback at teardown."""
    from benchsuite.broker.connection import RedisRefused

    ex = executor_for(redis_server.url, no_worker_timeout=300)
    job = ex.submit(NOOP, {"after": 1}, {})  # queued; no worker alive to take it
    r.config_set("save", "3600 1")  # a snapshot that cannot be written: writes refused
    r.config_set("dir", "/proc")
    try:
        r.bgsave()
        deadline = time.monotonic() + 10
        while r.info("persistence")["rdb_last_bgsave_status"] != "err":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t0 = time.monotonic()
        with pytest.raises(RedisRefused, match=r"cannot write its append-only file or snapshot "
                                               r"and refuses writes \(MISCONF"):
            ex.wait(job, timeout=60)
        assert time.monotonic() - t0 < 10
        with pytest.raises(RedisRefused, match="MISCONF"):  # and a new job: said at submit
            ex.submit(NOOP, {"after": 2}, {})
        ex.close()  # no traceback at the session's end either
    finally:
        r.config_set("stop-writes-on-bgsave-error", "no")
        r.config_set("save", "")
        r.config_set("dir", str(redis_server.datadir))
        r.config_set("stop-writes-on-bgsave-error", "yes")


def test_a_worker_started_with_sigint_ignored_keeps_ignoring_it(redis_server, r, start_worker,
                                                                 executor_for) -> None:
    """A session started with SIGINT ignored (`cmd &` in a script) got a SIGINT to its process
    group: its local workers took it for Ctrl-C and stopped cleanly, while the session kept
    waiting for them, 300 s per case, then blamed 'no live worker'."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # inherited by the worker
    try:
        worker = start_worker(redis_server.url, "prune")
    finally:
        signal.signal(signal.SIGINT, previous)
    wait_for_workers(r, 1, job_stream("prune"))
    worker.proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert worker.alive()
    ex = executor_for(redis_server.url)
    assert ex.run(NOOP, {"after": 1}, {}).result["echo"] == {"after": 1}
    worker.proc.send_signal(signal.SIGTERM)  # the session's stop still stops it
    assert worker.proc.wait(20) == 0
