"""Bring your own model and data: module:callable models and datasets, the ImageNet ResNets,
image folders read with Pillow, structured pruning and thinning of a model the suite has never
seen. Everything is made in the test (nothing downloads)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from toy_recipes import thin_filters

from benchsuite.data import describe_dataset, load_dataset
from benchsuite.models import build_model, load_thinned
from benchsuite.prune import CompressionScheduler, model_stats
from benchsuite.prune.masks import clone_model, make_permanent
from benchsuite.prune.training import train
from benchsuite.recipe import RecipeError, parse_recipe

USER_MODELS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.body = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(self.bn2(self.body(x)))
        return self.head(x.mean(dim=(2, 3)))


def tiny(num_classes, in_channels):
    return Net(num_classes, in_channels)


def not_a_module(num_classes, in_channels):
    return "a string"
'''

USER_DATA = '''
import torch

class Pairs(list):
    classes = ["a", "b", "c"]

def data():
    g = torch.Generator().manual_seed(0)
    train = Pairs((torch.rand(8, 8, generator=g), i % 3) for i in range(12))
    test = [(torch.rand(8, 8, generator=g), i % 2) for i in range(4)]
    return train, test
'''


@pytest.fixture
def user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of the user's in a folder of its own (a unique name per test)."""
    name = f"user_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(USER_MODELS + USER_DATA)
    monkeypatch.chdir(tmp_path)  # found in the current directory, as with `python -m`
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield name
    sys.modules.pop(name, None)


def test_model_from_module_callable(user_code: str):
    model = build_model(f"{user_code}:tiny", num_classes=5, in_channels=2)
    assert type(model).__name__ == "Net" and model.head.out_features == 5
    assert model(torch.zeros(2, 2, 16, 16)).shape == (2, 5)


@pytest.mark.parametrize(("reference", "message"), [
    ("no_such_module_xyz:tiny", "cannot import 'no_such_module_xyz'"),
    ("{user}:missing", "has no attribute 'missing'"),
    ("{user}:not_a_module", "returned str, not a torch.nn.Module"),
])
def test_bad_model_references_say_what_is_wrong(user_code: str, reference: str, message: str):
    with pytest.raises(ValueError, match=message):
        build_model(reference.format(user=user_code), 10, 1)


def test_dataset_from_module_callable(user_code: str):
    splits = load_dataset(f"{user_code}:data")
    assert splits.input_shape == (1, 8, 8)  # (H, W) samples become one channel
    assert splits.num_classes == 3  # from the train set's `classes`
    assert splits.y_train.tolist() == [i % 3 for i in range(12)]
    assert describe_dataset(f"{user_code}:data") == ((1, 8, 8), 3)


# torchvision's parameter counts (ImageNet, 1000 classes) and some of its parameter names
@pytest.mark.parametrize(("name", "params", "keys"), [
    ("resnet18", 11_689_512, ["layer2.0.downsample.0.weight", "layer4.1.bn2.running_var"]),
    ("resnet50", 25_557_032, ["layer1.0.downsample.1.weight", "layer4.2.conv3.weight"]),
])
def test_imagenet_resnets_have_torchvisions_names_and_sizes(name, params, keys):
    model = build_model(name, num_classes=1000, in_channels=3)
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == params
    assert {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "fc.weight", *keys} <= set(state)
    model.eval()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 1000)  # small inputs work too


def make_image_folder(root: Path, size=(12, 10), mode="RGB", per_class=(6, 2)) -> Path:
    """Two classes told apart by brightness; one odd-sized image (resized to the first's)."""
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val"), per_class, strict=True):
        for label, base in (("bright", 200), ("dark", 40)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                shape = (size[1], size[0]) + (() if mode == "L" else (3,))
                pixels = np.clip(base + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels, mode=mode)
                if split == "train" and label == "dark" and i == 0:
                    image = image.resize((size[0] * 2, size[1]))
                image.save(folder / f"{i}.png")
    return root


def test_image_folder_size_and_classes_come_from_the_data(tmp_path: Path):
    root = make_image_folder(tmp_path / "pets")
    name = f"imagefolder:{root}"
    assert describe_dataset(name) == ((3, 10, 12), 2)
    splits = load_dataset(name)
    assert splits.x_train.shape == (12, 3, 10, 12) and splits.x_test.shape == (4, 3, 10, 12)
    assert splits.y_train.tolist() == [0] * 6 + [1] * 6  # sorted class folders: bright, dark
    assert splits.x_train[:6].mean() > splits.x_train[6:].mean()  # the labels follow the folders
    assert torch.allclose(splits.x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    gray = make_image_folder(tmp_path / "gray", mode="L")
    assert describe_dataset(f"imagefolder:{gray}") == ((1, 10, 12), 2)


def test_image_folder_layout_errors_are_clear(tmp_path: Path):
    (tmp_path / "x" / "train" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="expected the folders train/ and val/"):
        describe_dataset(f"imagefolder:{tmp_path / 'x'}")


THIN = thin_filters(["stem.weight", "body.weight"], "0.5")


def test_structured_pruning_and_thinning_of_a_users_model(user_code: str, digits):
    from benchsuite.data import Splits

    torch.manual_seed(0)
    model = build_model(f"{user_code}:tiny", 10, 1)
    x = torch.zeros(1, 1, 32, 32)
    dense = model_stats(model, x)
    sched = CompressionScheduler(parse_recipe(THIN), model, x)
    small = Splits("d", digits.x_train[:128], digits.y_train[:128], digits.x_test,
                   digits.y_test, 10)
    train(model, small, 1, 0.01, 0, hooks=sched)
    assert (model.stem.out_channels, model.body.out_channels) == (8, 16)  # physically removed
    assert (model.bn.num_features, model.head.in_features) == (8, 16)
    assert model_stats(model, x)["macs"] < dense["macs"] / 2
    # a thinned checkpoint of the user's model (masks made permanent, as the stages save it)
    # loads into a fresh one
    saved = clone_model(model)
    make_permanent(saved)
    fresh = load_thinned(build_model(f"{user_code}:tiny", 10, 1), saved.state_dict())
    assert torch.equal(fresh.eval()(digits.x_test[:4]), model.eval()(digits.x_test[:4]))


BLOCKS = """
version: 1
pruners:
  blocks: {class: BlockRemover, blocks_per_stage: 1}
policies:
  - pruner: {instance_name: blocks}
    epochs: [0]
"""


def test_block_removal_says_when_a_model_has_no_removable_blocks(user_code):
    # (the ImageNet ResNets have removable blocks: tests/test_blocks.py)
    model = build_model(f"{user_code}:tiny", 10, 3)
    with pytest.raises(RecipeError, match=r"the model \(\w+\) has no residual blocks "
                                          "BlockRemover can remove"):
        CompressionScheduler(parse_recipe(textwrap.dedent(BLOCKS)), model,
                             torch.zeros(1, 3, 32, 32))
