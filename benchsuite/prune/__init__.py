"""Pruning: Distiller's pruners on modern PyTorch (masks via torch.nn.utils.prune, physical
removal via torch-pruning), driven by a compression scheduler."""

from benchsuite.prune.footprint import model_stats
from benchsuite.prune.masks import make_permanent, sparsity
from benchsuite.prune.registry import PRUNER_CLASSES, build_pruner
from benchsuite.prune.scheduler import CompressionScheduler

__all__ = [
    "PRUNER_CLASSES", "CompressionScheduler", "build_pruner", "make_permanent", "model_stats",
    "sparsity",
]
