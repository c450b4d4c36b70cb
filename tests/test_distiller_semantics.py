"""Distiller's semantics where the suite once differed (issue 13): masks of several pruners on
one weight combine, level pruning masks every |w| at or below its threshold, lr policies step
with the epoch number, temporary (per mini-batch) masks, BN folding, regularizer thresholding.

Small and fast: random-init ResNet-20 or SmallCNN, 16 training images, one thread.
"""

import pytest
import torch

from benchsuite.data import Splits
from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler
from benchsuite.prune.elementwise import magnitude_mask
from benchsuite.prune.masks import effective, get_mask
from benchsuite.prune.training import train
from benchsuite.recipe import parse_recipe

X = torch.zeros(1, 1, 32, 32)
W = "layer3.1.conv2.weight"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(digits):
    return Splits("d", digits.x_train[:16], digits.y_train[:16], digits.x_test[:16],
                  digits.y_test[:16], 10), (digits.x_train[16:32], digits.y_train[16:32])


def bind(text, tiny, model="resnet20"):
    torch.manual_seed(0)
    m = build_model(model, 10, 1)
    return m, CompressionScheduler(parse_recipe(text, "t.yaml"), m, X, calibration=tiny[1])


def zero_filters(m, name):
    return int((effective(m, name).flatten(1).abs().sum(1) == 0).sum())


def test_level_pruner_after_filter_pruner_keeps_the_zero_filters(tiny):
    """The shape of Distiller's resnet20_filters.schedule_agp_4: filters first, then a level
    pruner on the same weight. The level pruner's mask used to replace the filter mask, zeroing
    exactly round(s*n) weights, and revived the pruned filters."""
    text = f"""
version: 1
pruners:
  filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [{W}]
  fine:
    class: SparsityLevelParameterPruner
    levels: {{{W}: 0.1}}
policies:
  - pruner: {{instance_name: filters}}
    epochs: [0]
  - pruner: {{instance_name: fine}}
    epochs: [1]
"""
    m, sched = bind(text, tiny)
    train(m, tiny[0], 2, 0.01, 0, hooks=sched)
    assert zero_filters(m, W) == 32
    # and the level pruner added nothing below the 50% already zero: 10% < 50%
    assert float((effective(m, W) == 0).float().mean()) == pytest.approx(0.5, abs=1e-3)


def test_agp_after_filters_combines_both_masks(tiny):
    text = f"""
version: 1
pruners:
  filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.25
    weights: [{W}]
  agp:
    class: AutomatedGradualPruner
    initial_sparsity: 0.3
    final_sparsity: 0.6
    weights: [{W}]
policies:
  - pruner: {{instance_name: filters}}
    epochs: [0]
  - pruner: {{instance_name: agp}}
    starting_epoch: 1
    ending_epoch: 3
"""
    m, sched = bind(text, tiny)
    train(m, tiny[0], 3, 0.01, 0, hooks=sched)
    assert zero_filters(m, W) >= 16  # the filter pruner's 16 stay
    assert float((effective(m, W) == 0).float().mean()) >= 0.6 - 1e-3


def test_level_mask_masks_everything_at_or_below_the_threshold():
    w = torch.tensor([0.0, 0.0, 0.0, 0.5, 0.2, -0.3, 0.0, 0.9])
    # k = int(0.25 * 8) = 2 -> threshold 0, and all four zeros are masked (Distiller's rule)
    assert magnitude_mask(w, 0.25).tolist() == [0, 0, 0, 1, 1, 1, 0, 1]
    assert magnitude_mask(w, 0.75).tolist() == [0, 0, 0, 1, 0, 0, 0, 1]
    assert magnitude_mask(w, 0.0).tolist() == [1] * 8


def lr_recipe(cls_and_args: str, start: int) -> str:
    return f"""
version: 1
lr_schedulers:
  lr:
    {cls_and_args}
policies:
  - lr_scheduler: {{instance_name: lr}}
    starting_epoch: {start}
    ending_epoch: 200
"""


@pytest.mark.parametrize("body,start,expected", [
    # Distiller's StepLR(step_size=2) active from epoch 2 decays after epoch 2 (lr(3) =
    # 0.1^(3 // 2)) and after epoch 3 (lr(4)), not two steps after its start
    ("class: StepLR\n    step_size: 2\n    gamma: 0.1", 2, [0.01, 0.01, 0.001, 0.0001, 0.0001]),
    ("class: PolynomialLR\n    T_max: 10\n    power: 2", 0,
     [0.01 * 0.9 ** 2, 0.01 * 0.8 ** 2, 0.01 * 0.7 ** 2, 0.01 * 0.6 ** 2, 0.01 * 0.5 ** 2]),
    ("class: MultiStepMultiGammaLR\n    milestones: [2, 4]\n    gammas: [0.5, 0.1]", 0,
     [0.01, 0.005, 0.005, 0.0005, 0.0005]),
])
def test_lr_policies_step_with_the_epoch_number(body, start, expected, tiny):
    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    sched = CompressionScheduler(parse_recipe(lr_recipe(body, start), "t.yaml"), m, X)
    logs = train(m, tiny[0], 5, 0.01, 0, hooks=sched)
    assert [e.lr for e in logs] == pytest.approx(expected)


LASSO = """
version: 1
regularizers:
  r:
    class: GroupLassoRegularizer
    reg_regims: {{fc.weight: [0.01, Rows]}}
    threshold_criteria: Mean_Abs
policies:
  - regularizer:
      instance_name: r
      args: {{keep_mask: {keep}}}
    starting_epoch: 0
    ending_epoch: 2
"""


@pytest.mark.parametrize("keep", [False, True])
def test_regularizer_threshold_is_temporary_unless_keep_mask(keep, tiny):
    """Thresholding zeroes the weak groups (here fc output rows, Distiller's `Rows`) at every
    mini-batch end; without keep_mask they are not masked and train again, with it the mask set
    on the last mini-batch stays."""
    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    sched = CompressionScheduler(parse_recipe(LASSO.format(keep=str(keep).lower()), "t.yaml"),
                                 m, X)
    with torch.no_grad():
        m.fc.weight[:5] *= 1e-4
    sched.on_minibatch_end(0, 0, 2)
    assert (m.fc.weight[:5] == 0).all()
    assert get_mask(m, "fc.weight") is None  # not a mask: a zeroing
    sched.on_minibatch_end(1, 0, 2)  # not yet the last mini-batch of the last epoch
    assert get_mask(m, "fc.weight") is None
    sched.on_minibatch_end(1, 1, 2)
    mask = get_mask(m, "fc.weight")
    if keep:
        assert mask is not None and (mask[:5] == 0).all() and (mask[5:] == 1).all()
    else:
        assert mask is None
    # after training on, the zeroed filters come back only without keep_mask
    train(m, tiny[0], 1, 0.05, 0)
    revived = (effective(m, "fc.weight")[:5].flatten(1).abs().sum(1) > 0).any()
    assert bool(revived) != keep


DROP_FILTER = """
version: 1
pruners:
  drop:
    class: BernoulliFilterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [conv2.weight]
policies:
  - pruner:
      instance_name: drop
      args:
        mini_batch_pruning_frequency: 1
        discard_masks_at_minibatch_end: true
        mask_on_forward_only: true
        use_double_copies: true
        mask_gradients: true
    starting_epoch: 0
    ending_epoch: 2
"""


def test_drop_filter_masks_are_temporary_and_mask_gradients(tiny):
    """Distiller's DropFilter recipe shape: random filters are dropped for one mini-batch (no
    gradient reaches them) and come back, unchanged, at its end."""
    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    sched = CompressionScheduler(parse_recipe(DROP_FILTER, "t.yaml"), m, X)
    before = m.conv2.weight.detach().clone()
    sched.on_epoch_begin(0, torch.optim.SGD(m.parameters(), lr=0.1))
    dropped = effective(m, "conv2.weight").flatten(1).abs().sum(1) == 0
    assert 0 < int(dropped.sum()) < 32
    x, y = tiny[0].x_train[:8], tiny[0].y_train[:8]
    torch.nn.functional.cross_entropy(m(x), y).backward()
    grad = m.conv2.weight_orig.grad
    assert (grad[dropped] == 0).all() and grad[~dropped].abs().sum() > 0
    sched.on_minibatch_end(0, 0, 1)
    assert get_mask(m, "conv2.weight") is None
    assert torch.equal(m.conv2.weight.detach(), before)
    # over a run the drop never becomes permanent
    train(m, tiny[0], 2, 0.01, 0, hooks=sched)
    assert get_mask(m, "conv2.weight") is None
    assert (m.conv2.weight.detach().flatten(1).abs().sum(1) > 0).all()


def test_mask_gradients_needs_mask_on_forward_only():
    from benchsuite.recipe import RecipeError

    text = DROP_FILTER.replace("        mask_on_forward_only: true\n", "")
    with pytest.raises(RecipeError, match=r"policies\[0\]\.pruner\.args\.mask_gradients: needs "
                                          r"mask_on_forward_only: true"):
        parse_recipe(text, "t.yaml")


def test_fold_batchnorm_ranks_folded_weights():
    """Filters with a large |w| but a tiny BN gamma are the weak ones once BN is folded."""
    text = """
version: 1
pruners:
  f:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [conv1.weight]
policies:
  - pruner: {{instance_name: f, args: {{fold_batchnorm: {fold}}}}}
    epochs: [0]
"""
    kept = {}
    for fold in (False, True):
        torch.manual_seed(0)
        m = build_model("small_cnn", 10, 1)
        with torch.no_grad():
            m.conv1.weight[:8] *= 10  # the 8 largest filters ...
            m.bn1.weight[:8] = 1e-3   # ... scaled away by their BN
        before = m.conv1.weight.detach().clone()
        sched = CompressionScheduler(parse_recipe(text.format(fold=str(fold).lower()), "t"),
                                     m, X)
        sched.on_epoch_begin(0, torch.optim.SGD(m.parameters(), lr=0.1))
        alive = effective(m, "conv1.weight").flatten(1).abs().sum(1) > 0
        kept[fold] = alive.nonzero().flatten().tolist()
        assert torch.equal(m.conv1.weight_orig.detach(), before)  # trained values untouched
    assert kept[False] == list(range(8))
    assert kept[True] == list(range(8, 16))


def test_skip_first_minibatch_and_policy_levels():
    text = """
version: 1
pruners:
  lvl:
    class: SparsityLevelParameterPruner
    levels: {'*': 0.1}
policies:
  - pruner:
      instance_name: lvl
      args: {skip_first_minibatch: true, levels: {conv2.weight: 0.5}}
    epochs: [0]
"""
    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    sched = CompressionScheduler(parse_recipe(text, "t.yaml"), m, X)
    sched.on_epoch_begin(0, torch.optim.SGD(m.parameters(), lr=0.1))
    assert get_mask(m, "conv2.weight") is None  # skipped at the epoch's start
    sched.on_minibatch_begin(0, 1, 4)  # ... done at global mini-batch 1
    assert float((effective(m, "conv2.weight") == 0).float().mean()) == pytest.approx(0.5, 0.01)
    assert get_mask(m, "conv1.weight") is None  # the policy's levels replace the pruner's


def test_policy_levels_need_a_level_pruner():
    from benchsuite.recipe import RecipeError

    text = DROP_FILTER.replace("        mini_batch_pruning_frequency: 1\n",
                               "        levels: {conv2.weight: 0.5}\n")
    m = build_model("small_cnn", 10, 1)
    with pytest.raises(RecipeError, match=r"t.yaml: policies\[0\]\.pruner\.args\.levels: only a "
                                          r"SparsityLevelParameterPruner has levels; 'drop' is "
                                          r"a BernoulliFilterPruner"):
        CompressionScheduler(parse_recipe(text, "t.yaml"), m, X)


def test_thinning_does_not_remove_temporarily_dropped_filters():
    text = DROP_FILTER.replace("policies:", """extensions:
  thin: {class: FilterRemover}
policies:""") + """  - extension: {instance_name: thin}
    epochs: [0]
"""
    torch.manual_seed(0)
    m = build_model("small_cnn", 10, 1)
    sched = CompressionScheduler(parse_recipe(text, "t.yaml"), m, X)
    sched.on_epoch_begin(0, torch.optim.SGD(m.parameters(), lr=0.1))
    sched.on_minibatch_end(0, 0, 1)
    assert m.conv2.weight.shape[0] == 32 and not sched.thinned
