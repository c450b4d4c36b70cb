"""Export: torch -> ONNX (prune side), ONNX -> OpenVINO IR (bench side).

Import the submodule you need (`benchsuite.export.onnx` needs torch, `benchsuite.bench.ir`
needs openvino), so each worker environment imports only what it has.
"""
