"""The latency model: a per-convolution lookup table measured on the target device and
precision, and a predictor of a (pruned) network's latency from its convolutions.

- `spec.py`   conv specs, the table (bilinear lookup over in/out channels), the predictor;
              pure Python: the prune worker (torch, no openvino) uses it too.
- `build.py`  the bench side: tiny OpenVINO models per conv, timed with the paired method,
              the table cached on disk per conditions (openvino, no torch).
- `arch.py`   the prune side: a torch model's conv specs (torch, no openvino).
- `report.py` predicted vs measured latency over the results table; `benchsuite latency-model`.
"""

from benchsuite.latency.spec import ConvSpec, LatencyTable, predict_us

__all__ = ["ConvSpec", "LatencyTable", "predict_us"]
