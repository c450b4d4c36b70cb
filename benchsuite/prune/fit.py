"""Which of the suite's models a recipe's weight names fit: a recipe written for ResNet-56
(`layer1.8.conv1.weight`) run on ResNet-20 says where it belongs instead of only failing."""

from __future__ import annotations

from benchsuite.models import MODEL_NAMES, build_model
from benchsuite.prune.names import strip_module
from benchsuite.recipe import Recipe, RecipeError
from benchsuite.recipe.catalog import PRUNERS, REGULARIZERS

_NAMED = ("weights", "fraction_map", "float_map", "name_map")


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


def fitting_models(recipe: Recipe, in_channels: int = 3) -> list[str]:
    """The suite's models that have every weight the recipe names."""
    wanted = recipe_weight_names(recipe)
    out = []
    for name in MODEL_NAMES:
        params = {n for n, _ in build_model(name, 10, in_channels).named_parameters()}
        if wanted <= params:
            out.append(name)
    return out


def explain_misfit(error: RecipeError, recipe: Recipe, model: str) -> RecipeError:
    """`error` (a weight name the model lacks) with the models the recipe does fit, if any."""
    if "no parameter" not in error.message:
        return error
    fits = fitting_models(recipe)
    hint = (f"the recipe's weights fit {', '.join(fits)}, not {model}" if fits
            else "the recipe's weights fit none of the suite's models "
                 f"({', '.join(MODEL_NAMES)})")
    return RecipeError(error.path, f"{error.message} ({hint})", error.source or recipe.source)
