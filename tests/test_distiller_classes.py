"""Distiller classes and options added for conformance (issue 13, item 7): our own recipes of
the shapes Distiller's examples use."""

import pytest
import torch

from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler
from benchsuite.prune.kernel_blocks import block_mask
from benchsuite.prune.masks import effective
from benchsuite.recipe import RecipeError, parse_recipe

X = torch.zeros(1, 1, 32, 32)
INNER = [f"layer{s}.{b}.conv1.weight" for s in (1, 2, 3) for b in range(3)]

pytestmark = pytest.mark.usefixtures("one_thread")


def run_epoch0(text, model="resnet20", calibration=None):
    torch.manual_seed(0)
    m = build_model(model, 10, 1)
    sched = CompressionScheduler(parse_recipe(text, "t.yaml"), m, X, calibration=calibration)
    sched.on_epoch_begin(0, torch.optim.SGD(m.parameters(), lr=0.1))
    return m, sched


def dead_filters(m, name):
    return int((effective(m, name).flatten(1).abs().sum(1) == 0).sum())


def test_random_level_structure_pruner_draws_levels_in_range():
    text = f"""
version: 1
pruners:
  r:
    class: RandomLevelStructureParameterPruner
    sparsity_range: [0.25, 0.5]
    group_type: Filters
    weights: {INNER}
policies:
  - pruner: {{instance_name: r}}
    epochs: [0]
"""
    m, _ = run_epoch0(text)
    counts = [dead_filters(m, n) / effective(m, n).shape[0] for n in INNER]
    assert all(0.25 - 1e-9 <= c <= 0.5 for c in counts)
    assert len(set(counts)) > 1  # one draw per weight, not one for all
    m2, _ = run_epoch0(text)
    assert counts == [dead_filters(m2, n) / effective(m2, n).shape[0] for n in INNER]


def test_random_level_range_is_checked():
    text = """
version: 1
pruners:
  r: {class: RandomLevelStructureParameterPruner, sparsity_range: [0.2], group_type: Filters,
      weights: [conv1.weight]}
"""
    with pytest.raises(RecipeError, match=r"pruners\.r\.sparsity_range: must be \[low, high\]"):
        parse_recipe(text, "t.yaml")


def test_3d_is_filters():
    body = """
version: 1
pruners:
  f:
    class: L1RankedStructureParameterPruner
    group_type: {g}
    desired_sparsity: 0.5
    weights: [layer2.1.conv1.weight]
policies:
  - pruner: {{instance_name: f}}
    epochs: [0]
"""
    a, _ = run_epoch0(body.format(g="3D"))
    b, _ = run_epoch0(body.format(g="Filters"))
    assert dead_filters(a, "layer2.1.conv1.weight") == 16
    assert torch.equal(effective(a, "layer2.1.conv1.weight"), effective(b, "layer2.1.conv1.weight"))


def test_block_mask_depth_blocks():
    w = torch.ones(2, 8, 1, 1)
    w[0, :4] = 0.01  # filter 0's first 4 channels: one weak block of depth 4
    mask = block_mask(w, 0.25, [1, 4, 1, 1])  # 4 blocks, 1 masked
    assert mask[0, :4].sum() == 0 and mask.sum() == 12


def test_blocks_pruner_with_kwargs():
    text = """
version: 1
pruners:
  b:
    class: L1RankedStructureParameterPruner_AGP
    initial_sparsity: 0.1
    final_sparsity: 0.5
    group_type: Blocks
    kwargs: {block_shape: [1, 8, 1, 1]}
    weights: [layer2.1.conv2.weight]
policies:
  - pruner: {instance_name: b}
    starting_epoch: 0
    ending_epoch: 3
"""
    m, _ = run_epoch0(text)
    w = effective(m, "layer2.1.conv2.weight")
    blocks = w.reshape(-1, 8, 9).abs().sum(1)  # 32*32/8 block rows x 9 kernel positions
    assert float((blocks == 0).float().mean()) == pytest.approx(0.1, abs=0.01)
    # every block is all-zero or all-non-zero
    zeros = (w.reshape(-1, 8, 9) == 0).sum(1)
    assert set(zeros.unique().tolist()) <= {0, 8}


def test_blocks_need_a_block_shape():
    text = """
version: 1
pruners:
  b: {class: L1RankedStructureParameterPruner, desired_sparsity: 0.5, group_type: Blocks,
      weights: [layer2.1.conv2.weight]}
"""
    m = build_model("resnet20", 10, 1)
    with pytest.raises(RecipeError, match=r"t.yaml: pruners\.b\.kwargs\.block_shape: Blocks "
                                          r"needs kwargs: \{block_shape"):
        CompressionScheduler(parse_recipe(text, "t.yaml"), m, X)


def test_activation_mean_ranks_a_silent_filter_lowest():
    text = """
version: 1
pruners:
  a:
    class: ActivationMeanRankedFilterPruner
    group_type: Filters
    desired_sparsity: 0.1
    weights: [conv2.weight]
policies:
  - pruner: {instance_name: a}
    epochs: [0]
"""
    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    with torch.no_grad():
        m.bn2.bias[[3, 7, 11]] = -100.0  # these filters' ReLU outputs are always zero
    calib = (torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,)))
    sched = CompressionScheduler(parse_recipe(text, "t.yaml"), m, X, calibration=calib)
    sched.on_epoch_begin(0, torch.optim.SGD(m.parameters(), lr=0.1))
    dead = (effective(m, "conv2.weight").flatten(1).abs().sum(1) == 0).nonzero().flatten()
    assert dead.tolist() == [3, 7, 11]  # int(0.1 * 32) = 3


def test_group_variance_regularizer_loss():
    text = """
version: 1
regularizers:
  v: {class: GroupVarianceRegularizer, reg_regims: {conv2.weight: [0.5, Channels]}}
policies:
  - regularizer: {instance_name: v}
    epochs: [0]
"""
    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    sched = CompressionScheduler(parse_recipe(text, "t.yaml"), m, X)
    w = m.conv2.weight.detach()
    norms = torch.stack([w[:, c].norm() for c in range(w.shape[1])])
    got = sched.before_backward_pass(0, 0, torch.tensor(0.0))
    assert float(got.detach()) == pytest.approx(0.5 / float(norms.var()), rel=1e-4)
    with pytest.raises(RecipeError, match=r"reg_regims\.conv2\.weight\[1\]: must be one of "
                                          r"Channels, got 'Filters'"):
        CompressionScheduler(parse_recipe(text.replace("Channels", "Filters"), "t.yaml"), m, X)


KD = """
version: 1
knowledge_distillation: {temperature: 4.0, distill_weight: 0.7, student_weight: 0.3}
pruners:
  f: {class: L1RankedStructureParameterPruner, group_type: Filters, desired_sparsity: 0.5,
      weights: [conv2.weight]}
policies:
  - pruner: {instance_name: f}
    epochs: [0]
"""


def test_knowledge_distillation_from_the_dense_model(digits):
    import copy

    import torch.nn.functional as F

    from benchsuite.data import Splits
    from benchsuite.prune.training import train

    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    dense = copy.deepcopy(m).eval()
    sched = CompressionScheduler(parse_recipe(KD, "t.yaml"), m, X)
    tiny = Splits("d", digits.x_train[:16], digits.y_train[:16], digits.x_test[:16],
                  digits.y_test[:16], 10)
    train(m, tiny, 2, 0.05, 0, hooks=sched)  # the student is pruned and trained ...
    for (n, p), q in zip(sched.distillation.teacher.named_parameters(), dense.parameters(),
                         strict=True):
        assert torch.equal(p, q), n  # ... the teacher stays the dense model
    x, y = tiny.x_train[:8], tiny.y_train[:8]
    m.eval()
    logits = m(x)
    ce = F.cross_entropy(logits, y)
    with torch.no_grad():
        t = dense(x)
    kl = F.kl_div(F.log_softmax(logits / 4, 1), F.softmax(t / 4, 1), reduction="batchmean")
    expected = 0.3 * ce + 0.7 * 16 * kl
    got = sched.on_forward(x, logits, ce).detach()
    assert float(got) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float(kl.detach()) > 0


def test_knowledge_distillation_is_validated():
    with pytest.raises(RecipeError, match=r"t.yaml: knowledge_distillation.temperature: must be "
                                          r">= 1e-06, got 0"):
        parse_recipe(KD.replace("temperature: 4.0", "temperature: 0"), "t.yaml")
    with pytest.raises(RecipeError, match=r"knowledge_distillation.teacher: must be one of dense"):
        parse_recipe(KD.replace("{temperature", "{teacher: resnet110, temperature"), "t.yaml")
