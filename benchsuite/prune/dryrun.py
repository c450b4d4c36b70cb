"""Apply a whole recipe to a freshly built model without training (`benchsuite recipe dry-run`).

Every epoch from 0 to the recipe's last pruning epoch runs the scheduler's callbacks as the
train loop would, with one mini-batch per epoch and no optimizer step: masks, thinning and block
removal are all applied; lr schedulers step. Data-driven criteria (APoZ, activation mean,
Taylor, block ranking) see a seeded random calibration batch, so what they choose is only
illustrative; the structure (how many filters, channels, blocks) is what the recipe gives.
Regularizers add nothing without training (their thresholds see the initial weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from benchsuite.models import build_model, check_model_io
from benchsuite.prune.distiller_summary import LayerRow, layer_rows, totals
from benchsuite.prune.scheduler import CompressionScheduler
from benchsuite.recipe import Recipe

CALIBRATION = 32


@dataclass
class DryRun:
    model: str
    input_shape: tuple[int, int, int]
    epochs: int
    dense: dict[str, int]
    pruned: dict[str, int]
    rows: list[LayerRow]
    dense_rows: list[LayerRow]
    thinned: dict[str, int] = field(default_factory=dict)
    removed_blocks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "model": self.model, "input": list(self.input_shape), "epochs": self.epochs,
            "dense_macs": self.dense["macs"], "macs": self.pruned["macs"],
            "macs_ratio": self.pruned["macs"] / max(1, self.dense["macs"]),
            "dense_params": self.dense["params"], "params": self.pruned["params"],
            "nnz_params": self.pruned["nnz_params"],
            "thinned": self.thinned, "removed_blocks": self.removed_blocks,
            "layers": [r.as_dict() for r in self.rows],
        }


def bind(recipe: Recipe, model_name: str, input_shape: tuple[int, int, int],
         num_classes: int = 10, seed: int = 0) -> tuple[torch.nn.Module, CompressionScheduler]:
    """Build the model and bind the recipe to it (every name and argument checked)."""
    torch.manual_seed(seed)
    model = build_model(model_name, num_classes, input_shape[0])
    check_model_io(model_name, model, input_shape, num_classes)
    example = torch.zeros(1, *input_shape)
    gen = torch.Generator().manual_seed(seed)
    calib = (torch.randn(CALIBRATION, *input_shape, generator=gen),
             torch.randint(0, num_classes, (CALIBRATION,), generator=gen))
    return model, CompressionScheduler(recipe, model, example, calibration=calib)


def pruned_model(recipe: Recipe, model_name: str, input_shape: tuple[int, int, int],
                 num_classes: int = 10, seed: int = 0
                 ) -> tuple[torch.nn.Module, CompressionScheduler, list[LayerRow]]:
    """The recipe's pruned architecture on a fresh (untrained) model, every policy applied at
    its epoch without a training step: (model, scheduler, the dense model's layer rows). Its
    latency is the trained model's to within a few % (the weights' values moved an f32 latency
    by 3.0-3.4 % on an AMD EPYC: docs/measurements.md, "A per-op cost in the latency model")."""
    model, sched = bind(recipe, model_name, input_shape, num_classes, seed)
    example = torch.zeros(1, *input_shape)
    dense_rows = layer_rows(model, example)

    def optimizer() -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    opt = optimizer()
    sched.check(opt)
    for epoch in range(recipe.last_epoch() + 1):
        model.train()
        if sched.on_epoch_begin(epoch, opt):
            opt = optimizer()
        sched.on_minibatch_begin(epoch, 0, 1)
        sched.on_minibatch_end(epoch, 0, 1)
        sched.on_epoch_end(epoch, opt)
    return model.eval(), sched, dense_rows


def dry_run(recipe: Recipe, model_name: str, input_shape: tuple[int, int, int],
            num_classes: int = 10, seed: int = 0) -> DryRun:
    model, sched, dense_rows = pruned_model(recipe, model_name, input_shape, num_classes, seed)
    rows = layer_rows(model, torch.zeros(1, *input_shape))
    return DryRun(model_name, input_shape, recipe.last_epoch() + 1, totals(dense_rows),
                  totals(rows), rows, dense_rows, dict(sched.thinned), list(sched.removed_blocks))
