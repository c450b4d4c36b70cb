"""A case: a recipe (with its template parameters) applied to one model on one dataset,
benchmarked on one device at one precision; its id hashes everything its result depends on.

A `Case` checks its own settings when it is built (`check_settings`), whoever builds it (the
pytest options, the grid, a sweep's trial, the W&B agent, a user's test). What needs torch or
the dataset (the recipe bound to the model) is checked by `benchsuite.pipeline.run.validate`.
Imports only `benchsuite.core` and this package: no torch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from benchsuite.core.errors import UserError
from benchsuite.core.hashing import code_version, content_hash
from benchsuite.core.paths import schedules_dir
from benchsuite.core.userspec import input_digests, is_reference, source_digest
from benchsuite.recipe.scale import scale_schedule
from benchsuite.recipe.template import read_recipe, render, template_parameters
from benchsuite.recipe.yamltext import load_yaml

INT8 = "int8"
PRECISIONS = ("f32", "bf16", "f16")  # what OpenVINO's inference precision hint takes
PAIRED_MODES = ("alternate", "duet")  # bench/paired.py
REFERENCE_PRECISION = "f32"  # an INT8 case's speed-up and accuracy reference: dense at f32


def is_int8(precision: str | None) -> bool:
    return (precision or "").lower() == INT8


def inference_precision(precision: str | None) -> str | None:
    """The inference precision hint a case's models are compiled with: f32 for INT8 (what
    NNCF left unquantized runs f32, as the dense reference does), else the case's own."""
    return REFERENCE_PRECISION if is_int8(precision) else precision


# appended to a case's label when they differ from the defaults (prefix of the value)
LABEL_FIELDS = {"dataset": "", "train_images": "n", "seed": "seed", "epochs": "ep",
                "dense_epochs": "dense", "niter": "niter", "repeats": "rep", "threads": "thr",
                "paired_mode": "", "control": "", "sparse_weights_rate": "swr"}
CONTROLS = ("scratch", "zoo:MODEL")  # Case.control: see the field


def shown(value: Any) -> str:
    """A parameter value as a person reads it: floats to 6 significant digits (a sweep's
    0.15000000000000002 is 0.15), the rest as str."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def slug(value: str) -> str:
    """A label-safe spelling: `imagefolder:/data/pets` -> `imagefolder.pets`, `m:f` -> `m.f`."""
    if value.startswith("imagefolder:"):
        return "imagefolder." + Path(value.removeprefix("imagefolder:")).name
    return value.replace(":", ".").replace("/", ".")
# a case's result depends on this code too: change it and cached results are re-run
CASE_CODE = ("models", "data", "prune", "recipe", "export", "bench", "latency",
             "pipeline/dense.py", "pipeline/stages.py", "pipeline/run.py", "core/result.py",
             "pipeline/assemble.py")
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
    # OpenVINO's CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE for an INT8 case: its FullyConnected
    # layers whose INT8 weights are at least this fraction zeros run packed sparse kernels
    # (CPUs with AMX only; both weight dimensions multiples of 64); None: off
    sparse_weights_rate: float | None = None
    schedule_scale: float = 1.0  # --schedule-scale: every policy epoch and lr step scaled

    def __post_init__(self) -> None:
        check_settings(self)  # however the case was built: options, grid, sweep, a user's test

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
        values = "-".join(shown(v) for _, v in sorted(self.params.items())) or "default"
        precision = self.precision or "default"
        scaled = f"-x{self.schedule_scale:g}" if self.schedule_scale != 1 else ""
        label = f"{slug(self.model)}-{self.recipe_name}-{values}{scaled}-{self.device}-{precision}"
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in LABEL_FIELDS and value != f.default:
                text = "all" if value is None else str(value)
                label += f"-{LABEL_FIELDS[f.name]}{slug(text)}"
        return label

    @property
    def case_id(self) -> str:
        """Content hash of everything that determines the result (the rendered recipe too)."""
        # the user's own model or dataset code counts too (only when there is some, so the
        # built-in cases keep their ids)
        user = {ref: source_digest(ref) for ref in (self.model, self.dataset)
                if is_reference(ref)}
        # an image folder's or a --data-dir's files (a folder that changed is other data)
        data = {k: v for k, v in input_digests(self.model, self.dataset, self.data_dir).items()
                if k != "model" and not is_reference(self.dataset)}
        fields = {k: v for k, v in asdict(self).items()  # the scale is in the recipe text
                  if k != "schedule_scale"
                  and not (k == "sparse_weights_rate" and v is None)}  # ids kept without it
        return content_hash(fields | {"recipe": self.recipe_text(),
                                            "code": code_version(*CASE_CODE)}
                            | ({"user_code": user} if user else {})
                            | ({"data": data} if data else {}))

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
        rate = ({"sparse_weights_rate": self.sparse_weights_rate}
                if self.sparse_weights_rate is not None else {})
        return {"device": self.device, "precision": inference_precision(self.precision),
                "niter": self.niter, "repeats": self.repeats} | rate

    @property
    def int8(self) -> bool:
        return is_int8(self.precision)

    def latency_table_step(self) -> int | None:
        """The channel step of the latency table this case needs (its LatencyBudgetPruner's
        `round_to`, else 8), or None when it needs none."""
        pruners = (load_yaml(self.recipe_text()) or {}).get("pruners") or {}
        for p in pruners.values():
            if isinstance(p, dict) and p.get("class") == "LatencyBudgetPruner":
                return int(p.get("round_to") or 8)
        return 8 if os.environ.get(LATENCY_MODEL_ENV, "") not in ("", "0") else None

    def paired_settings(self) -> dict:
        """The paired in-process measurement's options (bench/paired.py: PairedSettings)."""
        return {"threads": self.threads, "mode": self.paired_mode,
                "max_seconds": self.bench_seconds}

    def with_settings(self, values: Mapping[str, Any]) -> Case:
        """This case with the case settings among `values` (strings or typed values; other keys
        ignored) read and applied: the one way every front end builds a case from loose
        values (options, a sweep's trial, a W&B agent's parameters)."""
        return dataclasses.replace(self, **case_settings(values))


class CaseError(UserError):
    """A case its user has to fix (recipe, model, dataset), found before any work."""


def integer(low: int, high: int | None = None) -> Callable[[Any], int]:
    def read(value: Any) -> int:
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or number < low or (isinstance(value, float) and value != number):
            raise ValueError(f"an integer >= {low} expected, got {str(value)!r}")
        if high is not None and number > high:
            raise ValueError(f"an integer from {low} to {high} expected, got {str(value)!r}")
        return number
    return read


MAX_SEED = 2**32 - 1  # numpy's seeds: a larger one failed the dense stage with a traceback


def greater_than(low: float) -> Callable[[Any], float]:
    """A number > `low`."""
    def read(value: Any) -> float:
        try:
            number = float(str(value).strip()) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not number > low or number != number:
            raise ValueError(f"a number > {low:g} expected, got {str(value)!r}")
        return number
    return read


def count_or(*words: str) -> Callable[[Any], int | None]:
    """A positive integer, or None for one of `words` (or None itself)."""
    def read(value: Any) -> int | None:
        if value is None or str(value).strip().lower() in words:
            return None
        try:
            number = int(str(value).strip()) if not isinstance(value, bool) else 0
        except ValueError:
            number = 0
        if number < 1:
            raise ValueError(f"a positive integer or {words[0]!r}, got {str(value)!r}")
        return number
    return read


def choice(*allowed: str) -> Callable[[Any], str]:
    def read(value: Any) -> str:
        if str(value) not in allowed:
            raise ValueError(f"{str(value)!r} is not one of {', '.join(allowed)}")
        return str(value)
    return read


def _text(value: Any) -> str:
    if value is None or not str(value).strip():
        raise ValueError("a name expected, got nothing")
    return str(value).strip()


def _optional_text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _precision(value: Any) -> str | None:
    """f32, bf16, f16, int8, or default (None: the device's default)."""
    if value is None or str(value) == "default":
        return None
    return choice(*PRECISIONS, "default", INT8)(value)


def _rate(value: Any) -> float | None:
    """A fraction in (0, 1], or None (off) for nothing, "off" or None."""
    if value is None or str(value).strip().lower() in ("", "off", "none"):
        return None
    number = greater_than(0)(value)
    if number > 1:
        raise ValueError(f"a fraction in (0, 1] expected, got {str(value)!r}")
    return number


def _control(value: Any) -> str:
    text = "" if value is None else str(value)
    if text not in ("", "scratch") and not (text.startswith("zoo:") and text[4:].strip()):
        raise ValueError(f"{text!r} is not one of {', '.join(CONTROLS)}")
    if text.startswith("zoo:") and is_reference(text[4:]):
        raise ValueError(f"{text!r}: the dense zoo takes built-in models")
    return text


# The settings of a case a loose mapping may give (the command line and ini keys, a sweep's
# parameters, a W&B agent's config), each with its reader: a string or a typed value in, the
# field's value out, a ValueError saying what was expected. `Case.with_settings` uses them, and
# a Case checks its own fields with them wherever it is built (`__post_init__`).
CASE_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "model": _text, "dataset": _text, "data_dir": _optional_text, "seed": integer(0, MAX_SEED),
    "epochs": integer(1), "dense_epochs": integer(1),
    "train_images": count_or("all", ""), "control": _control,
    "device": _text, "precision": _precision, "niter": integer(1), "repeats": integer(1),
    "threads": count_or("default", "auto", ""), "paired_mode": choice(*PAIRED_MODES),
    "bench_seconds": greater_than(0), "schedule_scale": greater_than(0),
    "sparse_weights_rate": _rate,
}


def case_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The case settings among `values` (other keys ignored), read: a bad one is a CaseError
    naming it."""
    out = {}
    for key, value in values.items():
        if key in CASE_SETTINGS:
            try:
                out[key] = CASE_SETTINGS[key](value)
            except ValueError as e:
                raise CaseError(f"{key}: {e}") from None
    return out


def check_settings(case: Case) -> None:
    """The case's own settings in range, wherever the case was built (options, grid, sweep,
    a user's test): a bad one is a CaseError naming the field. The recipe itself is checked
    where it can be bound to the model (`pipeline.run.validate`)."""
    for key, read in CASE_SETTINGS.items():
        value = getattr(case, key)
        if isinstance(value, bool) and key != "control":
            raise CaseError(f"{key}: {value!r} is not a valid value")
        try:
            read(value)
        except ValueError as e:
            raise CaseError(f"{key}: {e}") from None
        if key in ("seed", "epochs", "dense_epochs", "niter", "repeats") and not isinstance(
                value, int):  # a string that reads as a number is not one
            raise CaseError(f"{key}: an integer expected, got {value!r}")


def takes_sparse_weights(precision: str | None, device: str) -> bool:
    """OpenVINO's sparse weights decompression applies to INT8 models on a CPU only."""
    return is_int8(precision) and device.upper().startswith("CPU")


def combination_problem(case: Case) -> str | None:
    """Settings that are each valid but do not go together (checked before any work)."""
    if case.sparse_weights_rate is not None and not takes_sparse_weights(case.precision,
                                                                         case.device):
        return (f"sparse_weights_rate {case.sparse_weights_rate:g}: OpenVINO's sparse weights "
                "decompression applies to INT8 FullyConnected layers on a CPU only; this case "
                f"is {case.precision or 'default'} on {case.device} (add --precision int8, or "
                "drop the rate)")
    return None
