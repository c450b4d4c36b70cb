"""Convert ONNX to a static-shape OpenVINO IR (bench side: needs openvino, not torch).

`openvino.convert_model` with only an example input gives a dynamic `[?,C,?,?]` input that
benchmark_app refuses; passing `input=[shape]` makes it static (docs/measurements.md).

An ONNX file OpenVINO refuses to read (not a model, external data outside its folder, an
operator it does not know) is `ModelRefused`, a UserError: the same file fails the same way
again, so a worker dead-letters its job at once instead of retrying it.
"""

from __future__ import annotations

from pathlib import Path

from benchsuite.core.errors import UserError


class ModelRefused(UserError):
    """OpenVINO cannot read a job's ONNX file (deterministic: not retried)."""


def onnx_to_ir(onnx_path: Path, xml_path: Path, input_shape: tuple[int, ...]) -> Path:
    """Write `xml_path` (+ .bin) for `onnx_path` with a static input of `(1, *input_shape)`."""
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = ov.convert_model(str(onnx_path), input=[(1, *input_shape)])
    except MemoryError:
        raise
    except Exception as exc:  # openvino's RuntimeError, ovc's Error: the file, not the machine
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = "; ".join(lines[-3:])[:500] or type(exc).__name__
        raise ModelRefused(f"OpenVINO cannot read the ONNX file {Path(onnx_path).name}: "
                           f"{text}") from exc
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return xml_path


def runtime_version() -> str:
    import openvino as ov

    return ov.get_version()
