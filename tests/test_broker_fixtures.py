"""The pytest fixtures, run in an inner pytest session: private Redis + local workers, no
orphan processes afterwards; or an external --redis-url with --no-local-workers."""

from __future__ import annotations

import json
import os

import pytest
from broker_stages import EXTRA_STAGES, TESTS_DIR
from redis_hammer import Hammer, sockets_under

from benchsuite.broker.local import PACKAGE_ROOT

pytest_plugins = ["pytester", "broker_support"]

INNER = """
import json, os
from broker_stages import NOOP

def test_inner(broker_executor, broker_workers, broker_url, request):
    res = broker_executor.run(NOOP, {"a": 1}, {})
    assert res.result["echo"] == {"a": 1}
    out = {"url": broker_url, "workers": [w.pid for w in broker_workers],
           "pythons": [w.python for w in broker_workers]}
    out["worker_args"] = [w.args for w in broker_workers]
    if broker_workers:
        proc = request.getfixturevalue("broker_redis_proc")
        out["redis_pid"] = proc.pid
        out["tcp_port"] = proc.port  # 0: no TCP port, only the unix socket in a 0700 folder
        out["socket_dir_mode"] = oct(os.stat(os.path.dirname(proc.socket)).st_mode & 0o777)
    with open(os.environ["BS_OUT"], "w") as f:
        json.dump(out, f)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.setenv("BENCHSUITE_EXTRA_STAGES", EXTRA_STAGES)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PACKAGE_ROOT), TESTS_DIR]))
    monkeypatch.setenv("BS_OUT", str(tmp_path / "out.json"))
    pytester.makepyfile(test_inner=INNER)
    return pytester


def test_private_redis_and_local_workers(inner: pytest.Pytester, tmp_path) -> None:
    result = inner.runpytest_subprocess("-p", "benchsuite.frontends.plugin.broker_fixtures", "-p",
                                        "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["url"].startswith("unix://") and len(out["workers"]) == 2
    # only this session can submit jobs to its private broker: its workers may serve them all
    assert out["tcp_port"] == 0 and out["socket_dir_mode"] == "0o700"
    assert out["worker_args"] == [["--data-root", "/", "--allow-user-code"]] * 2
    for pid in [out["redis_pid"], *out["workers"]]:
        assert not _alive(pid), f"process {pid} outlived the session"


def test_external_url_no_local_workers(inner: pytest.Pytester, tmp_path, redis_server, r,
                                       start_worker) -> None:
    start_worker(redis_server.url, "prune")
    result = inner.runpytest_subprocess("-p", "benchsuite.frontends.plugin.broker_fixtures", "-p",
                                        "no:cacheprovider", "-q", "--redis-url",
                                        redis_server.url, "--no-local-workers")
    result.assert_outcomes(passed=1)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out == {"url": redis_server.url, "workers": [], "pythons": [], "worker_args": []}


def test_local_workers_on_a_shared_broker_get_only_the_sessions_grants(
        inner: pytest.Pytester, tmp_path, redis_server, r) -> None:
    """With --redis-url anyone who can write to that Redis can submit jobs: the session's own
    workers may read its data folders and import its modules, nothing else."""
    for folder in ("cifar", "pets"):
        (tmp_path / folder).mkdir()
    result = inner.runpytest_subprocess(
        "-p", "benchsuite.frontends.plugin.broker_fixtures", "-p", "no:cacheprovider", "-q",
        "--redis-url",
        redis_server.url, "--data-dir", str(tmp_path / "cifar"), "--dataset",
        f"imagefolder:{tmp_path / 'pets'}", "--model", "resnet20,mymodels:tiny")
    result.assert_outcomes(passed=1)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["worker_args"] == [["--data-root", str(tmp_path / "cifar"), "--data-root",
                                   str(tmp_path / "pets"), "--allow-user-code", "mymodels"]] * 2


def test_bad_external_url_is_a_clear_error(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-p", "benchsuite.frontends.plugin.broker_fixtures", "-p",
                                        "no:cacheprovider", "-q", "--redis-url",
                                        "redis://:hunter2@127.0.0.1:1/0", "--no-local-workers")
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "redis://:***@127.0.0.1:1/0" in text and "hunter2" not in text


def test_the_broker_url_from_the_environment_keeps_it_out_of_ps(
        inner: pytest.Pytester, tmp_path, redis_server, start_worker, monkeypatch) -> None:
    """$BENCHSUITE_REDIS_URL is --redis-url without the password on the session's command
    line (which `ps` shows every user)."""
    start_worker(redis_server.url, "prune")
    monkeypatch.setenv("BENCHSUITE_REDIS_URL", redis_server.url)
    result = inner.runpytest_subprocess("-p", "benchsuite.frontends.plugin.broker_fixtures", "-p",
                                        "no:cacheprovider", "-q", "--no-local-workers")
    result.assert_outcomes(passed=1)
    assert json.loads((tmp_path / "out.json").read_text())["url"] == redis_server.url


STARTUP = """
import json, os

def test_startup(broker_url):
    from benchsuite.broker.connection import connect
    r = connect(broker_url)
    with open(os.environ["BS_OUT"], "w") as f:
        json.dump({"users": r.acl_users()}, f)
"""


def test_private_broker_refuses_everyone_without_the_password_during_startup(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Issue 21 item 0: a local client that watches for the session's private redis-server
    and talks to it the moment it listens gets no command run and can add no user of its own
    (it was open for ~0.1 s: the password was set after start)."""
    tmpdir = tmp_path / "t"  # the inner session's TMPDIR: its Redis folders appear here
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PACKAGE_ROOT), TESTS_DIR]))
    monkeypatch.setenv("BS_OUT", str(tmp_path / "out.json"))
    pytester.makepyfile(test_startup=STARTUP)
    with Hammer(sockets_under(tmpdir)) as hammer:
        result = pytester.runpytest_subprocess(
            "-p", "benchsuite.frontends.plugin.broker_fixtures", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
    assert hammer.accepted == [], "commands ran on the private broker without its password"
    assert hammer.refused > 0, "the hammer never reached the private broker"
    assert json.loads((tmp_path / "out.json").read_text())["users"] == ["default"]
