"""The compression scheduler: runs a recipe's policies during fine-tuning (Distiller's flow).

- Epoch begin: the active pruner policies set their masks (in recipe order; a physical pruner,
  BlockRemover, replaces modules), then the active extensions run (net thinning). When modules
  or parameters were replaced, `on_epoch_begin` returns True and the train loop rebuilds its
  optimizer.
- Mini-batch begin: pruner policies with `mini_batch_pruning_frequency: N` re-run every N
  mini-batches of their active epochs (network surgery splices at every step).
- Before the backward pass: the active regularizers add their loss terms.
- Epoch end: the active lr-scheduler policies set their schedulers to epoch + 1, as Distiller
  did (`lr.py`: the rate follows the epoch number; when a recipe has any, it owns the
  learning rate).
- Mini-batch end: regularizers with `threshold_criteria` zero what is at or below their
  strength, in place (a temporary mask, as Distiller's); the mask stays only with the policy
  arg `keep_mask`, from the last mini-batch of the policy's last epoch on.

Masks are held by torch.nn.utils.prune (recomputed before every forward pass), so they stay
applied after every optimizer step. Binding (this constructor) resolves every weight name,
builds the lr schedulers and rejects two pruner policies that prune one weight in the same
epoch, so a bad recipe fails before training.
"""

from __future__ import annotations

import inspect
import logging

import torch
from torch import nn

from ..recipe import Policy, Recipe, RecipeError
from ..train import TrainHooks
from .base import PruneContext, Pruner
from .criteria import Calibration
from .graph import thin
from .lr import lr_class, step_to
from .masks import get_mask, set_mask
from .registry import build_pruner
from .regularizers import REGULARIZER_CLASSES, Regularizer

log = logging.getLogger(__name__)


def check_lr_scheduler(recipe: Recipe, name: str,
                       optimizer: torch.optim.Optimizer | None = None):
    """Build lr scheduler `name` (on a throwaway optimizer by default); errors name the key."""
    comp = recipe.lr_schedulers[name]
    cls = lr_class(comp.cls)
    accepted = [p for p in inspect.signature(cls.__init__).parameters
                if p not in ("self", "optimizer", "verbose")]
    for key in comp.args:
        if key not in accepted:
            raise RecipeError(f"{comp.path}.{key}", f"unknown argument of {comp.cls} "
                              f"(accepted: {', '.join(accepted)})")
    if optimizer is None:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    try:
        return cls(optimizer, **comp.args)
    except (TypeError, ValueError) as e:
        raise RecipeError(comp.path, f"{comp.cls}: {e}") from None


def _last_epoch(policy: Policy) -> int:
    """Distiller's `ending_epoch - 1` (the last of an `epochs:` list)."""
    return policy.epochs[-1] if policy.epochs is not None else policy.ending_epoch - 1


class CompressionScheduler(TrainHooks):
    def __init__(self, recipe: Recipe, model: nn.Module, example_input: torch.Tensor,
                 calibration: Calibration | None = None) -> None:
        """`calibration` (x, y): a training batch for the data-driven criteria (APoZ, Taylor,
        block ranking); recipes using them fail to bind without it."""
        self.recipe = recipe
        self.model = model
        self.example_input = example_input
        self.calibration = calibration
        try:
            self.pruners: dict[str, Pruner] = {
                name: build_pruner(c, model, example_input, calibration)
                for name, c in recipe.pruners.items()
            }
            self.regularizers: dict[str, Regularizer] = {
                name: REGULARIZER_CLASSES[c.cls](c, model)
                for name, c in recipe.regularizers.items()
            }
            self._check_overlaps()
            for name in recipe.lr_schedulers:
                check_lr_scheduler(recipe, name)
        except RecipeError as e:
            raise RecipeError(e.path, e.message, recipe.source) from None
        self._lr: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self._optimizer: torch.optim.Optimizer | None = None
        self.thinned: dict[str, int] = {}
        self.removed_blocks: list[str] = []

    def _check_overlaps(self) -> None:
        pruning = [p for p in self.recipe.policies if p.kind == "pruner"]
        for j, b in enumerate(pruning):
            for a in pruning[:j]:
                shared = sorted(set(self.pruners[a.instance].weights())
                                & set(self.pruners[b.instance].weights()))
                epochs = sorted(set(a.scheduled_epochs()) & set(b.scheduled_epochs()))
                if shared and epochs:
                    more = f" (+{len(shared) - 1} more)" if len(shared) > 1 else ""
                    raise RecipeError(
                        f"{b.path}.pruner.instance_name",
                        f"pruner {b.instance!r} overlaps {a.path} (pruner {a.instance!r}): both "
                        f"prune {shared[0]}{more} at epoch(s) {', '.join(map(str, epochs[:5]))}",
                    )

    def owns_lr(self) -> bool:
        return bool(self.recipe.lr_schedulers)

    def _lr_scheduler(self, name: str, optimizer: torch.optim.Optimizer):
        if name not in self._lr:
            self._lr[name] = check_lr_scheduler(self.recipe, name, optimizer)
        elif self._lr[name].optimizer is not optimizer:  # rebuilt after thinning
            old = self._lr[name]
            new = check_lr_scheduler(self.recipe, name, optimizer)
            new.load_state_dict(old.state_dict())  # keep the schedule's position
            for group, lr in zip(optimizer.param_groups, old.get_last_lr(), strict=False):
                group["lr"] = lr
            self._lr[name] = new
        return self._lr[name]

    def check(self, optimizer: torch.optim.Optimizer) -> None:
        """Build the lr schedulers now, so that bad arguments fail before training."""
        for name in self.recipe.lr_schedulers:
            self._lr_scheduler(name, optimizer)
        self._optimizer = optimizer

    def _prune(self, policy: Policy, epoch: int) -> bool:
        pruner = self.pruners[policy.instance]
        if policy.args.get("mask_on_forward_only") or policy.args.get("use_double_copies"):
            for name in pruner.weights():  # straight-through masks: masked weights keep training
                try:
                    if get_mask(self.model, name) is None:
                        set_mask(self.model, name, torch.ones_like(self.model.get_parameter(name)),
                                 straight_through=True)
                except AttributeError:
                    continue  # removed with its block
        replaced = bool(pruner.apply(PruneContext(self.model, epoch, policy)))
        if replaced:
            self.removed_blocks = [b for p in self.pruners.values()
                                   for b in getattr(p, "removed", [])]
        return replaced

    def on_epoch_begin(self, epoch: int, optimizer: torch.optim.Optimizer) -> bool:
        """Returns True when parameters were replaced (thinning): rebuild the optimizer."""
        replaced = False
        for policy in self.recipe.policies:
            if not policy.active(epoch):
                continue
            if policy.kind == "pruner":
                replaced |= self._prune(policy, epoch)
            elif policy.kind == "extension":
                ext = self.recipe.extensions[policy.instance]
                channels = ext.cls == "ChannelRemover" or (
                    ext.cls == "StructureRemover"
                    and ext.args.get("thinning_func_str") == "remove_channels")
                kind = "Channels" if channels else "Filters"
                removed = thin(self.model, self.example_input, kind)
                log.info("epoch %d: %s removed %s", epoch, ext.cls, removed)
                for k, v in removed.items():
                    self.thinned[k] = self.thinned.get(k, 0) + v
                replaced = True
        return replaced

    def on_minibatch_begin(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        for policy in self.recipe.policies:
            freq = policy.args.get("mini_batch_pruning_frequency") or 0
            if (policy.kind == "pruner" and freq and step > 0 and step % freq == 0
                    and policy.active(epoch)
                    and not getattr(self.pruners[policy.instance], "physical", False)):
                self._prune(policy, epoch)

    def on_minibatch_end(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        for policy in self.recipe.policies:
            if policy.kind == "regularizer" and policy.active(epoch):
                last = (step == steps_per_epoch - 1 and epoch == _last_epoch(policy)
                        and policy.args.get("keep_mask", False))
                self.regularizers[policy.instance].threshold(self.model, keep_mask=last)

    def before_backward_pass(self, epoch: int, step: int, loss: torch.Tensor) -> torch.Tensor:
        for policy in self.recipe.policies:
            if policy.kind == "regularizer" and policy.active(epoch):
                loss = loss + self.regularizers[policy.instance].loss(self.model)
        return loss

    def on_epoch_end(self, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        for policy in self.recipe.policies:
            if not policy.active(epoch):
                continue
            if policy.kind == "lr_scheduler":
                step_to(self._lr_scheduler(policy.instance, optimizer), epoch + 1)
