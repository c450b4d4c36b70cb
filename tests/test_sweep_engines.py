"""Engines over the Redis trial store, on a toy objective (no training): suggest/tell, the
accuracy floor as infeasibility, two agents sharing one sweep, config and budget checks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from toy_recipes import LEVELS, toy_sweep

from benchsuite.broker.server import RedisServer
from benchsuite.sweep.engines import OptunaEngine, SweepsEngine, make_engine
from benchsuite.sweep.session import best_trial
from benchsuite.sweep.store import RedisStore

RECIPE = LEVELS.replace("\npolicies:", "\n    note: ${width=1}\npolicies:")  # a 2nd parameter


@pytest.fixture(scope="module")
def redis_url():
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return toy_sweep(tmp_path, monkeypatch, RECIPE, {
        "sparsity": {"distribution": "q_uniform", "min": 0.1, "max": 0.9, "q": 0.05},
        "width": {"values": [1, 2, 4]}})


def toy(params: dict) -> tuple[float, bool, dict]:
    """speed-up grows with sparsity and width; Top-1 falls with sparsity (floor 0.9)."""
    s, w = params["sparsity"], params["width"]
    top1 = 0.99 - 0.25 * s * s
    return 1 + 2 * s + 0.1 * w, top1 >= 0.9, {"top1": top1, "threshold": 0.9}


def drive(engine) -> list[int]:
    ran = []
    while (got := engine.suggest()) is not None:
        number, params = got
        engine.tell(number, *toy(params))
        ran.append(number)
    return ran


@pytest.mark.parametrize("engine_name", ["sweeps", "optuna"])
def test_engine_suggest_tell_with_infeasible(spec, redis_url, engine_name):
    sweep_id = f"toy-{engine_name}"
    store = RedisStore(redis_url, sweep_id, config=spec.config)
    engine = make_engine(engine_name, spec, store, budget=8, seed=1, redis_url=redis_url,
                         study_name=sweep_id)
    assert drive(engine) == list(range(1, 9)) and engine.told == list(range(1, 9))
    trials = store.trials()
    assert len(trials) == 8 and {t.status for t in trials} <= {"finished", "infeasible"}
    for t in trials:
        assert (t.status == "infeasible") == (t.metrics["top1"] < 0.9)
    best = best_trial(spec, trials)
    assert best is not None and best.metrics["top1"] >= 0.9
    if engine_name == "optuna":  # the constraint reached Optuna's study, in Redis
        assert isinstance(engine, OptunaEngine)
        assert len(engine.study.trials) == 8
        feasible = [t for t in engine.study.trials
                    if t.system_attrs.get("constraints:accuracy", 1) <= 0]
        assert len(feasible) == sum(1 for t in trials if t.status == "finished")


def test_two_agents_no_duplicates(spec, redis_url):
    stores = [RedisStore(redis_url, "toy-shared", config=spec.config) for _ in range(2)]
    engines = [SweepsEngine(spec, s, budget=10, seed=0) for s in stores]
    ran: list[list[int]] = [[], []]
    threads = [threading.Thread(target=lambda i=i: ran[i].extend(drive(engines[i])))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ran[0] + ran[1]) == list(range(1, 11))
    assert [t.number for t in stores[0].trials()] == list(range(1, 11))


def test_resumed_sweep_must_use_the_same_config(spec, redis_url):
    RedisStore(redis_url, "toy-cfg", config=spec.config).close()
    other = dict(spec.config) | {"method": "random"}
    with pytest.raises(ValueError, match="started with another config"):
        RedisStore(redis_url, "toy-cfg", config=other)


def test_agent_argument_formats():
    """Every format wandb's agent can produce (`${args}`, `${args_no_equals}`,
    `${args_no_hyphens}`, `${args_no_boolean_flags}`), as its own code builds them."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    from benchsuite.sweep.agent_entry import parse_args

    params = {"recipe": "l1_filters", "sparsity": 0.35, "round_to": 8, "thin": True,
              "accuracy_threshold": "-1pt", "precision": None}
    formats = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    for name in ("args", "args_no_equals", "args_no_hyphens"):
        assert parse_args(formats[name]) == params, name
    no_bool = parse_args(formats["args_no_boolean_flags"])
    assert no_bool == params
