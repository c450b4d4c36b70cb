"""Top-1 of what was benchmarked: the OpenVINO compiled model, at the precision it was timed at.

The torch model's Top-1 says how well the network was trained and pruned; the figure a
deployment gets is the compiled model's: bf16 kernels round activations, INT8 quantizes them.
``deployed_accuracy`` compiles an IR with the same device, inference precision hint and
threads as the speed-up measurement and runs the test split of the evaluation blob through it,
one image per inference (the IR is static at batch 1, as benchmarked).

openvino + numpy only: it runs in the bench worker.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def _config(precision: str | None, threads: int | None) -> dict[str, Any]:
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def deployed_accuracy(model_xml: Path, x: np.ndarray, y: np.ndarray, device: str = "CPU",
                      precision: str | None = "f32", threads: int | None = None
                      ) -> dict[str, Any]:
    """Top-1, Top-5 and the number of images of the compiled ``model_xml`` on (x, y), with the
    precision the device actually used (read back from the compiled model)."""
    import openvino as ov

    from benchsuite.bench.paired import compiled_property

    t0 = time.perf_counter()
    compiled = ov.Core().compile_model(str(model_xml), device, _config(precision, threads))
    request = compiled.create_infer_request()
    output = compiled.outputs[0]
    top1 = top5 = 0
    for image, label in zip(x, y, strict=True):
        logits = request.infer([np.ascontiguousarray(image[None], dtype=np.float32)])[output]
        order = np.argsort(-logits[0])
        top1 += int(order[0] == label)
        top5 += int(label in order[: min(5, order.size)])
    n = len(y)
    return {"top1": top1 / n, "top5": top5 / n, "test_images": n,
            "precision": compiled_property(compiled, "INFERENCE_PRECISION_HINT", precision),
            "seconds": time.perf_counter() - t0}


def deployed_pair(models: dict[str, Path], x: np.ndarray, y: np.ndarray, device: str,
                  precision: str | None, threads: int | None, label: str) -> dict[str, Any]:
    """The bench stage's accuracy fields: the dense and pruned IRs as benchmarked."""
    dense = deployed_accuracy(models["dense"], x, y, device, precision, threads)
    pruned = deployed_accuracy(models["pruned"], x, y, device, precision, threads)
    return {
        "top1_deployed": pruned["top1"], "top5_deployed": pruned["top5"],
        "dense_top1_deployed": dense["top1"], "dense_top5_deployed": dense["top5"],
        "test_images_deployed": pruned["test_images"],
        "top1_method": f"OpenVINO {device} {label}, batch 1",
        "accuracy_seconds": dense["seconds"] + pruned["seconds"],
    }
