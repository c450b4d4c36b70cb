"""Resolve recipe weight names against a model's parameters.

Distiller's names carry a `module.` prefix (DataParallel); it is accepted and stripped. A name
that matches no parameter is an error (Distiller skipped it silently, so a recipe could prune
nothing); the message suggests the closest names.
"""

from __future__ import annotations

import difflib

from torch import nn

from benchsuite.recipe import RecipeError


def strip_module(name: str) -> str:
    return name.removeprefix("module.")


def prunable_weights(model: nn.Module) -> list[str]:
    """Names of conv and linear weights (what the pruners act on)."""
    return [
        f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]


def resolve(model: nn.Module, name: str, path: str) -> str:
    """The model's parameter name for a recipe weight name, or a RecipeError naming `path`."""
    params = {n.replace("_orig", "") for n, _ in model.named_parameters()}
    clean = strip_module(name)
    if clean in params:
        return clean
    close = difflib.get_close_matches(clean, sorted(params), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise RecipeError(path, f"no parameter {name!r} in the model{hint}")


def resolve_map(model: nn.Module, mapping: dict, path: str) -> dict[str, object]:
    """Resolve a {name or '*': value} map; '*' expands to every prunable weight not named."""
    out: dict[str, object] = {}
    for key, value in mapping.items():
        if key != "*":
            out[resolve(model, key, f"{path}.{key}")] = value
    if "*" in mapping:
        for w in prunable_weights(model):
            out.setdefault(w, mapping["*"])
    return out


def resolve_list(model: nn.Module, names: list[str], path: str) -> list[str]:
    """Resolve a recipe's `weights: [...]` list; errors name `path[i]`."""
    return [resolve(model, w, f"{path}[{i}]") for i, w in enumerate(names)]
