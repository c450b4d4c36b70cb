"""Convert ONNX to a static-shape OpenVINO IR (bench side: needs openvino, not torch).

`openvino.convert_model` with only an example input gives a dynamic `[?,C,?,?]` input that
benchmark_app refuses; passing `input=[shape]` makes it static (docs/measurements.md).
"""

from __future__ import annotations

from pathlib import Path


def onnx_to_ir(onnx_path: Path, xml_path: Path, input_shape: tuple[int, ...]) -> Path:
    """Write `xml_path` (+ .bin) for `onnx_path` with a static input of `(1, *input_shape)`."""
    import openvino as ov

    xml_path = Path(xml_path)
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    model = ov.convert_model(str(onnx_path), input=[(1, *input_shape)])
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return xml_path


def runtime_version() -> str:
    import openvino as ov

    return ov.get_version()
