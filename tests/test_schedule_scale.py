"""--schedule-scale: a long recipe runs with its epochs scaled and its shape kept."""

import pytest

from benchsuite.recipe import RecipeError, parse_recipe
from benchsuite.recipe.scale import scale_schedule

LONG = """
version: 1
pruners:
  agp:
    class: AutomatedGradualPruner
    initial_sparsity: 0.05
    final_sparsity: 0.7
    weights: [conv1.weight]
lr_schedulers:
  step: {class: StepLR, step_size: 45, gamma: 0.1}
  multi: {class: MultiStepLR, milestones: [60, 120], gamma: 0.2}
  exp: {class: ExponentialLR, gamma: 0.95}
policies:
  - pruner: {instance_name: agp}
    starting_epoch: 0
    ending_epoch: 30
    frequency: 2
  - pruner: {instance_name: agp}
    epochs: [100, 105, 180]
  - lr_scheduler: {instance_name: step}
    starting_epoch: 45
    ending_epoch: 200
  - lr_scheduler: {instance_name: multi}
    starting_epoch: 0
    ending_epoch: 400
  - lr_scheduler: {instance_name: exp}
    starting_epoch: 0
    ending_epoch: 3
"""


def test_scaled_epochs_and_lr_steps():
    r = parse_recipe(scale_schedule(LONG, 0.1, "long.yaml"), "long.yaml")
    agp, listed, step, multi, exp = r.policies
    assert (agp.starting_epoch, agp.ending_epoch, agp.frequency) == (0, 3, 1)
    assert listed.epochs == [10, 11, 18]
    assert (step.starting_epoch, step.ending_epoch) == (5, 20)  # 4.5 rounds half up
    assert exp.ending_epoch == 1  # 0.3 -> 0, kept one epoch after its start
    assert (multi.starting_epoch, multi.ending_epoch) == (0, 40)
    assert r.lr_schedulers["step"].args["step_size"] == 5
    assert r.lr_schedulers["multi"].args["milestones"] == [6, 12]
    assert r.lr_schedulers["exp"].args["gamma"] == pytest.approx(0.95 ** 10)
    assert r.last_epoch() == 18
    assert r.text.startswith("# schedule scaled by 0.1 (--schedule-scale) from long.yaml")


def test_scale_one_is_the_recipe_itself_and_scale_must_be_positive():
    assert scale_schedule(LONG, 1.0) == LONG
    with pytest.raises(RecipeError, match="schedule scale must be > 0, got 0"):
        scale_schedule(LONG, 0)


def test_a_case_runs_and_records_the_scaled_schedule(tmp_path):
    from benchsuite.recipe.case import Case

    path = tmp_path / "long.yaml"
    path.write_text(LONG)
    plain = Case(recipe=str(path))
    scaled = Case(recipe=str(path), schedule_scale=0.1)
    assert parse_recipe(scaled.recipe_text()).last_epoch() == 18
    assert parse_recipe(plain.recipe_text()).last_epoch() == 180
    assert scaled.effective_params() == {"schedule_scale": 0.1}  # -> results' recipe_params
    assert plain.effective_params() == {}
    assert "-x0.1-" in scaled.label and "-x" not in plain.label
    assert scaled.case_id != plain.case_id
