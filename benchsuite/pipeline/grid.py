"""Turn the grid file and command-line filters into cases."""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchsuite.core.paths import schedules_dir
from benchsuite.recipe.case import Case, takes_sparse_weights
from benchsuite.recipe.recipe_error import RecipeError
from benchsuite.recipe.yamltext import load_yaml, load_yaml_file

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
        if not p.is_file():  # a FIFO, a socket, a dangling link: reading it would hang or fail
            warnings.warn(f"{p}: not a regular file, skipped (not a recipe)", stacklevel=2)
            continue
        out[rel.with_suffix("").as_posix()] = p
    return out


def _model_of(name: str) -> str | None:
    """A recipe under a folder named after a model (`resnet56/...`) is written for that model."""
    from benchsuite.models import MODEL_NAMES

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
    return load_yaml("\n".join(lines), str(path)) or {}


# case settings a found recipe was measured with, applied to its grid case
FOUND_SETTINGS = ("dataset", "epochs", "dense_epochs", "train_images", "seed")
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
    try:  # no aliases: a 9-level alias bomb took collection to 4 GB and beyond
        doc = load_yaml_file(path) or {}
    except RecipeError as e:
        raise GridError(str(e)) from None
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


def _recipe_file(pattern: str) -> Path | None:
    """A `--recipes` entry naming a recipe file (`path/to/x.yaml`) rather than a glob."""
    if not pattern.endswith((".yaml", ".yml")):
        return None
    path = Path(pattern).expanduser()
    if not path.is_file():
        raise GridError(f"--recipes: no recipe file {path}")
    return path.resolve()


def _selection_grid(folder: Path, extra: list[Path]) -> tuple[Path, dict]:
    """The grid that decides the default selection: the last user folder's grid.yaml; a user
    folder without one means all its recipes (template defaults); else the library's grid."""
    for user in reversed(extra):
        if (user / GRID_FILE).is_file():
            return user / GRID_FILE, load_grid(user / GRID_FILE)
    if extra:
        own = {n: None for user in extra for n in recipe_files(user)}
        return extra[-1], {**DEFAULTS, "recipes": own}
    return folder / GRID_FILE, load_grid(folder / GRID_FILE)


def generate_cases(
    folder: Path | None = None,
    recipes_glob: str = "",
    models: list[str] | None = None,
    base: Case | None = None,
    devices: list[str] | None = None,
    precisions: list[str] | None = None,
    extra_folders: list[Path] | None = None,
) -> list[Case]:
    """Cases: recipes x their grid parameters x models x devices x precisions.

    Recipes come from `folder` (default: the library) and `extra_folders` (the user's, whose
    recipes shadow same-named ones). With no `recipes_glob`, the recipes the grid file lists (a
    user folder's grid.yaml, else all of a user folder's recipes, else the library's grid);
    else every recipe whose name matches one of the comma-separated globs, or the recipe files
    named by path (listed ones with their grid parameters, others once with their template
    defaults). A recipe in a model's folder runs on that model only, unless `models` is given;
    one in `found/` (a sweep's best) on the model, device, precision, dataset and epochs it was
    found with. `models`, `devices`, `precisions` override the grid file's (and a found
    recipe's). An empty selection raises `GridError` naming what matched nothing."""
    folder = Path(folder or schedules_dir())
    extra = [Path(f).expanduser() for f in extra_folders or []]
    for user in extra:
        if not user.is_dir():
            raise GridError(f"--schedules: no folder {user}")
    files = recipe_files(folder)
    for user in extra:
        files |= recipe_files(user)
    grid_path, grid = _selection_grid(folder, extra)
    for name in grid["recipes"]:
        if name not in files:
            raise GridError(f"{grid_path}: recipes.{name}: no recipe file "
                            f"{grid_path.parent / (name + '.yaml')}")
    patterns = [p.strip() for p in recipes_glob.split(",") if p.strip()]
    if patterns:
        selected = []
        for pattern in patterns:
            if (path := _recipe_file(pattern)) is not None:
                files[str(path)] = path
                selected.append(str(path))
                continue
            matched = [n for n in files if fnmatch.fnmatch(n, pattern)]
            if not matched:
                where = ", ".join(str(f) for f in (folder, *extra))
                known = ", ".join(sorted(files)[:12]) + (", ..." if len(files) > 12 else "")
                raise GridError(f"--recipes {pattern!r} matched no recipe in {where} "
                                f"(known: {known})")
            selected += [n for n in matched if n not in selected]
    else:
        selected = list(grid["recipes"])
        if not selected:
            raise GridError(f"{grid_path}: lists no recipes (name some with --recipes GLOB)")
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
                # the sparse weights rate goes to the INT8 cases on a CPU only
                sparse_weights_rate=base.sparse_weights_rate
                if takes_sparse_weights(precision, device) else None,
            ))
    if base.sparse_weights_rate is not None and not any(c.sparse_weights_rate for c in cases):
        raise GridError(f"--sparse-weights-rate {base.sparse_weights_rate:g} applies to INT8 "
                        "cases on a CPU only, and none is selected (add --precision int8)")
    return _once(cases)


def _once(cases: list[Case]) -> list[Case]:
    """Each case once: `--model a,a`, `--device CPU,CPU` or a value listed twice in a grid made
    one case run (and be recorded) once per repetition in a session."""
    seen: set[tuple] = set()
    out = []
    for case in cases:
        key = (case.recipe, json.dumps(case.params, sort_keys=True, default=str), case.model,
               case.device, case.precision)
        if key not in seen:
            seen.add(key)
            out.append(case)
    return out


def zoo_cases(cases: list[Case], family: tuple[str, ...] | None = None) -> list[Case]:
    """The dense-zoo control of `cases`: for each model, device, precision and seed among them,
    one case per member of the dense family (`family`, else the model's own:
    `models.dense_family`, the ResNets' `DENSE_FAMILY` for a model without one) other than the
    model itself, trained from scratch and timed against that model's dense baseline
    (Case.control)."""
    from benchsuite.models import dense_family

    seen: dict[tuple, Case] = {}
    for case in cases:
        if not case.control.startswith("zoo:"):
            seen.setdefault((case.model, case.device, case.precision, case.seed), case)
    dense = schedules_dir() / "dense.yaml"
    return [replace(case, recipe=str(dense), params={}, control=f"zoo:{member}")
            for case in seen.values() for member in (family or dense_family(case.model))
            if member != case.model.removesuffix("_cifar")]
