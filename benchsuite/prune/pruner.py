"""The pruner interface: a pruner sets masks on its weights when a policy fires."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from benchsuite.recipe import Component, Policy


@dataclass
class PruneContext:
    """What a pruner may look at when it acts."""

    model: nn.Module
    epoch: int
    policy: Policy


class Pruner:
    """Base class; subclasses are registered under Distiller's class names."""

    def __init__(self, component: Component, model: nn.Module) -> None:
        self.name = component.name
        self.args = component.args
        self.path = component.path

    def weights(self) -> list[str]:
        """Resolved parameter names this pruner acts on (checked when built)."""
        raise NotImplementedError

    def apply(self, ctx: PruneContext) -> bool | None:
        """Compute and set masks for the current epoch. A physical pruner (one that replaces
        modules) returns True so that the train loop rebuilds its optimizer."""
        raise NotImplementedError
