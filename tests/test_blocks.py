"""Depth pruning: bypassed blocks are exact, removed physically, and survive a checkpoint."""

import pytest
import torch
from torch import nn

from benchsuite.models import build_model, load_thinned
from benchsuite.models.blocks import Shortcut, bypass, residual_blocks
from benchsuite.prune import CompressionScheduler, model_stats
from benchsuite.prune.masks import clone_model, make_permanent
from benchsuite.recipe import parse_recipe

X = torch.zeros(1, 1, 32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_bypass_equals_relu_of_the_shortcut():
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1).eval()
    x = torch.randn(2, 1, 32, 32)
    for name in ("layer1.1", "layer2.0"):
        block = model.get_submodule(name)
        with torch.no_grad():  # zero the residual branch: the block is then its shortcut
            block.bn2.weight.zero_()
            block.bn2.bias.zero_()
    before = model(x)
    assert isinstance(bypass(model, "layer1.1"), torch.nn.Identity)
    assert isinstance(bypass(model, "layer2.0"), Shortcut)
    assert torch.allclose(model(x), before, atol=1e-6)
    assert "layer1.1" not in residual_blocks(model)


def test_blocks_and_filters_round_trip_through_a_checkpoint(digits, tmp_path):
    text = """
version: 1
pruners:
  depth: {class: BlockRemover, blocks_per_stage: 1, include_downsample: true}
  filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    round_to: 4
    weights: [layer1.0.conv1.weight, layer1.1.conv1.weight, layer1.2.conv1.weight,
              layer2.1.conv1.weight, layer2.2.conv1.weight, layer3.1.conv1.weight,
              layer3.2.conv1.weight]
extensions:
  thin: {class: FilterRemover}
policies:
  - pruner: {instance_name: depth}
    epochs: [0]
  - pruner: {instance_name: filters}
    epochs: [0]
  - extension: {instance_name: thin}
    epochs: [0]
"""
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1)
    dense = model_stats(model, X)
    calib = (digits.x_train[:16], digits.y_train[:16])
    sched = CompressionScheduler(parse_recipe(text, "t.yaml"), model, X, calibration=calib)
    assert sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    assert len(sched.removed_blocks) == 3 and sched.thinned
    after = model_stats(model, X)
    assert after["macs"] < 0.5 * dense["macs"]
    # save as the pipeline does (masks folded, tensors only) and rebuild from the state dict
    clone = clone_model(model)
    make_permanent(clone)
    torch.save({"state_dict": clone.state_dict()}, tmp_path / "m.pt")
    state = torch.load(tmp_path / "m.pt", weights_only=True)["state_dict"]
    rebuilt = load_thinned(build_model("resnet20", 10, 1), state).eval()
    model.eval()
    x = digits.x_test[:8]
    assert torch.allclose(rebuilt(x), model(x), atol=1e-5)
    assert model_stats(rebuilt, X) == after
    assert set(residual_blocks(rebuilt)) == set(residual_blocks(model))


def test_sensitivity_analysis_writes_csv_and_plot(digits, tmp_path):
    from benchsuite.frontends.sensitivity_cli import parse_range
    from benchsuite.pipeline.sensitivity import plot, sensitivity_analysis, write_csv

    assert parse_range("0.1:0.9:0.2") == [0.1, 0.3, 0.5, 0.7, 0.9]
    assert parse_range("0,0.5") == [0.0, 0.5]
    with pytest.raises(ValueError):
        parse_range("0.5:1.0:0.5")
    torch.manual_seed(0)
    model = build_model("small_cnn", 10, 1).eval()
    rows = sensitivity_analysis(model, digits.x_test[:32], digits.y_test[:32], [0.0, 0.9],
                                weights=["conv1.weight", "fc.weight"], progress=False)
    assert [(r["layer"], r["sparsity"]) for r in rows] == [
        ("conv1.weight", 0.0), ("conv1.weight", 0.9), ("fc.weight", 0.0), ("fc.weight", 0.9)]
    assert all(0 <= r["top1"] <= r["top5"] <= 1 for r in rows)
    assert model.conv1.weight.abs().sum() > 0  # the analysed model is left untouched
    csv = write_csv(rows, tmp_path / "s.csv").read_text().splitlines()
    assert csv[0] == "layer,sparsity,top1,top5,latency_us" and len(csv) == 5
    pytest.importorskip("matplotlib")
    assert plot(rows, tmp_path / "s.png").stat().st_size > 1000


def _depth_recipe(counts: str) -> str:
    return f"""
version: 1
pruners:
  depth: {{class: BlockRemover, blocks_per_stage: {counts}}}
policies:
  - pruner: {{instance_name: depth}}
    epochs: [0]
"""


def test_block_remover_takes_a_count_per_stage(digits):
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1)
    calib = (digits.x_train[:16], digits.y_train[:16])
    sched = CompressionScheduler(parse_recipe(_depth_recipe("[0, 1, 2]"), "t.yaml"), model, X,
                                 calibration=calib)
    assert sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    kept = {s: sum(1 for b in residual_blocks(model) if b.startswith(s))
            for s in ("layer1", "layer2", "layer3")}
    assert kept == {"layer1": 3, "layer2": 2, "layer3": 1}  # of 3 blocks each
    assert not sched.on_epoch_begin(1, torch.optim.SGD(model.parameters(), lr=0.1))  # no more


def test_per_stage_recipe_shows_its_counts_and_widths(digits):
    from benchsuite.core.paths import schedules_dir
    from benchsuite.prune.dryrun import bind
    from benchsuite.recipe import load_recipe

    params = {"blocks1": 8, "blocks2": 2, "blocks3": 0, "width1": 0, "width2": 0.5,
              "width3": 0.0, "round_to": 8}
    recipe = load_recipe(schedules_dir() / "resnet56" / "per_stage.yaml", params)
    model, sched = bind(recipe, "resnet56", (1, 32, 32))
    assert sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    blocks = residual_blocks(model)
    assert [sum(1 for b in blocks if b.startswith(s)) for s in ("layer1", "layer2", "layer3")] \
        == [1, 7, 9]
    widths = {b: model.get_submodule(b).conv1.out_channels for b in blocks}
    assert {w for b, w in widths.items() if b.startswith("layer2")} == {16}  # 32 x 0.5
    assert {w for b, w in widths.items() if b.startswith(("layer1", "layer3"))} == {16, 64}


def test_block_remover_rejects_a_count_list_of_the_wrong_length():
    from benchsuite.recipe import RecipeError

    model = build_model("resnet20", 10, 1)
    with pytest.raises(RecipeError, match="2 counts given for 3 stages"):
        CompressionScheduler(parse_recipe(_depth_recipe("[1, 1]"), "t.yaml"), model, X)


class _Block(nn.Module):
    """A user's block laid out as torchvision's: relu(bn2(conv2(...)) + x), or without the final
    ReLU (`final_relu=False`: not bypassable by an identity)."""

    def __init__(self, c: int, final_relu: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = None
        self.final_relu = final_relu

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x
        return torch.relu(y) if self.final_relu else y


class _UserResNet(nn.Module):
    def __init__(self, final_relu: bool = True) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.stage = nn.Sequential(*[_Block(8, final_relu) for _ in range(3)])
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.stage(torch.relu(self.stem(x))).mean((2, 3)))


def test_block_removal_takes_every_residual_stage_of_other_resnets(digits):
    """The rule finds the blocks of the ImageNet ResNets and of a user's model laid out as
    torchvision's; a look-alike whose bypass would not be exact is refused, saying why."""
    from benchsuite.prune.dryrun import dry_run
    from benchsuite.recipe import RecipeError

    run = dry_run(parse_recipe(_depth_recipe("1"), "t.yaml"), "resnet18", (3, 32, 32))
    assert run.removed_blocks == ["layer1.1", "layer2.1", "layer3.1", "layer4.1"]
    assert run.pruned["macs"] < 0.6 * run.dense["macs"]
    calib = (digits.x_train[:8], digits.y_train[:8])
    model = _UserResNet()
    sched = CompressionScheduler(parse_recipe(_depth_recipe("[2]"), "t.yaml"), model, X,
                                 calibration=calib)
    assert sched.on_epoch_begin(0, torch.optim.SGD(model.parameters(), lr=0.1))
    assert len(residual_blocks(model)) == 1 and model(X).shape == (1, 10)
    with pytest.raises(RecipeError, match=r"has no residual blocks BlockRemover can remove .*"
                       r"stage\.0 \(_Block\) does not compute relu\(its last BN \+ its "
                       r"shortcut\)"):
        CompressionScheduler(parse_recipe(_depth_recipe("1"), "t.yaml"), _UserResNet(False), X,
                             calibration=calib)
