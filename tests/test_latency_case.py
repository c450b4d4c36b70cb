"""One `latency` case end to end, through pytest itself: prune, fine-tune, export, benchmark_app.

Runs `pytest -m latency` in a subprocess on the small CNN with a recipe folder of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchsuite.core.paths import project_root

sys.path.insert(0, str(Path(__file__).parent))
from toy_recipes import thin_filters
from wandb_records import run_contents

pytest_plugins = ["pytester"]

RECIPE = thin_filters(["conv1.weight", "conv2.weight"])


@pytest.fixture
def project(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "small_filters.yaml").write_text(RECIPE)
    (schedules / "grid.yaml").write_text(textwrap.dedent("""
        models: [small_cnn]
        recipes:
          small_filters: {sparsity: [0.5]}
    """))
    monkeypatch.setenv("BENCHSUITE_SCHEDULES", str(schedules))
    shutil.copy(project_root() / "experiments" / "test_latency.py", pytester.path)
    # the subprocess imports this checkout's benchsuite (not another install of it)
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    pytester.makeini("[pytest]\nmarkers =\n    latency: experiment\n"
                     "benchsuite_dataset = digits\n")  # the smoke data
    return pytester


def _settle_cache() -> None:
    """Mark the cached results undisturbed. A result whose paired rounds were preempted (on a
    loaded machine) is measured again by the next run instead of being taken from the cache
    (tests/test_result_record.py); the reruns below are about what a cached result does."""
    from benchsuite.core.paths import cache_dir

    for path in (cache_dir() / "results").glob("*.json"):
        data = json.loads(path.read_text())
        if data.get("bench_disturbed"):
            path.write_text(json.dumps(data | {"bench_disturbed": False}))


def _wandb_cores() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "wandb-core"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def test_one_latency_case_end_to_end(project: pytest.Pytester, tmp_path: Path):
    """Through the default path: a private Redis, a prune worker and a bench worker."""
    args = ["-p", "benchsuite.frontends.plugin", "-m", "latency", "-v", "--dense-epochs", "10",
            "--epochs", "2", "--niter", "200", "--bench-repeats", "2",
            "--accuracy-threshold", "0.3"]
    cores_before = _wandb_cores()
    baseline = tmp_path / "baseline.json"
    result = project.runpytest_subprocess(*args, "--save-latency-baseline", str(baseline))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([  # progress of the long stages, from the Redis workers
        "*small_cnn-small_filters-0.5-CPU-f32*dense baseline: epoch 1/10 loss *ETA*",
        "*fine-tune: epoch 2/2 loss *done*",
        "*benchmark: paired rounds until the speed-up's interval is within*",
    ])
    result.stdout.fnmatch_lines([
        "*test_latency*small_cnn-small_filters-0.5-CPU-f32*PASSED*",
        "*benchsuite: latency cases*",
        # under load the interval is followed by "!" (disturbed): the pattern allows it
        "*A/A calibration: small_cnn dense vs itself *x [[]*, *[]]* (* rounds, in-process*",
        "*conditions: device CPU [[]*[]], precision f32, threads 1*method: in-process paired*",
    ])
    from benchsuite.core.paths import results_dir

    table = pd.read_csv(results_dir() / "results.csv")
    row = table.iloc[-1]
    assert row["model"] == "small_cnn" and row["sparsity"] == 0.5
    assert row["latency_median_us"] > 0 and row["dense_latency_median_us"] > 0
    assert row["latency_cv"] >= 0 and row["dense_latency_cv"] >= 0  # spread over the 2 repeats
    # the verdict: an estimate with its interval, the method that made it, benchmark_app beside
    assert row["speedup_ci_low"] <= row["speedup"] <= row["speedup_ci_high"]
    assert row["speedup_method"] == "in-process paired rounds (alternate)"
    assert row["bench_rounds"] >= 20 and row["speedup_benchmark_app"] > 0
    # median of per-round ratios vs ratio of the medians of the same rounds: close, not equal.
    # Not within 5 %: under a neighbour's load the two part (CI once saw 1.705x vs 1.618x, the
    # ratio having drifted from 1.57x to 1.71x mid-measurement); a swapped or foreign latency
    # would be off by the whole speed-up. Exact bounds are tested in test_bench_paired.py.
    assert row["speedup"] == pytest.approx(
        row["dense_latency_median_us"] / row["latency_median_us"], rel=0.25)
    # drift (second half's median ratio over the first's) of a stable pair: near 1
    assert 0.5 < row["bench_drift"] < 2 and isinstance(row["bench_drifted"], bool | np.bool_)
    assert row["test_images"] == 899  # half of digits' 1,797: one image is 0.11 points
    assert row["top1_ci_low"] < row["top1"] < row["top1_ci_high"]
    assert row["params"] < row["dense_params"] and row["macs"] < row["dense_macs"]
    assert row["precision"] == "f32" and row["top1"] >= 0.3
    # Top-1 of the deployed model: the bench worker ran the test split (a blob over Redis)
    # through the compiled IR; at f32 it agrees with torch's within 2 images
    assert row["top1_method"] == "OpenVINO CPU f32, batch 1"
    assert abs(row["top1"] - row["top1_torch"]) <= 2 / 899
    assert abs(row["dense_top1"] - row["dense_top1_torch"]) <= 2 / 899
    assert row["device_name"] not in ("", "unknown")  # the CPU model: ratios differ between CPUs
    assert (results_dir() / "per_layer" / f"{row['case_id']}.csv").is_file()

    assert (results_dir() / "results.parquet").is_file()
    bench_json = json.loads(next((results_dir() / "pytest-benchmark").glob("*.json")).read_text())
    # the dense and the pruned model over the same paired rounds (pytest-benchmark's format)
    models = {b["params"]["model"]: b["stats"] for b in bench_json["benchmarks"]}
    assert models["dense"]["rounds"] == models["pruned"]["rounds"] == row["bench_rounds"]
    assert models["dense"]["median"] == pytest.approx(row["dense_latency_median_us"] / 1e6)
    assert models["pruned"]["median"] == pytest.approx(row["latency_median_us"] / 1e6)

    # W&B: one offline run, read back from its own files; no wandb-core left running
    assert _wandb_cores() <= cores_before
    (run_dir,) = (Path(os.environ["WANDB_DIR"]) / "wandb").glob("offline-run-*")
    contents = run_contents(run_dir)
    assert contents["summary"]["top1"] == pytest.approx(row["top1"])
    assert contents["summary"]["speedup"] == pytest.approx(row["speedup"])
    # the recording service's decision and the run's folder are in the row
    assert row["threshold"] == 0.3 and bool(row["passed"]) is True
    assert row["wandb_run"] == str(run_dir) and contents["summary"]["passed"] is True
    # every setting that is not the default is in the label
    label = "small_cnn-small_filters-0.5-CPU-f32-digits-ep2-dense10-niter200-rep2"
    assert contents["config"]["label"] == label
    assert contents["run"].run_group.startswith("session-")
    assert "per_layer/_type" in contents["history_keys"]  # logged as a wandb.Table
    (table_file,) = (run_dir / "files" / "media" / "table").glob("per_layer*.table.json")
    layers = json.loads(table_file.read_text())
    assert {"layer", "real_time_us", "model"} <= set(layers["columns"]) and layers["data"]

    # the regression check, against the baseline this run wrote (cached reruns, same figures)
    saved = json.loads(baseline.read_text())
    entry = saved["cases"][label]
    assert entry["speedup"] == pytest.approx(row["speedup"])
    assert entry["speedup_ci_high"] == pytest.approx(row["speedup_ci_high"])
    # the baseline was faster than this run's interval reaches, beyond the 5% tolerance
    entry["speedup"] = row["speedup_ci_high"] / 0.95 * 1.02
    baseline.write_text(json.dumps(saved))
    cached = [*args, "--executor", "local"]  # cached results: no stage runs, no broker needed
    _settle_cache()
    failed = project.runpytest_subprocess(*cached, "--latency-baseline", str(baseline))
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*speed-up regressed*lies below the baseline*"])
    failed.stdout.no_fnmatch_line("*benchmark again*")  # cached: no models to measure again
    entry["speedup"] = row["speedup"] * 1.04  # within the 5% tolerance
    baseline.write_text(json.dumps(saved))
    again = project.runpytest_subprocess(*cached, "--latency-baseline", str(baseline))
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*pass (cached)*", "*latency baseline *: 1 case(s) checked*"])
    assert again.ret == 0
    assert len(pd.read_csv(results_dir() / "results.csv")) == len(table)  # cached: no new row
    # a baseline of another grid: its case passes, but a check that checked nothing is red
    saved["cases"] = {"resnet56-other-0.5-CPU-f32": entry}
    baseline.write_text(json.dumps(saved))
    other = project.runpytest_subprocess(*cached, "--latency-baseline", str(baseline))
    other.assert_outcomes(passed=1)
    other.stdout.fnmatch_lines(["*no case of this session is in it, so nothing was checked*"])
    assert other.ret == pytest.ExitCode.TESTS_FAILED
    # a fresh run (--force) that regresses: before failing, its pair is measured again twice
    # by the bench workers (a spell of the machine can read one measurement low), and the
    # failure gives every reading; the cached reruns above had no models to measure again
    entry["speedup"] = row["speedup_ci_high"] * 1.5
    saved["cases"] = {label: entry}
    baseline.write_text(json.dumps(saved))
    fresh = project.runpytest_subprocess(*args, "--force", "--latency-baseline", str(baseline))
    fresh.assert_outcomes(failed=1)
    fresh.stdout.fnmatch_lines([
        "*benchmark again: the speed-up regressed against the baseline: measuring the same "
        "models again",
        "*speed-up regressed*; measured again: *x [[]*, *[]], *x [[]*, *[]]*",
    ])


def test_bad_recipe_fails_before_training(project: pytest.Pytester, tmp_path: Path):
    bad = RECIPE.replace("conv2.weight", "conv7.weight")
    (tmp_path / "schedules" / "small_filters.yaml").write_text(bad)
    result = project.runpytest_subprocess("-p", "benchsuite.frontends.plugin", "-m", "latency")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pruners.filters.weights[[]1[]]: no parameter 'conv7.weight'*"])
    result.stdout.no_fnmatch_line("*dense baseline*")


def test_cases_under_pytest_xdist(project: pytest.Pytester, tmp_path: Path):
    (tmp_path / "schedules" / "grid.yaml").write_text(
        "models: [small_cnn]\nrecipes:\n  small_filters: {sparsity: [0.25, 0.75]}\n")
    result = project.runpytest_subprocess(
        "-p", "benchsuite.frontends.plugin", "-m", "latency", "-n", "2", "--executor", "local",
        "--dense-epochs", "5", "--epochs", "1", "--niter", "100", "--bench-repeats", "1",
        "--bench-seconds", "3", "--accuracy-threshold", "0")
    result.assert_outcomes(passed=2)
    # the controller's summary has both workers' rows
    result.stdout.fnmatch_lines(["*benchsuite: latency cases*"])
    result.stdout.fnmatch_lines(["*pass*small_cnn-small_filters-0.25-CPU-f32*"])
    result.stdout.fnmatch_lines(["*pass*small_cnn-small_filters-0.75-CPU-f32*"])
    from benchsuite.core.paths import results_dir

    table = pd.read_csv(results_dir() / "results.csv")
    assert {0.25, 0.75} <= set(table["sparsity"])
    groups = {run_contents(d)["run"].run_group
              for d in (Path(os.environ["WANDB_DIR"]) / "wandb").glob("offline-run-*")
              if run_contents(d)["config"]["sparsity"] in (0.25, 0.75)}
    assert len(groups) == 1  # one W&B group for the session, whichever worker ran the case


def test_a_row_whose_append_failed_is_recorded_by_the_next_run(project: pytest.Pytester,
                                                              tmp_path: Path, monkeypatch):
    """The result cache used to be written before the table: a failed append (here an
    unreadable results.csv) made every later run say "cached" and the row was lost for good."""
    results = tmp_path / "own-results"
    results.mkdir()
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(results))
    (results / "results.csv").write_text('case_id,label\n"c0,unterminated\n')
    args = ["-p", "benchsuite.frontends.plugin", "-m", "latency", "--executor", "local",
            "--dense-epochs", "3", "--epochs", "1", "--niter", "50", "--bench-seconds", "2",
            "--accuracy-threshold", "0", "--no-calibration", "--wandb", "disabled"]
    broken = project.runpytest_subprocess(*args)
    broken.assert_outcomes(failed=1)
    broken.stdout.fnmatch_lines(["*results.csv is not a readable CSV*move it aside*"])
    (results / "results.csv").rename(results / "results.csv.bad")
    _settle_cache()
    again = project.runpytest_subprocess(*args)
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*pass (cached)*small_cnn-small_filters-0.5-CPU-f32*"])
    assert len(pd.read_csv(results / "results.csv")) == 1  # recorded from the cache
    third = project.runpytest_subprocess(*args)
    third.assert_outcomes(passed=1)
    assert len(pd.read_csv(results / "results.csv")) == 1  # recorded once, not twice
