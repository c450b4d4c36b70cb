"""A paired speed-up's estimate and 95 % interval from per-round log ratios.

The estimate is the median of the per-round log ratios, its interval a percentile bootstrap over
rounds. The bootstrap takes rounds as exchangeable, which fails when the ratio itself moves: on
a 2-vCPU VM the ratio of a large and a small model holds steady for minutes, then leaves for
about a second (a neighbour's cache pressure costs the large model more: ResNet-20 dense vs 50 %
filters read 2.49x in 118 of 120 one-second windows, 2.29x and 2.56x in the other two). A
measurement that fits inside such a second reads its ratio with a tight interval.

Rounds next to each other are also more alike than the bootstrap assumes: on ResNet-20 dense vs
50 % filters (60 s of rounds) the medians of consecutive blocks of 10-160 rounds spread 2.1-2.7x
as widely as resampling predicts, and 20-round windows' bootstrap intervals held the trace's
median 79 % of the time. So the interval is at least as wide as a t-interval over the medians of
``BATCHES`` consecutive batches of rounds (batch means, as for correlated simulation output): in
that trace it held 91 %.

And the rounds are judged in parts (the sessions of a measurement, or the two halves of one):
when two parts' intervals are disjoint the ratio moved between them, the result says so
(``drifted``, ``drift`` = last part / first part) and its interval is widened to span every
part's estimate. For exchangeable rounds that happens about once in 150 measurements.

Needs only numpy (the bench worker's environment).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CONFIDENCE = 0.95
MIN_PART = 3  # fewer rounds in a part: not judged
BATCHES = 5
T_975 = 2.776  # Student's t, 97.5 % quantile, BATCHES - 1 = 4 degrees of freedom


def bootstrap_median_ci(values: np.ndarray, resamples: int = 2000,
                        confidence: float = CONFIDENCE,
                        seed: int = 0) -> tuple[float, float, float]:
    """Median of ``values`` and its percentile-bootstrap interval (resampling the values)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("no values")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    medians = np.median(values[idx], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(medians, [alpha, 1 - alpha])
    return float(np.median(values)), float(low), float(high)


@dataclass(frozen=True)
class Estimate:
    """A speed-up (ratio scale) with its interval, and how the ratio moved between parts."""

    speedup: float
    ci_low: float
    ci_high: float
    drift: float = 1.0  # last part's median / first part's
    drifted: bool = False  # two parts' intervals were disjoint
    parts: list[float] = field(default_factory=list)  # each part's median (ratio scale)

    def as_tuple(self) -> tuple[float, float, float]:
        return self.speedup, self.ci_low, self.ci_high


def estimate(parts: list[list[float]], resamples: int = 2000, seed: int = 0) -> Estimate:
    """The estimate over all rounds of ``parts`` (lists of per-round log ratios, in time order).

    One part is split into its two halves; several (sessions) are judged as given."""
    rounds = [v for part in parts for v in part]
    mid, low, high = bootstrap_median_ci(np.asarray(rounds), resamples, seed=seed)
    spread = batch_halfwidth(rounds)
    low, high = max(min(low, mid - spread), min(rounds)), min(max(high, mid + spread), max(rounds))
    if len(parts) == 1:
        half = len(rounds) // 2
        parts = [rounds[:half], rounds[-half:]] if half else [rounds]
    judged = [p for p in parts if len(p) >= MIN_PART]
    part_resamples = max(200, resamples // 4)
    cis = [bootstrap_median_ci(np.asarray(p), part_resamples, seed=seed + i)
           for i, p in enumerate(judged)]
    drifted = any(a[2] < b[1] or b[2] < a[1] for i, a in enumerate(cis) for b in cis[i + 1:])
    medians = [c[0] for c in cis]
    if drifted:
        low, high = min(low, *medians), max(high, *medians)
    drift = float(np.exp(medians[-1] - medians[0])) if len(medians) > 1 else 1.0
    return Estimate(float(np.exp(mid)), float(np.exp(low)), float(np.exp(high)), drift, drifted,
                    [float(np.exp(m)) for m in medians])


def batch_halfwidth(rounds: list[float]) -> float:
    """Half-width of the t-interval over the medians of ``BATCHES`` consecutive batches (0 with
    fewer than two rounds per batch)."""
    size = len(rounds) // BATCHES
    if size < 2:
        return 0.0
    medians = np.median(np.asarray(rounds[:size * BATCHES]).reshape(BATCHES, size), axis=1)
    return float(T_975 * medians.std(ddof=1) / np.sqrt(BATCHES))
