"""A tiny conv net exported torch -> ONNX -> static OpenVINO IR, for tests and smoke checks; and
a user's `mymodels.py` (`--model mymodels:tiny`, a model that is not a ResNet)."""

from __future__ import annotations

import warnings
from pathlib import Path

# what a user writes to pass `--model mymodels:tiny` (README, "In your own project"): a plain
# CNN (no residual blocks), not named as any of the suite's models
MYMODELS = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.body = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False)
        self.body_bn = nn.BatchNorm2d(32)
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem(x)))
        x = torch.relu(self.body_bn(self.body(x)))
        return self.head(x.mean(dim=(2, 3)))


def tiny(num_classes, in_channels):
    return Tiny(num_classes, in_channels)
"""


def write_mymodels(folder: Path, name: str = "mymodels") -> Path:
    """Write the user's `<name>.py` (with `tiny(num_classes, in_channels)`) into `folder`."""
    path = Path(folder) / f"{name}.py"
    path.write_text(MYMODELS)
    return path


def export_tiny_model(folder: Path, channels: int = 8, size: int = 16,
                      name: str = "tiny") -> tuple[Path, Path]:
    """Write ``<name>.onnx`` (opset 13, readable by OpenVINO 2021.4) and a static-shape
    ``<name>.xml``/``.bin`` IR; returns (onnx_path, xml_path). Layer names follow torch's
    ``nn.Sequential`` indices (``/0/Conv``, ``/3/Conv``, ...)."""
    import openvino
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, channels, 3, padding=1), torch.nn.BatchNorm2d(channels),
        torch.nn.ReLU(), torch.nn.Conv2d(channels, channels, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(channels, 10),
    ).eval()
    example = torch.randn(1, 3, size, size)
    onnx_path = folder / f"{name}.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but reads opset 13
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(onnx_path), dynamo=False, opset_version=13,
                          input_names=["x"], output_names=["logits"])
    xml_path = folder / f"{name}.xml"
    ir = openvino.convert_model(str(onnx_path), input=[(1, 3, size, size)])
    openvino.save_model(ir, str(xml_path), compress_to_fp16=False)
    return onnx_path, xml_path
