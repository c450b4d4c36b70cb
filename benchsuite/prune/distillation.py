"""Knowledge distillation during fine-tuning (Distiller's KnowledgeDistillationPolicy).

A recipe's `knowledge_distillation: {temperature: T, distill_weight: a, student_weight: b}`
makes the dense model the fine-tuning starts from (`teacher: dense`, frozen, in eval mode) teach
the pruned one (Hinton et al. 2015): loss = b x cross-entropy + a x T^2 x KL(softmax(teacher /
T) || softmax(student / T)), the KL averaged over the mini-batch, as Distiller computed it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchsuite.prune.masks import clone_model, make_permanent


class Distillation:
    def __init__(self, model: nn.Module, teacher: str = "dense", temperature: float = 1.0,
                 distill_weight: float = 0.5, student_weight: float = 0.5) -> None:
        self.teacher = clone_model(model)
        make_permanent(self.teacher)
        self.teacher.eval().requires_grad_(False)
        self.temperature = temperature
        self.distill_weight = distill_weight
        self.student_weight = student_weight

    def loss(self, x: torch.Tensor, logits: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher = self.teacher(x)
        t = self.temperature
        kl = F.kl_div(F.log_softmax(logits / t, dim=1), F.softmax(teacher / t, dim=1),
                      reduction="batchmean")
        return self.student_weight * loss + self.distill_weight * kl * t * t
