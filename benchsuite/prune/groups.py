"""Distiller's weight groups (structures) for regularizers and thresholding.

A group type partitions a weight tensor into groups; each partition is named by the dims that
index one group (the other dims are the group's elements):

| type | weight | one group is |
|---|---|---|
| `Filters` / `3D` | conv 4D | one output filter (dim 0) |
| `Channels` | conv 4D | one input channel across all filters (dim 1) |
| `2D` | conv 4D | one kernel (dims 0, 1) |
| `4D` | conv 4D | the whole tensor |
| `Rows` | fc 2D | one output row, weight[i, :] (Distiller's meaning) |
| `Cols` | fc 2D | one input column, weight[:, j] |
| `Rows+Cols` / `Cols+Rows` | fc 2D | both partitions (two lasso terms; masks combine) |
| `Channels+4D` / `4D+Channels` | conv 4D | both partitions |
"""

from __future__ import annotations

import math

import torch

# group type -> (weight rank, partitions); a partition = the dims indexing one group
GROUP_TYPES: dict[str, tuple[int, tuple[tuple[int, ...], ...]]] = {
    "Filters": (4, ((0,),)),
    "3D": (4, ((0,),)),
    "Channels": (4, ((1,),)),
    "2D": (4, ((0, 1),)),
    "4D": (4, ((),)),
    "Rows": (2, ((0,),)),
    "Cols": (2, ((1,),)),
    "Rows+Cols": (2, ((0,), (1,))),
    "Cols+Rows": (2, ((0,), (1,))),
    "Channels+4D": (4, ((1,), ())),
    "4D+Channels": (4, ((1,), ())),
}


def grouped(weight: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """The weight as a (groups, elements) matrix for one partition."""
    rest = [d for d in range(weight.dim()) if d not in dims]
    n = math.prod(weight.shape[d] for d in dims)
    return weight.permute(*dims, *rest).reshape(n, -1)


def expand(keep: torch.Tensor, weight: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """A per-group keep vector of one partition, broadcast to the weight's shape."""
    shape = [weight.shape[d] if d in dims else 1 for d in range(weight.dim())]
    return keep.reshape(shape).expand_as(weight)


def lasso(weight: torch.Tensor, group_type: str) -> torch.Tensor:
    """Sum over every partition of the sum of its groups' L2 norms (Wen et al. 2016)."""
    _, partitions = GROUP_TYPES[group_type]
    return sum(grouped(weight, dims).norm(dim=1).sum() for dims in partitions)


def threshold_keep(weight: torch.Tensor, group_type: str, threshold: float,
                   criterion: str) -> torch.Tensor:
    """1 where the element's groups all have a statistic above `threshold` (Distiller: groups
    whose mean |w| (`Mean_Abs`) or max |w| (`Max`) is at or below the threshold are zeroed)."""
    _, partitions = GROUP_TYPES[group_type]
    keep = torch.ones_like(weight, dtype=torch.float32)
    for dims in partitions:
        a = grouped(weight.detach().abs(), dims)
        stat = a.mean(1) if criterion == "Mean_Abs" else a.amax(1)
        keep = keep * expand((stat > threshold).float(), weight, dims)
    return keep


def channel_norms(weight: torch.Tensor) -> torch.Tensor:
    """L2 norm of each input channel of a conv weight."""
    return grouped(weight, (1,)).norm(dim=1)
