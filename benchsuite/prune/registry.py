"""Distiller class names -> implementations."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from ..recipe import Component
from .base import Pruner
from .elementwise import AutomatedGradualPruner, SparsityLevelParameterPruner
from .structured import L1RankedStructureParameterPruner

PRUNER_CLASSES: dict[str, type[Pruner]] = {
    cls.__name__: cls
    for cls in (
        SparsityLevelParameterPruner,
        AutomatedGradualPruner,
        L1RankedStructureParameterPruner,
    )
}


def build_pruner(component: Component, model: nn.Module, example_input: torch.Tensor) -> Pruner:
    cls = PRUNER_CLASSES[component.cls]
    if "example_input" in inspect.signature(cls.__init__).parameters:
        return cls(component, model, example_input=example_input)
    return cls(component, model)
