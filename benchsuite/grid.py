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


def load_grid(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"models": ["resnet20"], "recipes": {}}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise GridError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise GridError(f"{path}: must be a map with 'models' and 'recipes'")
    unknown = sorted(set(doc) - {"models", "recipes"})
    if unknown:
        raise GridError(f"{path}: {unknown[0]}: unknown key (accepted: models, recipes)")
    models = doc.get("models") or ["resnet20"]
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise GridError(f"{path}: models: must be a list of model names, got {models!r}")
    recipes = doc.get("recipes") or {}
    if not isinstance(recipes, dict):
        raise GridError(f"{path}: recipes: must be a map of recipe name -> parameters")
    for name, params in recipes.items():
        if not isinstance(params, dict | None):
            raise GridError(f"{path}: recipes.{name}: must be a map of parameter -> values")
        for key, values in (params or {}).items():
            if not isinstance(values, list) or not values:
                raise GridError(f"{path}: recipes.{name}.{key}: must be a non-empty list")
    return {"models": models, "recipes": recipes}


def generate_cases(
    folder: Path | None = None,
    recipes_glob: str = "*",
    models: list[str] | None = None,
    base: Case | None = None,
) -> list[Case]:
    """Cases for recipes matching `recipes_glob` x their grid parameters x models."""
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
    for model in models or grid["models"]:
        for name in selected:
            params = grid["recipes"].get(name) or {}
            keys = sorted(params)
            for values in itertools.product(*(params[k] for k in keys)):
                cases.append(replace(base, recipe=str(files[name]), model=model,
                                     params=dict(zip(keys, values, strict=True))))
    return cases
