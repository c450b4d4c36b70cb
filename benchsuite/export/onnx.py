"""Export a (possibly masked or thinned) torch model to ONNX: the broker's interchange format.

The TorchScript exporter (`dynamo=False`) at opset 13: it needs only torch and `onnx`, takes
~0.1 s for a ResNet-20 (the dynamo exporter takes seconds), and both OpenVINO 2026 and the
legacy 2021.4 runtime read its output (docs/measurements.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from benchsuite.prune.masks import clone_model, make_permanent

OPSET = 13
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: Path) -> Path:
    """Write `model` (masks folded in) as ONNX with a static batch-1 input of `input_shape`."""
    clone = clone_model(model).eval()
    make_permanent(clone)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, *input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            clone, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        )
    return path
