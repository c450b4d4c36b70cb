"""One experiment = one case: a recipe (with its template parameters) applied to one model on
one dataset, benchmarked on one device at one precision. `run_case` drives the stages through
an executor (in-process or over Redis) and returns the result row.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchsuite.core.paths import cache_dir
from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.pipeline.assemble import result_from_stages
from benchsuite.pipeline.executor import Executor, StageResult
from benchsuite.pipeline.stages import (
    BENCH,
    CALIBRATE,
    CALIBRATION_NET,
    LATENCY_TABLE,
    PRUNE,
    TRAIN,
)
from benchsuite.recipe.case import Case, CaseError, check_settings, combination_problem, slug

Progress = Callable[[str], None]
# a recipe may stretch fine-tuning past --epochs (to its last policy epoch + 1), up to this many
# times (or 20 epochs more): beyond, it is a typo or a schedule meant for --schedule-scale
MAX_EPOCH_STRETCH = 4


def validate(case: Case) -> None:
    """Parse the recipe and bind it to a fresh model: bad recipes fail before any training."""
    import torch

    from benchsuite.data import describe_dataset
    from benchsuite.models import build_model, check_model_io
    from benchsuite.prune import CompressionScheduler
    from benchsuite.prune.fit import explain_misfit
    from benchsuite.recipe import RecipeError, parse_recipe

    check_settings(case)
    if (problem := combination_problem(case)) is not None:
        raise CaseError(problem)
    # a wrong path fails here, clearly
    data_shape, num_classes = describe_dataset(case.dataset, case.data_dir)
    model = build_model(case.model, num_classes, data_shape[0])
    check_model_io(case.model, model, data_shape, num_classes)
    if case.zoo_model is not None:
        check_model_io(case.zoo_model, build_model(case.zoo_model, num_classes, data_shape[0]),
                       data_shape, num_classes)
    recipe = parse_recipe(case.recipe_text(), source=case.recipe_path.name)
    needed = recipe.last_epoch() + 1  # fine-tuning runs at least this long
    if needed > max(MAX_EPOCH_STRETCH * case.epochs, case.epochs + 20):
        raise CaseError(
            f"{case.recipe_path.name}: its policies run to epoch {needed - 1}, so fine-tuning "
            f"would take {needed} epochs, not the {case.epochs} asked (--epochs); pass --epochs "
            f"{needed} if you mean it, or shrink the schedule with --schedule-scale "
            f"{case.epochs / needed:.2g}")
    try:
        CompressionScheduler(recipe, model, torch.zeros(1, *data_shape))
    except RecipeError as e:  # a weight the model lacks: say which models the recipe fits
        raise explain_misfit(e, recipe, case.model) from None


MIN_TELLING_IMAGES = 100


def check_dense(case: Case, dense: dict) -> None:
    """A dense reference whose Top-1 is not above chance (its 95 % interval reaches 1 /
    classes) makes every floor meaningless: a CaseError naming its training budget."""
    from benchsuite.core.stats import wilson_interval

    chance = 1 / int(dense.get("num_classes") or 10)
    images = int(dense["test_images"])
    low, _ = wilson_interval(float(dense["top1"]), images)
    # a test split this small cannot tell a model from chance (a toy folder): not an error
    if low <= chance and images >= MIN_TELLING_IMAGES:
        raise CaseError(
            f"{case.label}: the dense {case.model} reaches Top-1 {dense['top1']:.4f} on "
            f"{dense['test_images']} test images, not above chance ({chance:.2f}): after "
            f"{case.dense_epochs} dense epochs (--dense-epochs) on {dense.get('train_images')} "
            "training images every floor is meaningless; train it longer")


# what every stored result has: without them an entry is no result (cut short, edited)
_NEEDED = ("top1", "speedup", "latency_median_us")


def _cached(case_id: str) -> CaseResult | None:
    """The case's stored result, or None. An entry that is not one (cut short by a crash
    before its rename reached the disk, edited by hand: not JSON, another case's, figures
    missing) is moved aside with a warning naming it, and the case runs again: it used to be a
    JSONDecodeError traceback on every run, or a row of NaNs recorded as the result."""
    path = cache_dir() / "results" / f"{case_id}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not a result")
        result = CaseResult.from_dict(data)
        if result.case_id != case_id:
            raise ValueError(f"the result of case {str(result.case_id)[:40]!r}")
        missing = [k for k in _NEEDED if not _finite(getattr(result, k))]
        if missing or not result.label:
            raise ValueError(f"no {', '.join(missing) or 'label'}")
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        path.replace(aside)
        warnings.warn(f"{path}: a damaged cached result ({str(e)[:200]}); moved it to "
                      f"{aside.name}; the case runs again", stacklevel=2)
        return None
    return result


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _store(result: CaseResult) -> None:
    path = cache_dir() / "results" / f"{result.case_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    data = result.to_dict()
    for state in ("cached", "outcome", "artifacts"):  # of one run, not of the result
        data.pop(state)
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)  # atomic: a killed writer leaves the old file or the new one


def mark_recorded(case_id: str, wandb_run: str | None = None) -> None:
    """The row of this case is in the results table (and W&B): a later run that finds it in
    the cache need not record it again. Until then a cached row is recorded again, so a failed
    append (a broken table, a full disk) loses nothing."""
    result = _cached(case_id)
    if result is not None and not result.recorded:
        _store(replace(result, recorded=True, wandb_run=wandb_run or result.wandb_run))


def run_case(case: Case, executor: Executor, force: bool = False,
             progress: Progress | None = None, epoch_top1: bool = False) -> CaseResult:
    """Run (or fetch from the result cache) one case; returns its result, not yet decided
    (threshold) nor recorded: `track.recording.Recorder` does both. A cached result whose
    measurement was disturbed (`bench_disturbed`) is not final: the case runs again.

    `epoch_top1`: the prune stage evaluates the held-out Top-1 after every fine-tuning epoch
    and reports it on its progress lines (a sweep's early stopping reads them there; a
    `progress` callback raising `progress.StopStage` stops the case)."""
    say = progress or (lambda _msg: None)
    if not force and (cached := _cached(case.case_id)) is not None:
        if not cached.bench_disturbed:
            say("cached result")
            return replace(cached, cached=True)
        # preempted rounds: its interval may not hold, so it is not final (the new result
        # replaces it in the cache and is recorded as a new row)
        say("the cached result was disturbed (its paired rounds were preempted): measuring "
            "the case again")
    try:
        validate(case)
    except (ValueError, OSError) as e:  # the recipe, model or data: the user's to fix
        raise CaseError(f"{case.label}: {e}") from None
    t0 = time.perf_counter()
    say("dense baseline")
    dense = executor.run(TRAIN, case.dense_spec(), {},
                         progress=lambda line: say(f"dense baseline: {line}"))
    check_dense(case, dense.result)
    table: dict = {}
    if (step := case.latency_table_step()) is not None:
        say("latency table")
        calibration = executor.run(CALIBRATION_NET, {
            "model": case.model, "input_shape": dense.result["input_shape"],
            "num_classes": dense.result["num_classes"], "step": step}, {}).files
        table = {"latency_table": executor.run(LATENCY_TABLE, {
            "input_shape": dense.result["input_shape"], "network": slug(case.model),
            "step": step, "settings": case.bench_settings(), "paired": case.paired_settings(),
        }, {"dense_onnx": dense.files["onnx"]} | calibration, progress=say).result["table"]}
    if case.zoo_model is not None:
        say(f"dense-zoo control: {case.zoo_model} from scratch")
        small = executor.run(TRAIN, case.zoo_spec(), {},
                             progress=lambda line: say(f"{case.zoo_model}: {line}"))
        pruned = StageResult(zoo_as_pruned(small.result), small.files)  # its 'pruned' side
    else:
        say("prune + fine-tune" + (" + scratch control" if case.control == "scratch" else ""))
        control = ({"control": "scratch", "dense_epochs": case.dense_epochs}
                   if case.control == "scratch" else {})
        pruned = executor.run(PRUNE, case.dense_spec() | {
            "epochs": case.epochs, "recipe_text": case.recipe_text(),
            "recipe_name": case.recipe_name,
        } | table | control | ({"epoch_top1": True} if epoch_top1 else {}),
            {"checkpoint": dense.files["checkpoint"]},
            progress=lambda line: say(f"fine-tune: {line}"))
    say("quantize (INT8) + benchmark" if case.int8 else "benchmark")
    bench_spec = {"input_shape": dense.result["input_shape"], "settings": case.bench_settings(),
                  "paired": case.paired_settings(), "int8": case.int8} | table
    bench_files = {"dense_onnx": dense.files["onnx"], "pruned_onnx": pruned.files["onnx"],
                   "eval_data": dense.files["eval_data"]} | (
        {"scratch_onnx": pruned.files["scratch_onnx"]} if "scratch_onnx" in pruned.files else {})
    bench = executor.run(BENCH, bench_spec, bench_files,
                         progress=lambda line: say(f"benchmark: {line}"))
    result = result_from_stages(case, dense.result, pruned.result, bench.result,
                                    wall_seconds=time.perf_counter() - t0)
    _store(result)  # recorded=False until the recording service has written it
    artifacts = {"dense_onnx": str(dense.files["onnx"]), "pruned_onnx": str(pruned.files["onnx"]),
                 "bench_job": json.dumps({"spec": bench_spec,
                                          "files": {k: str(v) for k, v in bench_files.items()}})}
    return replace(result, artifacts=artifacts)


def zoo_as_pruned(trained: dict) -> dict:
    """A dense-zoo model's training result in the prune stage's terms: nothing pruned, every
    epoch of the case's budget spent training it from scratch."""
    return {k: trained[k] for k in ("top1", "top5", "test_images", "val_top1", "val_images",
                                    "params", "macs")} | {
        "weight_sparsity": 0.0, "finetune_epochs": trained["epochs"],
        "finetune_seconds": trained["train_seconds"], "export_seconds": 0.0, "thinned": False,
        "removed_blocks": [], "latency_plan": None}


def measure_again(result: CaseResult, executor: Executor,
                  progress: Progress | None = None) -> dict | None:
    """The bench stage once more on the same pair of models (a regression's confirmation);
    its result fields, or None for a result from the cache (whose models are not kept)."""
    job = result.artifacts.get("bench_job")
    if not job:
        return None
    if progress is not None:
        progress("the speed-up regressed against the baseline: measuring the same models again")
    job = json.loads(job)
    return executor.run(BENCH, job["spec"], {k: Path(v) for k, v in job["files"].items()},
                        progress=progress).result


def calibrate_case(case: Case, executor: Executor) -> dict:
    """A/A: the case's dense model measured against itself by the bench side, with the same
    method and settings as the cases. A speed-up's interval says how repeatable the method is;
    A/A says whether it is biased (it should read 1.000x within its interval)."""
    dense = executor.run(TRAIN, case.dense_spec(), {})
    result = executor.run(CALIBRATE, {
        "input_shape": dense.result["input_shape"], "settings": case.bench_settings(),
        "paired": case.paired_settings(),
    }, {"dense_onnx": dense.files["onnx"]}).result
    return result | {"model": case.model, "device": case.device,
                     "precision_requested": case.precision}


__all__ = ["Case", "CaseResult", "Threshold", "calibrate_case", "mark_recorded",
           "measure_again", "run_case", "validate"]
