"""Model file statistics for results: ONNX / IR sizes (params and MACs come from the torch side).

``onnx_parameters`` counts initializer elements of an ONNX file: a cross-check of the torch
count that needs only the ``onnx`` package (and reveals that element-wise sparsity keeps every
weight: zeros are stored like any value, so the file does not shrink).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def file_sizes(model: Path) -> dict[str, int]:
    """Bytes of an ONNX file or an IR (``.xml`` + ``.bin``); keys ``onnx_bytes`` or
    ``ir_xml_bytes``, ``ir_bin_bytes``, ``ir_bytes``."""
    model = Path(model)
    if model.suffix == ".xml":
        xml = model.stat().st_size
        bin_path = model.with_suffix(".bin")
        binary = bin_path.stat().st_size if bin_path.is_file() else 0
        return {"ir_xml_bytes": xml, "ir_bin_bytes": binary, "ir_bytes": xml + binary}
    return {"onnx_bytes": model.stat().st_size}


def onnx_parameters(model: Path) -> dict[str, int]:
    """Initializer elements of an ONNX file: total and non-zero."""
    import numpy
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model)).graph
    total = nonzero = 0
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        total += int(array.size)
        nonzero += int(numpy.count_nonzero(array))
    return {"onnx_params": total, "onnx_nonzero_params": nonzero}


def model_stats(*models: Path) -> dict[str, Any]:
    """Sizes of each file given (ONNX and/or IR), and ONNX parameter counts when onnx imports."""
    out: dict[str, Any] = {}
    for model in models:
        out.update(file_sizes(model))
        if Path(model).suffix == ".onnx":
            try:
                out.update(onnx_parameters(model))
            except ImportError:
                pass
    return out
