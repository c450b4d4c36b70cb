"""The sweep store under an unlucky operator (hostile round 4, 2026-12-06): a store lost under a
running sweep stops it, saying so; damaged trial records and a damaged append-only file are
named, not tracebacks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchsuite.broker.connection import connect
from benchsuite.frontends.cli import main
from benchsuite.sweep.store import (
    DAMAGED,
    FAILED,
    FINISHED,
    RedisStore,
    SweepStoreError,
    private_store,
)

pytest_plugins = ["broker_support", "pytester"]

CONFIG = {"name": "mine", "method": "random", "metric": {"name": "speedup", "goal": "maximize"}}


def _propose(number, trials):
    return {"sparsity": number / 10}, None


def _run(store: RedisStore, owner: str = "agent-1"):
    trial = store.claim(4, _propose, owner, 60.0)
    trial.status, trial.objective = FINISHED, 1.0 + trial.number / 100
    store.finish(trial)
    return trial


def test_a_store_lost_under_a_running_sweep_stops_it(redis_server, r) -> None:
    """The sweep's Redis (no persistence) restarted while trial 2 of 4 ran: trial 2 was written
    into the empty store, trials 3 and 4 took numbers 1 and 2 again (trial 2's record
    overwritten), trial 1 was gone, and the summary said '2/4 trials done (4 by this agent)'."""
    store = RedisStore(redis_server.url, "lost", config=CONFIG)
    assert _run(store).number == 1
    running = store.claim(4, _propose, "agent-1", 60.0)
    r.flushall()  # the restart
    running.status = FINISHED
    with pytest.raises(SweepStoreError, match=r"sweep lost: its store at .* lost it while this "
                                              r"agent ran .* Run it again to start it over"):
        store.finish(running)
    with pytest.raises(SweepStoreError, match="lost it while this agent ran"):
        store.claim(4, _propose, "agent-1", 60.0)
    assert not r.keys("benchsuite:sweep:lost:*trials")  # nothing written under a lost sweep
    again = RedisStore(redis_server.url, "lost", config=CONFIG)  # run again: a new sweep
    assert _run(again).number == 1


def test_damaged_trial_records_count_as_failed_trials(redis_server, r, capsys) -> None:
    """A trial record that was not JSON failed every item of the resumed sweep with a
    JSONDecodeError traceback; `sweep show` printed the bare JSON error, a record without its
    params a TypeError traceback."""
    store = RedisStore(redis_server.url, "mine-sweeps-s0", config=CONFIG)
    _run(store)
    _run(store)
    key = store.key("trials")
    r.hset(key, "2", "{not json")
    r.hset(key, "3", '{"number": 3}')
    r.hset(key, "junk", "[]")
    r.set(store.key("counter"), 3)
    trials = store.trials()
    assert [(t.number, t.status) for t in trials] == [(1, FINISHED), (2, FAILED), (3, FAILED)]
    assert "JSONDecodeError" in trials[1].metrics[DAMAGED]
    assert store.claim(4, _propose, "agent-1", 60.0).number == 4  # no number taken twice
    assert store.claim(4, _propose, "agent-1", 60.0) is None  # the budget counts them
    assert main(["sweep", "show", "--sweep-redis", redis_server.url]) == 0
    out = capsys.readouterr().out
    assert "trial   2 failed     unreadable record (JSONDecodeError" in out
    r.delete(key)
    r.set(key, "x")
    with pytest.raises(SweepStoreError, match=r"trials is a string, not the hash of its trials"):
        store.trials()
    assert main(["sweep", "show", "--sweep-redis", redis_server.url]) == 1
    err = capsys.readouterr().err
    assert "the store is damaged" in err and "Traceback" not in err


def _damaged_store(folder: Path) -> None:
    with private_store(folder) as url:
        RedisStore(url, "mine", config=CONFIG).close()
        connect(url).bgrewriteaof()
    with open(folder / "appendonly.aof", "ab") as f:
        f.write(b"garbage\x00\xff")


def test_a_damaged_append_only_file_is_named(tmp_path: Path, monkeypatch, capsys) -> None:
    """`sweep show` ended in a RedisServerError traceback (the server's log tail), a sweep
    session in a fixture-setup ERROR with its source, once per trial item."""
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path))
    folder = tmp_path / "sweeps" / "redis"
    _damaged_store(folder)
    with pytest.raises(SweepStoreError, match=r"does not start: redis-server says 'Bad file "
                                              r"format reading the append only file"):
        with private_store(folder):
            pass
    assert main(["sweep", "show"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "redis-check-aof --fix" in err
    assert f"move {folder} aside" in err


def test_a_sweep_session_on_a_damaged_store_stops_once(pytester: pytest.Pytester,
                                                        tmp_path: Path, monkeypatch) -> None:
    from benchsuite.core.paths import project_root

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    _damaged_store(tmp_path / "cache" / "sweeps" / "redis")
    shutil.copy(project_root() / "experiments" / "test_sweep.py", pytester.path)
    pytester.makeini("[pytest]\nmarkers =\n    sweep: sweep trial\n")
    sweep = tmp_path / "s.yaml"
    sweep.write_text("method: random\nmetric: {name: speedup, goal: maximize}\nparameters:\n"
                     "  recipe: {value: l1_filters}\n  sparsity: {values: [0.3, 0.5]}\n")
    result = pytester.runpytest_subprocess(
        "-p", "benchsuite.frontends.plugin", "-p", "benchsuite.frontends.plugin.sweep_items",
        "-p", "no:cacheprovider", "-m", "sweep", "--sweep", str(sweep), "--sweep-count", "3",
        "--wandb", "disabled", "--executor", "local")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert text.count("Bad file format reading the append only file") == 1, text[-3000:]
    assert "Traceback" not in text and "ERROR at setup" not in text


def test_a_session_whose_store_is_lost_stops_at_once(pytester: pytest.Pytester, redis_server,
                                                     tmp_path: Path, monkeypatch) -> None:
    """The session-level half: the item that meets the lost store stops the session with its
    message, once (no later trial claims a number again)."""
    from benchsuite.core.paths import project_root

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    shutil.copy(project_root() / "experiments" / "test_sweep.py", pytester.path)
    pytester.makeini("[pytest]\nmarkers =\n    sweep: sweep trial\n")
    pytester.makeconftest(f"""
        import pytest, redis

        @pytest.hookimpl(wrapper=True, tryfirst=True)
        def pytest_runtest_call(item):
            redis.Redis(unix_socket_path={str(redis_server.socket)!r}).flushall()  # a restart
            return (yield)
        """)
    sweep = tmp_path / "s.yaml"
    sweep.write_text("method: random\nmetric: {name: speedup, goal: maximize}\nparameters:\n"
                     "  recipe: {value: l1_filters}\n  sparsity: {values: [0.3, 0.5]}\n")
    result = pytester.runpytest_subprocess(
        "-p", "benchsuite.frontends.plugin", "-p", "benchsuite.frontends.plugin.sweep_items",
        "-p", "no:cacheprovider", "-m", "sweep", "--sweep", str(sweep), "--sweep-count", "3",
        "--wandb", "disabled", "--executor", "local", "--sweep-redis", redis_server.url)
    text = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert text.count("lost it while this agent ran") >= 1 and "Traceback" not in text
    assert "test_sweep.py::test_sweep[s-02]" not in text  # stopped: no later trial started
