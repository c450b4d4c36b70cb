"""A recipe cannot take the session, the recipe CLI or the prune worker down: a size limit
(1 MB), YAML aliases refused before anything is built (a ~350-byte "billion laughs" took the
session to 19 GB and printed the repr of its expanded 9^9-item list), and errors that quote a
few hundred characters of a bad value at most (issue 21, items 10 and 12).

The bomb runs in child processes under an address-space limit, so a regression fails the test
with a MemoryError instead of eating the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchsuite.broker.local import PACKAGE_ROOT
from benchsuite.recipe import RecipeError, load_recipe, parse_recipe
from benchsuite.recipe.yamltext import MAX_RECIPE_BYTES

pytest_plugins = ["pytester"]

GOOD = ("version: 1\npruners:\n  p:\n    class: SparsityLevelParameterPruner\n"
        "    levels: {'*': 0.5}\npolicies:\n  - pruner: {instance_name: p}\n    epochs: [0]\n")


def bomb() -> str:
    """The issue's recipe (316 bytes here): nine levels of nine aliases of the level below,
    under `pruners`."""
    levels = ["&a [" + ",".join(["lol"] * 9) + "]"]
    for below, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"&{name} [" + ",".join([f"*{below}"] * 9) + "]")
    return "pruners: [" + ", ".join(levels) + "]\n"


def _limited(gigabytes: float):
    def limit() -> None:
        size = int(gigabytes * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    return limit


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(PACKAGE_ROOT)}


@pytest.mark.parametrize("how", ["parse_recipe", "load_recipe", "scale_schedule"])
def test_a_yaml_bomb_is_refused_at_once_in_little_memory(tmp_path: Path, how: str):
    """parse_recipe: the prune worker's path (a job's recipe text); load_recipe: `benchsuite
    recipe check`; scale_schedule: the session's `--schedule-scale`, which loads the text first."""
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    code = textwrap.dedent(f"""
        import time, tracemalloc
        from pathlib import Path
        from benchsuite.recipe import RecipeError, load_recipe, parse_recipe
        from benchsuite.recipe.scale import scale_schedule
        text = Path({str(path)!r}).read_text()
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            {{"parse_recipe": lambda: parse_recipe(text, source="bomb.yaml"),
              "load_recipe": lambda: load_recipe(Path({str(path)!r})),
              "scale_schedule": lambda: scale_schedule(text, 0.5, "bomb.yaml")}}[{how!r}]()
        except RecipeError as e:
            print(f"{{time.perf_counter() - t0:.3f}} {{tracemalloc.get_traced_memory()[1]}}")
            print(e)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), timeout=30, preexec_fn=_limited(1))
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    figures, message = out.stdout.split("\n", 1)
    seconds, peak = figures.split()
    assert float(seconds) < 1 and int(peak) < 20 * 2**20, figures
    assert "bomb.yaml: line 1, column 57: YAML alias *a refused" in message
    assert len(message) < 300, message


def test_recipe_check_of_the_bomb_is_one_line(tmp_path: Path):
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "benchsuite.frontends.cli", "recipe", "check",
                          str(path),
                             "--model", "resnet20"], capture_output=True, text=True, env=_env(),
                         timeout=120, preexec_fn=_limited(3))
    assert time.perf_counter() - t0 < 60
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [
        "benchsuite recipe: bomb.yaml: line 1, column 57: YAML alias *a refused: recipes, grids "
        "and sweep files may not use aliases (*name, <<: *name); write the value out"]


def test_a_session_case_with_the_bomb_fails_with_the_message(tmp_path: Path):
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    env = _env() | {"BENCHSUITE_CACHE": str(tmp_path / "cache"),
                    "BENCHSUITE_RESULTS": str(tmp_path / "results")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs",
         "benchsuite.experiments", "-m", "latency", "--executor", "local", "--wandb",
         "disabled", f"--recipes={path}", "--model", "small_cnn"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=_limited(4))
    assert out.returncode == pytest.ExitCode.TESTS_FAILED, out.stdout[-3000:] + out.stderr
    assert "1 failed" in out.stdout
    assert "bomb.yaml: line 1, column 57: YAML alias *a refused" in out.stdout
    assert "Traceback" not in out.stdout and "MemoryError" not in out.stdout


def test_a_merge_key_is_an_alias_too():
    text = GOOD.replace("pruners:\n", "base: &b {levels: {'*': 0.5}}\npruners:\n") \
        .replace("    levels: {'*': 0.5}\n", "    <<: *b\n")
    with pytest.raises(RecipeError, match=r"line 6, column 9: YAML alias \*b refused"):
        parse_recipe(text)


def test_an_anchor_without_alias_is_fine():
    assert parse_recipe(GOOD.replace("levels: {", "levels: &lv {")).pruners["p"].args


def test_a_recipe_over_1_mb_is_refused(tmp_path: Path):
    """A 50 MB recipe of comments took 5x the time and 800 MB."""
    path = tmp_path / "big.yaml"
    filler = "# " + "x" * 98 + "\n"
    path.write_text(GOOD + filler * (MAX_RECIPE_BYTES // len(filler) + 1))
    size = path.stat().st_size
    with pytest.raises(RecipeError, match=rf"big.yaml: the recipe is {size:,} bytes; the limit "
                                          r"is 1,000,000 \(1 MB\)"):
        load_recipe(path)
    with pytest.raises(RecipeError, match=r"job.yaml: the recipe is .* the limit is 1,000,000"):
        parse_recipe(path.read_text(), source="job.yaml")  # the prune worker's path
    path.write_text(GOOD + filler * ((MAX_RECIPE_BYTES - len(GOOD)) // len(filler)))
    assert load_recipe(path).pruners  # just under the limit: fine


def test_errors_quote_a_few_hundred_characters_at_most():
    long_list = "pruners: [" + ", ".join(["lol"] * 100_000) + "]\n"
    with pytest.raises(RecipeError) as info:
        parse_recipe(long_list)
    assert str(info.value).startswith("pruners: must be a map of instance names, got ['lol', ")
    assert len(str(info.value)) < 300
    long_key = GOOD.replace("policies:", "? " + "k" * 900_000 + "\n: 1\npolicies:")
    with pytest.raises(RecipeError, match="unknown top-level key") as info:
        parse_recipe(long_key)
    assert len(str(info.value)) < 600
    deep = GOOD.replace("levels: {'*': 0.5}", "levels: " + "[" * 50 + "]" * 50)
    with pytest.raises(RecipeError) as info:
        parse_recipe(deep)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(("text", "message"), [
    ("pruners: {p: {class: [a]}}", r"pruners.p.class: unknown pruner class \['a'\]"),
    ("pruners: {p: {class: {a: 1}}}", r"pruners.p.class: unknown pruner class \{'a': 1\}"),
    (GOOD.replace("instance_name: p", "instance_name: [p]"),
     r"policies\[0\].pruner.instance_name: no pruner named \['p'\] in pruners"),
])
def test_a_list_or_map_where_a_name_goes_is_a_recipe_error(text, message):
    """A TypeError (unhashable type) before: not a user error, so the prune worker retried it."""
    with pytest.raises(RecipeError, match=message):
        parse_recipe(text)


def test_a_recipe_nested_too_deeply_is_a_recipe_error():
    """A RecursionError before (not a user error: the prune worker retried it)."""
    with pytest.raises(RecipeError, match=r"job\.yaml: nested too deeply"):
        parse_recipe("pruners: " + "[" * 100_000 + "]" * 100_000, source="job.yaml")


@pytest.mark.parametrize("kind", ["grid", "sweep"])
def test_a_yaml_bomb_in_a_grid_or_sweep_file_is_refused_at_once(tmp_path: Path, kind: str):
    """Hostile round 4: the bomb as a grid's parameter values (`--schedules DIR` with a
    grid.yaml) spun at 4 GB until killed at 120 s, before collection ended; as a sweep file's
    `values`, 56 s of CPU and nothing printed. Both files are read as recipes are now."""
    inner = bomb().removeprefix("pruners: ").strip()
    path = tmp_path / f"{kind}.yaml"
    path.write_text(f"recipes:\n  l1_filters:\n    sparsity: {inner}\n" if kind == "grid" else
                    "method: random\nmetric: {name: speedup, goal: maximize}\nparameters:\n"
                    f"  recipe: {{value: l1_filters}}\n  sparsity: {{values: {inner}}}\n")
    code = textwrap.dedent(f"""
        from pathlib import Path
        from benchsuite.pipeline.grid import load_grid
        from benchsuite.sweep import load_sweep
        try:
            (load_grid if {kind!r} == "grid" else load_sweep)(Path({str(path)!r}))
        except ValueError as e:
            print(type(e).__name__, e)
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_env(), timeout=60, preexec_fn=_limited(1))
    assert out.returncode == 0 and out.stderr == "", out.stderr[-2000:]
    error = "GridError" if kind == "grid" else "SweepConfigError"
    assert out.stdout.startswith(f"{error} {path}: line "), out.stdout[:500]
    assert "YAML alias *a refused" in out.stdout and len(out.stdout) < 400
