"""Knowledge distillation during fine-tuning: the loss is used, and the dense model teaches,
in-process and on a Redis prune worker; the held-out Top-1 after every epoch (multi-fidelity)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from benchsuite.models import build_model
from benchsuite.pipeline.stages import PRUNE, TRAIN
from benchsuite.prune import CompressionScheduler
from benchsuite.prune.training import train
from benchsuite.recipe import parse_recipe

pytest_plugins = ["broker_support"]
X = torch.zeros(1, 1, 32, 32)

# half the filters of conv1 masked at epoch 0: the student starts away from its teacher
KD_RECIPE = """
version: 1
pruners:
  filters: {{class: L1RankedStructureParameterPruner, group_type: Filters,
             desired_sparsity: 0.5, weights: [conv1.weight]}}
knowledge_distillation: {{temperature: 4, distill_weight: {kd}, student_weight: {ce}}}
policies:
  - pruner: {{instance_name: filters}}
    epochs: [0]
"""


def _kl(teacher: torch.nn.Module, student: torch.nn.Module, x: torch.Tensor) -> float:
    teacher.eval()
    student.eval()
    with torch.no_grad():
        return float(F.kl_div(F.log_softmax(student(x), 1), F.softmax(teacher(x), 1),
                              reduction="batchmean"))


def _fine_tune(teacher: torch.nn.Module, digits, kd: float, ce: float) -> torch.nn.Module:
    student = copy.deepcopy(teacher)
    sched = CompressionScheduler(parse_recipe(KD_RECIPE.format(kd=kd, ce=ce), "kd.yaml"),
                                 student, X)
    assert (sched.distillation is None) == (kd == 0)  # weight 0: KD off, no teacher pass
    train(student, digits, 2, 0.01, 0, hooks=sched)
    return student


def test_kd_moves_the_student_toward_the_teacher(digits, one_thread):
    torch.manual_seed(0)
    teacher = build_model("small_cnn", 10, 1)
    train(teacher, digits, 1, 0.05, 0)
    x = digits.x_test[:256]
    kd = _fine_tune(teacher, digits, kd=1.0, ce=0.0)  # only the distillation term
    ce = _fine_tune(teacher, digits, kd=0.0, ce=1.0)  # the same fine-tuning without it
    # the KL divergence to the teacher is what the KD term minimises: with it the student's
    # outputs end far closer to the teacher's than cross-entropy alone brings them
    assert _kl(teacher, kd, x) < 0.5 * _kl(teacher, ce, x)


def _kd_case_specs(tmp_path: Path) -> tuple[dict, dict]:
    dense = {"model": "small_cnn", "dataset": "digits", "seed": 0, "epochs": 1}
    prune = dense | {"epochs": 2, "recipe_name": "kd", "epoch_top1": True,
                     "recipe_text": KD_RECIPE.format(kd=0.7, ce=0.3)}
    return dense, prune


def _check_teacher_is_dense(run) -> None:
    dense_spec, prune_spec = _kd_case_specs(Path("."))
    dense = run(TRAIN, dense_spec, {})
    pruned = run(PRUNE, prune_spec, {"checkpoint": dense.files["checkpoint"]})
    assert pruned.result["kd_teacher_top1"] == dense.result["top1"]
    assert len(pruned.result["epoch_top1"]) == 2
    # the per-epoch Top-1 a search stops on is the validation split's, not the test split's
    assert pruned.result["epoch_top1"][-1] == pruned.result["val_top1"]


def test_the_dense_model_teaches_in_process(tmp_path, one_thread):
    from benchsuite.pipeline.executor import LocalExecutor

    ex = LocalExecutor(tmp_path)
    _check_teacher_is_dense(lambda stage, spec, files: ex.run(stage, spec, files))


def test_the_dense_model_teaches_on_a_redis_worker(redis_server, r, start_worker,
                                                   executor_for):
    start_worker(redis_server.url, "prune")
    ex = executor_for(redis_server.url, timeout=300)
    lines: list[str] = []
    _check_teacher_is_dense(lambda stage, spec, files: ex.run(stage, spec, files,
                                                              progress=lines.append))
    assert any("held-out top1" in line for line in lines)  # the per-epoch value travelled
