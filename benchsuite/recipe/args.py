"""Declarative argument specs: each pruner/extension class says what it accepts.

Validation is pure Python (no torch) so a recipe fails before any model is built or trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchsuite.recipe.recipe_error import RecipeError
from benchsuite.recipe.yamltext import shown

_MISSING = object()


@dataclass(frozen=True)
class Arg:
    """One accepted argument.

    kind: fraction (float in [0, 1)), fraction_range ([low, high]),
    fraction_map ({weight name or '*': fraction}),
    float_map ({weight name or '*': number >= minimum}), weights (list of weight names),
    name_map ({weight name: value}), float, int, int_list (an int, or a list of ints: one per
    stage, group, ...), bool, str,
    choice (one of `choices`), any.
    """

    kind: str
    required: bool = False
    default: Any = None
    choices: tuple = ()
    minimum: float | None = None
    help: str = ""


def _fraction(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecipeError(path, f"must be a number in [0, 1), got {shown(value)}")
    if not 0 <= value < 1:
        raise RecipeError(path, f"must be in [0, 1), got {value}")
    return float(value)


def _weights(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RecipeError(path, f"must be a non-empty list of weight names, got {shown(value)}")
    for i, w in enumerate(value):
        if not isinstance(w, str) or not w:
            raise RecipeError(f"{path}[{i}]", f"must be a weight name, got {shown(w)}")
    return list(value)


def check_value(arg: Arg, value: Any, path: str) -> Any:
    kind = arg.kind
    if kind == "fraction":
        return _fraction(value, path)
    if kind == "fraction_map":
        if not isinstance(value, dict) or not value:
            raise RecipeError(path, f"must be a map of weight name (or '*') to sparsity, "
                              f"got {shown(value)}")
        return {str(k): _fraction(v, f"{path}.{k}") for k, v in value.items()}
    if kind == "float_map":
        if not isinstance(value, dict) or not value:
            raise RecipeError(path, f"must be a map of weight name (or '*') to a number, "
                              f"got {shown(value)}")
        item = Arg("float", minimum=arg.minimum)
        return {str(k): check_value(item, v, f"{path}.{k}") for k, v in value.items()}
    if kind == "name_map":
        if not isinstance(value, dict) or not value:
            raise RecipeError(path, f"must be a map of weight name (or '*') to a value, "
                              f"got {shown(value)}")
        return {str(k): v for k, v in value.items()}
    if kind == "fraction_range":
        if not isinstance(value, list) or len(value) != 2:
            raise RecipeError(path, f"must be [low, high] fractions, got {shown(value)}")
        return [_fraction(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "weights":
        return _weights(value, path)
    if kind == "int_list":
        if isinstance(value, list):
            if not value:
                raise RecipeError(path, "must be an integer or a non-empty list of integers")
            item = Arg("int", minimum=arg.minimum)
            return [check_value(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return check_value(Arg("int", minimum=arg.minimum), value, path)
    if kind in ("float", "int"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "int":
            ok = ok and float(value).is_integer()
        if not ok:
            raise RecipeError(path, f"must be {'an integer' if kind == 'int' else 'a number'}, "
                              f"got {shown(value)}")
        if arg.minimum is not None and value < arg.minimum:
            raise RecipeError(path, f"must be >= {arg.minimum}, got {value}")
        return int(value) if kind == "int" else float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise RecipeError(path, f"must be true or false, got {shown(value)}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise RecipeError(path, f"must be a string, got {shown(value)}")
        return value
    if kind == "choice":
        if value not in arg.choices:
            raise RecipeError(path, f"must be one of {', '.join(map(str, arg.choices))}, "
                              f"got {shown(value)}")
        return value
    if kind == "any":
        return value
    raise AssertionError(f"unknown arg kind {kind}")


def check_args(spec: dict[str, Arg], given: dict[str, Any], path: str) -> dict[str, Any]:
    """Validate `given` against `spec`: unknown keys and missing required ones are errors."""
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise RecipeError(f"{path}.{unknown[0]}", f"unknown argument (accepted: "
                          f"{', '.join(sorted(spec)) or 'none'})")
    out: dict[str, Any] = {}
    for name, arg in spec.items():
        if name in given:
            out[name] = check_value(arg, given[name], f"{path}.{name}")
        elif arg.required:
            raise RecipeError(f"{path}.{name}", "required argument is missing")
        else:
            out[name] = arg.default
    return out
