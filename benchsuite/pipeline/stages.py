"""The pipeline stages, as the broker sees them: JSON spec + files in, StageResult out.

- `train_stage` (prune worker; `pipeline/dense.py`): train the dense baseline once per (model,
  dataset, seed, epochs, training images), cached by content hash in the worker's cache;
  returns its checkpoint and ONNX. The dense-zoo control trains its small dense networks there.
- `prune_stage` (prune worker): apply a recipe to the dense checkpoint while fine-tuning,
  evaluate, count params/MACs, export ONNX; with `control: scratch`, also train the pruned
  architecture from a fresh initialisation for the same total epochs (Liu et al., ICLR 2019)
  and export it for the bench stage. Cached on the worker by content hash of the whole job.
- `bench_stage` (bench worker): ONNX -> static IR for dense and pruned (the pruned one quantized
  to INT8 by NNCF for an int8 case); the speed-up measured in one process in paired
  random-order rounds, with its interval; benchmark_app on both (per-layer counters, FPS, a
  cross-check speed-up); Top-1 of both compiled models, as benchmarked, on the test split, and
  of the scratch control's model deployed the same way.
- `calibrate_stage` (bench worker): the dense model against itself (A/A), once a session.
- `latency_table_stage` (bench worker): the per-op latency table of the dense model's
  geometries on the target device and precision (`bench/latency_table.py`, cached on the bench
  side); its JSON goes to the prune stage in the job's spec (`LatencyBudgetPruner`) and to the
  bench stage (the predicted latency in the result row).
- `calibration_net_stage` (prune worker): the table's calibration network, the model untrained
  with its blocks' inner widths halved; the table stage measures its speed-up over the dense
  network and fits the network's per-op cost on it (`latency.spec.fit_per_op`).

Every stage trains on the training images less the validation split (`data.load_case_data`):
what chooses (the per-epoch Top-1 a search stops on) reads `val_top1`; the verdict reads the
test split (`top1`). Torch is imported inside the prune stages only: a bench worker's
environment has no torch.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from benchsuite.core.errors import UserError
from benchsuite.core.hashing import code_version, content_hash, file_digest
from benchsuite.core.paths import cache_dir
from benchsuite.core.stage_specs import (
    BenchSpec,
    CalibrateSpec,
    CalibrationNetSpec,
    LatencyTableSpec,
    PruneSpec,
    TrainSpec,
)
from benchsuite.core.userspec import input_digests
from benchsuite.pipeline.dense import (
    load_checkpoint,
    load_data,
    save_checkpoint,
    scores,
    train_stage,
)
from benchsuite.pipeline.executor import Stage, StageResult, extra_stages, load_stage
from benchsuite.pipeline.folder_cache import cached_folder

log = logging.getLogger(__name__)


PRUNED_FILES = ("pruned.pt", "pruned.onnx", "scratch.onnx")


def prune_stage(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    """spec: model, dataset, seed, epochs (fine-tuning), recipe_text, recipe_name[, data_dir]
    [, train_images][, epoch_top1][, control: "scratch" with dense_epochs]. files: checkpoint
    (the dense model). Result files: checkpoint, onnx (the pruned model)[, scratch_onnx: the
    scratch control's model, for the bench stage to score as deployed].

    Cached on the worker by content hash of the spec, the input files and the code that
    prunes (`pruned_key`): a case that differs only on the bench side (an INT8 case following
    an f32 one, the scratch control beside it) reuses the fine-tuned (and scratch-trained)
    models. A watched job (`epoch_top1`: a search's trial, whose per-epoch progress lines its
    engine reads and may stop it on) always runs."""
    if spec.get("epoch_top1"):
        meta, hit = _prune(spec, files, workdir), False
        paths = {name: workdir / name for name in PRUNED_FILES if (workdir / name).exists()}
    else:
        meta, paths, hit = cached_folder(cache_dir() / "pruned", pruned_key(spec, files),
                                         PRUNED_FILES, lambda out: _prune(spec, files, out),
                                         what="pruned model")
    out = {"checkpoint": paths["pruned.pt"], "onnx": paths["pruned.onnx"]}
    if "scratch.onnx" in paths:
        out["scratch_onnx"] = paths["scratch.onnx"]
    return StageResult(meta | {"cached": hit}, out)


def pruned_key(spec: dict, files: dict[str, Path]) -> str:
    """The pruned models' cache key: the whole spec (recipe, epochs, latency table, control),
    each input file's bytes, the code a case's result depends on (`CASE_CODE`) and what the
    model and data are beyond their names (`input_digests`, as the dense model's key)."""
    from benchsuite.recipe.case import CASE_CODE

    inputs = input_digests(spec["model"], spec["dataset"], spec.get("data_dir"))
    return content_hash({"spec": spec, "code": code_version(*CASE_CODE),
                         "files": {k: file_digest(p) for k, p in sorted(files.items())}}
                        | ({"inputs": inputs} if inputs else {}))


def _prune(spec: dict, files: dict[str, Path], folder: Path) -> dict:
    import torch

    from benchsuite.export.onnx import export_onnx
    from benchsuite.prune import CompressionScheduler, model_stats
    from benchsuite.prune.training import FINETUNE_LR, evaluate, train
    from benchsuite.recipe import parse_recipe

    recipe = parse_recipe(spec["recipe_text"], source=spec.get("recipe_name"))  # fails first
    data = load_data(spec)
    model = load_checkpoint(files["checkpoint"], spec["model"])
    example = torch.zeros(1, *data.input_shape)
    calibration = (data.x_train[:256], data.y_train[:256])  # for APoZ / Taylor / block ranking
    scheduler = CompressionScheduler(recipe, model, example, calibration=calibration,
                                     latency_table=spec.get("latency_table"))
    epochs = max(int(spec["epochs"]), recipe.last_epoch() + 1)
    # `epoch_top1`: Top-1 on the validation split after every epoch, on the progress lines (a
    # search engine may stop the stage there: multi-fidelity) and in the result; the test
    # split is read once, at the end
    held_out = ((lambda m: evaluate(m, data.x_val, data.y_val)["top1"])
                if spec.get("epoch_top1") else None)
    t0 = time.perf_counter()
    logs = train(model, data, epochs, FINETUNE_LR, spec["seed"], hooks=scheduler,
                 log=lambda e: log.info("fine-tune epoch %d loss %.3f", e.epoch, e.loss),
                 epoch_metric=held_out)
    finetune_seconds = time.perf_counter() - t0
    metrics = scores(model, data)
    kd = scheduler.distillation  # the teacher's Top-1: it is the dense model's
    extra = ({"epoch_top1": [e.top1 for e in logs]} if held_out else {}) | (
        {"kd_teacher_top1": evaluate(kd.teacher, data.x_test, data.y_test)["top1"]} if kd else {})
    if spec.get("control") == "scratch":
        scratch, fields = scratch_control(model, data, spec, int(spec["dense_epochs"]) + epochs)
        export_onnx(scratch, data.input_shape, folder / "scratch.onnx")
        extra |= fields
    stats = model_stats(model, example)
    t0 = time.perf_counter()
    export_onnx(model, data.input_shape, folder / "pruned.onnx")
    export_seconds = time.perf_counter() - t0
    save_checkpoint(model, spec, data, folder / "pruned.pt")
    return {
        **metrics, **stats,
        "finetune_epochs": epochs, "finetune_seconds": finetune_seconds,
        "export_seconds": export_seconds, "thinned": scheduler.thinned,
        "removed_blocks": scheduler.removed_blocks,
        "latency_plan": next((p.plan for p in scheduler.pruners.values()
                              if getattr(p, "plan", None)), None), **extra,
    }


def reinitialise(model, seed: int) -> None:
    """Fresh weights for every layer of `model`, its shapes (a thinned model's) and its masks
    (an element-wise pruned model's zeros) kept: the pruned architecture, untrained. Every
    module's `reset_parameters`, convs as the ResNets initialise them, then the model's own
    `init_weights()` where it has one."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()  # a masked weight's drawn values land in `weight`
                if hasattr(module, "weight_orig"):
                    module.weight_orig.copy_(module.weight)
            if isinstance(module, torch.nn.Conv2d):  # as the models initialise their convs
                target = getattr(module, "weight_orig", module.weight)
                torch.nn.init.kaiming_normal_(target, mode="fan_out", nonlinearity="relu")
        init = getattr(model, "init_weights", None)
        if callable(init):  # a model's own initialisation (MobileNetV2, the ViT), as it was
            init()  # built with: the scratch control starts as the dense model did


def scratch_control(pruned, data, spec: dict, epochs: int) -> tuple[object, dict]:
    """The scratch control (Liu et al., "Rethinking the Value of Network Pruning", ICLR 2019):
    the pruned architecture re-initialised and trained with the dense recipe for `epochs`, the
    case's whole budget (dense + fine-tuning epochs). When it reaches the pruned model's Top-1,
    the pruning bought an architecture, not weights. Returns the trained model (the bench stage
    scores it as deployed) and its torch figures."""
    from benchsuite.prune.masks import clone_model
    from benchsuite.prune.training import DENSE_LR, DENSE_WARMUP, train

    model = clone_model(pruned)
    reinitialise(model, spec["seed"])
    t0 = time.perf_counter()
    train(model, data, epochs, DENSE_LR, spec["seed"], warmup=DENSE_WARMUP,
          log=lambda e: log.info("scratch control epoch %d loss %.3f", e.epoch, e.loss))
    seconds = time.perf_counter() - t0
    got = scores(model, data)
    return model, {"scratch_top1": got["top1"], "scratch_val_top1": got["val_top1"],
                   "scratch_epochs": epochs, "scratch_seconds": seconds}


def _to_ir(files: dict[str, Path], names: tuple[str, ...], shape: tuple[int, ...],
           workdir: Path) -> tuple[dict[str, Path], float]:
    from benchsuite.bench.ir import onnx_to_ir

    t0 = time.perf_counter()
    models = {name: onnx_to_ir(files[f"{name}_onnx"], workdir / name / "model.xml", shape)
              for name in names}
    return models, time.perf_counter() - t0


def bench_stage(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    """spec: input_shape, settings (BenchSettings fields)[, paired (PairedSettings fields)]
    [, int8: true]. files: dense_onnx, pruned_onnx[, eval_data][, scratch_onnx: the scratch
    control's model, scored as deployed beside the pruned one]. The speed-up is measured in
    this process in paired rounds (bench/verdict.py); benchmark_app runs beside it for per-layer
    counters and a cross-check. With int8 the pruned IR is quantized by NNCF first (calibrated
    on the blob's training subset) and timed against the dense IR at f32. With eval_data, both
    compiled models' Top-1 is measured on its test split (bench/accuracy.py)."""
    from benchsuite.bench import BenchSettings
    from benchsuite.bench.verdict import measure_pair

    models, convert_seconds = _to_ir(files, ("dense", "pruned"), tuple(spec["input_shape"]),
                                     workdir)
    settings = BenchSettings(**spec.get("settings", {}))
    eval_data = None
    if "eval_data" in files:
        from benchsuite.bench.evaldata import read_eval_data

        eval_data = read_eval_data(files["eval_data"])
    extra: dict = {}
    if spec.get("int8"):
        from benchsuite.bench.int8 import quantize_ir

        if eval_data is None:
            raise ValueError("an int8 case needs the evaluation blob (eval_data): its "
                             "calibration subset of the training split")
        models["pruned"], extra = quantize_ir(models["pruned"], eval_data.x_calib,
                                              workdir / "pruned_int8" / "model.xml",
                                              settings.device)
        if settings.device.upper().startswith("CPU"):
            from benchsuite.bench.int8 import int8_layers

            layers = int8_layers(models["pruned"], settings.device,
                                 sparse_weights_rate=settings.sparse_weights_rate)
            extra["int8_layers"] = layers.describe(settings.sparse_weights_rate)
    result = measure_pair(models, workdir / "reports", settings, spec.get("paired"))
    if eval_data is not None and result.get("conditions", {}).get("mode") != "interleaved":
        from benchsuite.bench.accuracy import deployed_pair

        label = ("INT8 (NNCF), dense at f32" if spec.get("int8")
                 else str(result["conditions"].get("precision")))
        extra |= deployed_pair(models, eval_data.x_test, eval_data.y_test, settings.device,
                               settings.precision, (spec.get("paired") or {}).get("threads"),
                               label)
        if "scratch_onnx" in files:
            extra |= _scratch_deployed(files["scratch_onnx"], spec, settings, eval_data,
                                       workdir)
    sizes = {f"{n}_ir_bytes": p.stat().st_size + p.with_suffix(".bin").stat().st_size
             for n, p in models.items()}
    if spec.get("latency_table") and not spec.get("int8"):  # the table is not of INT8 kernels
        from benchsuite.bench.latency_table import predict_pair

        result |= predict_pair(models, spec["latency_table"], result["dense_latency_median_us"])
    return StageResult(result | extra | {"convert_seconds": convert_seconds, **sizes}, {})


def _scratch_deployed(onnx: Path, spec: dict, settings, eval_data, workdir: Path) -> dict:
    """The scratch control's model deployed as the pruned one was (the same conversion, the same
    NNCF quantization for an int8 case, compiled at the same precision and threads): its Top-1
    on the test split. Its speed is the pruned model's (the same architecture): not measured."""
    from benchsuite.bench.accuracy import deployed_accuracy
    from benchsuite.bench.ir import onnx_to_ir

    xml = onnx_to_ir(onnx, workdir / "scratch" / "model.xml", tuple(spec["input_shape"]))
    if spec.get("int8"):
        from benchsuite.bench.int8 import quantize_ir

        xml, _ = quantize_ir(xml, eval_data.x_calib, workdir / "scratch_int8" / "model.xml",
                             settings.device)
    got = deployed_accuracy(xml, eval_data.x_test, eval_data.y_test, settings.device,
                            settings.precision, (spec.get("paired") or {}).get("threads"))
    return {"scratch_top1_deployed": got["top1"], "scratch_accuracy_seconds": got["seconds"]}


def calibrate_stage(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    """A/A calibration (bench worker): the dense model measured against itself with the same
    method and settings as the cases. spec: input_shape, settings[, paired]; files: dense_onnx."""
    from benchsuite.bench import BenchSettings
    from benchsuite.bench.verdict import calibrate

    models, _ = _to_ir(files, ("dense",), tuple(spec["input_shape"]), workdir)
    settings = BenchSettings(**spec.get("settings", {}))
    return StageResult(calibrate(models["dense"], settings, spec.get("paired")), {})


def calibration_net_stage(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    """The latency table's calibration network (prune worker): the model untrained with every
    block's inner width halved (`prune.budget_units.thinned`), and the model itself untrained,
    as ONNX: the pair whose speed-up the per-op cost is fitted on. Both untrained, from one
    initialisation: the weights' values move an f32 latency here (a trained MobileNetV2 and ViT
    ran 3.0-3.4 % slower than the same networks untrained, AMD EPYC), so a trained dense
    network against an untrained thinned one would measure that too. spec: model,
    input_shape, num_classes, step. Files: {"untrained_onnx", "calibration_onnx"}, none when
    the model has no width the budget pruner knows."""
    import torch

    from benchsuite.export.onnx import export_onnx
    from benchsuite.models import build_model
    from benchsuite.prune.budget_units import thinned

    shape = tuple(spec["input_shape"])
    with torch.random.fork_rng():  # one initialisation, the worker's random state untouched
        torch.manual_seed(0)
        model = build_model(spec["model"], spec["num_classes"], shape[0]).eval()
    small = thinned(model, torch.zeros(1, *shape), int(spec["step"]))
    if small is None:
        return StageResult({"calibration_net": None}, {})
    return StageResult({"calibration_net": "inner widths halved"}, {
        "untrained_onnx": export_onnx(model, shape, workdir / "untrained.onnx"),
        "calibration_onnx": export_onnx(small, shape, workdir / "calibration.onnx")})


def latency_table_stage(spec: dict, files: dict[str, Path], workdir: Path) -> StageResult:
    """The latency table for the dense model (bench worker). spec: input_shape, network, step,
    settings (BenchSettings fields)[, paired]; files: dense_onnx[, untrained_onnx and
    calibration_onnx: the network's per-op cost is fitted on their speed-up,
    `calibration_net_stage`]. Result: {"table": ...}
    with only this network's overhead, small enough for a job spec (a few hundred numbers)."""
    from benchsuite.bench import BenchSettings
    from benchsuite.bench.latency_table import UNIT_SETTINGS, build_table
    from benchsuite.bench.paired import PairedSettings
    from benchsuite.bench.verdict import paired_settings

    pair = ("untrained", "calibration") if "calibration_onnx" in files else ()
    models, _ = _to_ir(files, ("dense", *pair), tuple(spec["input_shape"]), workdir)
    case = paired_settings(BenchSettings(**spec.get("settings", {})), spec.get("paired"))
    settings = PairedSettings.from_dict(case.to_dict() | UNIT_SETTINGS)  # threads etc. kept
    table = build_table(models["dense"], spec["network"], int(spec["step"]), settings,
                        workdir=workdir / "units",
                        calibration=(models["untrained"], models["calibration"]) if pair else None)
    table.networks = {spec["network"]: table.networks[spec["network"]]}
    return StageResult({"table": table.to_dict()}, {})


def check_bench_settings(stage: str, settings: dict) -> None:
    """A bench job's `settings` hold BenchSettings fields only: an unknown key (a typo, another
    version's field) is a UserError naming it, on the submitting side and on the worker."""
    import dataclasses

    from benchsuite.bench.measurement import BenchSettings

    known = [f.name for f in dataclasses.fields(BenchSettings)]
    unknown = [str(k) for k in settings if k not in known]
    if unknown:
        raise UserError(f"malformed {stage} job: unknown settings key(s) "
                        f"{', '.join(map(repr, unknown))[:200]}; known: {', '.join(known)}")


TRAIN = Stage("train", "prune", train_stage, TrainSpec)
PRUNE = Stage("prune", "prune", prune_stage, PruneSpec)
BENCH = Stage("bench", "bench", bench_stage, BenchSpec, check_bench_settings)
CALIBRATE = Stage("calibrate", "bench", calibrate_stage, CalibrateSpec, check_bench_settings)
LATENCY_TABLE = Stage("latency_table", "bench", latency_table_stage, LatencyTableSpec,
                      check_bench_settings)
CALIBRATION_NET = Stage("calibration_net", "prune", calibration_net_stage, CalibrationNetSpec)
STAGES: dict[str, Stage] = {s.name: s for s in (TRAIN, PRUNE, BENCH, CALIBRATE, LATENCY_TABLE,
                                                CALIBRATION_NET)}


def stage_named(name: str) -> Stage:
    """The stage a job message names: a built-in one, or one of `$BENCHSUITE_EXTRA_STAGES`
    (imported now). KeyError for a name neither knows."""
    if name in STAGES:
        return STAGES[name]
    extra = extra_stages()
    if name not in extra:
        raise KeyError(f"unknown stage {name!r}; known: {sorted([*STAGES, *extra])}")
    stage = load_stage(extra[name])
    if stage.name != name:
        raise ValueError(f"{extra[name]} is stage {stage.name!r}, not {name!r}")
    return stage
