"""Model statistics: parameters, MACs (torch-pruning's counter), sparsity of prunable weights."""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from benchsuite.prune.masks import clone_model, make_permanent
from benchsuite.prune.names import prunable_weights


def model_stats(model: nn.Module, example_input: torch.Tensor) -> dict:
    """params, macs, nonzero params and the sparsity of conv/linear weights (masks folded)."""
    clone = clone_model(model).eval()
    make_permanent(clone)
    macs, params = tp.utils.count_ops_and_params(clone, example_input)
    weights = [clone.get_parameter(n) for n in prunable_weights(clone)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    nonzero = sum(int((p != 0).sum()) for p in clone.parameters())
    return {
        "params": int(params), "macs": int(macs), "nonzero_params": nonzero,
        "weight_sparsity": zeros / max(1, total),
    }
