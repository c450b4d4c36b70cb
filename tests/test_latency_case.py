"""One `latency` case end to end, through pytest itself: prune, fine-tune, export, benchmark_app.

Runs `pytest -m latency` in a subprocess on the small CNN with a recipe folder of its own.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from benchsuite.paths import project_root

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
    pytester.makeini("[pytest]\nmarkers =\n    latency: experiment\n")
    return pytester


def test_one_latency_case_end_to_end(project: pytest.Pytester):
    args = ["-p", "benchsuite.pytest_plugin", "-m", "latency", "-v", "--dense-epochs", "5",
            "--epochs", "2", "--niter", "200", "--bench-repeats", "2",
            "--accuracy-threshold", "0.5"]
    result = project.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*test_latency*small_cnn-small_filters-0.5-CPU-f32*PASSED*",
        "*benchsuite: latency cases*",
        "*conditions: device CPU, precision f32*",
    ])
    from benchsuite.paths import results_dir

    table = pd.read_csv(results_dir() / "results.csv")
    row = table.iloc[-1]
    assert row["model"] == "small_cnn" and row["sparsity"] == 0.5
    assert row["latency_median_us"] > 0 and row["dense_latency_median_us"] > 0
    assert row["speedup"] == pytest.approx(
        row["dense_latency_median_us"] / row["latency_median_us"], rel=1e-6)
    assert row["params"] < row["dense_params"] and row["macs"] < row["dense_macs"]
    assert row["precision"] == "f32" and row["top1"] >= 0.5
    assert (results_dir() / "per_layer" / f"{row['case_id']}.csv").is_file()

    # a second run takes the cached result and does not append a row
    again = project.runpytest_subprocess(*args)
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*pass (cached)*"])
    assert len(pd.read_csv(results_dir() / "results.csv")) == len(table)


def test_bad_recipe_fails_before_training(project: pytest.Pytester, tmp_path: Path):
    bad = RECIPE.replace("conv2.weight", "conv7.weight")
    (tmp_path / "schedules" / "small_filters.yaml").write_text(bad)
    result = project.runpytest_subprocess("-p", "benchsuite.pytest_plugin", "-m", "latency")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pruners.filters.weights[[]1[]]: no parameter 'conv7.weight'*"])
    result.stdout.no_fnmatch_line("*dense baseline*")
