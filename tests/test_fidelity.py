"""Multi-fidelity search (sweep/fidelity.py): the engines' own early stopping on the held-out
Top-1 after every fine-tuning epoch, and a stopped case really stops, in-process and on a Redis
worker, with the epochs it spent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from toy_recipes import LEVELS, toy_sweep

from benchsuite.core.progress import StopStage, epoch_line, parse_epoch_top1
from benchsuite.pipeline.stages import PRUNE, TRAIN
from benchsuite.sweep.engines import OptunaEngine, SweepsEngine
from benchsuite.sweep.fidelity import EpochWatch, epochs_spent
from benchsuite.sweep.store import STOPPED, MemoryStore

pytest_plugins = ["broker_support"]
GOOD = [0.90, 0.95, 0.97, 0.98]


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return toy_sweep(tmp_path, monkeypatch, LEVELS, {"sparsity": {"min": 0.1, "max": 0.9}},
                     method="random",
                     early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2})


def _run(engine, curve: list[float]) -> tuple[int, bool]:
    """One trial reporting `curve` epoch by epoch; (its number, whether it was stopped)."""
    number, _ = engine.suggest()
    watch = EpochWatch(engine, number)
    try:
        for epoch, top1 in enumerate(curve):
            watch(epoch_line(epoch, len(curve), 0.1, 1.0, top1))
    except StopStage:
        engine.tell(number, None, False, watch.metrics(), stopped=True)
        return number, True
    engine.tell(number, 2.0, True, {"top1": curve[-1], "finetune_epochs_spent": len(curve)})
    return number, False


def test_epoch_line_carries_the_held_out_top1():
    line = epoch_line(2, 8, 0.4, 3.0, 0.9512)
    assert parse_epoch_top1(f"fine-tune: {line}") == (3, 0.9512)
    assert parse_epoch_top1(epoch_line(2, 8, 0.4, 3.0)) is None


@pytest.mark.parametrize("engine_name", ["sweeps", "optuna", "optuna-redis"])
def test_hyperband_stops_a_trial_whose_top1_is_poor(spec, engine_name, request):
    if engine_name == "sweeps":
        engine = SweepsEngine(spec, MemoryStore(), budget=6, seed=0)
    else:  # Optuna's study in memory, or in its Redis journal storage as the plugin keeps it
        url = request.getfixturevalue("redis_server").url if "redis" in engine_name else None
        engine = OptunaEngine(spec, MemoryStore(), budget=6, seed=0, redis_url=url,
                              study_name=f"hb-{engine_name}")
    for _ in range(3):
        assert not _run(engine, GOOD)[1]  # good trials run all their epochs
    number, stopped = _run(engine, [0.20, 0.25, 0.30, 0.35])
    assert stopped
    trial = next(t for t in engine.store.trials() if t.number == number)
    assert trial.status == STOPPED and trial.history == [0.20, 0.25][:len(trial.history)]
    assert trial.metrics["finetune_epochs_spent"] < 4
    assert not _run(engine, GOOD)[1]
    assert epochs_spent(engine.store.trials()) == 4 * 4 + trial.metrics["finetune_epochs_spent"]


def test_without_early_terminate_nothing_stops(spec):
    cfg = {k: v for k, v in spec.config.items() if k != "early_terminate"}
    engine = SweepsEngine(replace(spec, config=cfg), MemoryStore(), budget=4, seed=0)
    assert not engine.early_stopping
    for _ in range(3):
        _run(engine, GOOD)
    assert not _run(engine, [0.1, 0.1, 0.1, 0.1])[1]


def _stop_after_first_epoch(lines: list[str]):
    def watch(line: str) -> None:
        lines.append(line)
        if parse_epoch_top1(line) is not None:
            raise StopStage("stopped after epoch 1")
    return watch


def _prune_spec() -> tuple[dict, dict]:
    dense = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1}
    return dense, dense | {"epochs": 4, "recipe_name": "t", "epoch_top1": True,
                           "recipe_text": LEVELS.replace("${sparsity=0.5}", "0.5")}


def _train_then_stop_pruning(ex) -> list[str]:
    """Train the dense model, then prune + fine-tune, stopped after its first epoch; the
    progress lines seen."""
    dense_spec, spec = _prune_spec()
    dense = ex.run(TRAIN, dense_spec, {})
    lines: list[str] = []
    with pytest.raises(StopStage):
        ex.run(PRUNE, spec, {"checkpoint": dense.files["checkpoint"]},
               progress=_stop_after_first_epoch(lines))
    return lines


def test_a_stopped_case_stops_in_process(tmp_path, one_thread):
    from benchsuite.pipeline.executor import LocalExecutor

    lines = _train_then_stop_pruning(LocalExecutor(tmp_path))
    assert [parse_epoch_top1(s)[0] for s in lines if parse_epoch_top1(s)] == [1]


def test_a_stopped_case_stops_its_redis_worker(redis_server, r, start_worker, executor_for):
    from benchsuite.broker.streams import dead_letters

    start_worker(redis_server.url, "prune")
    _train_then_stop_pruning(executor_for(redis_server.url, timeout=300))
    # the worker stops at its next progress line (epoch 2 of 4; epoch 1 when the cancel
    # came before it looked) and runs it no second time
    import time

    deadline = time.monotonic() + 120
    while not dead_letters(r) and time.monotonic() < deadline:
        time.sleep(0.2)
    dead = dead_letters(r)
    assert len(dead) == 1 and "cancelled by its session" in str(dead[0])
    assert "attempt 1/" in str(dead[0])
    published = [f[b"line"].decode() for key in r.scan_iter("bs:progress:*")
                 for _, f in r.xrange(key)]
    epochs = [got[0] for line in published if (got := parse_epoch_top1(line)) is not None]
    assert epochs and max(epochs) <= 2  # of 4
