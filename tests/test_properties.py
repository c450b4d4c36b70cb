"""Hypothesis property tests: the AGP schedule, element-wise targets, masks under optimizer steps,
and thinning of exactly-zero channels."""

import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from benchsuite.models import build_model
from benchsuite.prune.elementwise import (
    AutomatedGradualPruner,
    MagnitudeParameterPruner,
    SensitivityPruner,
    SparsityLevelParameterPruner,
    SplicingPruner,
)
from benchsuite.prune.footprint import model_stats
from benchsuite.prune.graph import thin
from benchsuite.prune.levels import agp_target
from benchsuite.prune.masks import effective, set_mask
from benchsuite.prune.pruner import PruneContext
from benchsuite.recipe import Component, Policy

FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


pytestmark = pytest.mark.usefixtures("one_thread")


@given(initial=st.floats(0, 0.5), final=st.floats(0.5, 0.99), start=st.integers(0, 20),
       length=st.integers(1, 40), freq=st.integers(1, 6))
def test_agp_schedule_is_monotone_and_reaches_final_at_last_scheduled_epoch(
        initial, final, start, length, freq):
    end = start + length
    policy = Policy("pruner", "p", 0, starting_epoch=start, ending_epoch=end, frequency=freq)
    epochs = policy.scheduled_epochs()
    targets = [agp_target(initial, final, start, end, freq, e) for e in epochs]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(targets))
    assert targets[-1] == pytest.approx(final)
    assert targets[0] == pytest.approx(initial if len(epochs) > 1 else final)
    assert all(min(initial, final) - 1e-12 <= t <= final + 1e-12 for t in targets)


def _layer(seed: int, shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(shape[1], shape[0], shape[2], bias=False))
    nn.init.normal_(model[0].weight)
    return model


SHAPES = st.sampled_from([(64, 32, 3), (128, 16, 3), (32, 64, 1), (96, 48, 3)])


@FAST
@given(seed=st.integers(0, 10_000), shape=SHAPES, target=st.floats(0.0, 0.95),
       kind=st.sampled_from(["level", "magnitude", "sensitivity", "splicing", "agp"]))
def test_every_elementwise_pruner_reaches_its_target(seed, shape, target, kind):
    model = _layer(seed, shape)
    w = model[0].weight.detach()
    quantile = float(w.abs().flatten().kthvalue(max(1, round(target * w.numel()))).values)
    name = "0.weight"
    policy = Policy("pruner", "p", 0, epochs=[0])
    if kind == "level":
        pruner = SparsityLevelParameterPruner(
            Component("p", kind, {"levels": {"*": target}}, "pruners"), model)
    elif kind == "magnitude":
        pruner = MagnitudeParameterPruner(
            Component("p", kind, {"thresholds": {name: quantile}}, "pruners"), model)
    elif kind == "sensitivity":
        pruner = SensitivityPruner(Component(
            "p", kind, {"sensitivities": {"*": quantile / float(w.std())}}, "pruners"), model)
    elif kind == "splicing":  # from no mask: zeroed below t x low (t = mean|w| here)
        args = {"sensitivities": {"*": 0.0}, "low_thresh_mult": quantile / float(w.abs().mean()),
                "hi_thresh_mult": 1e9, "sensitivity_multiplier": 0.0}
        pruner = SplicingPruner(Component("p", kind, args, "pruners"), model)
    else:
        args = {"initial_sparsity": target / 3, "final_sparsity": target, "weights": [name]}
        pruner = AutomatedGradualPruner(Component("p", kind, args, "pruners"), model)
        policy = Policy("pruner", "p", 0, starting_epoch=0, ending_epoch=4)
    for epoch in policy.scheduled_epochs():
        pruner.apply(PruneContext(model, epoch, policy))
    achieved = float((effective(model, name) == 0).float().mean())
    assert abs(achieved - target) <= 0.01


@FAST
@given(seed=st.integers(0, 10_000), sparsity=st.floats(0.05, 0.95), steps=st.integers(1, 5),
       straight_through=st.booleans(), lr=st.floats(0.001, 1.0))
def test_masks_stay_applied_after_optimizer_steps(seed, sparsity, steps, straight_through, lr):
    torch.manual_seed(seed)
    model = build_model("small_cnn", 10, 1)
    names = ["conv1.weight", "conv2.weight", "fc.weight"]
    masks = {n: (torch.rand_like(model.get_parameter(n)) >= sparsity).float() for n in names}
    for n, m in masks.items():
        set_mask(model, n, m, straight_through=straight_through)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    for _ in range(steps):
        x, y = torch.randn(4, 1, 16, 16), torch.randint(0, 10, (4,))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model(torch.randn(1, 1, 16, 16))  # the forward pass sees the masked weights
    for n, m in masks.items():
        module = model.get_submodule(n.rpartition(".")[0])
        assert torch.all(module.weight[m == 0] == 0)
        assert torch.all(effective(model, n)[m == 0] == 0)


BLOCK_CONVS = [f"layer{s}.{b}.conv1" for s in (1, 2, 3) for b in range(3)]


@settings(max_examples=6, deadline=None)
@given(data=st.data(), seed=st.integers(0, 1000))
def test_thinning_exactly_zero_channels_keeps_output_and_shrinks(data, seed):
    torch.manual_seed(seed)
    model = build_model("resnet20", 10, 1).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    chosen = data.draw(st.lists(st.sampled_from(BLOCK_CONVS), min_size=1, max_size=4,
                                unique=True))
    for conv in chosen:
        n = model.get_submodule(conv).out_channels
        drop = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 1,
                                  unique=True))
        mask = torch.ones_like(model.get_submodule(conv).weight)
        mask[drop] = 0
        set_mask(model, conv + ".weight", mask)
        bn = model.get_submodule(conv.replace("conv1", "bn1"))
        with torch.no_grad():
            bn.weight[drop] = 0
            bn.bias[drop] = 0
    x = torch.randn(4, 1, 32, 32)
    example = torch.zeros(1, 1, 32, 32)
    before_out = model(x)
    before = model_stats(model, example)
    removed = thin(model, example, "Filters")
    model.eval()
    assert set(removed) == set(chosen)
    assert torch.allclose(model(x), before_out, atol=1e-4, rtol=1e-4)
    after = model_stats(model, example)
    assert after["params"] < before["params"] and after["macs"] < before["macs"]
