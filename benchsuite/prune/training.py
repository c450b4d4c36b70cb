"""Training and evaluation on in-memory tensors: seeded, deterministic on CPU.

One fixed recipe per model family so results stay comparable (the research fixes it): SGD
with Nesterov momentum 0.9, weight decay 5e-4, batch 64, cosine learning-rate decay per step to
zero over the run. Dense training starts at lr 0.05 after a linear warm-up over its first 10%
of steps, fine-tuning at lr 0.01 (no warm-up). A family that SGD trains poorly names another
optimizer (`train_optimizer` on the model class, see `OPTIMIZERS`): the ViT is trained with
AdamW, as every ViT is, at 1/50 of those rates (1e-3 dense, 2e-4 fine-tuning) and weight
decay 0.05 on its matrices only (not norms, biases, the class token or position embeddings).

A *compression scheduler* (anything with Distiller's callback names, see `TrainHooks`) is called
at epoch and mini-batch boundaries, which is how pruning policies act during fine-tuning.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.core.progress import epoch_line
from benchsuite.core.progress import log as progress_log
from benchsuite.data import Splits

DENSE_LR = 0.05
FINETUNE_LR = 0.01
BATCH_SIZE = 64
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
# Deep CIFAR ResNets (ResNet-56 on the digits) can diverge in the first steps at lr 0.05 and
# never recover within a few epochs (loss 3.0 after epoch 0, 0.96 after 8); a short linear
# warm-up, as He et al. used for ResNet-110, keeps the dense run stable.
DENSE_WARMUP = 0.1


@dataclass(frozen=True)
class Optimizer:
    """A family's optimizer: `lr_scale` multiplies the fixed recipe's rates (dense and
    fine-tuning alike, so their ratio stays)."""

    name: str
    lr_scale: float = 1.0
    weight_decay: float = WEIGHT_DECAY

    def build(self, model: nn.Module, lr: float) -> torch.optim.Optimizer:
        if self.name == "sgd":
            return torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, nesterov=True,
                                   weight_decay=self.weight_decay)
        decay, rest = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                vector = p.ndim <= 1 or name.endswith(("cls_token", "pos_embed"))
                (rest if vector else decay).append(p)
        groups = [{"params": decay, "weight_decay": self.weight_decay},
                  {"params": rest, "weight_decay": 0.0}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


OPTIMIZERS = {
    "sgd": Optimizer("sgd"),
    # ViT (models/vit.py): SGD at lr 0.05 left the 6-block ViT at 84.9 % on Fashion-MNIST after
    # 6 epochs, logistic regression's level (docs/measurements.md, "The ViT's optimizer")
    "adamw": Optimizer("adamw", lr_scale=0.02, weight_decay=0.05),
}


def optimizer_for(model: nn.Module) -> Optimizer:
    """The model family's optimizer: `train_optimizer` of its class, else SGD."""
    name = getattr(model, "train_optimizer", "sgd")
    if name not in OPTIMIZERS:
        raise ValueError(f"{type(model).__name__}.train_optimizer: unknown {name!r} "
                         f"(one of {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name]


def scheduled_lr(lr: float, step: int, total: int, warmup: float = 0.0) -> float:
    """The fixed schedule: linear warm-up over the first `warmup` fraction of the steps, then
    cosine decay to zero at the last step."""
    ramp = round(warmup * total)
    if step < ramp:
        return lr * (step + 1) / ramp
    frac = (step - ramp) / max(1, total - ramp)
    return 0.5 * lr * (1 + math.cos(math.pi * frac))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class TrainHooks:
    """Distiller's CompressionScheduler callbacks; the default does nothing."""

    def on_epoch_begin(self, epoch: int, optimizer: torch.optim.Optimizer) -> bool:
        """Return True when the model's parameters were replaced (thinning)."""
        return False

    def on_minibatch_begin(self, epoch: int, step: int, steps_per_epoch: int) -> None: ...

    def on_forward(self, x: torch.Tensor, logits: torch.Tensor,
                   loss: torch.Tensor) -> torch.Tensor:
        """The mini-batch's inputs and logits (knowledge distillation); returns the loss."""
        return loss

    def before_backward_pass(self, epoch: int, step: int, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def on_minibatch_end(self, epoch: int, step: int, steps_per_epoch: int) -> None: ...

    def on_epoch_end(self, epoch: int, optimizer: torch.optim.Optimizer) -> None: ...

    def check(self, optimizer: torch.optim.Optimizer) -> None:
        """Called once before training: fail early on anything wrong."""

    def owns_lr(self) -> bool:
        """True when the recipe steps its own lr schedulers (then the fixed cosine is off)."""
        return False


@dataclass
class EpochLog:
    epoch: int
    loss: float
    lr: float
    seconds: float
    top1: float | None = None  # held-out Top-1 after the epoch (train's `epoch_metric`)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> dict:
    """Top-1 and Top-5 accuracy (fractions in [0, 1]), mean loss and the number of images."""
    model.eval()
    top1 = top5 = 0
    loss = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i : i + batch])
            target = y[i : i + batch]
            loss += F.cross_entropy(logits, target, reduction="sum").item()
            k = min(5, logits.shape[1])
            topk = logits.topk(k, dim=1).indices
            top1 += (topk[:, 0] == target).sum().item()
            top5 += (topk == target[:, None]).any(dim=1).sum().item()
    n = len(x)
    return {"top1": top1 / n, "top5": top5 / n, "loss": loss / n, "test_images": n}


# intra-op threads while training: 2 by default ($BENCHSUITE_TRAIN_THREADS sets another count;
# dense models are cached per value). A count gives the same numbers on any machine with that
# many cores; the suite's own tests train on 1 (tests/conftest.py), which holds up beside a
# CPU-bound process (two OpenMP threads sharing one busy core ran an epoch 10x slower).
DEFAULT_TRAIN_THREADS = 2


def train_threads() -> int:
    """The training thread count ($BENCHSUITE_TRAIN_THREADS, else DEFAULT_TRAIN_THREADS)."""
    text = os.environ.get("BENCHSUITE_TRAIN_THREADS") or str(DEFAULT_TRAIN_THREADS)
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        from benchsuite.core.errors import UserError

        raise UserError(f"BENCHSUITE_TRAIN_THREADS: a positive integer expected, got {text!r}")
    return count


def train(
    model: nn.Module,
    data: Splits,
    epochs: int,
    lr: float,
    seed: int,
    hooks: TrainHooks | None = None,
    log: Callable[[EpochLog], None] | None = None,
    warmup: float = 0.0,
    epoch_metric: Callable[[nn.Module], float] | None = None,
) -> list[EpochLog]:
    """Train `model` in place for `epochs` with the fixed recipe; returns the per-epoch log.

    `warmup`: fraction of the steps over which the learning rate ramps up linearly before the
    cosine decay (dense training uses `DENSE_WARMUP`; fine-tuning none).

    `epoch_metric(model)`: evaluated after every epoch (in eval mode; it changes no weight,
    statistic or random state) and reported on the epoch's progress line, from which a search
    engine may stop the run (multi-fidelity: `progress.StopStage`).

    Runs on `train_threads()` intra-op threads, a fixed count: results then do not depend on
    the machine's core count (the same seed gave dense Top-1 0.9789 on one thread and 0.9844 on
    two). On an idle 2-vCPU machine one thread is 1.7x slower than two (ResNet-20 on
    Fashion-MNIST, 28x28, batch 64: 1.64 against 0.95 ms per image)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(train_threads())
    try:
        return _train(model, data, epochs, lr, seed, hooks, log, warmup, epoch_metric)
    finally:
        torch.set_num_threads(threads)


def _train(model: nn.Module, data: Splits, epochs: int, lr: float, seed: int,
           hooks: TrainHooks | None, log: Callable[[EpochLog], None] | None,
           warmup: float, epoch_metric: Callable[[nn.Module], float] | None = None
           ) -> list[EpochLog]:
    hooks = hooks or TrainHooks()
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    family = optimizer_for(model)
    lr *= family.lr_scale

    def make_optimizer() -> torch.optim.Optimizer:
        return family.build(model, lr)

    opt = make_optimizer()
    hooks.check(opt)
    n = len(data.x_train)
    steps = math.ceil(n / BATCH_SIZE)
    total = max(1, epochs * steps)
    logs: list[EpochLog] = []
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        if hooks.on_epoch_begin(epoch, opt):
            current_lr = opt.param_groups[0]["lr"]
            opt = make_optimizer()  # thinning replaced the parameters
            for group in opt.param_groups:
                group["lr"] = current_lr
        order = torch.randperm(n, generator=gen)
        running = 0.0
        for step in range(steps):
            if not hooks.owns_lr():
                for group in opt.param_groups:
                    group["lr"] = scheduled_lr(lr, epoch * steps + step, total, warmup)
            hooks.on_minibatch_begin(epoch, step, steps)
            idx = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            x = data.x_train[idx]
            logits = model(x)
            loss = hooks.on_forward(x, logits, F.cross_entropy(logits, data.y_train[idx]))
            loss = hooks.before_backward_pass(epoch, step, loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hooks.on_minibatch_end(epoch, step, steps)
            running += loss.item() * len(idx)
        hooks.on_epoch_end(epoch, opt)
        entry = EpochLog(epoch, running / n, opt.param_groups[0]["lr"], time.perf_counter() - t0,
                         None if epoch_metric is None else float(epoch_metric(model)))
        logs.append(entry)
        progress_log.info(epoch_line(epoch, epochs, entry.loss, time.perf_counter() - start,
                                     entry.top1))
        if log:
            log(entry)
    model.eval()
    return logs
