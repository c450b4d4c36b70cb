"""Stages are objects: each built-in one checks its spec against its TypedDict, and a worker
finds a stage by the name its job message carries (built-in or registered for tests)."""

from __future__ import annotations

import pytest

from benchsuite.core.errors import UserError
from benchsuite.pipeline.executor import EXTRA_STAGES_ENV, Stage
from benchsuite.pipeline.stages import BENCH, PRUNE, STAGES, TRAIN, stage_named

DENSE = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1}


def test_the_built_in_stages_by_name_and_kind() -> None:
    assert {name: s.kind for name, s in STAGES.items()} == {
        "train": "prune", "prune": "prune", "bench": "bench", "calibrate": "bench",
        "latency_table": "bench", "calibration_net": "prune"}
    assert stage_named("train") is TRAIN


@pytest.mark.parametrize(("stage", "spec", "message"), [
    (TRAIN, {k: v for k, v in DENSE.items() if k != "seed"}, "lacks 'seed'"),
    (TRAIN, DENSE | {"epochs": "3"}, "spec.epochs must be int, got str '3'"),
    (TRAIN, DENSE | {"epochs": True}, "spec.epochs must be int, got bool"),
    (TRAIN, DENSE | {"epohcs": 3}, "unknown spec field(s) 'epohcs'"),
    (TRAIN, DENSE | {"data_dir": 7}, "spec.data_dir must be str or null"),
    (PRUNE, DENSE, "lacks 'recipe_text'"),
    (BENCH, {"input_shape": [1, 8, 8], "settings": {"nitre": 5}}, "unknown settings key"),
    (BENCH, {"input_shape": "1x8x8", "settings": {}}, "spec.input_shape must be list"),
    (TRAIN, [1, 2], "its spec is a list"),
])
def test_a_spec_that_does_not_fit_is_a_user_error_naming_the_field(stage, spec, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stage.check(spec)


def test_specs_that_fit_pass() -> None:
    TRAIN.check(DENSE | {"data_dir": None, "train_images": 100})
    PRUNE.check(DENSE | {"recipe_text": "version: 1", "epoch_top1": True, "control": None})
    BENCH.check({"input_shape": [1, 1, 8, 8], "settings": {"niter": 5}, "paired": None,
                 "int8": False})


def test_a_registered_stage_is_found_by_name_and_an_unknown_one_is_not(monkeypatch) -> None:
    monkeypatch.setenv(EXTRA_STAGES_ENV, "noop=broker_stages:NOOP,odd=broker_stages:SLEEP")
    assert stage_named("noop").run.__name__ == "noop"
    with pytest.raises(ValueError, match="is stage 'sleep', not 'odd'"):
        stage_named("odd")
    with pytest.raises(KeyError, match="unknown stage 'nosuch'"):
        stage_named("nosuch")


def test_a_stage_has_a_known_kind() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        Stage("x", "gpu", lambda spec, files, workdir: None)
