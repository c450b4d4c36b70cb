"""Every pruner class on ResNet-20: it runs, reaches its target, and the model still trains.

Kept cheap: random-init ResNet-20, 16 training images (one mini-batch per epoch), a 16-image
calibration batch for the data-driven criteria, one intra-op thread.
"""

import pytest
import torch

from benchsuite.data import Splits
from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler, model_stats
from benchsuite.prune.masks import effective, get_mask
from benchsuite.prune.names import prunable_weights
from benchsuite.prune.registry import PRUNER_CLASSES, STRUCTURED
from benchsuite.prune.training import train
from benchsuite.recipe import parse_recipe

X = torch.zeros(1, 1, 32, 32)
INNER = [f"layer{s}.{b}.conv1.weight" for s in (1, 2, 3) for b in range(3)]
ONE_SHOT = "epochs: [0]"
AGP_EPOCHS = "starting_epoch: 0\n    ending_epoch: 3\n    frequency: 1"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(digits):
    return Splits("d", digits.x_train[:16], digits.y_train[:16], digits.x_test[:16],
                  digits.y_test[:16], 10), (digits.x_train[16:32], digits.y_train[16:32])


def recipe(pruner: str, when: str = ONE_SHOT, extra: str = "") -> str:
    return f"""
version: 1
pruners:
  p:
{pruner}
{extra}
policies:
  - pruner: {{instance_name: p}}
    {when}
"""


def run(text, tiny, epochs=1, model="resnet20"):
    data, calib = tiny
    torch.manual_seed(0)
    m = build_model(model, 10, 1)
    sched = CompressionScheduler(parse_recipe(text, "t.yaml"), m, X, calibration=calib)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    logs = train(m, data, epochs, 0.01, 0, hooks=sched)
    return m, sched, before, logs


def assert_trains(m, before, logs):
    """Losses finite, the output finite, and weights that are not masked moved."""
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in logs)
    assert torch.isfinite(m(torch.randn(2, 1, 32, 32))).all()
    moved = 0
    for n, p in m.named_parameters():
        key = n.replace("_orig", "")
        if key in before and before[key].shape == p.shape:
            moved += int(not torch.equal(before[key], p.detach()))
    assert moved > 10


def zero_fraction(m, name, dim=0):
    w = effective(m, name).transpose(0, dim).flatten(1)
    return float((w.abs().sum(1) == 0).float().mean())


def test_registry_has_every_distiller_name():
    expected = {"SparsityLevelParameterPruner", "MagnitudeParameterPruner", "SensitivityPruner",
                "SplicingPruner", "AutomatedGradualPruner", "BlockRemover",
                "RandomLevelStructureParameterPruner",
                "LatencyBudgetPruner",  # the suite's own (HALP / NetAdapt style), not Distiller's
                "TorchPruningUniform",  # not Distiller's: the peer baseline (tp_uniform)
                "AttentionHeadPruner"}  # not Distiller's: whole heads (vit_tiny/heads)
    expected |= set(STRUCTURED) | {f"{n}_AGP" for n in STRUCTURED}
    assert expected == set(PRUNER_CLASSES)


@pytest.mark.parametrize("name", sorted(STRUCTURED))
@pytest.mark.parametrize("gradual", [False, True], ids=["oneshot", "agp"])
def test_structured_filters(name, gradual, tiny):
    cls = name + ("_AGP" if gradual else "")
    level = ("initial_sparsity: 0.1\n    final_sparsity: 0.5" if gradual
             else "desired_sparsity: 0.5")
    body = (f"    class: {cls}\n    group_type: Filters\n    {level}\n"
            f"    weights: [{', '.join(INNER)}]")
    m, _, before, logs = run(recipe(body, AGP_EPOCHS if gradual else ONE_SHOT), tiny,
                             epochs=3 if gradual else 1)
    fractions = [zero_fraction(m, w) for w in INNER]
    if name.startswith("Bernoulli"):  # sampled: the target holds in expectation
        assert 0.3 <= sum(fractions) / len(fractions) <= 0.7
    else:
        assert fractions == [0.5] * len(INNER)
    assert_trains(m, before, logs)


@pytest.mark.parametrize("cls", ["L1RankedStructureParameterPruner",
                                 "L2RankedStructureParameterPruner"])
def test_structured_channels_and_rows(cls, tiny):
    convs = [w.replace("conv1", "conv2") for w in INNER]
    body = (f"    class: {cls}\n    group_type: Channels\n    desired_sparsity: 0.5\n"
            f"    weights: [{', '.join(convs)}]")
    rows = f"  q:\n    class: {cls}\n    group_type: Rows\n    desired_sparsity: 0.25\n" \
           "    weights: [fc.weight]"
    text = recipe(body, extra=rows) + "  - pruner: {instance_name: q}\n    epochs: [0]\n"
    m, _, before, logs = run(text, tiny)
    assert [zero_fraction(m, w, dim=1) for w in convs] == [0.5] * len(convs)
    assert zero_fraction(m, "fc.weight", dim=1) == 0.25
    assert_trains(m, before, logs)


def test_coupled_filters_are_ranked_together_and_leader(tiny):
    tied = ["layer2.0.conv2.weight", "layer2.0.downsample.0.weight", "layer2.1.conv2.weight"]
    body = (f"    class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
            f"    desired_sparsity: 0.25\n    weights: [{', '.join(tied)}]")
    m, *_ = run(recipe(body), tiny)
    masks = [get_mask(m, w).flatten(1)[:, 0] for w in [*tied, "layer2.2.conv2.weight"]]
    assert all(torch.equal(masks[0], k) for k in masks)  # the untied member is masked alike
    assert float((masks[0] == 0).float().mean()) == 0.25
    leader = body.replace("weights", "group_dependency: Leader\n    weights").replace(
        ", ".join(tied), "layer1.0.conv1.weight, layer1.1.conv1.weight")
    m, *_ = run(recipe(leader), tiny)
    assert torch.equal(get_mask(m, "layer1.0.conv1.weight").flatten(1)[:, 0],
                       get_mask(m, "layer1.1.conv1.weight").flatten(1)[:, 0])


def test_global_ranking_and_round_to(tiny):
    body = (f"    class: L1RankedStructureParameterPruner\n    group_type: Filters\n"
            f"    desired_sparsity: 0.5\n    ranking: global\n    round_to: 4\n"
            f"    weights: [{', '.join(INNER)}]")
    m, *_ = run(recipe(body), tiny)
    kept = [round((1 - zero_fraction(m, w)) * m.get_submodule(w[:-7]).out_channels)
            for w in INNER]
    assert all(k % 4 == 0 and k > 0 for k in kept)
    total = sum(m.get_submodule(w[:-7]).out_channels for w in INNER)
    assert abs(1 - sum(kept) / total - 0.5) < 0.1
    assert len(set(kept)) > 3  # not a uniform per-layer cut


def _elementwise(cls_body, tiny, when=ONE_SHOT, epochs=1):
    return run(recipe(cls_body, when), tiny, epochs)


def test_sparsity_level_pruner(tiny):
    m, _, before, logs = _elementwise(
        "    class: SparsityLevelParameterPruner\n    levels: {'*': 0.5}", tiny)
    for w in prunable_weights(m):
        assert abs(float((effective(m, w) == 0).float().mean()) - 0.5) <= 0.01, w
    assert_trains(m, before, logs)


@pytest.mark.parametrize("cls,key,value", [
    ("MagnitudeParameterPruner", "thresholds", 0.05),
    ("SensitivityPruner", "sensitivities", 0.674),
])
def test_threshold_pruners(cls, key, value, tiny):
    torch.manual_seed(0)
    w0 = {n: p.detach().clone() for n, p in build_model("resnet20", 10, 1).named_parameters()}
    m, _, before, logs = _elementwise(f"    class: {cls}\n    {key}: {{'*': {value}}}", tiny)
    for w in prunable_weights(m):
        t = value if key == "thresholds" else value * float(w0[w].std())
        target = float((w0[w].abs() <= t).float().mean())
        assert abs(float((effective(m, w) == 0).float().mean()) - target) <= 0.01, w
    if key == "sensitivities":  # about half of a roughly Gaussian tensor
        assert abs(float((effective(m, "layer3.1.conv1.weight") == 0).float().mean()) - 0.5) < 0.03
    assert_trains(m, before, logs)


def test_agp_pruner_reaches_final_at_last_epoch(tiny):
    body = (f"    class: AutomatedGradualPruner\n    initial_sparsity: 0.1\n"
            f"    final_sparsity: 0.6\n    weights: [{', '.join(INNER)}]")
    m, _, before, logs = _elementwise(body, tiny, AGP_EPOCHS, epochs=3)
    for w in INNER:
        assert abs(float((effective(m, w) == 0).float().mean()) - 0.6) <= 0.01
    assert_trains(m, before, logs)


def test_splicing_pruner_prunes_and_splices_back(tiny):
    body = ("    class: SplicingPruner\n    low_thresh_mult: 0.9\n    hi_thresh_mult: 1.1\n"
            "    sensitivity_multiplier: 0.015\n    sensitivities: {'*': 0.05}")
    text = f"""
version: 1
pruners:
  p:
{body}
policies:
  - pruner:
      instance_name: p
      args: {{mini_batch_pruning_frequency: 1, mask_on_forward_only: true}}
    epochs: [0, 1]
"""
    m, sched, before, logs = run(text, tiny, epochs=2)
    w = "layer3.1.conv1.weight"
    assert 0.3 < float((effective(m, w) == 0).float().mean()) < 0.7
    assert_trains(m, before, logs)
    # a masked weight that grows past the high threshold is spliced back at the next mini-batch
    module = m.get_submodule("layer3.1.conv1")
    idx = (module.weight_mask.flatten() == 0).nonzero()[0, 0]
    with torch.no_grad():
        module.weight_orig.view(-1)[idx] = 10.0
    sched.on_minibatch_begin(1, 1, 4)
    assert module.weight_mask.flatten()[idx] == 1
    # straight-through masks: the gradient reaches masked weights, so they keep training
    m.train()
    torch.nn.functional.cross_entropy(m(tiny[0].x_train[:8]), tiny[0].y_train[:8]).backward()
    masked = module.weight_mask == 0
    assert module.weight_orig.grad[masked].abs().sum() > 0


@pytest.mark.parametrize("args,removed", [
    ("blocks_per_stage: 1", 3),
    ("fraction: 0.5\n    criterion: bypass_loss", 4),
    ("blocks_per_stage: 1\n    include_downsample: true", 3),
])
def test_block_remover(args, removed, tiny):
    dense = model_stats(build_model("resnet20", 10, 1), X)
    m, sched, _, logs = run(recipe(f"    class: BlockRemover\n    {args}"), tiny)
    assert len(sched.removed_blocks) == removed
    for b in sched.removed_blocks:
        assert not hasattr(m.get_submodule(b), "conv1")
    after = model_stats(m, X)
    assert after["macs"] < dense["macs"] and after["params"] < dense["params"]
    assert all(torch.isfinite(torch.tensor(e.loss)) for e in logs)
