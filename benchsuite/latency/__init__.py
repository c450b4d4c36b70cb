"""The latency model: a per-op lookup table measured on the target device and precision, and a
predictor of a (pruned) network's latency from its convolutions, depthwise convolutions, linear
layers and attentions.

- `spec.py`   op specs, the table (bilinear lookup over each kind's pruned dimensions), the
              predictor; pure Python: the prune worker (torch, no openvino) uses it too.
- `arch.py`   the prune side: a torch model's op specs (torch, no openvino).

The table is measured on the bench side (`bench/latency_table.py`: tiny OpenVINO models per
op, timed with the paired rounds on the CPU-time clock, cached per conditions); predicted
against measured latency over the results table is `track/latency_model.py`
(`benchsuite latency-model report`).
"""

from benchsuite.latency.spec import (
    AttentionSpec,
    ConvSpec,
    DepthwiseSpec,
    LatencyTable,
    LinearSpec,
    OpSpec,
    predict_us,
)

__all__ = ["AttentionSpec", "ConvSpec", "DepthwiseSpec", "LatencyTable", "LinearSpec", "OpSpec",
           "predict_us"]
