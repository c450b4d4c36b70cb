"""The suite's statistics, in one place: a paired speed-up's estimate and 95 % interval from
per-round log ratios (below), a Top-1's Wilson interval, a coefficient of variation. scipy.stats
does the textbook parts (bootstrap, Student's t, Wilson, variation); what is ours is written down.

A paired speed-up's estimate and 95 % interval from per-round log ratios:

The estimate is the median of the per-round log ratios, its interval a percentile bootstrap over
rounds, which takes rounds as exchangeable. Two departures from that are handled here.

Rounds next to each other are also more alike than the bootstrap assumes: on ResNet-20 dense vs
50 % filters (60 s of rounds) the medians of consecutive blocks of 10-160 rounds spread 2.1-2.7x
as widely as resampling predicts, and 20-round windows' bootstrap intervals held the trace's
median 79 % of the time. So the interval is at least as wide as a t-interval over the medians of
``BATCHES`` consecutive batches of rounds (batch means, as for correlated simulation output): in
that trace it held 91 %.

And the ratio can move mid-measurement (CI, beside a CPU hog, once read 1.57x for 80 rounds,
then 1.71x, with a bootstrap interval of [1.69, 1.71]): the two halves of the rounds are
compared, and when their intervals are disjoint the result says so (``drifted``, ``drift`` =
second half / first half) and its interval is widened to span both halves' medians. For
exchangeable rounds that happens in 0.6-0.9 % of measurements (simulated).

What no interval from one measurement covers: on a 2-vCPU VM the ratio of a large and a small
model holds for tens of seconds, then leaves for a second or more (a neighbour's cache pressure
costs the large model more: ResNet-20 dense vs 50 % filters read 2.49x in 118 of 120 one-second
windows, 2.29x and 2.56x in the other two). A measurement (about a second) that falls inside
such a spell reads the spell's ratio with a tight interval; separate measurements of one pair
spread more than one interval says (docs/measurements.md, "Measurement noise"). So compare
methods over repeated cases, and the regression check keeps its tolerance.

Needs numpy and scipy (both worker environments have them; no torch, no OpenVINO).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
MIN_HALF = 3  # fewer rounds in a half: not judged
BATCHES = 5


def bootstrap_median_ci(values: np.ndarray, resamples: int = 2000,
                        confidence: float = CONFIDENCE,
                        seed: int = 0) -> tuple[float, float, float]:
    """Median of ``values`` and its percentile-bootstrap interval (resampling the values)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values")
    mid = float(np.median(values))
    if values.size == 1 or np.all(values == values[0]):
        return mid, mid, mid  # nothing to resample
    ci = stats.bootstrap((values,), np.median, n_resamples=resamples, method="percentile",
                         confidence_level=confidence, vectorized=True,
                         random_state=np.random.default_rng(seed)).confidence_interval
    # inside the data and around the estimate (scipy's percentiles interpolate: a last-digit
    # step outside the data's range is possible)
    low, high = max(float(ci.low), float(values.min())), min(float(ci.high), float(values.max()))
    return mid, min(low, mid), max(high, mid)


@dataclass(frozen=True)
class Estimate:
    """A speed-up (ratio scale) with its interval, and how the ratio moved between halves."""

    speedup: float
    ci_low: float
    ci_high: float
    drift: float = 1.0  # second half's median / first half's
    drifted: bool = False  # the halves' intervals were disjoint

    def as_tuple(self) -> tuple[float, float, float]:
        return self.speedup, self.ci_low, self.ci_high


def estimate(rounds: list[float], resamples: int = 2000, seed: int = 0) -> Estimate:
    """The estimate over per-round log ratios ``rounds`` (in time order)."""
    mid, low, high = bootstrap_median_ci(np.asarray(rounds), resamples, seed=seed)
    spread = batch_halfwidth(rounds)
    low, high = max(min(low, mid - spread), min(rounds)), min(max(high, mid + spread), max(rounds))
    half = len(rounds) // 2
    halves = [rounds[:half], rounds[-half:]] if half >= MIN_HALF else []
    part_resamples = max(200, resamples // 4)
    cis = [bootstrap_median_ci(np.asarray(p), part_resamples, seed=seed + i)
           for i, p in enumerate(halves)]
    drifted = len(cis) == 2 and (cis[0][2] < cis[1][1] or cis[1][2] < cis[0][1])
    medians = [c[0] for c in cis]
    if drifted:
        low, high = min(low, *medians), max(high, *medians)
    drift = float(np.exp(medians[1] - medians[0])) if cis else 1.0
    return Estimate(float(np.exp(mid)), float(np.exp(low)), float(np.exp(high)), drift, drifted)


def batch_halfwidth(rounds: list[float]) -> float:
    """Half-width of the t-interval over the medians of ``BATCHES`` consecutive batches (0 with
    fewer than two rounds per batch)."""
    size = len(rounds) // BATCHES
    if size < 2:
        return 0.0
    medians = np.median(np.asarray(rounds[:size * BATCHES]).reshape(BATCHES, size), axis=1)
    t_975 = float(stats.t.ppf(0.5 + CONFIDENCE / 2, BATCHES - 1))
    return float(t_975 * medians.std(ddof=1) / np.sqrt(BATCHES))


def wilson_interval(top1: float, images: int, confidence: float = CONFIDENCE
                    ) -> tuple[float, float]:
    """95 % Wilson score interval of an accuracy ``top1`` measured on ``images`` test images
    (the count of correct images is ``round(top1 * images)``).

    Unlike the normal approximation it stays inside [0, 1] and is sensible near 100 %, where
    pruned models of the embedded dataset sit (e.g. 0.99 on 899 images: [0.981, 0.995])."""
    if images <= 0:
        raise ValueError(f"images must be > 0, got {images}")
    if not 0 <= top1 <= 1:
        raise ValueError(f"top1 must be within [0, 1], got {top1}")
    ci = stats.binomtest(round(top1 * images), images).proportion_ci(confidence, "wilson")
    return max(0.0, float(ci.low)), min(1.0, float(ci.high))


def coefficient_of_variation(values: list[float]) -> float:
    """Sample standard deviation over mean (0.0 for fewer than two values or a zero mean)."""
    if len(values) < 2 or not np.mean(values):
        return 0.0
    value = float(stats.variation(values, ddof=1))
    return value if math.isfinite(value) else 0.0
