"""Packaging: every import is declared (core or an extra), the default path runs with no extra
installed, the wheel's package data covers the recipe library."""

from __future__ import annotations

import ast
import glob
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from benchsuite.core.extras import EXTRAS, MissingExtra, install_hint, require
from benchsuite.core.paths import LIBRARY_DIR, PACKAGE_DIR

ROOT = PACKAGE_DIR.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"yaml": "pyyaml", "sklearn": "scikit-learn", "PIL": "pillow",
                 "torch_pruning": "torch-pruning", "pytest_redis": "pytest-redis",
                 "port_for": "port-for", "pytest_benchmark": "pytest-benchmark",
                 "_pytest": "pytest"}  # rootdir.py: pytest's own findpaths
# bench/legacy.py runs under the legacy Python 3.6 env (OpenVINO 2021.4), not this one
LEGACY = {"openvino.inference_engine", "ngraph"}


def _name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0] \
        .strip().lower()


def third_party_imports() -> set[str]:
    found = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0
                     and node.module else [])
            found |= {n.split(".")[0] for n in names if n not in LEGACY}
    return {n for n in found if n not in sys.stdlib_module_names and n != "benchsuite"}


def test_every_import_is_a_declared_dependency():
    declared = {_name(r) for r in PYPROJECT["dependencies"]}
    for extra in PYPROJECT["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    missing = {m for m in third_party_imports() if DISTRIBUTIONS.get(m, m).lower() not in declared}
    assert not missing, f"imported but not in pyproject.toml: {sorted(missing)}"


def test_extras_module_table_matches_pyproject():
    optional = PYPROJECT["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        names = {_name(r) for r in optional[extra]} | {
            _name(r) for r in optional.get("broker", []) if extra == "sweep"}
        assert {DISTRIBUTIONS.get(m, m) for m in modules} <= names, extra


def test_missing_extra_names_the_pip_command():
    with pytest.raises(MissingExtra, match=r"needs no_such_module_xyz, not installed here: "
                                           r"pip install 'benchsuite\[broker\]'"):
        EXTRAS["broker"] += ("no_such_module_xyz",)
        try:
            require("broker", "the thing")
        finally:
            EXTRAS["broker"] = EXTRAS["broker"][:-1]
    assert install_hint("report") == "pip install 'benchsuite[report]'"


def test_package_data_covers_the_recipe_library():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["package-data"]["benchsuite"]
    shipped = {Path(p) for pattern in patterns
               for p in glob.glob(str(PACKAGE_DIR / pattern), recursive=True)}
    library = {p for p in LIBRARY_DIR.rglob("*") if p.is_file()}
    assert library and library <= shipped
    assert LIBRARY_DIR / "grid.yaml" in shipped and LIBRARY_DIR / "sweeps" / "README.md" in shipped


# a Python in which no extra is installed: the path finder does not see their modules (so
# importlib.util.find_spec returns None and an import fails, as in an environment without them)
BLOCKER = """
from importlib.machinery import PathFinder

BLOCKED = {blocked!r}
_find_spec = PathFinder.find_spec


def find_spec(cls, name, path=None, target=None):
    if name.split(".")[0] in BLOCKED:
        return None
    return _find_spec(name, path, target)


PathFinder.find_spec = classmethod(find_spec)
"""


@pytest.fixture
def without_extras(tmp_path: Path) -> dict[str, str]:
    blocked = sorted({m for modules in EXTRAS.values() for m in modules} | {"pytest_benchmark"})
    (tmp_path / "sitecustomize.py").write_text(BLOCKER.format(blocked=blocked))
    import os

    # no other pytest plugin either (this venv's pytest-redis would import redis)
    return os.environ | {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
                         "PYTHONDONTWRITEBYTECODE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def test_the_default_path_needs_no_extra(without_extras: dict[str, str], tmp_path: Path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], env=without_extras, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    assert run("-c", "import redis").returncode != 0  # the blocker works
    help_text = run("-m", "benchsuite.frontends.cli", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "not available here: needs pip install 'benchsuite[broker]'" in help_text.stdout
    worker = run("-m", "benchsuite.frontends.cli", "worker", "prune")
    assert worker.returncode == 2 and "Traceback" not in worker.stderr
    assert "benchsuite worker needs redis" in worker.stderr
    assert "pip install 'benchsuite[broker]'" in worker.stderr
    report = run("-m", "benchsuite.frontends.cli", "report")
    assert report.returncode == 2 and "pip install 'benchsuite[report]'" in report.stderr
    collect = run("-m", "pytest", "-p", "benchsuite.frontends.plugin", "-p", "no:cacheprovider",
                  "--pyargs", "benchsuite.experiments", "-m", "latency", "--collect-only",
                  "--recipes", "level_elementwise")
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert "benchsuite: stages run in-process" in collect.stdout
    assert "W&B off (wandb not installed" in collect.stdout
    asked = run("-m", "pytest", "-p", "benchsuite.frontends.plugin", "-p", "no:cacheprovider",
                "--pyargs", "benchsuite.experiments", "-m", "latency", "--executor", "redis")
    assert asked.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--executor redis needs the broker extra: pip install 'benchsuite[broker]'" \
        in asked.stderr


def test_conftest_and_plugin_option_load_it_once():
    """This repo's conftest.py names the plugin; so does the pytest11 entry point (here: -p)."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "benchsuite.frontends.plugin", "-p",
                          "no:cacheprovider", "--collect-only", "-q", "tests/test_grid.py"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
