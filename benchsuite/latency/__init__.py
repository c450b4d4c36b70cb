"""The latency model: a per-convolution lookup table measured on the target device and
precision, and a predictor of a (pruned) network's latency from its convolutions.

- `spec.py`   conv specs, the table (bilinear lookup over in/out channels), the predictor;
              pure Python: the prune worker (torch, no openvino) uses it too.
- `arch.py`   the prune side: a torch model's conv specs (torch, no openvino).

The table is measured on the bench side (`bench/latency_table.py`: tiny OpenVINO models per
conv, timed with the paired rounds on the CPU-time clock, cached per conditions); predicted
against measured latency over the results table is `track/latency_model.py`
(`benchsuite latency-model report`).
"""

from benchsuite.latency.spec import ConvSpec, LatencyTable, predict_us

__all__ = ["ConvSpec", "LatencyTable", "predict_us"]
