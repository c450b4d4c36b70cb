"""Turn the grid file and command-line filters into cases."""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .case import Case
from .paths import schedules_dir

GRID_FILE = "grid.yaml"


class GridError(ValueError):
    pass


_HEADER_KEY = re.compile(r"^[a-z_]+:( |$)")
NOT_RECIPES = ("sweeps",)  # sweep configs live beside the recipes but are not recipes


def recipe_files(folder: Path) -> dict[str, Path]:
    """Recipes under `folder` (subfolders too, except sweeps/), by name: the path relative to
    `folder` without `.yaml`, e.g. `l1_filters` or `resnet20/block_removal`."""
    out = {}
    for p in sorted(folder.rglob("*.yaml")):
        rel = p.relative_to(folder)
        if p.name == GRID_FILE or rel.parts[0] in NOT_RECIPES:
            continue
        out[rel.with_suffix("").as_posix()] = p
    return out


def _model_of(name: str) -> str | None:
    """A recipe under a folder named after a model (`resnet56/...`) is written for that model."""
    from .models import MODEL_NAMES

    head = name.split("/", 1)[0]
    return head if "/" in name and head in MODEL_NAMES else None


def found_recipe_info(path: Path) -> dict[str, Any]:
    """The header of a recipe saved in schedules/found/ (sweep, trial, case settings, figures):
    what the grid needs to run it as an ordinary case (e.g. `info["case"]["model"]`)."""
    lines = []
    for line in Path(path).read_text().splitlines():
        text = line[2:] if line.startswith("# ") else line[1:]
        # the header is `key: ...` lines and their indented continuations; the recipe's own
        # comments (prose) follow it
        if not line.startswith("#") or not (text.startswith(" ") or _HEADER_KEY.match(text)):
            break
        lines.append(text)
    return yaml.safe_load("\n".join(lines)) or {}


# case settings a found recipe was measured with, applied to its grid case
FOUND_SETTINGS = ("dataset", "epochs", "dense_epochs", "seed")
FOUND_FOLDER = "found"


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
    recipes_glob: str = "",
    models: list[str] | None = None,
    base: Case | None = None,
    devices: list[str] | None = None,
    precisions: list[str] | None = None,
) -> list[Case]:
    """Cases: recipes x their grid parameters x models x devices x precisions.

    With no `recipes_glob`, the recipes the grid file lists; else every recipe whose name
    matches one of the comma-separated globs (listed ones with their grid parameters, others
    once with their template defaults). A recipe in a model's folder runs on that model only,
    unless `models` is given; one in `found/` (a sweep's best) on the model, device, precision,
    dataset and epochs it was found with. `models`, `devices`, `precisions` override the grid
    file's (and a found recipe's)."""
    folder = Path(folder or schedules_dir())
    grid = load_grid(folder / GRID_FILE)
    files = recipe_files(folder)
    for name in grid["recipes"]:
        if name not in files:
            raise GridError(f"{folder / GRID_FILE}: recipes.{name}: no recipe file "
                            f"{folder / (name + '.yaml')}")
    patterns = [p.strip() for p in recipes_glob.split(",") if p.strip()]
    if patterns:
        selected = [n for n in files if any(fnmatch.fnmatch(n, p) for p in patterns)]
    else:
        selected = list(grid["recipes"])
    base = base or Case(recipe="")
    cases = []
    for name in selected:
        own = _model_of(name)
        found: dict[str, Any] = {}
        if name.split("/", 1)[0] == FOUND_FOLDER:  # a sweep's best: run it as it was found
            found = found_recipe_info(files[name]).get("case") or {}
            own = found.get("model")
        recipe_models = [own] if own and not models else (models or grid["models"])
        settings = {k: found[k] for k in FOUND_SETTINGS if found.get(k) is not None}
        recipe_devices = devices or ([found["device"]] if found.get("device") else grid["devices"])
        recipe_precisions = precisions or (
            [found["precision"]] if found.get("precision") else grid["precisions"])
        params = grid["recipes"].get(name) or {}
        keys = sorted(params)
        axes = itertools.product(recipe_models, recipe_devices, recipe_precisions,
                                 itertools.product(*(params[k] for k in keys)))
        for model, device, precision, values in axes:
            cases.append(replace(
                base, recipe=str(files[name]), model=model, device=device, **settings,
                precision=None if precision == "default" else precision,
                params=dict(zip(keys, values, strict=True)),
            ))
    return cases
