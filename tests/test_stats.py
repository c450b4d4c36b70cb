"""The statistics module (core/stats.py): scipy does the textbook parts, checked against known
values and against each other."""

from __future__ import annotations

import numpy as np
import pytest

from benchsuite.core.stats import (
    batch_halfwidth,
    bootstrap_median_ci,
    coefficient_of_variation,
    wilson_interval,
)


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(0.99, 899)  # 890 of 899
    assert (round(low, 3), round(high, 3)) == (0.981, 0.995)
    assert wilson_interval(1.0, 100)[1] == 1.0 and wilson_interval(1.0, 100)[0] < 0.97
    low, high = wilson_interval(0.9244, 10_000)  # the main job's dense reference
    assert 0.005 < (high - low) / 2 < 0.0055  # ± about 0.53 pt
    with pytest.raises(ValueError, match="images must be > 0"):
        wilson_interval(0.5, 0)


def test_coefficient_of_variation() -> None:
    assert coefficient_of_variation([2.0, 4.0]) == pytest.approx(np.std([2, 4], ddof=1) / 3)
    assert coefficient_of_variation([5.0]) == 0.0 and coefficient_of_variation([0.0, 0.0]) == 0.0


def test_bootstrap_interval_holds_the_median_and_narrows_with_more_values() -> None:
    rng = np.random.default_rng(0)
    few, many = rng.normal(1.0, 0.1, 20), rng.normal(1.0, 0.1, 2000)
    for values in (few, many):
        mid, low, high = bootstrap_median_ci(values, seed=1)
        assert low <= mid <= high and mid == pytest.approx(np.median(values))
    assert np.ptp(bootstrap_median_ci(many)[1:]) < np.ptp(bootstrap_median_ci(few)[1:]) / 4
    assert bootstrap_median_ci(np.array([3.0, 3.0, 3.0])) == (3.0, 3.0, 3.0)


def test_batch_halfwidth_is_the_t_interval_over_batch_medians() -> None:
    rounds = [float(v) for v in np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 4)]
    medians = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    expected = 2.7764451 * medians.std(ddof=1) / np.sqrt(5)  # Student's t, 4 d.f., 97.5 %
    assert batch_halfwidth(rounds) == pytest.approx(expected, rel=1e-6)
    assert batch_halfwidth([1.0] * 9) == 0.0  # fewer than two rounds per batch
