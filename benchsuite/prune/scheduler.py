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

from benchsuite.prune.criteria import Calibration
from benchsuite.prune.distillation import Distillation
from benchsuite.prune.elementwise import SparsityLevelParameterPruner
from benchsuite.prune.folding import folded
from benchsuite.prune.graph import thin
from benchsuite.prune.lr import lr_class, step_to
from benchsuite.prune.masks import drop_mask, get_mask, set_mask
from benchsuite.prune.names import resolve_map
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.prune.registry import build_pruner
from benchsuite.prune.regularizers import REGULARIZER_CLASSES, Regularizer
from benchsuite.prune.training import TrainHooks
from benchsuite.recipe import Policy, Recipe, RecipeError

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


def straight_through(args: dict) -> bool:
    """Masks on the forward pass only (`mask_on_forward_only` / `use_double_copies`): masked
    weights keep receiving gradients, unless `mask_gradients` masks those too."""
    return bool((args.get("mask_on_forward_only") or args.get("use_double_copies"))
                and not args.get("mask_gradients"))


def _exists(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name.rpartition(".")[0])
    except AttributeError:
        return False  # removed with its block
    return True


def _last_epoch(policy: Policy) -> int:
    """Distiller's `ending_epoch - 1` (the last of an `epochs:` list)."""
    return policy.epochs[-1] if policy.epochs is not None else policy.ending_epoch - 1


class CompressionScheduler(TrainHooks):
    def __init__(self, recipe: Recipe, model: nn.Module, example_input: torch.Tensor,
                 calibration: Calibration | None = None,
                 latency_table: dict | None = None) -> None:
        """`calibration` (x, y): a training batch for the data-driven criteria (APoZ, Taylor,
        block ranking); recipes using them fail to bind without it. `latency_table`: the
        target device's table (`benchsuite.latency`) for `LatencyBudgetPruner`."""
        self.recipe = recipe
        self.model = model
        self.example_input = example_input
        self.calibration = calibration
        try:
            self.pruners: dict[str, Pruner] = {
                name: build_pruner(c, model, example_input, calibration, latency_table)
                for name, c in recipe.pruners.items()
            }
            self.regularizers: dict[str, Regularizer] = {
                name: REGULARIZER_CLASSES[c.cls](c, model)
                for name, c in recipe.regularizers.items()
            }
            self._check_overlaps()
            self._levels = {p.index: self._policy_levels(p) for p in recipe.policies
                            if p.kind == "pruner" and p.args.get("levels") is not None}
            for name in recipe.lr_schedulers:
                check_lr_scheduler(recipe, name)
        except RecipeError as e:
            raise RecipeError(e.path, e.message, recipe.source) from None
        self._lr: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self._optimizer: torch.optim.Optimizer | None = None
        self.thinned: dict[str, int] = {}
        self._temporary: dict[str, torch.Tensor | None] = {}  # masks to restore
        kd = recipe.knowledge_distillation
        # distill_weight 0 is KD switched off (a template's default, e.g. ${kd_weight=0}): the
        # loss is then student_weight x CE, so the teacher's forward pass is skipped
        self.distillation = (Distillation(model, **kd) if kd and kd["distill_weight"] > 0
                             else None)
        self._started: set[int] = set()  # pruner policies that have run once
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

    def _policy_levels(self, policy: Policy) -> dict[str, object]:
        """A policy's `levels` arg: it replaces its SparsityLevelParameterPruner's levels."""
        path = f"{policy.path}.pruner.args.levels"
        if not isinstance(self.pruners[policy.instance], SparsityLevelParameterPruner):
            cls = self.recipe.pruners[policy.instance].cls
            raise RecipeError(path, f"only a SparsityLevelParameterPruner has levels; "
                              f"{policy.instance!r} is a {cls}")
        return resolve_map(self.model, policy.args["levels"], path)

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
        args = policy.args
        if policy.index in self._levels:  # Distiller: the policy sets its pruner's levels
            pruner.values = self._levels[policy.index]
        live = [n for n in pruner.weights() if _exists(self.model, n)]
        if args.get("discard_masks_at_minibatch_end"):  # temporary: restored at mini-batch end
            for name in live:
                if name not in self._temporary:
                    old = get_mask(self.model, name)
                    self._temporary[name] = None if old is None else old.clone()
        if straight_through(args):  # masked weights keep training (mask on forward only)
            for name in live:
                if get_mask(self.model, name) is None:
                    set_mask(self.model, name, torch.ones_like(self.model.get_parameter(name)),
                             straight_through=True)
        ctx = PruneContext(self.model, epoch, policy)
        if args.get("fold_batchnorm"):
            with folded(self.model, live, self.example_input):
                replaced = bool(pruner.apply(ctx))
        else:
            replaced = bool(pruner.apply(ctx))
        if replaced:
            self.removed_blocks = [b for p in self.pruners.values()
                                   for b in getattr(p, "removed", [])]
            for p in self.pruners.values():  # structures a physical pruner removed (heads)
                self.thinned.update(getattr(p, "thinned", {}))
        return replaced

    def on_epoch_begin(self, epoch: int, optimizer: torch.optim.Optimizer) -> bool:
        """Returns True when parameters were replaced (thinning): rebuild the optimizer."""
        replaced = False
        for policy in self.recipe.policies:
            if not policy.active(epoch):
                continue
            if policy.kind == "pruner":
                first = policy.index not in self._started
                self._started.add(policy.index)
                if first and policy.args.get("skip_first_minibatch"):
                    continue  # Distiller prunes at global mini-batch 1 instead
                replaced |= self._prune(policy, epoch)
            elif policy.kind == "extension":
                self._discard_temporary()  # thinning removes only what is pruned for good
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
        """Distiller's mini-batch pruning: a policy with `mini_batch_pruning_frequency: N`
        re-runs when the global mini-batch id (epoch x steps + step) is a multiple of N (not on
        an epoch's first mini-batch: its epoch-begin pass did it); `skip_first_minibatch` moves
        the first pruning to global mini-batch 1."""
        global_step = epoch * steps_per_epoch + step
        for policy in self.recipe.policies:
            if policy.kind != "pruner" or not policy.active(epoch) \
                    or getattr(self.pruners[policy.instance], "physical", False):
                continue
            freq = policy.args.get("mini_batch_pruning_frequency") or 0
            due = step > 0 and freq > 0 and global_step % freq == 0
            if policy.args.get("skip_first_minibatch") and global_step == 1:
                due = True
            if due:
                self._prune(policy, epoch)

    def _discard_temporary(self) -> None:
        """Undo the masks of `discard_masks_at_minibatch_end` policies."""
        for name, old in self._temporary.items():
            if not _exists(self.model, name):
                continue
            if old is None:
                drop_mask(self.model, name)
            else:
                set_mask(self.model, name, old)
        self._temporary.clear()

    def on_minibatch_end(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        self._discard_temporary()
        for policy in self.recipe.policies:
            if policy.kind == "regularizer" and policy.active(epoch):
                last = (step == steps_per_epoch - 1 and epoch == _last_epoch(policy)
                        and policy.args.get("keep_mask", False))
                self.regularizers[policy.instance].threshold(self.model, keep_mask=last)

    def on_forward(self, x: torch.Tensor, logits: torch.Tensor,
                   loss: torch.Tensor) -> torch.Tensor:
        if self.distillation is None:
            return loss
        return self.distillation.loss(x, logits, loss)

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
