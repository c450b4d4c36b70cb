"""Engines over the Redis trial store, on a toy objective (no training): suggest/tell, the
accuracy floor as infeasibility, two agents sharing one sweep, config and budget checks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from toy_recipes import LEVELS, toy_sweep

from benchsuite.broker.server import RedisServer
from benchsuite.sweep.engines import OptunaEngine, SweepsEngine, make_engine
from benchsuite.sweep.store import RedisStore
from benchsuite.sweep.trials import best_trial

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

    from benchsuite.frontends.agent import parse_args

    params = {"recipe": "l1_filters", "sparsity": 0.35, "round_to": 8, "thin": True,
              "accuracy_threshold": "-1pt", "precision": None}
    formats = create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})
    for name in ("args", "args_no_equals", "args_no_hyphens"):
        assert parse_args(formats[name]) == params, name
    no_bool = parse_args(formats["args_no_boolean_flags"])
    assert no_bool == params


def test_an_agent_with_a_skewed_clock_takes_no_healthy_trial(spec, redis_url, monkeypatch):
    """Issue 21 item 14: an agent whose clock ran 600 s ahead took over the leases of a healthy
    agent's running trials (leases compared each agent's own wall clock); they are Redis's."""
    import time as real_time
    import types

    from benchsuite.sweep import store as store_module

    healthy = SweepsEngine(spec, RedisStore(redis_url, "toy-skew", config=spec.config),
                           budget=6, seed=0, owner="healthy", lease=60.0)
    running = [healthy.suggest()[0], healthy.suggest()[0]]
    assert running == [1, 2]
    # the other agent's machine: its clock 600 s ahead of everyone else's (and of Redis's)
    skewed_time = types.SimpleNamespace(**{k: getattr(real_time, k) for k in dir(real_time)
                                           if not k.startswith("__")})
    skewed_time.time = lambda: real_time.time() + 600
    monkeypatch.setattr(store_module, "time", skewed_time)
    skewed = SweepsEngine(spec, RedisStore(redis_url, "toy-skew", config=spec.config),
                          budget=6, seed=0, owner="skewed", lease=60.0)
    number, _params = skewed.suggest()
    assert number == 3, "the skewed agent took over a healthy agent's running trial"
    skewed.heartbeat(number)
    healthy.heartbeat(1)
    by_number = {t.number: t for t in healthy.store.trials()}
    assert by_number[1].owner == by_number[2].owner == "healthy"
    assert by_number[1].attempts == by_number[2].attempts == 1
    assert by_number[3].owner == "skewed"
    # leases are on Redis's clock: about now + 60 s there, not the skewed agent's now + 660 s
    redis_now = healthy.store.now()
    assert abs(by_number[3].lease_until - (redis_now + 60)) < 30
