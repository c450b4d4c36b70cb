import pytest
import torch

from benchsuite.core.paths import schedules_dir
from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler, model_stats
from benchsuite.prune.masks import effective, set_mask
from benchsuite.prune.names import prunable_weights
from benchsuite.prune.training import train
from benchsuite.recipe import load_recipe

X = torch.zeros(1, 1, 32, 32)
INNER_CONVS = [f"layer{s}.{b}.conv1" for s in (1, 2, 3) for b in range(3)]


def scheduled(recipe: str, params: dict, model_name: str = "resnet20"):
    torch.manual_seed(0)
    model = build_model(model_name, 10, 1)
    recipe = load_recipe(schedules_dir() / f"{recipe}.yaml", params)
    return model, CompressionScheduler(recipe, model, X)


def one_epoch(model, sched, digits, n=256):
    from benchsuite.data import Splits

    small = Splits("d", digits.x_train[:n], digits.y_train[:n], digits.x_test, digits.y_test, 10)
    train(model, small, 1, 0.01, 0, hooks=sched)


@pytest.mark.parametrize("sparsity", [0.5, 0.7])
def test_l1_filters_with_thinning_removes_filters(sparsity, digits):
    model, sched = scheduled("l1_filters", {"sparsity": sparsity})
    dense = model_stats(model, X)
    one_epoch(model, sched, digits)
    after = model_stats(model, X)
    for name in INNER_CONVS:
        conv = model.get_submodule(name)
        width = {"1": 16, "2": 32, "3": 64}[name[5]]
        assert conv.out_channels == width - int(width * sparsity), name
        assert model.get_submodule(name.replace("conv1", "bn1")).num_features == conv.out_channels
        assert model.get_submodule(name.replace("conv1", "conv2")).in_channels == conv.out_channels
    # each inner conv loses k of its filters and the next conv the matching input channels
    removed = 0
    for name in INNER_CONVS:
        conv1 = model.get_submodule(name)
        conv2 = model.get_submodule(name.replace("conv1", "conv2"))
        k = {"1": 16, "2": 32, "3": 64}[name[5]] - conv1.out_channels
        removed += k * (conv1.in_channels * 9 + 2 + conv2.out_channels * 9)
    assert dense["params"] - after["params"] == removed
    assert after["macs"] < dense["macs"] * (1 - 0.45 * sparsity)
    assert model(torch.randn(4, 1, 32, 32)).shape == (4, 10)  # the thinned model still runs


def test_structured_without_thinning_keeps_shapes_but_zeroes_filters(digits):
    model, _ = scheduled("l1_filters", {"sparsity": 0.5})
    recipe = load_recipe(schedules_dir() / "l1_filters.yaml", {"sparsity": 0.5})
    recipe.policies = [p for p in recipe.policies if p.kind != "extension"]
    sched = CompressionScheduler(recipe, model, X)
    one_epoch(model, sched, digits)
    for name in INNER_CONVS:
        w = effective(model, name + ".weight")
        assert w.shape[0] == {"1": 16, "2": 32, "3": 64}[name[5]]
        zero_filters = int((w.flatten(1).abs().sum(1) == 0).sum())
        assert zero_filters == w.shape[0] // 2
    assert model_stats(model, X)["macs"] == model_stats(build_model("resnet20", 10, 1), X)["macs"]


@pytest.mark.parametrize("sparsity", [0.3, 0.8])
def test_level_pruning_reaches_sparsity_and_masks_survive_training(sparsity, digits):
    model, sched = scheduled("level_elementwise", {"sparsity": sparsity})
    one_epoch(model, sched, digits)  # optimizer steps after the masks were set
    for name in prunable_weights(model):
        w = effective(model, name)
        assert abs(float((w == 0).float().mean()) - sparsity) <= 0.01, name
    stats = model_stats(model, X)
    assert abs(stats["weight_sparsity"] - sparsity) <= 0.01


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_thinning_exactly_zero_channels_keeps_outputs(mode):
    """Filters zeroed with their BatchNorm affine terms output exactly zero: removing them
    must not change the model's output (in whatever mode thinning is called)."""
    from benchsuite.prune.graph import thin

    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1).eval()
    for name, drop in (("layer1.0", [1, 5, 7]), ("layer2.1", [0, 3]), ("layer3.2", [10, 63])):
        mask = torch.ones_like(model.get_submodule(name + ".conv1").weight)
        mask[drop] = 0
        set_mask(model, name + ".conv1.weight", mask)  # zeroed as a pruner does: by a mask
        with torch.no_grad():
            model.get_submodule(name + ".bn1").weight[drop] = 0
            model.get_submodule(name + ".bn1").bias[drop] = 0
    x = torch.randn(8, 1, 32, 32)
    before = model(x)
    params = sum(p.numel() for p in model.parameters())
    model.train(mode == "train")
    removed = thin(model, X, "Filters")
    assert removed == {"layer1.0.conv1": 3, "layer2.1.conv1": 2, "layer3.2.conv1": 2}
    model.eval()
    assert torch.allclose(model(x), before, atol=1e-5)
    assert sum(p.numel() for p in model.parameters()) < params


def test_masks_lifted_keeps_element_wise_sparsity_through_a_change_of_shape():
    """Thinning needs plain tensors; after it the zeros of the narrower weight are masked again
    (an optimizer step cannot revive them) and an unmasked layer stays unmasked."""
    import torch_pruning as tp
    from torch import nn

    from benchsuite.prune.masks import get_mask, masked_names, masks_lifted

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    mask = (torch.rand(8, 6) > 0.5).float()
    set_mask(model, "0.weight", mask)
    with masks_lifted(model):
        assert masked_names(model) == []  # plain parameters while shapes change
        tp.prune_linear_out_channels(model[0], [1, 4])
        tp.prune_linear_in_channels(model[2], [1, 4])
    keep = [0, 2, 3, 5, 6, 7]
    assert masked_names(model) == ["0.weight"]
    assert torch.equal(get_mask(model, "0.weight"), mask[keep])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model(torch.randn(4, 6)).sum().backward()
    opt.step()
    assert torch.equal(effective(model, "0.weight") == 0, mask[keep] == 0)
