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

import pandas as pd
import pytest

from benchsuite.paths import project_root

sys.path.insert(0, str(Path(__file__).parent))
from wandb_records import run_contents

pytest_plugins = ["pytester"]

RECIPE = """
version: 1
pruners:
  filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: ${sparsity=0.5}
    weights: [conv1.weight, conv2.weight]
extensions:
  thin: {class: FilterRemover}
policies:
  - pruner: {instance_name: filters}
    epochs: [0]
  - extension: {instance_name: thin}
    epochs: [0]
"""


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
    pytester.makeini("[pytest]\nmarkers =\n    latency: experiment\n")
    return pytester


def _wandb_cores() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "wandb-core"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def test_one_latency_case_end_to_end(project: pytest.Pytester, tmp_path: Path):
    """Through the default path: a private Redis, a prune worker and a bench worker."""
    args = ["-p", "benchsuite.pytest_plugin", "-m", "latency", "-v", "--dense-epochs", "5",
            "--epochs", "2", "--niter", "200", "--bench-repeats", "2",
            "--accuracy-threshold", "0.5"]
    cores_before = _wandb_cores()
    baseline = tmp_path / "baseline.json"
    result = project.runpytest_subprocess(*args, "--save-latency-baseline", str(baseline))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*test_latency*small_cnn-small_filters-0.5-CPU-f32*PASSED*",
        "*benchsuite: latency cases*",
        "*conditions: device CPU [[]*[]], precision f32*",
    ])
    from benchsuite.paths import results_dir

    table = pd.read_csv(results_dir() / "results.csv")
    row = table.iloc[-1]
    assert row["model"] == "small_cnn" and row["sparsity"] == 0.5
    assert row["latency_median_us"] > 0 and row["dense_latency_median_us"] > 0
    assert row["latency_cv"] >= 0 and row["dense_latency_cv"] >= 0  # spread over the 2 repeats
    assert row["speedup"] == pytest.approx(
        row["dense_latency_median_us"] / row["latency_median_us"], rel=1e-6)
    assert row["params"] < row["dense_params"] and row["macs"] < row["dense_macs"]
    assert row["precision"] == "f32" and row["top1"] >= 0.5
    assert row["device_name"] not in ("", "unknown")  # the CPU model: ratios differ between CPUs
    assert (results_dir() / "per_layer" / f"{row['case_id']}.csv").is_file()

    assert (results_dir() / "results.parquet").is_file()
    bench_json = json.loads(next((results_dir() / "pytest-benchmark").glob("*.json")).read_text())
    assert bench_json["benchmarks"][0]["stats"]["median"] > 0

    # W&B: one offline run, read back from its own files; no wandb-core left running
    assert _wandb_cores() <= cores_before
    (run_dir,) = (Path(os.environ["WANDB_DIR"]) / "wandb").glob("offline-run-*")
    contents = run_contents(run_dir)
    assert contents["summary"]["top1"] == pytest.approx(row["top1"])
    assert contents["summary"]["speedup"] == pytest.approx(row["speedup"])
    # every setting that is not the default is in the label
    assert contents["config"]["label"] == "small_cnn-small_filters-0.5-CPU-f32-ep2-niter200-rep2"
    assert contents["run"].run_group.startswith("session-")
    assert "per_layer/_type" in contents["history_keys"]  # logged as a wandb.Table
    (table_file,) = (run_dir / "files" / "media" / "table").glob("per_layer*.table.json")
    layers = json.loads(table_file.read_text())
    assert {"layer", "real_time_us", "model"} <= set(layers["columns"]) and layers["data"]

    # the regression check, against the baseline this run wrote (cached reruns, same figures)
    saved = json.loads(baseline.read_text())
    entry = saved["cases"]["small_cnn-small_filters-0.5-CPU-f32-ep2-niter200-rep2"]
    assert entry["speedup"] == pytest.approx(row["speedup"])
    entry["speedup"] = row["speedup"] * 1.5  # the baseline was much faster: a regression
    baseline.write_text(json.dumps(saved))
    cached = [*args, "--executor", "local"]  # cached results: no stage runs, no broker needed
    failed = project.runpytest_subprocess(*cached, "--latency-baseline", str(baseline))
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*speed-up regressed*below the baseline*"])
    entry["speedup"] = row["speedup"] * 1.05  # within the 10% tolerance
    baseline.write_text(json.dumps(saved))
    again = project.runpytest_subprocess(*cached, "--latency-baseline", str(baseline))
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*pass (cached)*"])
    assert len(pd.read_csv(results_dir() / "results.csv")) == len(table)  # cached: no new row


def test_bad_recipe_fails_before_training(project: pytest.Pytester, tmp_path: Path):
    bad = RECIPE.replace("conv2.weight", "conv7.weight")
    (tmp_path / "schedules" / "small_filters.yaml").write_text(bad)
    result = project.runpytest_subprocess("-p", "benchsuite.pytest_plugin", "-m", "latency")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pruners.filters.weights[[]1[]]: no parameter 'conv7.weight'*"])
    result.stdout.no_fnmatch_line("*dense baseline*")


def test_cases_under_pytest_xdist(project: pytest.Pytester, tmp_path: Path):
    (tmp_path / "schedules" / "grid.yaml").write_text(
        "models: [small_cnn]\nrecipes:\n  small_filters: {sparsity: [0.25, 0.75]}\n")
    result = project.runpytest_subprocess(
        "-p", "benchsuite.pytest_plugin", "-m", "latency", "-n", "2", "--executor", "local",
        "--dense-epochs", "5",
        "--epochs", "1", "--niter", "100", "--bench-repeats", "1", "--accuracy-threshold", "0")
    result.assert_outcomes(passed=2)
    # the controller's summary has both workers' rows
    result.stdout.fnmatch_lines(["*benchsuite: latency cases*"])
    result.stdout.fnmatch_lines(["*small_cnn-small_filters-0.25-CPU-f32*pass*"])
    result.stdout.fnmatch_lines(["*small_cnn-small_filters-0.75-CPU-f32*pass*"])
    from benchsuite.paths import results_dir

    table = pd.read_csv(results_dir() / "results.csv")
    assert {0.25, 0.75} <= set(table["sparsity"])
    groups = {run_contents(d)["run"].run_group
              for d in (Path(os.environ["WANDB_DIR"]) / "wandb").glob("offline-run-*")
              if run_contents(d)["config"]["sparsity"] in (0.25, 0.75)}
    assert len(groups) == 1  # one W&B group for the session, whichever worker ran the case
