"""Sweep trials as tests: `pytest --pyargs benchsuite.experiments -m sweep --sweep FILE
--sweep-count N` (in this repository: `pytest -m sweep ...`, experiments/test_sweep.py is the
same test).

Each item claims the sweep's next trial (the engine's suggestion, shared through Redis), runs
its case with `run_experiment` (results table, W&B run, result cache), and tells the engine.
An infeasible trial (Top-1 under the floor) is recorded and reported as xfail with its figures;
so is a trial the engine stopped early (the sweep's `early_terminate`), with its epochs.
"""

import pytest


@pytest.mark.sweep
def test_sweep(sweep_slot, sweep_session, run_experiment, hardware_skip_reason):
    if (reason := sweep_session.constant_case_skip(hardware_skip_reason)) is not None:
        pytest.skip(reason)  # before claiming: the budget is not spent on trials that cannot run
    trial = sweep_session.claim()
    if trial is None:
        pytest.skip(sweep_session.no_trial_reason())
    with sweep_session.running(trial):
        row = run_experiment(trial.case, trial.threshold, watch=trial.watch)
    if trial.stopped:  # the engine stopped it early (early_terminate): no benchmark
        pytest.xfail(trial.stopped)
    verdict = sweep_session.record(trial, row)
    print(verdict)
    if not row["passed"]:
        pytest.xfail(f"infeasible: {verdict}")
