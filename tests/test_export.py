"""Export: the OpenVINO IR of a pruned (thinned) model predicts what torch predicts."""

from __future__ import annotations

import numpy as np
import openvino as ov
import torch

from benchsuite.bench.ir import onnx_to_ir
from benchsuite.core.paths import schedules_dir
from benchsuite.data import Splits
from benchsuite.export.onnx import export_onnx
from benchsuite.models import build_model
from benchsuite.prune import CompressionScheduler
from benchsuite.prune.training import train
from benchsuite.recipe import load_recipe


def test_ir_matches_torch_on_the_test_split_f32(digits, tmp_path):
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1)
    recipe = load_recipe(schedules_dir() / "l1_filters.yaml", {"sparsity": 0.5})
    sched = CompressionScheduler(recipe, model, torch.zeros(1, 1, 32, 32))
    subset = Splits("d", digits.x_train[:512], digits.y_train[:512], digits.x_test,
                    digits.y_test, 10)
    train(model, subset, 1, 0.01, 0, hooks=sched)  # thinned and briefly fine-tuned
    assert model.layer1[0].conv1.out_channels == 8
    onnx = export_onnx(model, (1, 32, 32), tmp_path / "m.onnx")
    xml = onnx_to_ir(onnx, tmp_path / "m.xml", (1, 32, 32))
    core = ov.Core()
    ir = core.read_model(xml)
    assert list(ir.inputs[0].get_shape()) == [1, 1, 32, 32]  # static, as benchmark_app needs
    compiled = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    with torch.no_grad():
        expected = model(digits.x_test).numpy()
    got = np.stack([request.infer({0: x[None].numpy()})[compiled.outputs[0]][0]
                    for x in digits.x_test])
    assert np.abs(got - expected).max() < 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert len(set(expected.argmax(1).tolist())) > 1  # not a constant prediction
