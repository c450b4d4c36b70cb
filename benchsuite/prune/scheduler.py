"""The compression scheduler: runs a recipe's policies during fine-tuning (Distiller's flow).

At the start of each epoch the active pruner policies set their masks (in recipe order), then
the active extensions run (net thinning). Masks are held by torch.nn.utils.prune, so they stay
applied after every optimizer step. At the end of each epoch the active lr-scheduler policies
step their schedulers; when a recipe has any, it owns the learning rate.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..recipe import Recipe, RecipeError
from ..train import TrainHooks
from .base import PruneContext, Pruner
from .graph import thin
from .registry import build_pruner

log = logging.getLogger(__name__)


class CompressionScheduler(TrainHooks):
    def __init__(self, recipe: Recipe, model: nn.Module, example_input: torch.Tensor) -> None:
        self.recipe = recipe
        self.model = model
        self.example_input = example_input
        try:
            self.pruners: dict[str, Pruner] = {
                name: build_pruner(c, model, example_input) for name, c in recipe.pruners.items()
            }
        except RecipeError as e:
            raise RecipeError(e.path, e.message, recipe.source) from None
        self._lr: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self._optimizer: torch.optim.Optimizer | None = None
        self.thinned: dict[str, int] = {}

    def owns_lr(self) -> bool:
        return bool(self.recipe.lr_schedulers)

    def _lr_scheduler(self, name: str, optimizer: torch.optim.Optimizer):
        if name not in self._lr or self._optimizer is not optimizer:
            comp = self.recipe.lr_schedulers[name]
            cls = getattr(torch.optim.lr_scheduler, comp.cls)
            try:
                self._lr[name] = cls(optimizer, **comp.args)
            except (TypeError, ValueError) as e:
                raise RecipeError(comp.path, f"{comp.cls}: {e}") from None
        return self._lr[name]

    def check(self, optimizer: torch.optim.Optimizer) -> None:
        """Build the lr schedulers now, so that bad arguments fail before training."""
        for name in self.recipe.lr_schedulers:
            self._lr_scheduler(name, optimizer)
        self._optimizer = optimizer

    def on_epoch_begin(self, epoch: int, optimizer: torch.optim.Optimizer) -> bool:
        """Returns True when parameters were replaced (thinning): rebuild the optimizer."""
        replaced = False
        for policy in self.recipe.policies:
            if not policy.active(epoch):
                continue
            if policy.kind == "pruner":
                self.pruners[policy.instance].apply(PruneContext(self.model, epoch, policy))
            elif policy.kind == "extension":
                ext = self.recipe.extensions[policy.instance]
                kind = "Filters" if ext.cls == "FilterRemover" else "Channels"
                removed = thin(self.model, self.example_input, kind)
                log.info("epoch %d: %s removed %s", epoch, ext.cls, removed)
                for k, v in removed.items():
                    self.thinned[k] = self.thinned.get(k, 0) + v
                replaced = True
        return replaced

    def on_epoch_end(self, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        if self._optimizer is not optimizer:
            self._lr.clear()
            self._optimizer = optimizer
        for policy in self.recipe.policies:
            if policy.kind == "lr_scheduler" and policy.active(epoch):
                self._lr_scheduler(policy.instance, optimizer).step()
