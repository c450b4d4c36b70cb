"""Turn the grid file and command-line filters into cases."""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .case import Case
from .paths import schedules_dir

GRID_FILE = "grid.yaml"


class GridError(ValueError):
    pass


def recipe_files(folder: Path) -> dict[str, Path]:
    """Recipes in `folder` (not the grid file), by stem."""
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.name != GRID_FILE}


DEFAULTS = {"models": ["resnet20"], "devices": ["CPU"], "precisions": ["f32"]}


def _names(doc: dict, key: str, path: Path) -> list[str]:
    value = doc.get(key) or DEFAULTS[key]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise GridError(f"{path}: {key}: must be a non-empty list of names, got {value!r}")
    return value


def load_grid(path: Path) -> dict[str, Any]:
    """The grid file: models, devices, precisions (lists) and recipes (name -> parameters)."""
    if not path.is_file():
        return {**DEFAULTS, "recipes": {}}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise GridError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise GridError(f"{path}: must be a map with 'models' and 'recipes'")
    unknown = sorted(set(doc) - {*DEFAULTS, "recipes"})
    if unknown:
        raise GridError(f"{path}: {unknown[0]}: unknown key (accepted: models, devices, "
                        "precisions, recipes)")
    names = {key: _names(doc, key, path) for key in DEFAULTS}
    recipes = doc.get("recipes") or {}
    if not isinstance(recipes, dict):
        raise GridError(f"{path}: recipes: must be a map of recipe name -> parameters")
    for name, params in recipes.items():
        if not isinstance(params, dict | None):
            raise GridError(f"{path}: recipes.{name}: must be a map of parameter -> values")
        for key, values in (params or {}).items():
            if not isinstance(values, list) or not values:
                raise GridError(f"{path}: recipes.{name}.{key}: must be a non-empty list")
    return {**names, "recipes": recipes}


def generate_cases(
    folder: Path | None = None,
    recipes_glob: str = "*",
    models: list[str] | None = None,
    base: Case | None = None,
    devices: list[str] | None = None,
    precisions: list[str] | None = None,
) -> list[Case]:
    """Cases: recipes matching `recipes_glob` x their grid parameters x models x devices x
    precisions; the lists given here override the grid file's."""
    folder = Path(folder or schedules_dir())
    grid = load_grid(folder / GRID_FILE)
    files = recipe_files(folder)
    for name in grid["recipes"]:
        if name not in files:
            raise GridError(f"{folder / GRID_FILE}: recipes.{name}: no recipe file "
                            f"{folder / (name + '.yaml')}")
    patterns = [p.strip() for p in recipes_glob.split(",") if p.strip()]
    selected = [n for n in files if any(fnmatch.fnmatch(n, p) for p in patterns)]
    base = base or Case(recipe="")
    cases = []
    axes = itertools.product(models or grid["models"], devices or grid["devices"],
                             precisions or grid["precisions"])
    for model, device, precision in axes:
        for name in selected:
            params = grid["recipes"].get(name) or {}
            keys = sorted(params)
            for values in itertools.product(*(params[k] for k in keys)):
                cases.append(replace(
                    base, recipe=str(files[name]), model=model, device=device,
                    precision=None if precision == "default" else precision,
                    params=dict(zip(keys, values, strict=True)),
                ))
    return cases
