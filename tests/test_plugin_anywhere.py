"""The plugin outside this repository: a project of the user's with its own test file, models,
recipes and data, no `schedules/` of its own. Each run is a pytest subprocess in a fresh
folder (pytester), loading the plugin as the pytest11 entry point does (`-p`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchsuite.core.paths import PACKAGE_DIR

pytest_plugins = ["pytester"]

USER_MODEL = """
from torch import nn

def tiny(num_classes, in_channels):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
"""

USER_RECIPE = """
version: 1
pruners:
  level: {class: SparsityLevelParameterPruner, levels: {'*': 0.3}}
policies:
  - pruner: {instance_name: level}
    epochs: [0]
"""

# a user's own test: the suite's fixtures, its own case (the built-in ResNet-18 on an image
# folder the test makes), its own assertions
USER_TEST = """
import numpy as np
import pytest
from PIL import Image

from benchsuite.recipe.case import Case


def make_folder(root):
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4)):
        for label, base in (("bright", 200), ("dark", 40)):
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                px = np.clip(base + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(root / split / label / f"{i}.png")
    return root


def test_my_resnet18(run_experiment, accuracy_threshold, tmp_path):
    data = make_folder(tmp_path / "shapes")
    case = Case(recipe="level_elementwise", model="resnet18", dataset=f"imagefolder:{data}",
                dense_epochs=1, epochs=1, niter=20, repeats=1)
    row = run_experiment(case, accuracy_threshold)
    assert row["model"] == "resnet18" and row["dataset"] == f"imagefolder:{data}"
    assert row["label"] == ("resnet18-level_elementwise-default-CPU-f32-imagefolder.shapes-"
                            "ep1-dense1-niter20")
    assert row["latency_median_us"] > 0 and 0 <= row["top1"] <= 1
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An empty project. The suite is imported from this checkout (which would keep results
    in the checkout: here they go to the project; an installed benchsuite puts them under the
    current directory by itself)."""
    monkeypatch.setenv("PYTHONPATH", str(PACKAGE_DIR.parent))  # this worktree's benchsuite
    monkeypatch.setenv("BENCHSUITE_CACHE", str(pytester.path / ".cache" / "benchsuite"))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(pytester.path / "experiments" / "results"))
    monkeypatch.delenv("BENCHSUITE_SCHEDULES", raising=False)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    pytester.makepyfile(mymodels=USER_MODEL)
    return pytester


def run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess("-p", "benchsuite.frontends.plugin", "-p",
                                        "no:cacheprovider", *args)


def test_packaged_experiment_with_the_users_model(user_project: pytest.Pytester):
    result = run(user_project, "--pyargs", "benchsuite.experiments", "-m", "latency",
                 "--model", "mymodels:tiny", "--recipes", "level_elementwise", "--executor",
                 "local", "--collect-only", "-q")
    # the packaged sweep test is there too, deselected by -m latency
    result.stdout.fnmatch_lines(["*test_latency.py::test_latency[[]mymodels.tiny-"
                                 "level_elementwise-0.5-CPU-f32[]]",
                                 "1/2 tests collected (1 deselected)*"])
    assert result.ret == 0


def test_users_recipe_folder_and_recipe_file(user_project: pytest.Pytester):
    mine = user_project.mkdir("my_recipes")
    (mine / "light.yaml").write_text(USER_RECIPE)
    (mine / "other.yaml").write_text(USER_RECIPE)
    common = ["--pyargs", "benchsuite.experiments", "-m", "latency", "--model", "mymodels:tiny",
              "--collect-only", "-q"]
    # a folder without grid.yaml: all its recipes are the selection
    run(user_project, *common, "--schedules", str(mine)).stdout.fnmatch_lines(
        ["*[[]mymodels.tiny-light-default-CPU-f32[]]", "*[[]mymodels.tiny-other-default-CPU-f32[]]",
         "2/3 tests collected (1 deselected)*"])
    # the library's recipes stay selectable beside the user's; a recipe file by its path
    result = run(user_project, *common, "--schedules", str(mine), "--recipes",
                 f"level_elementwise,{mine / 'light.yaml'}")
    # (the user's folder has no grid.yaml: every recipe runs with its template defaults)
    result.stdout.fnmatch_lines(["*[[]mymodels.tiny-level_elementwise-default-CPU-f32[]]",
                                 "*[[]mymodels.tiny-light-default-CPU-f32[]]",
                                 "2/3 tests collected (1 deselected)*"])
    # the ini key does what the option does
    user_project.makeini(f"[pytest]\nbenchsuite_schedules = {mine}\n")
    run(user_project, *common, "--recipes", "oth*").stdout.fnmatch_lines(
        ["*[[]mymodels.tiny-other-default-CPU-f32[]]", "1/2 tests collected (1 deselected)*"])


@pytest.mark.parametrize(("args", "message"), [
    (["--recipes", "no_such*"], "ERROR: --recipes 'no_such*' matched no recipe in *"),
    (["--recipes", "missing.yaml"], "ERROR: --recipes: no recipe file missing.yaml"),
    (["--schedules", "nowhere"], "ERROR: --schedules: no folder nowhere"),
])
def test_an_empty_or_wrong_selection_is_a_usage_error(user_project, args, message):
    result = run(user_project, "--pyargs", "benchsuite.experiments", "-m", "latency", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_users_own_test_file_runs_its_own_case(user_project: pytest.Pytester):
    """The suite's fixtures in a user's test: a built-in ResNet-18 case on an image folder made
    by the test, in-process; progress shown without -v."""
    user_project.makepyfile(test_mine=USER_TEST)
    result = run(user_project, "--executor", "local", "--wandb", "disabled", "test_mine.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*resnet18-level_elementwise-*: dense baseline: epoch 1/1 loss*",
                                 "*benchsuite: latency cases*"])
    assert (Path(user_project.path) / "experiments" / "results" / "results.csv").is_file()
    assert (Path(user_project.path) / ".cache" / "benchsuite" / "dense").is_dir()


USER_SWEEP = """
name: mine
method: random
metric: {name: speedup, goal: maximize}
parameters:
  recipe: {value: level_elementwise}
  sparsity: {values: [0.3, 0.5]}
  model: {value: "mymodels:tiny"}
  dataset: {value: digits}
"""


def test_the_packaged_sweep_test_runs_from_an_install(user_project: pytest.Pytester):
    """`pytest --pyargs benchsuite.experiments -m sweep` collects the sweep's trials outside
    this repository (it used to collect nothing: only the latency test shipped)."""
    (user_project.path / "sw.yaml").write_text(USER_SWEEP)
    result = run(user_project, "--pyargs", "benchsuite.experiments", "-m", "sweep", "--sweep",
                 "sw.yaml", "--sweep-count", "2", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_sweep.py::test_sweep[[]mine-01[]]",
                                 "*test_sweep.py::test_sweep[[]mine-02[]]",
                                 "2/* tests collected (* deselected)*"])  # latency: deselected
    assert result.ret == 0
