"""Pruning: Distiller's pruners on modern PyTorch (masks via torch.nn.utils.prune, physical
removal via torch-pruning), driven by a compression scheduler."""

from .masks import make_permanent, sparsity
from .registry import PRUNER_CLASSES, build_pruner
from .scheduler import CompressionScheduler
from .stats import model_stats

__all__ = [
    "PRUNER_CLASSES", "CompressionScheduler", "build_pruner", "make_permanent", "model_stats",
    "sparsity",
]
