"""Pareto front of (speed-up, Top-1): the cases no other case beats on both.

Speed-up, not absolute latency: each case's dense and pruned models are timed together in its
own run, and different cases ran under different machine states, so their absolute latencies
do not compare; their speed-ups do."""

from __future__ import annotations

import pandas as pd


def pareto_front(frame: pd.DataFrame, speedup: str = "speedup",
                 accuracy: str = "top1") -> pd.Series:
    """Boolean mask: True where no other row has speed-up >= and Top-1 >= with one strict."""
    fast = frame[speedup].to_numpy(dtype=float)
    acc = frame[accuracy].to_numpy(dtype=float)
    mask = []
    for i in range(len(frame)):
        dominated = ((fast >= fast[i]) & (acc >= acc[i])
                     & ((fast > fast[i]) | (acc > acc[i]))).any()
        mask.append(not dominated)
    return pd.Series(mask, index=frame.index, name="pareto")
