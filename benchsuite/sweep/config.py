"""Sweep configs: W&B's own grammar, whose parameters fill a recipe template.

A sweep file is a plain W&B sweep config (`wandb sweep FILE` accepts it unchanged). Its
`parameters` are read in three groups:

- `recipe`: which recipe template(s) to fill: `value: l1_filters` (one) or `values: [...]`
  (the recipe is then a searched categorical). A name is a file stem in `schedules/`
  (`resnet20/blocks` for `schedules/resnet20/blocks.yaml`) or a path to a `.yaml` file.
- case settings (`CASE_SETTINGS`: model, dataset, precision, epochs, ...) and `accuracy_threshold`
  (`0.97` or `-1pt`): usually constants (`value:`); they override the command-line defaults.
  (`values:` works too: e.g. a grid over accuracy floors.)
- everything else: template parameters (`${name=default}` in the recipe). Each must exist in
  the template of at least one recipe choice; a trial whose recipe lacks one drops it.

`load_sweep(path)` checks all of this (and W&B's own schema, via the `sweeps` package) before
any training, and raises `SweepConfigError` naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchsuite.core.threshold import Threshold
from benchsuite.recipe import RecipeError, template_parameters
from benchsuite.recipe.case import CASE_SETTINGS, Case
from benchsuite.recipe.yamltext import load_yaml_file

METHODS = ("bayes", "random", "grid")
GOALS = ("minimize", "maximize")
METRICS = {"speedup": "maximize", "latency_median_us": "minimize", "latency_avg_us": "minimize",
           "macs": "minimize", "params": "minimize"}
DISTRIBUTIONS = (
    "constant", "categorical", "categorical_w_probabilities", "int_uniform", "uniform",
    "log_uniform", "log_uniform_values", "q_uniform", "q_log_uniform", "q_log_uniform_values",
    "inv_log_uniform", "inv_log_uniform_values", "normal", "q_normal", "log_normal",
    "q_log_normal", "beta", "q_beta",
)
RECIPE_KEY = "recipe"
THRESHOLD_KEY = "accuracy_threshold"


class SweepConfigError(ValueError):
    pass


@dataclass
class SweepSpec:
    """A loaded, checked sweep config."""

    config: dict[str, Any]  # the W&B sweep config, unchanged
    path: Path | None
    recipes: list[str]  # the recipe choices
    templates: dict[str, set[str]]  # recipe -> its template parameter names
    template_keys: list[str] = field(default_factory=list)  # searched/fixed template params

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def metric(self) -> str:
        return self.config["metric"]["name"]

    @property
    def goal(self) -> str:
        return self.config["metric"]["goal"]

    @property
    def name(self) -> str:
        stem = self.path.stem if self.path else "sweep"
        return str(self.config.get("name") or stem)

    def constant(self, key: str) -> Any:
        p = self.config["parameters"].get(key) or {}
        return p.get("value")

    def case_for(self, params: dict[str, Any], base: Case) -> Case:
        """The case of one trial: `params` (a full assignment of the sweep's parameters)."""
        from dataclasses import replace

        recipe = str(params.get(RECIPE_KEY) or self.recipes[0])
        known = self.templates[recipe]
        template = {k: v for k, v in params.items() if k in self.template_keys and k in known}
        return replace(base.with_settings(params), recipe=recipe_path(recipe), params=template)

    def threshold(self, fallback: Threshold, params: dict[str, Any] | None = None) -> Threshold:
        """The trial's accuracy floor: its `accuracy_threshold` parameter, else `fallback`."""
        value = (params or {}).get(THRESHOLD_KEY, self.constant(THRESHOLD_KEY))
        return fallback if value is None else Threshold.parse(value)

    def objective(self, row: dict) -> float:
        return float(row[self.metric])


def recipe_path(name: str) -> str:
    """A recipe name (stem under schedules/, may contain '/') or a path -> a file path."""
    from benchsuite.core.paths import schedules_dir

    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        return str(p if p.is_absolute() else (Path.cwd() / p))
    return str(schedules_dir() / f"{name}.yaml")


def _err(where: str, key: str, msg: str) -> SweepConfigError:
    return SweepConfigError(f"{where}: {key}: {msg}")


def _check_parameter(where: str, name: str, p: Any) -> None:
    key = f"parameters.{name}"
    if not isinstance(p, dict):
        raise _err(where, key, "must be a map (value, values, or min/max/distribution)")
    if not ({"value", "values", "min", "max", "parameters"} & set(p)):
        raise _err(where, key, "needs value, values, or min and max")
    if "distribution" in p and p["distribution"] not in DISTRIBUTIONS:
        raise _err(where, f"{key}.distribution",
                   f"unknown distribution {p['distribution']!r} (known: "
                   f"{', '.join(DISTRIBUTIONS)})")
    if ("min" in p) != ("max" in p) and "distribution" not in p:
        raise _err(where, key, "give both min and max")
    if "min" in p and "max" in p:
        lo, hi = p["min"], p["max"]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi)):
            raise _err(where, key, f"min and max must be numbers, got {lo!r} and {hi!r}")
        if lo >= hi:
            raise _err(where, key, f"min {lo} must be less than max {hi}")
    if "values" in p and (not isinstance(p["values"], list) or not p["values"]):
        raise _err(where, f"{key}.values", "must be a non-empty list")


def check_config(config: Any, where: str = "sweep config") -> SweepSpec:
    """Check a sweep config (a dict as loaded from YAML); see the module docstring."""
    if not isinstance(config, dict):
        raise SweepConfigError(f"{where}: must be a map (a W&B sweep config)")
    method = config.get("method")
    if method not in METHODS:
        raise _err(where, "method", f"unknown method {method!r} (use one of "
                   f"{', '.join(METHODS)})")
    metric = config.get("metric")
    if not isinstance(metric, dict) or "name" not in metric:
        raise _err(where, "metric", f"needs name (one of {', '.join(METRICS)}) and goal")
    if metric["name"] not in METRICS:
        raise _err(where, "metric.name", f"unknown metric {metric['name']!r} (one of "
                   f"{', '.join(METRICS)})")
    if metric.get("goal") not in GOALS:
        raise _err(where, "metric.goal", f"must be minimize or maximize, got "
                   f"{metric.get('goal')!r}")
    params = config.get("parameters")
    if not isinstance(params, dict) or not params:
        raise _err(where, "parameters", "must be a non-empty map")
    for name, p in params.items():
        _check_parameter(where, name, p)
    if method == "grid":
        for name, p in params.items():
            if "value" not in p and "values" not in p:
                raise _err(where, f"parameters.{name}", "grid search needs value or values")

    # W&B's own schema (what `wandb sweep` checks)
    from sweeps.config import schema_violations_from_proposed_config

    try:
        violations = schema_violations_from_proposed_config(config)
    except ValueError as e:
        raise SweepConfigError(f"{where}: {e}") from None
    if violations:
        raise SweepConfigError(f"{where}: not a valid W&B sweep config: "
                               + "; ".join(violations))

    recipe = params.get(RECIPE_KEY)
    if recipe is None:
        raise _err(where, f"parameters.{RECIPE_KEY}",
                   "missing: name the recipe template (value: l1_filters, or values: [...])")
    if "value" in recipe:
        recipes = [recipe["value"]]
    elif "values" in recipe:
        recipes = list(recipe["values"])
    else:
        raise _err(where, f"parameters.{RECIPE_KEY}", "must be value or values (names)")
    templates: dict[str, set[str]] = {}
    for name in recipes:
        path = Path(recipe_path(str(name)))
        if not path.is_file():
            raise _err(where, f"parameters.{RECIPE_KEY}", f"no recipe file {path} for {name!r}")
        templates[str(name)] = set(template_parameters(path.read_text()))
    reserved = {RECIPE_KEY, THRESHOLD_KEY, *CASE_SETTINGS}
    template_keys = [k for k in params if k not in reserved]
    for key in template_keys:
        if not any(key in names for names in templates.values()):
            have = "; ".join(f"{r}: {', '.join(sorted(n)) or 'none'}"
                             for r, n in templates.items())
            raise _err(where, f"parameters.{key}",
                       f"not a template parameter of the recipe ({have}); add ${{{key}=...}} "
                       "to the recipe or remove it from the sweep")
    for key in set(params) & set(CASE_SETTINGS):
        if "value" not in params[key] and "values" not in params[key]:
            raise _err(where, f"parameters.{key}", "a case setting takes value or values")
        for v in params[key].get("values") or [params[key].get("value")]:
            try:  # `epochs: 0` refused here, before any trial
                CASE_SETTINGS[key](v)
            except ValueError as e:
                raise _err(where, f"parameters.{key}", str(e)) from None
    if THRESHOLD_KEY in params:
        p = params[THRESHOLD_KEY]
        try:
            if "value" not in p and "values" not in p:
                raise ValueError("takes value (or values, for a grid over floors)")
            for v in p.get("values") or [p.get("value")]:
                Threshold.parse(v)
        except (ValueError, TypeError) as e:
            raise _err(where, f"parameters.{THRESHOLD_KEY}", str(e)) from None
    return SweepSpec(config=config, path=None, recipes=[str(r) for r in recipes],
                     templates=templates, template_keys=template_keys)


def load_sweep(path: str | Path) -> SweepSpec:
    """Load and check a sweep file (clear error naming the key, before any training)."""
    path = Path(path)
    if not path.is_file():
        raise SweepConfigError(f"{path}: no such sweep file")
    try:  # no aliases: a 9-level alias bomb spun for minutes before any trial
        config = load_yaml_file(path)
    except RecipeError as e:
        raise SweepConfigError(str(e)) from None
    spec = check_config(config, where=str(path))
    spec.path = path
    return spec
