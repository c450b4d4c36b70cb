"""One experiment = one case: a recipe (with its template parameters) applied to one model on
one dataset, benchmarked on one device at one precision. `run_case` drives the stages through
an executor (in-process or over Redis) and returns the result row.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from benchsuite.core.errors import UserError
from benchsuite.core.hashing import code_version, content_hash
from benchsuite.core.paths import cache_dir, schedules_dir
from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.core.userspec import is_reference, source_digest
from benchsuite.pipeline.executor import Executor, StageResult
from benchsuite.recipe import read_recipe, render, template_parameters
from benchsuite.recipe.scale import scale_schedule

Progress = Callable[[str], None]
# appended to a case's label when they differ from the defaults (prefix of the value)
LABEL_FIELDS = {"dataset": "", "train_images": "n", "seed": "seed", "epochs": "ep",
                "dense_epochs": "dense", "niter": "niter", "repeats": "rep", "threads": "thr",
                "paired_mode": "", "control": ""}
CONTROLS = ("scratch", "zoo:MODEL")  # Case.control: see the field


def _slug(value: str) -> str:
    """A label-safe spelling: `imagefolder:/data/pets` -> `imagefolder.pets`, `m:f` -> `m.f`."""
    if value.startswith("imagefolder:"):
        return "imagefolder." + Path(value.removeprefix("imagefolder:")).name
    return value.replace(":", ".").replace("/", ".")
# a case's result depends on this code too: change it and cached results are re-run
CASE_CODE = ("models", "data", "prune", "recipe", "export", "bench", "latency",
             "pipeline/stages.py", "pipeline/run.py", "core/result.py", "track/top1.py")
# a latency table (benchsuite.latency) for every case, not only LatencyBudgetPruner recipes:
# the results table then has predicted beside measured latency for `benchsuite latency-model`
LATENCY_MODEL_ENV = "BENCHSUITE_LATENCY_MODEL"


# The main job's training budget on Fashion-MNIST, chosen so that the dense ResNet-20 holds
# >= 91.5 % Top-1 on the 10,000 test images and `./run.sh latency` fits in 15 minutes on 2
# cores (README, "The main job"; docs/measurements.md). The suite's own tests use digits.
DENSE_EPOCHS = 6
FINETUNE_EPOCHS = 3
TRAIN_IMAGES: int | None = 30000


@dataclass(frozen=True)
class Case:
    recipe: str  # recipe name (file stem in schedules/) or a path to a recipe file
    params: dict[str, Any] = field(default_factory=dict)  # template parameters
    model: str = "resnet20"
    dataset: str = "fashion-mnist"  # digits: the suite's smoke test
    data_dir: str | None = None
    seed: int = 0
    epochs: int = FINETUNE_EPOCHS  # fine-tuning (at least the recipe's last policy epoch + 1)
    dense_epochs: int = DENSE_EPOCHS
    # at most this many training images (a stratified subset, drawn with the seed, of those
    # left after the validation split; all of them when the dataset has fewer); None: all
    train_images: int | None = TRAIN_IMAGES
    # "" (a pruning case); "scratch": also train the pruned architecture from scratch for the
    # same total epochs; "zoo:MODEL": no pruning, the small dense MODEL trained from scratch
    # for dense_epochs + epochs, timed and scored against this case's dense model
    control: str = ""
    device: str = "CPU"
    # None: the device's default (bf16 on CPUs with AMX); "int8": NNCF post-training
    # quantization of the pruned model, timed and scored against dense at f32 (bench/int8.py)
    precision: str | None = "f32"
    niter: int = 500  # benchmark_app iterations per run (per-layer counters, cross-check)
    repeats: int = 1  # benchmark_app runs per model
    threads: int | None = 1  # inference threads of the paired measurement (None: runtime's)
    paired_mode: str = "alternate"  # or "duet" (bench/paired.py)
    bench_seconds: float = 20.0  # time cap of the paired rounds
    schedule_scale: float = 1.0  # --schedule-scale: every policy epoch and lr step scaled

    @property
    def recipe_path(self) -> Path:
        p = Path(self.recipe)
        if p.suffix in (".yaml", ".yml") and p.is_file():
            return p
        return schedules_dir() / f"{self.recipe}.yaml"

    @property
    def recipe_name(self) -> str:
        return self.recipe_path.stem

    def recipe_text(self) -> str:
        text = render(read_recipe(self.recipe_path), self.params, source=self.recipe_path.name)
        return scale_schedule(text, self.schedule_scale, source=self.recipe_path.name)

    def effective_params(self) -> dict[str, Any]:
        """Template parameters with defaults filled in (what the case really ran with)."""
        import yaml

        defaults = template_parameters(read_recipe(self.recipe_path))
        out = {k: yaml.safe_load(v) for k, v in defaults.items() if v is not None}
        scale = {"schedule_scale": self.schedule_scale} if self.schedule_scale != 1 else {}
        return out | dict(self.params) | scale

    @property
    def label(self) -> str:
        """Readable id telling cases apart: model, recipe, parameter values, device, precision,
        then each setting that is not the default, e.g. resnet20-l1_filters-0.5-CPU-f32 or
        mymodels.tiny-l1_filters-0.5-CPU-f32-cifar10-seed1-ep5-dense10."""
        values = "-".join(str(v) for _, v in sorted(self.params.items())) or "default"
        precision = self.precision or "default"
        scaled = f"-x{self.schedule_scale:g}" if self.schedule_scale != 1 else ""
        label = f"{_slug(self.model)}-{self.recipe_name}-{values}{scaled}-{self.device}-{precision}"
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in LABEL_FIELDS and value != f.default:
                text = "all" if value is None else str(value)
                label += f"-{LABEL_FIELDS[f.name]}{_slug(text)}"
        return label

    @property
    def case_id(self) -> str:
        """Content hash of everything that determines the result (the rendered recipe too)."""
        # the user's own model or dataset code counts too (only when there is some, so the
        # built-in cases keep their ids)
        user = {ref: source_digest(ref) for ref in (self.model, self.dataset)
                if is_reference(ref)}
        fields = {k: v for k, v in asdict(self).items()  # the scale is in the recipe text
                  if k != "schedule_scale"}
        return content_hash(fields | {"recipe": self.recipe_text(),
                                            "code": code_version(*CASE_CODE)}
                            | ({"user_code": user} if user else {}))

    def dense_spec(self) -> dict:
        subset = {"train_images": self.train_images} if self.train_images is not None else {}
        return {"model": self.model, "dataset": self.dataset, "data_dir": self.data_dir,
                "seed": self.seed, "epochs": self.dense_epochs} | subset

    @property
    def zoo_model(self) -> str | None:
        """The small dense model of a dense-zoo control case, else None."""
        return self.control.removeprefix("zoo:") if self.control.startswith("zoo:") else None

    def zoo_spec(self) -> dict:
        """The zoo model's training: from scratch, the case's whole budget of epochs."""
        return self.dense_spec() | {"model": self.zoo_model,
                                    "epochs": self.dense_epochs + self.epochs}

    def bench_settings(self) -> dict:
        from benchsuite.bench.int8 import inference_precision

        return {"device": self.device, "precision": inference_precision(self.precision),
                "niter": self.niter, "repeats": self.repeats}

    @property
    def int8(self) -> bool:
        from benchsuite.bench.int8 import is_int8

        return is_int8(self.precision)

    def latency_table_step(self) -> int | None:
        """The channel step of the latency table this case needs (its LatencyBudgetPruner's
        `round_to`, else 8), or None when it needs none."""
        from benchsuite.recipe.yamltext import load_yaml

        pruners = (load_yaml(self.recipe_text()) or {}).get("pruners") or {}
        for p in pruners.values():
            if isinstance(p, dict) and p.get("class") == "LatencyBudgetPruner":
                return int(p.get("round_to") or 8)
        return 8 if os.environ.get(LATENCY_MODEL_ENV, "") not in ("", "0") else None

    def paired_settings(self) -> dict:
        """The paired in-process measurement's options (bench/paired.py: PairedSettings)."""
        return {"threads": self.threads, "mode": self.paired_mode,
                "max_seconds": self.bench_seconds}


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


class CaseError(UserError):
    """A case its user has to fix (recipe, model, dataset), found before any work."""


MIN_TELLING_IMAGES = 100


def check_dense(case: Case, dense: dict) -> None:
    """A dense reference whose Top-1 is not above chance (its 95 % interval reaches 1 /
    classes) makes every floor meaningless: a CaseError naming its training budget."""
    from benchsuite.core.threshold import wilson_interval

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


def check_settings(case: Case) -> None:
    """The case's own settings in range, wherever the case was built (options, grid, sweep,
    a user's test): a bad one is a CaseError naming the field."""
    for name, low in (("epochs", 1), ("dense_epochs", 1), ("seed", 0), ("niter", 1),
                      ("repeats", 1)):
        value = getattr(case, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise CaseError(f"{name}: an integer >= {low} expected, got {value!r}")
    if case.train_images is not None and (isinstance(case.train_images, bool) or not
                                          isinstance(case.train_images, int)
                                          or case.train_images < 1):
        raise CaseError(f"train_images: a positive integer or None expected, got "
                        f"{case.train_images!r}")
    if case.control not in ("", "scratch") and not (case.zoo_model or "").strip():
        raise CaseError(f"control: {case.control!r} is not one of {', '.join(CONTROLS)}")
    if case.zoo_model is not None and is_reference(case.zoo_model):
        raise CaseError(f"control: {case.control!r}: the dense zoo takes built-in models")


def _cached(case_id: str) -> CaseResult | None:
    path = cache_dir() / "results" / f"{case_id}.json"
    return CaseResult.from_dict(json.loads(path.read_text())) if path.is_file() else None


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
    (threshold) nor recorded: `track.recording.Recorder` does both.

    `epoch_top1`: the prune stage evaluates the held-out Top-1 after every fine-tuning epoch
    and reports it on its progress lines (a sweep's early stopping reads them there; a
    `progress` callback raising `progress.StopStage` stops the case)."""
    say = progress or (lambda _msg: None)
    if not force and (cached := _cached(case.case_id)) is not None:
        say("cached result")
        return replace(cached, cached=True)
    try:
        validate(case)
    except (ValueError, OSError) as e:  # the recipe, model or data: the user's to fix
        raise CaseError(f"{case.label}: {e}") from None
    t0 = time.perf_counter()
    say("dense baseline")
    dense = executor.run("train", case.dense_spec(), {},
                         progress=lambda line: say(f"dense baseline: {line}"))
    check_dense(case, dense.result)
    table: dict = {}
    if (step := case.latency_table_step()) is not None:
        say("latency table")
        table = {"latency_table": executor.run("latency_table", {
            "input_shape": dense.result["input_shape"], "network": _slug(case.model),
            "step": step, "settings": case.bench_settings(), "paired": case.paired_settings(),
        }, {"dense_onnx": dense.files["onnx"]}, progress=say).result["table"]}
    if case.zoo_model is not None:
        say(f"dense-zoo control: {case.zoo_model} from scratch")
        small = executor.run("train", case.zoo_spec(), {},
                             progress=lambda line: say(f"{case.zoo_model}: {line}"))
        pruned = StageResult(zoo_as_pruned(small.result), small.files)  # its 'pruned' side
    else:
        say("prune + fine-tune" + (" + scratch control" if case.control == "scratch" else ""))
        control = ({"control": "scratch", "dense_epochs": case.dense_epochs}
                   if case.control == "scratch" else {})
        pruned = executor.run("prune", case.dense_spec() | {
            "epochs": case.epochs, "recipe_text": case.recipe_text(),
            "recipe_name": case.recipe_name,
        } | table | control | ({"epoch_top1": True} if epoch_top1 else {}),
            {"checkpoint": dense.files["checkpoint"]},
            progress=lambda line: say(f"fine-tune: {line}"))
    say("quantize (INT8) + benchmark" if case.int8 else "benchmark")
    bench_spec = {"input_shape": dense.result["input_shape"], "settings": case.bench_settings(),
                  "paired": case.paired_settings(), "int8": case.int8} | table
    bench_files = {"dense_onnx": dense.files["onnx"], "pruned_onnx": pruned.files["onnx"],
                   "eval_data": dense.files["eval_data"]}
    bench = executor.run("bench", bench_spec, bench_files,
                         progress=lambda line: say(f"benchmark: {line}"))
    result = CaseResult.from_stages(case, dense.result, pruned.result, bench.result,
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
    return executor.run("bench", job["spec"], {k: Path(v) for k, v in job["files"].items()},
                        progress=progress).result


def calibrate_case(case: Case, executor: Executor) -> dict:
    """A/A: the case's dense model measured against itself by the bench side, with the same
    method and settings as the cases. A speed-up's interval says how repeatable the method is;
    A/A says whether it is biased (it should read 1.000x within its interval)."""
    dense = executor.run("train", case.dense_spec(), {})
    result = executor.run("calibrate", {
        "input_shape": dense.result["input_shape"], "settings": case.bench_settings(),
        "paired": case.paired_settings(),
    }, {"dense_onnx": dense.files["onnx"]}).result
    return result | {"model": case.model, "device": case.device,
                     "precision_requested": case.precision}


__all__ = ["Case", "CaseResult", "Threshold", "calibrate_case", "mark_recorded",
           "measure_again", "run_case", "validate"]
