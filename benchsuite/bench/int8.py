"""INT8 by post-training quantization: NNCF on the OpenVINO model, in the bench worker.

``quantize_ir`` reads a static IR, quantizes it with ``nncf.quantize`` (weights and activations
to INT8; activation ranges from a calibration subset of the training split, the evaluation
blob's ``x_calib``) and saves the quantized IR. It needs openvino, nncf and numpy, no torch.

A case asks for it with ``precision="int8"`` (``--precision int8``, ``precisions: [int8]`` in a
grid, ``precision: int8`` in a sweep file): the pruned model (any recipe; a recipe that prunes
nothing gives dense -> INT8) is quantized after conversion, and its speed-up is measured
against the dense model at f32: both are compiled with the f32 inference precision hint, so
what stays unquantized runs f32 in both.

``int8_problem`` is the up-front check (before any training): the device lists INT8 among its
``OPTIMIZATION_CAPABILITIES`` and nncf imports in the bench environment.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from benchsuite.bench.measurement import SPARSE_RATE
from benchsuite.core.errors import UserError
from benchsuite.recipe.case import REFERENCE_PRECISION

NNCF_HINT = "pip install nncf==3.4.0 (requirements.txt; the bench tox env has it)"




def capability_problem(device: str, capabilities: tuple[str, ...] | None) -> str | None:
    """Why ``device`` with these ``OPTIMIZATION_CAPABILITIES`` cannot run INT8 (None: it can)."""
    if capabilities is None:
        return (f"precision int8 needs a device OpenVINO can query, and {device} is not one "
                "here (not listed by openvino.Core().available_devices)")
    if "INT8" not in capabilities:
        return (f"precision int8: device {device} does not list INT8 among its "
                f"OPTIMIZATION_CAPABILITIES ({', '.join(capabilities) or 'none'}); a quantized "
                "model would not run INT8 kernels there")
    return None


def nncf_problem(python: str | None = None) -> str | None:
    """Why nncf does not import in the bench environment (``python``: its interpreter; None:
    this one), or None."""
    if python is None:
        try:
            import nncf  # noqa: F401
        except ImportError as exc:
            return f"precision int8 needs nncf in the bench environment ({exc}): {NNCF_HINT}"
        return None
    probe = subprocess.run([python, "-c", "import nncf"], capture_output=True, text=True,
                           timeout=300, check=False)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return (f"precision int8 needs nncf in the bench environment {python} ({last}): "
                f"{NNCF_HINT}")
    return None


def int8_problem(device: str, bench_python: str | None = None) -> str | None:
    """The up-front check of an INT8 case: the device's INT8 capability, nncf importable. An
    absent device is not this check's business (such cases skip, naming the device)."""
    from benchsuite.bench.devices import _base, _capabilities, device_skip_reason

    if device_skip_reason(device) is not None:
        return None
    return (capability_problem(device, _capabilities(_base(device)))
            or nncf_problem(bench_python))


def quantize_ir(model_xml: Path, calibration: np.ndarray, out_xml: Path,
                device: str = "CPU") -> tuple[Path, dict[str, Any]]:
    """Quantize a static IR with NNCF (post-training, default preset, full bias correction)
    and save it.

    ``calibration``: (N, C, H, W) float32 images of the training split; the IR's batch is 1,
    so each image is one calibration sample. Returns the quantized IR and what was done."""
    try:
        import nncf
    except ImportError as exc:  # a bench worker the session could not check (its own host)
        raise UserError(f"precision int8 needs nncf on this bench worker ({exc}): "
                        f"{NNCF_HINT}") from exc
    import openvino as ov

    t0 = time.perf_counter()
    model = ov.Core().read_model(str(model_xml))
    samples = [np.ascontiguousarray(x[None], dtype=np.float32) for x in calibration]
    target = nncf.TargetDevice.CPU if device.upper().startswith("CPU") else nncf.TargetDevice.ANY
    # full bias correction: NNCF's fast variant cost a small CNN on digits 8 points of Top-1
    # (93.8 % f32 -> 85.7 %); the full one kept it (94.0 %) (docs/measurements.md)
    quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples),
                              target_device=target, fast_bias_correction=False)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml))
    fq = sum(op.get_type_name() == "FakeQuantize" for op in quantized.get_ops())
    return out_xml, {
        "quantization": (f"NNCF {nncf.__version__} post-training INT8 (default preset, full bias "
                         f"correction), "
                         f"{len(samples)} calibration images of the training split"),
        "quantize_seconds": time.perf_counter() - t0, "fake_quantize_ops": fq,
    }


COMPUTE_LAYERS = ("Convolution", "FullyConnected", "MatMul", "GroupConvolution")


class Int8Layers(NamedTuple):
    """What the device's executed graph runs: compute layers in u8/i8 of all compute layers,
    and the FullyConnected layers that run packed sparse kernels (sparse weights
    decompression) of all FullyConnected layers."""

    quantized: int
    total: int
    sparse: int = 0
    fully_connected: int = 0

    def describe(self, rate: float | None) -> str:
        text = f"{self.quantized}/{self.total} conv/fc layers run u8/i8"
        if rate is not None:
            text += (f"; {self.sparse}/{self.fully_connected} fc layers run sparse kernels "
                     f"({SPARSE_RATE} {rate:g})")
        return text


def int8_layers(model_xml: Path, device: str = "CPU",
                precision: str | None = REFERENCE_PRECISION,
                sparse_weights_rate: float | None = None) -> Int8Layers:
    """Whether the quantized model really runs INT8 kernels (and, with a sparse weights
    rate, which FullyConnected layers run sparse ones), read from the compiled model's runtime
    graph (``runtimePrecision``, ``primitiveType``)."""
    import openvino as ov

    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    if sparse_weights_rate is not None:
        config[SPARSE_RATE] = sparse_weights_rate
    runtime = ov.Core().compile_model(str(model_xml), device, config).get_runtime_model()
    total = quantized = sparse = fully_connected = 0
    for op in runtime.get_ops():
        info = op.get_rt_info()
        if "layerType" not in info or info["layerType"].astype(str) not in COMPUTE_LAYERS:
            continue
        total += 1
        quantized += info["runtimePrecision"].astype(str).lower() in ("u8", "i8")
        if info["layerType"].astype(str) == "FullyConnected":
            fully_connected += 1
            sparse += "sparse" in info["primitiveType"].astype(str).lower()
    return Int8Layers(quantized, total, sparse, fully_connected)
