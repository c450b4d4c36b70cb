"""Which models a recipe fits.

A recipe that names weights (`layer1.8.conv1.weight`) fits the suite's models that have them: one
written for ResNet-56 run on ResNet-20 says where it belongs instead of only failing. A recipe
that names none (its structured pruners select their layers by rule, `graph.prunable_layers`)
fits a model when it binds to it; `recipe_fit` binds it to probe models, a plain CNN and a CIFAR
ResNet (no training, nothing applied), and says "any model" when it binds to both
(`benchsuite recipe list`).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

from benchsuite.core.errors import UserError
from benchsuite.models import MODEL_NAMES, build_model
from benchsuite.prune.names import strip_module
from benchsuite.recipe import Recipe, RecipeError
from benchsuite.recipe.catalog import PRUNERS, REGULARIZERS

_NAMED = ("weights", "fraction_map", "float_map", "name_map")
# the models a recipe that names no weights is bound to: one without residual blocks, one with
PROBES = {"small_cnn": "a plain CNN", "resnet20": "a CIFAR ResNet"}


def recipe_weight_names(recipe: Recipe) -> set[str]:
    """Every weight name the recipe refers to (without `module.`; '*' left out)."""
    names: set[str] = set()
    specs = {"pruners": PRUNERS, "regularizers": REGULARIZERS}
    for section, known in specs.items():
        for comp in recipe.section(section).values():
            for key, arg in known[comp.cls].items():
                value = comp.args.get(key)
                if arg.kind in _NAMED and value:
                    names.update(value if isinstance(value, list) else value.keys())
    for policy in recipe.policies:
        names.update((policy.args.get("levels") or {}).keys())
    return {strip_module(n) for n in names if n != "*"}


@functools.cache
def _parameter_names(model: str, in_channels: int) -> frozenset[str]:
    return frozenset(n for n, _ in build_model(model, 10, in_channels).named_parameters())


def fitting_models(recipe: Recipe, in_channels: int = 3) -> list[str]:
    """The suite's models that have every weight the recipe names."""
    wanted = recipe_weight_names(recipe)
    return [name for name in MODEL_NAMES if wanted <= _parameter_names(name, in_channels)]


def explain_misfit(error: RecipeError, recipe: Recipe, model: str) -> RecipeError:
    """`error` (a weight name the model lacks) with the models the recipe does fit, if any."""
    if "no parameter" not in error.message:
        return error
    fits = fitting_models(recipe)
    hint = (f"the recipe's weights fit {', '.join(fits)}, not {model}" if fits
            else "the recipe's weights fit none of the suite's models "
                 f"({', '.join(MODEL_NAMES)})")
    return RecipeError(error.path, f"{error.message} ({hint})", error.source or recipe.source)


@dataclass
class Fit:
    """Where a recipe fits. `any_model`: it names no weights and binds to every probe model.
    `models`: the suite's models with every weight it names, or, when it names none, the probes
    it binds to. `not_on`: model -> why binding failed."""

    any_model: bool
    names_weights: bool
    models: list[str]
    not_on: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.any_model:
            return "any model"
        if self.names_weights:
            return ("model-specific: names weights only " + ", ".join(self.models) + " have"
                    if self.models else "model-specific: names weights none of the suite's "
                    "models has")
        on = ", ".join(f"{m} ({PROBES[m]})" for m in self.models)
        if on and all("has no residual blocks" in why for why in self.not_on.values()):
            return f"models with residual blocks (binds to {on}, not to " \
                   f"{', '.join(f'{m} ({PROBES[m]})' for m in self.not_on)})"
        off = "; ".join(f"not to {m} ({PROBES[m]}): {why}" for m, why in self.not_on.items())
        return f"binds to {on}, {off}" if on else f"binds to no probe: {off}"


def binds(recipe: Recipe, model: str, input_shape: tuple[int, int, int]) -> str | None:
    """None when the recipe binds to a fresh `model`, else why not (the error's text)."""
    from benchsuite.prune.dryrun import bind

    try:
        bind(recipe, model, input_shape)
    except UserError as e:  # a RecipeError too
        return str(e).removeprefix(f"{recipe.source}: ") if recipe.source else str(e)
    return None


def recipe_fit(recipe: Recipe, input_shape: tuple[int, int, int] = (3, 32, 32)) -> Fit:
    """Where `recipe` fits: by its weight names, or (naming none) by binding it to the probes."""
    if recipe_weight_names(recipe):
        return Fit(False, True, fitting_models(recipe, input_shape[0]))
    failures = {m: why for m in PROBES if (why := binds(recipe, m, input_shape)) is not None}
    return Fit(not failures, False, [m for m in PROBES if m not in failures], failures)
