"""Distiller class names -> implementations (structured ones as criterion x schedule)."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from benchsuite.prune.block_removal import BlockRemover
from benchsuite.prune.criteria import Calibration
from benchsuite.prune.elementwise import (
    AutomatedGradualPruner,
    MagnitudeParameterPruner,
    SensitivityPruner,
    SparsityLevelParameterPruner,
    SplicingPruner,
)
from benchsuite.prune.heads import AttentionHeadPruner
from benchsuite.prune.kernel_blocks import RankedBlocksPruner
from benchsuite.prune.latency_budget import LatencyBudgetPruner
from benchsuite.prune.pruner import Pruner
from benchsuite.prune.structured import (
    L1RankedStructureParameterPruner,
    RandomLevelStructureParameterPruner,
    structure_class,
)
from benchsuite.prune.tp_uniform import TorchPruningUniform
from benchsuite.recipe import Component

# Distiller one-shot name -> (criterion, Bernoulli selection); `<name>_AGP` is the AGP variant.
STRUCTURED: dict[str, tuple[str, bool]] = {
    "L1RankedStructureParameterPruner": ("l1", False),
    "L2RankedStructureParameterPruner": ("l2", False),
    "ActivationAPoZRankedFilterPruner": ("apoz", False),
    "ActivationMeanRankedFilterPruner": ("activation_mean", False),
    "GradientRankedFilterPruner": ("taylor", False),
    "RandomRankedFilterPruner": ("random", False),
    "BernoulliFilterPruner": ("random", True),
}

PRUNER_CLASSES: dict[str, type[Pruner]] = {
    cls.__name__: cls
    for cls in (
        SparsityLevelParameterPruner, MagnitudeParameterPruner, SensitivityPruner,
        SplicingPruner, AutomatedGradualPruner, L1RankedStructureParameterPruner, BlockRemover,
        RandomLevelStructureParameterPruner, LatencyBudgetPruner, TorchPruningUniform,
        AttentionHeadPruner,
    )
}
for _name, (_criterion, _bernoulli) in STRUCTURED.items():
    PRUNER_CLASSES.setdefault(_name, structure_class(_name, _criterion, False, _bernoulli))
    PRUNER_CLASSES[f"{_name}_AGP"] = structure_class(f"{_name}_AGP", _criterion, True,
                                                     _bernoulli)


def build_pruner(component: Component, model: nn.Module, example_input: torch.Tensor,
                 calibration: Calibration | None = None,
                 latency_table: dict | None = None) -> Pruner:
    cls = PRUNER_CLASSES[component.cls]
    if component.args.get("group_type") == "Blocks":  # L1/L2 only (the catalog's choices)
        return RankedBlocksPruner(component, model, cls.criterion, cls.gradual)
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict = {}
    if "example_input" in params:
        kwargs["example_input"] = example_input
    if "calibration" in params:
        kwargs["calibration"] = calibration
    if "latency_table" in params:
        kwargs["latency_table"] = latency_table
    return cls(component, model, **kwargs)
