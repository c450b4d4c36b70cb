"""Learning-rate schedulers of a recipe, stepped as Distiller steps them.

Distiller's `LRPolicy` calls `scheduler.step(epoch=current_epoch + 1)` at the end of every
epoch the policy is active in: the rate is a function of the *epoch number*, not of how many
times the policy has stepped. A `StepLR(step_size: 45)` active from epoch 45 first decays after
epoch 45 (lr(46) = base * gamma), not after epoch 89. `step_to` does that through each class's
closed form.

Classes: Distiller's own `PolynomialLR(T_max, power)` (lr = base * (1 - epoch / T_max)^power;
torch's class of the same name takes `total_iters`) and `MultiStepMultiGammaLR(milestones,
gammas)` (one multiplicative gamma per milestone), then torch.optim.lr_scheduler's classes.
"""

from __future__ import annotations

import bisect
import warnings

import torch
from torch.optim.lr_scheduler import LRScheduler


class PolynomialLR(LRScheduler):
    """Distiller's polynomial decay: lr = base_lr * (1 - last_epoch / T_max) ** power."""

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int, power: float,
                 last_epoch: int = -1) -> None:
        if T_max <= 0:
            raise ValueError(f"T_max must be > 0, got {T_max}")
        self.T_max = T_max
        self.power = power
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        frac = max(0.0, 1.0 - min(self.last_epoch, self.T_max) / self.T_max)
        return [base * frac ** self.power for base in self.base_lrs]

    def get_lr(self) -> list[float]:
        return self._get_closed_form_lr()


class MultiStepMultiGammaLR(LRScheduler):
    """Like MultiStepLR with one gamma per milestone; the gammas multiply up (Distiller's)."""

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: list[int],
                 gammas: list[float], last_epoch: int = -1) -> None:
        if list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        if len(milestones) != len(gammas):
            raise ValueError(f"milestones ({len(milestones)}) and gammas ({len(gammas)}) "
                             f"must have the same length")
        self.milestones = list(milestones)
        self.factors = [1.0]
        for g in gammas:
            self.factors.append(self.factors[-1] * g)
        super().__init__(optimizer, last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        idx = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base * self.factors[idx] for base in self.base_lrs]

    def get_lr(self) -> list[float]:
        return self._get_closed_form_lr()


DISTILLER_LR = {c.__name__: c for c in (PolynomialLR, MultiStepMultiGammaLR)}


def lr_class(name: str) -> type:
    """Distiller's own class of that name, else torch's."""
    return DISTILLER_LR.get(name) or getattr(torch.optim.lr_scheduler, name)


def step_to(scheduler: LRScheduler, epoch: int) -> None:
    """Set the scheduler (and its optimizer's lr) to its value at `epoch`, as Distiller's
    `scheduler.step(epoch=...)` did (torch still honours the argument, with a deprecation
    warning, through the class's closed form)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step(epoch)
