"""`benchsuite sweep show`: a sweep kept in Redis is inspectable with one command."""

from __future__ import annotations

import pytest

from benchsuite.frontends.cli import main
from benchsuite.sweep.store import FINISHED, RedisStore

pytest_plugins = ["broker_support"]

CONFIG = {"name": "mine", "method": "bayes", "metric": {"name": "speedup", "goal": "maximize"}}


def test_sweep_show_lists_the_sweeps_trials(redis_server, capsys) -> None:
    store = RedisStore(redis_server.url, "mine-sweeps-s0", config=CONFIG)
    trial = store.claim(3, lambda number, trials: ({"sparsity": 0.15000000000000002}, None),
                        "agent-1", 60.0)
    trial.status, trial.objective = FINISHED, 1.4999999
    trial.metrics = {"val_top1": 0.9211}
    store.finish(trial)
    assert main(["sweep", "show", "--sweep-redis", redis_server.url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "sweep mine-sweeps-s0: 1 trial(s), method bayes, metric speedup"
    assert out[1].split() == ["trial", "1", "finished", "speedup", "1.5,", "Top-1", "0.9211",
                              '{"sparsity":', '0.15}']
    assert main(["sweep", "show", "nosuch", "--sweep-redis", redis_server.url]) == 2
    assert "no sweep 'nosuch' in that store (it holds: mine-sweeps-s0)" in capsys.readouterr().err


def test_sweep_show_without_a_store_says_so(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path))
    assert main(["sweep", "show"]) == 2
    assert "no sweep store at" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["sweep", "show", "--help"]])
def test_sweep_show_has_help(args, capsys) -> None:
    with pytest.raises(SystemExit):
        main(args)
    assert "--sweep-redis URL" in capsys.readouterr().out
