"""What a job may make a worker do (benchsuite/core/trust.py): read data only under the worker's
--data-root folders, import a job's module:callable only with --allow-user-code. Real workers,
a real redis-server, a real pickle that would run code if it were loaded."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
import torch
from broker_stages import NOOP

from benchsuite.broker import JobFailed
from benchsuite.broker.streams import dead_letters
from benchsuite.core.trust import JobRefused, Trust, check_job, session_trust
from benchsuite.data.cifar10 import TEST_FILE, TRAIN_FILES
from benchsuite.pipeline.stages import TRAIN, load_checkpoint

pytest_plugins = ["broker_support"]


class _Payload:
    """Unpickling this writes a marker file: evidence that a job made a worker load a pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _hostile_cifar(folder: Path, marker: Path) -> Path:
    folder.mkdir(parents=True)
    for name in (*TRAIN_FILES, TEST_FILE):
        (folder / name).write_bytes(pickle.dumps(_Payload(marker)))
    return folder


# ---- the rule itself -------------------------------------------------------------------------
def test_builtin_model_and_digits_need_no_grant() -> None:
    check_job({"model": "resnet20", "dataset": "digits", "data_dir": "/etc"}, Trust())
    check_job({"input_shape": [1, 1, 32, 32], "settings": {}}, Trust())  # a bench job


@pytest.mark.parametrize("spec", [
    {"dataset": "cifar10", "data_dir": "/etc"},
    {"dataset": "imagefolder:/etc"},
    {"dataset": "imagefolder:~"},
])
def test_data_outside_every_root_is_refused(spec: dict, tmp_path: Path) -> None:
    with pytest.raises(JobRefused, match=r"outside this worker's data roots.*--data-root DIR"):
        check_job(spec, Trust.make([tmp_path]))


def test_paths_are_resolved_before_they_are_compared(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "cifar").mkdir(parents=True)
    outside.mkdir()
    (root / "link").symlink_to(outside)
    trust = Trust.make([root])
    check_job({"dataset": "cifar10", "data_dir": str(root / "cifar")}, trust)
    for sneaky in (root / "link", root / "cifar" / ".." / ".." / "outside"):
        with pytest.raises(JobRefused, match=f"resolved: {outside}"):
            check_job({"dataset": "cifar10", "data_dir": str(sneaky)}, trust)


def test_user_code_needs_its_module_allowed() -> None:
    spec = {"model": "mypkg.nets:tiny", "dataset": "mydata:load"}
    with pytest.raises(JobRefused, match=r"--model mypkg.nets:tiny .*--allow-user-code mypkg"):
        check_job(spec, Trust())
    with pytest.raises(JobRefused, match="--dataset mydata:load"):
        check_job(spec, Trust.make(user_modules=["mypkg"]))
    with pytest.raises(JobRefused, match="mypkg"):  # a prefix of the name is not its package
        check_job({"model": "mypkgevil:f"}, Trust.make(user_modules=["mypkg"]))
    check_job(spec, Trust.make(user_modules=["mypkg", "mydata"]))
    check_job(spec, Trust.make(user_modules=["*"]))


def test_session_grants_cover_what_the_session_was_given(tmp_path: Path) -> None:
    for folder in ("cifar", "pets"):
        (tmp_path / folder).mkdir()
    trust = session_trust([str(tmp_path / "cifar"), None],
                          ["digits", f"imagefolder:{tmp_path / 'pets'}", "mydata:load"],
                          ["resnet20", "mymodels:tiny"])
    assert trust.args() == ["--data-root", str(tmp_path / "cifar"),
                            "--data-root", str(tmp_path / "pets"),
                            "--allow-user-code", "mydata", "--allow-user-code", "mymodels"]
    check_job({"model": "mymodels:tiny", "dataset": f"imagefolder:{tmp_path / 'pets'}"}, trust)
    with pytest.raises(JobRefused):
        check_job({"dataset": "cifar10", "data_dir": str(tmp_path)}, trust)
    assert session_trust([str(tmp_path / "missing")], [], []).data_roots == ()


def test_a_checkpoint_cannot_name_another_model(tmp_path: Path, monkeypatch) -> None:
    """The prune stage builds the model its checkpoint names: a job's crafted checkpoint must
    not bring in a module its (checked) spec does not name."""
    (tmp_path / "evilmod.py").write_text(
        f"open({str(tmp_path / 'imported')!r}, 'w').close()\n"
        "def build(num_classes, in_channels):\n    raise SystemExit\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.save({"state_dict": {}, "model": "evilmod:build", "num_classes": 10,
                "in_channels": 1}, tmp_path / "ckpt.pt")
    with pytest.raises(JobRefused, match="'evilmod:build', the job's spec names 'resnet20'"):
        load_checkpoint(tmp_path / "ckpt.pt", "resnet20")
    assert not (tmp_path / "imported").exists() and "evilmod" not in sys.modules


# ---- real workers ----------------------------------------------------------------------------
def test_a_job_cannot_make_a_worker_unpickle_files_outside_its_roots(
        redis_server, r, start_worker, executor_for, tmp_path) -> None:
    """A train job naming a folder of pickles the worker was not given: refused at once (no
    retry), the pickles never loaded."""
    marker = tmp_path / "pwned"
    hostile = _hostile_cifar(tmp_path / "hostile", marker)
    (tmp_path / "data").mkdir()
    start_worker(redis_server.url, "prune", "--data-root", str(tmp_path / "data"))
    ex = executor_for(redis_server.url)
    spec = {"model": "resnet20", "dataset": "cifar10", "data_dir": str(hostile), "seed": 0,
            "epochs": 1}
    with pytest.raises(JobFailed, match=f"--data-dir reads '{hostile}'.*--data-root") as info:
        ex.run(TRAIN, spec, {})
    assert info.value.result is not None and info.value.result.attempts == 1  # not retried
    assert not marker.exists()
    assert any("outside this worker's data roots" in d["reason"] for d in dead_letters(r))


def test_data_roots_and_user_code_grants_of_a_real_worker(redis_server, r, start_worker,
                                                          executor_for, tmp_path) -> None:
    root = tmp_path / "data"
    (root / "cifar").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path)
    start_worker(redis_server.url, "prune", "--data-root", str(root), "--allow-user-code",
                 "broker_stages")
    ex = executor_for(redis_server.url)
    inside = {"dataset": "cifar10", "data_dir": str(root / "cifar")}
    assert ex.run(NOOP, inside, {}).result["echo"] == inside
    with pytest.raises(JobFailed, match="outside this worker's data roots"):
        ex.run(NOOP, {"dataset": f"imagefolder:{root / 'escape'}"}, {})
    allowed = {"model": "broker_stages:noop"}
    assert ex.run(NOOP, allowed, {}).result["echo"] == allowed
    with pytest.raises(JobFailed, match="would import and run module 'os'"):
        ex.run(NOOP, {"dataset": "os:getcwd"}, {})


def test_a_worker_without_grants_refuses_user_code(redis_server, r, start_worker, executor_for
                                                   ) -> None:
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url)
    with pytest.raises(JobFailed, match="--allow-user-code broker_stages"):
        ex.run(NOOP, {"model": "broker_stages:noop"}, {})
    assert ex.run(NOOP, {"model": "resnet20"}, {}).result["echo"] == {"model": "resnet20"}

