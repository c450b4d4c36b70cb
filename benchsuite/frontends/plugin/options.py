"""The experiment options: each a command-line flag and an ini key (`benchsuite_<name>`), the
flag winning; typed and range-checked into the session's base `Case` before any work.

The pytest plugin declares them (``pytest_addoption``) and reads them through ``option``; a bad
value is a ``pytest.UsageError`` naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from benchsuite.core.threshold import Threshold
from benchsuite.core.trust import Trust, session_trust
from benchsuite.recipe.case import Case

OPTIONS: list[tuple[str, str, str]] = [
    # (name, default, help)
    ("recipes", "", "glob(s) of recipe names (e.g. 'resnet20/*') or recipe file paths, "
                    "comma-separated; default: the recipes grid.yaml lists"),
    ("schedules", "", "your recipe folder, added to the library (its grid.yaml, else all its "
                      "recipes, is the default selection)"),
    ("model", "", "model(s), comma-separated: a built-in name or module:callable, "
                  "(num_classes, in_channels) -> nn.Module (default: the grid's models)"),
    ("device", "", "OpenVINO device(s), comma-separated (default: the grid's, CPU)"),
    ("precision", "", "inference precision(s): f32, bf16, f16, default, or int8 (NNCF "
                      "post-training quantization, timed against dense at f32) (default: the "
                      "grid's)"),
    ("dataset", Case.dataset, "fashion-mnist (Debian's dataset-fashion-mnist), digits (embedded: "
                              "a smoke test), cifar10 (needs --data-dir), imagefolder:PATH "
                              "(train/ and val/, a folder per class) or module:callable"),
    ("data-dir", "", "folder of the CIFAR-10 python batches or of the Fashion-MNIST files"),
    ("train-images", str(Case.train_images or "all"), "at most this many training images (a "
                     "stratified subset of those left after the validation split), or 'all'"),
    ("epochs", str(Case.epochs), "fine-tuning epochs per case"),
    ("dense-epochs", str(Case.dense_epochs), "training epochs of the dense baseline (cached)"),
    ("control", "", "controls beside the pruning cases: scratch (each case's pruned "
                    "architecture also trained from scratch, the same epochs in all), zoo (the "
                    "dense family trained from scratch, timed against the same dense model), "
                    "or both: scratch,zoo"),
    ("schedule-scale", "1", "multiply every policy epoch and lr step of the recipes (0.1: a "
                            "180-epoch Distiller recipe in 18; see schedules/README.md)"),
    ("seed", "0", "random seed"),
    ("accuracy-threshold", "-1pt", "Top-1 floor: absolute (0.97) or below dense (-1pt)"),
    ("niter", "500", "benchmark_app iterations per run (per-layer counters, cross-check)"),
    ("bench-repeats", "1", "benchmark_app runs per model (median of medians)"),
    ("bench-threads", "1", "inference threads of the paired speed-up measurement, or 'default' "
                           "(the runtime's choice)"),
    ("bench-seconds", "20", "time cap (s) of the paired rounds, which otherwise stop when the "
                            "speed-up's 95 percent interval is within 1 percent"),
    ("paired-mode", "alternate", "paired measurement: alternate (random-order rounds) or duet "
                                 "(both models at once, one thread each)"),
    ("executor", "", "how stages run: redis (prune and bench workers behind a Redis broker; "
                     "the default with the broker extra) or local (in this process)"),
    ("wandb", "", "W&B mode: offline, online or disabled (default: offline unless "
                  "WANDB_MODE or WANDB_API_KEY say otherwise)"),
    ("latency-baseline", "", "fail cases whose speed-up fell below this baseline file's"),
    ("latency-tolerance", "0.05", "allowed relative drop of the speed-up vs the baseline (a case "
                                  "fails when its interval's upper end is below it)"),
    ("save-latency-baseline", "", "write this session's speed-ups as a baseline file"),
]


@dataclass(frozen=True)
class SessionConfig:
    """Every benchsuite option of a session, typed and checked (``session_config``)."""

    base: Case  # the settings every case shares (recipe, model, device, precision unset)
    recipes: str
    schedules: list[str] | None
    models: list[str] | None
    devices: list[str] | None
    precisions: list[str] | None
    threshold: Threshold
    executor: str
    wandb: str
    latency_baseline: str | None
    latency_tolerance: float
    save_latency_baseline: str | None
    force: bool
    calibration: bool
    zoo: bool  # --control zoo: the dense family's cases beside the pruning cases


CONFIG_KEY = pytest.StashKey[SessionConfig]()


def session_config(config: pytest.Config) -> SessionConfig:
    """The session's options as one typed object, built (and checked) once: a bad value is a
    usage error naming the option, before any collection or work."""
    if (cached := config.stash.get(CONFIG_KEY, None)) is not None:
        return cached
    try:
        threshold = Threshold.parse(option(config, "accuracy-threshold"))
    except ValueError as e:
        raise pytest.UsageError(f"--accuracy-threshold: {e}") from None
    from benchsuite.track.wandb_log import MODES

    if option(config, "wandb") not in ("", *MODES):  # here, not at the tracker (after Redis)
        raise pytest.UsageError(f"--wandb: {option(config, 'wandb')!r} is not one of "
                                f"{', '.join(MODES)}")
    out = SessionConfig(
        base=base_case(config), recipes=option(config, "recipes"),
        schedules=option_list(config, "schedules"), models=option_list(config, "model"),
        devices=option_list(config, "device"), precisions=option_list(config, "precision"),
        threshold=threshold, executor=option(config, "executor"), wandb=option(config, "wandb"),
        latency_baseline=option(config, "latency-baseline") or None,
        latency_tolerance=_number(config, "latency-tolerance", float, 0.0),
        save_latency_baseline=option(config, "save-latency-baseline") or None,
        force=bool(config.getoption("force", False)),
        calibration=not config.getoption("no_calibration", False),
        zoo="zoo" in _controls(config),
    )
    config.stash[CONFIG_KEY] = out
    return out


def option(config: pytest.Config, name: str) -> str:
    key = "benchsuite_" + name.replace("-", "_")
    value = config.getoption(key)
    return str(value if value is not None else config.getini(key))


def option_list(config: pytest.Config, name: str) -> list[str] | None:
    return [v.strip() for v in option(config, name).split(",") if v.strip()] or None


def _number(config: pytest.Config, name: str, kind: type, minimum: float,
            exclusive: bool = False) -> Any:
    """A numeric option, converted and range-checked; a bad value is a usage error that names
    the option (before any work, not after a dense training)."""
    text = option(config, name)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (exclusive and value == minimum):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        what = "an integer" if kind is int else "a number"
        raise pytest.UsageError(f"--{name}: {what} {bound} expected, got {text!r}")
    return value


def _choices(config: pytest.Config, name: str, allowed: tuple[str, ...]) -> None:
    for value in option_list(config, name) or []:
        if value not in allowed:
            raise pytest.UsageError(f"--{name}: {value!r} is not one of {', '.join(allowed)}")


def base_case(config: pytest.Config) -> Case:
    from benchsuite.bench.measurement import PRECISIONS
    from benchsuite.bench.paired import MODES

    _choices(config, "precision", (*PRECISIONS, "default", "int8"))
    _choices(config, "paired-mode", MODES)
    _number(config, "latency-tolerance", float, 0.0)
    return Case(
        recipe="", dataset=option(config, "dataset"),
        data_dir=option(config, "data-dir") or None, seed=_number(config, "seed", int, 0),
        epochs=_number(config, "epochs", int, 1),
        dense_epochs=_number(config, "dense-epochs", int, 1),
        train_images=_train_images(option(config, "train-images")),
        control="scratch" if "scratch" in _controls(config) else "",
        niter=_number(config, "niter", int, 1),
        repeats=_number(config, "bench-repeats", int, 1),
        threads=_threads(option(config, "bench-threads")),
        bench_seconds=_number(config, "bench-seconds", float, 0.0, exclusive=True),
        paired_mode=option(config, "paired-mode"),
        schedule_scale=_number(config, "schedule-scale", float, 0.0, exclusive=True),
    )


def _train_images(text: str) -> int | None:
    return _positive_or(text, "train-images", ("all", ""), "'all'")


def _positive_or(text: str, name: str, words: tuple[str, ...], word: str) -> int | None:
    """A positive integer, or None for one of `words`; else a usage error naming --`name`."""
    if text.strip().lower() in words:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise pytest.UsageError(f"--{name}: a positive integer or {word}, got {text!r}")
    return value


def _controls(config: pytest.Config) -> list[str]:
    _choices(config, "control", ("scratch", "zoo"))
    return option_list(config, "control") or []


def _threads(text: str) -> int | None:
    return _positive_or(text, "bench-threads", ("default", "auto", ""), "'default'")




def worker_trust(config: pytest.Config, items: list[pytest.Item]) -> Trust:
    """What the session's local workers on a shared broker may read and import: the session's
    --data-dir, --dataset and --model, a sweep's values of them, and every collected case's."""
    from benchsuite.frontends.plugin.sweep_items import sweep_spec

    data_dirs = [option(config, "data-dir")]
    datasets = option_list(config, "dataset") or []
    models = option_list(config, "model") or []
    spec = sweep_spec(config)
    params = spec.config.get("parameters", {}) if spec else {}
    for key, found in (("data_dir", data_dirs), ("dataset", datasets), ("model", models)):
        p = params.get(key) or {}
        found += [str(v) for v in (p.get("values") or [p.get("value")]) if v is not None]
    for item in items:
        case = item.callspec.params.get("latency_case") if hasattr(item, "callspec") else None
        if isinstance(case, Case):
            data_dirs.append(case.data_dir)
            datasets.append(case.dataset)
            models.append(case.model)
    return session_trust(data_dirs, datasets, models)
