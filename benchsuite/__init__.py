"""benchsuite: latency-aware pruning experiments as pytest cases (PyTorch -> OpenVINO)."""

__version__ = "0.1.0"
