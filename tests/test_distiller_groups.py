"""Distiller's group types for Group Lasso and thresholding (`prune/groups.py`), checked against
explicit loops over the groups."""

import pytest
import torch

from benchsuite.prune.groups import GROUP_TYPES, lasso, threshold_keep

torch.manual_seed(0)
CONV = torch.randn(4, 3, 2, 2)
FC = torch.randn(5, 6)


def norms_conv(kind):
    w = CONV
    if kind == "Filters":
        return sum(w[i].norm() for i in range(4))
    if kind == "Channels":
        return sum(w[:, j].norm() for j in range(3))
    if kind == "2D":
        return sum(w[i, j].norm() for i in range(4) for j in range(3))
    return w.norm()  # 4D


@pytest.mark.parametrize("kind,expected", [
    ("Filters", norms_conv("Filters")), ("3D", norms_conv("Filters")),
    ("Channels", norms_conv("Channels")), ("2D", norms_conv("2D")), ("4D", norms_conv("4D")),
    ("Channels+4D", norms_conv("Channels") + norms_conv("4D")),
])
def test_conv_group_lasso(kind, expected):
    assert float(lasso(CONV, kind)) == pytest.approx(float(expected), rel=1e-5)


def test_fc_rows_are_output_rows_as_in_distiller():
    rows = sum(FC[i].norm() for i in range(5))  # weight[i, :]: one output feature
    cols = sum(FC[:, j].norm() for j in range(6))
    assert float(lasso(FC, "Rows")) == pytest.approx(float(rows), rel=1e-5)
    assert float(lasso(FC, "Cols")) == pytest.approx(float(cols), rel=1e-5)
    assert float(lasso(FC, "Rows+Cols")) == pytest.approx(float(rows + cols), rel=1e-5)


def test_threshold_keep_per_group_type():
    w = torch.ones(4, 3, 2, 2)
    w[1] = 0.001            # filter 1 weak
    w[:, 2] = 0.001         # channel 2 weak
    keep = threshold_keep(w, "Filters", 0.01, "Mean_Abs")
    assert keep[1].sum() == 0 and keep[0].sum() == 12
    keep = threshold_keep(w, "Channels", 0.01, "Mean_Abs")
    assert keep[:, 2].sum() == 0 and keep[:, :2].sum() == 32
    keep = threshold_keep(w, "2D", 0.01, "Max")  # kernels: filter 1's and channel 2's
    assert keep.sum() == 4 * (3 * 4 - 3 - 4 + 1)
    assert threshold_keep(w, "4D", 0.01, "Mean_Abs").sum() == w.numel()
    fc = torch.ones(5, 6)
    fc[0] = 0.0
    fc[:, 5] = 0.0
    keep = threshold_keep(fc, "Rows+Cols", 0.01, "Max")
    assert keep[0].sum() == 0 and keep[:, 5].sum() == 0 and keep.sum() == 4 * 5


def test_every_type_has_its_weight_rank():
    for kind, (rank, _) in GROUP_TYPES.items():
        w = CONV if rank == 4 else FC
        assert lasso(w, kind).dim() == 0
