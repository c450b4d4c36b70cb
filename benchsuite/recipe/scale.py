"""`--schedule-scale F`: run a long published recipe in less time with its shape kept.

Distiller's recipes run 40-180 epochs. Scaling multiplies every epoch of the schedule by F
(rounded half up): each policy's `starting_epoch`, `ending_epoch` (at least one epoch after its
start), `frequency` (at least 1) and `epochs` list, and every lr scheduler's epoch arguments
(`step_size`, `milestones`, `T_max`, `T_0`, `total_iters`; ExponentialLR's `gamma` becomes
gamma^(1/F), so the rate falls as far over the scaled run). Pruning levels, AGP targets and
regularizer strengths are unchanged, so an AGP policy keeps its cubic shape over fewer epochs.
The scaled text is what runs, and the scale is recorded with the case's parameters.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from benchsuite.recipe.recipe_error import RecipeError
from benchsuite.recipe.yamltext import load_yaml

_EPOCH_ARGS = ("step_size", "T_max", "T_0", "total_iters")


def _scaled(value: Any, factor: float, minimum: int = 0) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # left for validation to report
    return max(minimum, math.floor(value * factor + 0.5))


def scale_schedule(text: str, factor: float, source: str | None = None) -> str:
    """The rendered recipe `text` with its schedule scaled by `factor` (> 0)."""
    if not factor > 0:
        raise RecipeError("", f"schedule scale must be > 0, got {factor}", source)
    if factor == 1:
        return text
    doc = load_yaml(text, source)  # size-checked, aliases refused
    if not isinstance(doc, dict):
        return text  # parse_recipe reports it
    for body in (doc.get("lr_schedulers") or {}).values():
        if not isinstance(body, dict):
            continue
        for key in _EPOCH_ARGS:
            if key in body:
                body[key] = _scaled(body[key], factor, minimum=1)
        if isinstance(body.get("milestones"), list):
            body["milestones"] = [_scaled(m, factor, minimum=1) for m in body["milestones"]]
        if body.get("class") == "ExponentialLR" and isinstance(body.get("gamma"), int | float):
            body["gamma"] = float(body["gamma"]) ** (1 / factor)
    for policy in doc.get("policies") or []:
        if not isinstance(policy, dict):
            continue
        if isinstance(policy.get("epochs"), list):
            policy["epochs"] = sorted({_scaled(e, factor) for e in policy["epochs"]})
        start = policy.get("starting_epoch")
        if "starting_epoch" in policy:
            policy["starting_epoch"] = start = _scaled(start, factor)
        if "ending_epoch" in policy:
            end = _scaled(policy["ending_epoch"], factor)
            if isinstance(start, int) and isinstance(end, int):
                end = max(end, start + 1)
            policy["ending_epoch"] = end
        if "frequency" in policy:
            policy["frequency"] = _scaled(policy["frequency"], factor, minimum=1)
    header = f"# schedule scaled by {factor:g} (--schedule-scale) from {source or 'a recipe'}\n"
    return header + yaml.safe_dump(doc, sort_keys=False)
