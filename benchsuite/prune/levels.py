"""When pruners reach what: one-shot levels and the AGP schedule, separate from the criteria."""

from __future__ import annotations

import itertools

from benchsuite.recipe import Policy


def agp_target(initial: float, final: float, start: int, end: int, freq: int, epoch: int) -> float:
    """Zhu & Gupta's cubic schedule, evaluated per epoch as Distiller did.

    span = ((end - start - 1) // freq) * freq; the target is `final` at start + span, the last
    epoch the policy acts in.
    """
    span = ((end - start - 1) // freq) * freq
    if span <= 0 or epoch >= start + span:
        return final
    progress = max(0.0, (epoch - start) / span)
    return final + (initial - final) * (1.0 - progress) ** 3


def policy_agp_target(initial: float, final: float, policy: Policy, epoch: int) -> float:
    """The AGP target of a policy at `epoch` (an `epochs: [...]` list spans first..last)."""
    epochs = policy.scheduled_epochs()
    if policy.epochs is None:
        return agp_target(initial, final, policy.starting_epoch, policy.ending_epoch,
                          policy.frequency, epoch)
    if len(epochs) == 1:
        return final
    step = min(b - a for a, b in itertools.pairwise(epochs)) or 1
    return agp_target(initial, final, epochs[0], epochs[-1] + 1, step, epoch)
