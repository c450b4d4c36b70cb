"""The fixed learning-rate schedule: linear warm-up (dense training), then cosine to zero."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchsuite.prune.training import scheduled_lr


def test_plain_cosine_without_warmup() -> None:
    total = 100
    assert scheduled_lr(0.05, 0, total) == pytest.approx(0.05)
    assert scheduled_lr(0.05, 50, total) == pytest.approx(0.025)
    assert scheduled_lr(0.05, total - 1, total) < 0.05 * 1e-3


def test_warmup_ramps_linearly_then_decays() -> None:
    total, lr = 200, 0.05  # warm-up over 20 steps
    ramp = [scheduled_lr(lr, s, total, 0.1) for s in range(20)]
    assert ramp[0] == pytest.approx(lr / 20) and ramp[-1] == pytest.approx(lr)
    assert all(b - a == pytest.approx(lr / 20) for a, b in itertools.pairwise(ramp))
    assert scheduled_lr(lr, 20, total, 0.1) == pytest.approx(lr)  # cosine starts at the peak
    mid = 20 + (total - 20) // 2
    assert scheduled_lr(lr, mid, total, 0.1) == pytest.approx(lr / 2)


@given(st.floats(1e-4, 1.0), st.integers(1, 5000), st.sampled_from([0.0, 0.05, 0.1, 0.5]))
def test_never_above_peak_nor_negative(lr: float, total: int, warmup: float) -> None:
    values = [scheduled_lr(lr, s, total, warmup) for s in range(0, total, max(1, total // 97))]
    assert all(0 <= v <= lr * (1 + 1e-12) for v in values) and not any(map(math.isnan, values))
