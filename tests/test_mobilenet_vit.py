"""MobileNetV2 and the small ViT (issue 23): they build for 28x28 and 32x32 images of 1 or 3
channels, export to ONNX and compile in OpenVINO with the same outputs as torch, dense and
pruned by each of their recipes (thinned: physically smaller), reload from a thinned
checkpoint, and the structures their pruners remove are removed exactly."""

from pathlib import Path

import numpy as np
import pytest
import torch

from benchsuite.core.paths import schedules_dir
from benchsuite.models import build_model, dense_family, load_thinned
from benchsuite.prune.masks import combine_mask
from benchsuite.recipe import load_recipe

pytestmark = pytest.mark.usefixtures("one_thread")

NEW = ("mobilenetv2", "mobilenetv2_050", "mobilenetv2_035", "vit_tiny", "vit_tiny_d4",
       "vit_tiny_d2")
SHAPES = ((1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32))


def _agree(torch_out: np.ndarray, ov_out: np.ndarray) -> None:
    scale = float(np.abs(torch_out).max())
    assert scale > 0
    np.testing.assert_allclose(ov_out, torch_out, rtol=0, atol=1e-4 * scale + 1e-6)


def _compiled(model: torch.nn.Module, shape: tuple[int, ...], folder: Path):
    import openvino as ov

    from benchsuite.bench.ir import onnx_to_ir
    from benchsuite.export.onnx import export_onnx

    onnx = export_onnx(model, shape, folder / "model.onnx")
    xml = onnx_to_ir(onnx, folder / "model.xml", shape)
    return ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@pytest.mark.parametrize("name", NEW)
def test_builds_and_runs_at_28_and_32_with_1_and_3_channels(name):
    for shape in SHAPES:
        model = build_model(name, 7, shape[0]).eval()
        with torch.no_grad():
            assert model(torch.randn(2, *shape)).shape == (2, 7)


@pytest.mark.parametrize("name", ["mobilenetv2", "vit_tiny"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)], ids=["1x28x28", "3x32x32"])
def test_exports_and_compiles_with_the_same_outputs(name, shape, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, 10, shape[0]).eval()
    x = torch.randn(1, *shape)
    with torch.no_grad():
        expected = model(x).numpy()
    compiled = _compiled(model, shape, tmp_path)
    _agree(expected, compiled(x.numpy())[0])


def test_mobilenetv2_blocks_and_widths():
    from benchsuite.models.blocks import residual_blocks

    model = build_model("mobilenetv2", 10, 1)
    names = dict(model.named_parameters())
    assert "stage2.0.conv.0.0.weight" in names and "stage1.0.conv.1.0.weight" in names
    dw = model.get_submodule("stage3.1.conv.1.0")
    assert dw.groups == dw.in_channels == dw.out_channels == 6 * 32
    # the blocks with a shortcut: 1 + 2 + 3 + 2 + 2 of stages 2 to 6
    assert len(residual_blocks(model)) == 10
    assert model.head[0].out_channels == 1280
    half = build_model("mobilenetv2_050", 10, 1)
    assert half.get_submodule("stage3.1.conv.1.0").groups == 6 * 16


def test_vit_heads_follow_qkv_and_blocks_add_their_input():
    from benchsuite.models.blocks import bypass, residual_blocks

    model = build_model("vit_tiny", 10, 1).eval()
    attn = model.blocks[0].attn
    assert (attn.num_heads, attn.head_dim, model.blocks[0].mlp.fc1.out_features) == (3, 32, 384)
    assert residual_blocks(model) == [f"blocks.{i}" for i in range(6)]
    x = torch.randn(2, 1, 28, 28)
    block = model.blocks[2]
    with torch.no_grad():  # a block whose branches give zero is an identity: bypass is exact
        for lin in (block.attn.proj, block.mlp.fc2):
            lin.weight.zero_()
            lin.bias.zero_()
        before = model(x)
        bypass(model, "blocks.2")
        assert isinstance(model.blocks[2], torch.nn.Identity)
        torch.testing.assert_close(model(x), before)


def test_removing_a_head_computes_what_zeroing_its_projection_did():
    from benchsuite.prune.heads import AttentionHeadPruner
    from benchsuite.prune.pruner import PruneContext
    from benchsuite.recipe import Component

    torch.manual_seed(0)
    model = build_model("vit_tiny_d2", 10, 1).eval()
    example = torch.zeros(1, 1, 28, 28)
    pruner = AttentionHeadPruner(
        Component("heads", "AttentionHeadPruner", {"desired_sparsity": 0.34, "criterion": "l1"},
                  "pruners"), model, example)
    x = torch.randn(4, 1, 28, 28)
    reference = build_model("vit_tiny_d2", 10, 1).eval()
    reference.load_state_dict(model.state_dict())
    from benchsuite.prune.heads import head_scores

    with torch.no_grad():
        for block in reference.blocks:  # the head the pruner will remove, silenced
            h = int(head_scores(block.attn, "l1").argmin())
            block.attn.proj.weight[:, h * 32:(h + 1) * 32] = 0
        expected = reference(x)
    assert pruner.apply(PruneContext(model, 0, None)) is True
    assert [b.attn.num_heads for b in model.blocks] == [2, 2]
    assert model.blocks[0].attn.qkv.weight.shape == (192, 96)
    assert model.blocks[0].attn.proj.weight.shape == (96, 64)
    assert pruner.thinned == {"blocks.0.attn.heads": 1, "blocks.1.attn.heads": 1}
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)
    assert pruner.apply(PruneContext(model, 1, None)) is False  # counted from the start


def test_mlp_hidden_units_thin_exactly_and_attention_is_not_selected():
    from benchsuite.prune.graph import prunable_layers, thin

    torch.manual_seed(0)
    model = build_model("vit_tiny_d2", 10, 1).eval()
    example = torch.zeros(1, 1, 28, 28)
    assert prunable_layers(model, example)["Rows"] == ["blocks.0.mlp.fc2.weight",
                                                       "blocks.1.mlp.fc2.weight"]
    keep = torch.ones(384, dtype=torch.bool)
    keep[::2] = False
    for i in range(2):
        w = model.get_parameter(f"blocks.{i}.mlp.fc2.weight")
        mask = torch.ones_like(w)
        mask[:, ~keep] = 0
        combine_mask(model, f"blocks.{i}.mlp.fc2.weight", mask)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    removed = thin(model, example, "Channels")
    assert removed == {"blocks.0.mlp.fc2": 192, "blocks.1.mlp.fc2": 192}
    assert model.blocks[1].mlp.fc1.weight.shape == (192, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


RECIPES = {  # recipe -> (model, what it removes)
    "mobilenetv2/expansion_channels": "mobilenetv2",
    "mobilenetv2/block_removal": "mobilenetv2",
    "vit_tiny/heads": "vit_tiny",
    "vit_tiny/mlp_width": "vit_tiny",
    "vit_tiny/block_removal": "vit_tiny",
    "level_elementwise": "vit_tiny",
}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_thins_exports_compiles_and_reloads(recipe, tmp_path):
    """The pruned architecture (every policy applied, no training) is smaller (but for the
    element-wise masks), exports, compiles with the same outputs and reloads from its
    checkpoint by shapes alone."""
    from benchsuite.prune import model_stats
    from benchsuite.prune.dryrun import pruned_model
    from benchsuite.prune.masks import clone_model, make_permanent

    name = RECIPES[recipe]
    shape = (1, 28, 28)
    example = torch.zeros(1, *shape)
    dense = model_stats(build_model(name, 10, 1), example)
    model, _, _ = pruned_model(load_recipe(schedules_dir() / f"{recipe}.yaml"), name, shape)
    stats = model_stats(model, example)
    if recipe == "level_elementwise":
        assert stats["macs"] == dense["macs"] and stats["weight_sparsity"] > 0.49
    else:
        assert stats["macs"] < 0.9 * dense["macs"] and stats["params"] < dense["params"]
    x = torch.randn(1, *shape)
    with torch.no_grad():
        expected = model(x).numpy()
    _agree(expected, _compiled(model, shape, tmp_path)(x.numpy())[0])
    state = clone_model(model)
    make_permanent(state)
    again = load_thinned(build_model(name, 10, 1), state.state_dict()).eval()
    with torch.no_grad():
        np.testing.assert_allclose(again(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_the_zoo_is_the_reference_s_own_kind():
    from benchsuite.pipeline.grid import zoo_cases
    from benchsuite.recipe.case import Case

    assert dense_family("mobilenetv2") == ("mobilenetv2_035", "mobilenetv2_050", "mobilenetv2")
    assert "resnet8" in dense_family("resnet56") and "resnet8" in dense_family("mymod:net")
    # the ViT at width 192: the narrower ViT and its shallower ones; each keeps its own family
    assert dense_family("vit_tiny_w192") == ("vit_tiny_d2", "vit_tiny_d4", "vit_tiny",
                                             "vit_tiny_w192")
    assert dense_family("vit_tiny") == ("vit_tiny_d2", "vit_tiny_d4", "vit_tiny")
    assert dense_family("vit_tiny_d4") == dense_family("vit_tiny")
    cases = zoo_cases([Case("vit_tiny/heads", model="vit_tiny"),
                       Case("l1_filters", model="resnet20")])
    assert [(c.model, c.zoo_model) for c in cases[:2]] == [("vit_tiny", "vit_tiny_d2"),
                                                           ("vit_tiny", "vit_tiny_d4")]
    assert {c.zoo_model for c in cases[2:]} == {"cnn2_bn", "resnet8_half", "resnet8",
                                                "resnet14_half", "resnet14", "resnet20_half"}


def test_the_scratch_control_starts_from_the_model_s_own_initialisation():
    from benchsuite.pipeline.stages import reinitialise

    torch.manual_seed(0)
    model = build_model("vit_tiny_d2", 10, 1)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3.0)
    reinitialise(model, 0)
    std = model.blocks[0].mlp.fc1.weight.std().item()  # Xavier: sqrt(2 / (96 + 384)) = 0.065
    assert 0.06 < std < 0.07  # not torch's default (1 / sqrt(3 x 96) = 0.059) nor the fill
    assert model.blocks[0].norm1.weight.eq(1).all() and model.patch_embed.pos_embed.abs().max() < 1
