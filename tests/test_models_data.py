import pickle

import numpy as np
import pytest
import torch

from benchsuite.data import load_dataset
from benchsuite.data.cifar10 import TEST_FILE, TRAIN_FILES
from benchsuite.models import MODEL_NAMES, build_model


@pytest.mark.parametrize("name,params", [("resnet20", 0.27e6), ("resnet56", 0.85e6)])
def test_resnet_sizes_and_distiller_names(name, params):
    model = build_model(name, num_classes=10, in_channels=3)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - params) / params < 0.02
    names = dict(model.named_parameters())
    for expected in ("conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                     "layer3.2.bn2.bias", "fc.weight"):
        assert expected in names
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_model_channels_and_classes_are_parameters():
    for name in MODEL_NAMES:
        model = build_model(name, num_classes=7, in_channels=1)
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 7)
    with pytest.raises(ValueError, match="unknown model 'resnet21'"):
        build_model("resnet21", 10, 3)


def test_digits_split_is_stratified_and_seeded(digits):
    assert digits.input_shape == (1, 32, 32)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    counts = torch.bincount(digits.y_test, minlength=10)
    assert len(digits.x_test) == 899  # half: one test image is 0.11 points of Top-1
    assert counts.min() >= 87 and counts.max() <= 92  # half of each class (174-183 images)
    again = load_dataset("digits")
    assert torch.equal(again.y_test, digits.y_test)
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.y_test, digits.y_test)


def _write_cifar(folder, n=10, seed=0):
    rng = np.random.default_rng(seed)
    for name in (*TRAIN_FILES, TEST_FILE):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n)), b"batch_label": name.encode()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


def test_cifar10_reads_the_python_format(tmp_path):
    _write_cifar(tmp_path)
    with open(tmp_path / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    s = load_dataset("cifar10", data_dir=tmp_path)
    assert s.x_train.shape == (50, 3, 32, 32) and s.x_test.shape == (10, 3, 32, 32)
    assert s.y_train[:10].tolist() == [int(v) for v in raw[b"labels"]]
    # pixel (0, 0) of the first image, red plane, normalised with CIFAR-10's statistics
    expected = (raw[b"data"][0, 0] / 255.0 - 0.4914) / 0.2470
    assert s.x_train[0, 0, 0, 0].item() == pytest.approx(expected, abs=1e-5)


def test_cifar10_wrong_path_names_path_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("cifar10", data_dir=tmp_path / "nowhere")
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and "data_batch_1" in msg and "test_batch" in msg
    with pytest.raises(ValueError, match="--data-dir"):
        load_dataset("cifar10")


@pytest.mark.parametrize("garbage", [b"\x00\x01garbage", b"", b"\x80\x04\x95"])
def test_cifar10_garbage_batch_names_the_file(tmp_path, garbage):
    """A corrupt batch used to raise `UnpicklingError: invalid load key` naming no file."""
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(garbage)
    with pytest.raises(ValueError, match=r"data_batch_3 is not a CIFAR-10 python batch \(it "
                                         r"does not unpickle"):
        load_dataset("cifar10", data_dir=tmp_path)
