"""Pareto front of (latency, Top-1): the cases no other case beats on both."""

from __future__ import annotations

import pandas as pd


def pareto_front(frame: pd.DataFrame, latency: str = "latency_median_us",
                 accuracy: str = "top1") -> pd.Series:
    """Boolean mask: True where no other row has latency <= and Top-1 >= with one strict."""
    lat = frame[latency].to_numpy()
    acc = frame[accuracy].to_numpy()
    mask = []
    for i in range(len(frame)):
        dominated = ((lat <= lat[i]) & (acc >= acc[i]) & ((lat < lat[i]) | (acc > acc[i]))).any()
        mask.append(not dominated)
    return pd.Series(mask, index=frame.index, name="pareto")
