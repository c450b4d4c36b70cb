"""The latency table's calibration network (`budget_units.thinned`): the model with every known
block's inner width halved, the same ops, narrower (real torch, real torch-pruning)."""

from __future__ import annotations

import pytest
import torch

from benchsuite.latency.arch import op_specs
from benchsuite.models import build_model
from benchsuite.prune.budget_units import known_blocks, layout_of, thinned


@pytest.mark.parametrize(("name", "shape", "step"), [
    ("resnet20", (1, 32, 32), 8),
    ("mobilenetv2_035", (1, 28, 28), 8),
    ("vit_tiny", (1, 28, 28), 32),
])
def test_thinned_halves_every_inner_width_and_keeps_every_op(name, shape, step):
    torch.manual_seed(0)
    model = build_model(name, 10, shape[0]).eval()
    x = torch.randn(2, *shape)
    small = thinned(model, x[:1], step)
    dense_ops, small_ops = op_specs(model, x[:1]), op_specs(small, x[:1])
    assert list(dense_ops) == list(small_ops)  # the same ops, in the same order
    assert [o.kind for o in dense_ops.values()] == [o.kind for o in small_ops.values()]
    narrower = 0
    for b in known_blocks(model):
        lay = layout_of(model.get_submodule(b))
        if lay is None:
            continue
        before = model.get_submodule(f"{b}.{lay.inner}").weight.shape[0]
        after = small.get_submodule(f"{b}.{lay.inner}").weight.shape[0]
        reader = small.get_submodule(f"{b}.{lay.reader}").weight.shape[1]
        want = max(step, round(before / 2 / step) * step)
        assert after == reader == min(want, before)  # the reader follows
        narrower += after < before
    assert narrower >= 3
    assert small(x).shape == (2, 10) and model(x).shape == (2, 10)  # the model is untouched
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_thinned_is_none_without_a_width_to_halve():
    model = build_model("small_cnn", 10, 1).eval()
    assert thinned(model, torch.zeros(1, 1, 28, 28), 8) is None
