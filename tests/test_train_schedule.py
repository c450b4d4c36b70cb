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


def test_each_family_trains_with_its_own_optimizer() -> None:
    """ResNets keep SGD; the ViT gets AdamW at 1/50 of the rates, decay on matrices only."""
    import torch

    from benchsuite.models import build_model
    from benchsuite.prune.training import optimizer_for

    resnet = build_model("resnet20", num_classes=10, in_channels=1)
    opt = optimizer_for(resnet).build(resnet, 0.05)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["nesterov"]

    vit = build_model("vit_tiny", num_classes=10, in_channels=1)
    family = optimizer_for(vit)
    assert family.lr_scale == pytest.approx(0.02)
    opt = family.build(vit, 0.05 * family.lr_scale)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    names = {id(p): n for n, p in vit.named_parameters()}
    decayed = {names[id(p)] for p in opt.param_groups[0]["params"]}
    spared = {names[id(p)] for p in opt.param_groups[1]["params"]}
    assert opt.param_groups[0]["weight_decay"] == 0.05 and opt.param_groups[1]["weight_decay"] == 0
    assert "blocks.0.attn.qkv.weight" in decayed and "head.weight" in decayed
    assert {"patch_embed.cls_token", "patch_embed.pos_embed", "blocks.0.norm1.weight",
            "head.bias"} <= spared
    assert len(decayed) + len(spared) == len(names)


def test_an_unknown_optimizer_name_is_refused() -> None:
    from torch import nn

    from benchsuite.prune.training import optimizer_for

    class Odd(nn.Linear):
        train_optimizer = "lion"

    with pytest.raises(ValueError, match=r"Odd\.train_optimizer: unknown 'lion'"):
        optimizer_for(Odd(2, 2))
