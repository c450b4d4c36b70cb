"""The compression scheduler's hooks: lr schedulers by name, regularizer loss, mini-batch
pruning, optimizer rebuilt after physical changes."""

import pytest
import torch

from benchsuite.data import Splits
from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler
from benchsuite.prune.masks import effective
from benchsuite.prune.regularizers import group_norms
from benchsuite.prune.training import train
from benchsuite.recipe import parse_recipe

X = torch.zeros(1, 1, 32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(digits):
    return Splits("d", digits.x_train[:16], digits.y_train[:16], digits.x_test[:16],
                  digits.y_test[:16], 10)


def bind(text, model="small_cnn"):
    torch.manual_seed(0)
    m = build_model(model, 10, 1)
    return m, CompressionScheduler(parse_recipe(text, "t.yaml"), m, X)


@pytest.mark.parametrize("cls,args,expected", [
    ("StepLR", "step_size: 1\n    gamma: 0.5", [0.005, 0.0025, 0.00125]),
    ("MultiStepLR", "milestones: [2]\n    gamma: 0.1", [0.01, 0.001, 0.001]),
    ("ExponentialLR", "gamma: 0.9", [0.009, 0.0081, 0.00729]),
])
def test_lr_schedulers_step_by_name_at_epoch_end(cls, args, expected, tiny):
    text = f"""
version: 1
lr_schedulers:
  lr:
    class: {cls}
    {args}
policies:
  - lr_scheduler: {{instance_name: lr}}
    starting_epoch: 0
    ending_epoch: 100
"""
    m, sched = bind(text)
    assert sched.owns_lr()
    logs = train(m, tiny, 3, 0.01, 0, hooks=sched)
    assert [e.lr for e in logs] == pytest.approx(expected)


def test_lr_schedule_survives_the_optimizer_rebuilt_by_thinning(tiny):
    text = """
version: 1
pruners:
  f:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [conv1.weight]
extensions:
  thin: {class: FilterRemover}
lr_schedulers:
  lr: {class: StepLR, step_size: 1, gamma: 0.5}
policies:
  - pruner: {instance_name: f}
    epochs: [1]
  - extension: {instance_name: thin}
    epochs: [1]
  - lr_scheduler: {instance_name: lr}
    starting_epoch: 0
    ending_epoch: 100
"""
    m, sched = bind(text)
    logs = train(m, tiny, 3, 0.01, 0, hooks=sched)
    assert m.conv1.out_channels == 8
    assert [e.lr for e in logs] == pytest.approx([0.005, 0.0025, 0.00125])


@pytest.mark.parametrize("cls,regims", [
    ("L1Regularizer", "{conv2.weight: 0.01}"),
    ("GroupLassoRegularizer", "{conv2.weight: [0.01, Filters]}"),
])
def test_regularizer_loss_is_added_before_backward_while_active(cls, regims):
    text = f"""
version: 1
regularizers:
  r: {{class: {cls}, reg_regims: {regims}}}
policies:
  - regularizer: {{instance_name: r}}
    epochs: [1]
"""
    m, sched = bind(text)
    w = m.conv2.weight.detach()
    penalty = 0.01 * (w.abs().sum() if cls == "L1Regularizer" else group_norms(w, 0).sum())
    loss = torch.tensor(1.0)
    assert sched.before_backward_pass(0, 0, loss) is loss  # not active at epoch 0
    total = sched.before_backward_pass(1, 0, loss).detach()
    assert float(total) == pytest.approx(1 + float(penalty))
    out = sched.before_backward_pass(1, 0, torch.tensor(0.0, requires_grad=True))
    out.backward()
    assert m.conv2.weight.grad is not None and m.conv2.weight.grad.abs().sum() > 0


def test_group_lasso_threshold_masks_weak_filters():
    text = """
version: 1
regularizers:
  r:
    class: GroupLassoRegularizer
    reg_regims: {conv2.weight: [0.01, Filters]}
    threshold_criteria: Mean_Abs
policies:
  - regularizer: {instance_name: r}
    epochs: [0]
"""
    m, sched = bind(text)
    with torch.no_grad():
        m.conv2.weight[:5] *= 1e-4
    sched.on_minibatch_end(0, 0, 1)  # Distiller thresholds at every mini-batch end
    zero = (effective(m, "conv2.weight").flatten(1).abs().sum(1) == 0)
    assert zero[:5].all() and not zero[5:].any()


def test_mini_batch_pruning_frequency(tiny):
    """A pruner with mini_batch_pruning_frequency N re-runs every N mini-batches: splicing
    brings back a weight that grew, only at those mini-batches."""
    text = """
version: 1
pruners:
  s:
    class: SplicingPruner
    low_thresh_mult: 1.0
    hi_thresh_mult: 1.2
    sensitivities: {conv2.weight: 0.0}
policies:
  - pruner:
      instance_name: s
      args: {mini_batch_pruning_frequency: 2, mask_on_forward_only: true}
    epochs: [0]
"""
    m, sched = bind(text)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sched.on_epoch_begin(0, opt)
    idx = (m.conv2.weight_mask.flatten() == 0).nonzero()[0, 0]
    with torch.no_grad():
        m.conv2.weight_orig.view(-1)[idx] = 5.0
    sched.on_minibatch_begin(0, 1, 4)  # not a multiple of 2: nothing happens
    assert m.conv2.weight_mask.flatten()[idx] == 0
    sched.on_minibatch_begin(0, 2, 4)
    assert m.conv2.weight_mask.flatten()[idx] == 1
    sched.on_minibatch_begin(1, 2, 4)  # epoch 1: the policy is not active
