"""A session's settings: every option of the pytest plugin in one table (`OPTIONS`), each with
the reader that types and checks its value, and `SessionConfig`, built from any mapping of
option names to values (`SessionConfig.from_mapping`: strings as a command line gives them, or
typed values as an ini file, a TOML table or W&B's config give them).

The pytest plugin declares the table's options and reads them (`frontends/plugin/options.py`);
nothing here needs pytest. A case setting is read by the Case's own reader
(`recipe.case.CASE_SETTINGS`), the one that sweeps and the W&B agent use too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from benchsuite.core.threshold import Threshold
from benchsuite.recipe.case import (
    CASE_SETTINGS,
    INT8,
    PAIRED_MODES,
    PRECISIONS,
    Case,
    choice,
    greater_than,
    integer,
)

MAIN, BROKER, SWEEP = "main", "broker", "sweep"  # the plugin module that declares an option
URL_ENV = "BENCHSUITE_REDIS_URL"  # the broker's URL, kept out of argv (and `ps`)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _optional(value: Any) -> str | None:
    return _text(value) or None


def _names(value: Any) -> list[str] | None:
    """A comma-separated list (None when empty)."""
    return [v.strip() for v in _text(value).split(",") if v.strip()] or None


def _names_of(*allowed: str) -> Callable[[Any], list[str] | None]:
    def read(value: Any) -> list[str] | None:
        names = _names(value)
        for name in names or []:
            choice(*allowed)(name)
        return names
    return read


def _choice_or_none(*allowed: str) -> Callable[[Any], str]:
    """One of `allowed`, or "" when not given (the default decides later)."""
    def read(value: Any) -> str:
        return choice(*allowed)(value) if _text(value) else ""
    return read


def _at_least(low: float) -> Callable[[Any], float]:
    def read(value: Any) -> float:
        try:
            number = float(_text(value))
        except ValueError:
            number = float("nan")
        if not number >= low:
            raise ValueError(f"a number >= {low:g} expected, got {_text(value)!r}")
        return number
    return read


def _threshold(value: Any) -> Threshold:
    return Threshold.parse(_text(value))


def _switch(value: Any) -> bool:
    return bool(value) and _text(value).lower() not in ("false", "0", "no")


@dataclass(frozen=True)
class Option:
    """One option: flag `--name`, ini key `benchsuite_<name>`, and how its value is read."""

    name: str
    default: Any  # the typed default, as `--help` shows it
    help: str
    read: Callable[[Any], Any] = _text  # str (flag, ini) or typed (ini) -> value; ValueError
    metavar: str | None = None
    ini: Any = str  # pytest's ini type
    part: str = MAIN
    field: str | None = None  # the Case field it sets in the session's base case
    switch: bool = False  # a flag that takes no value

    @property
    def dest(self) -> str:
        return "benchsuite_" + self.name.replace("-", "_")

    def value(self, given: Any = None) -> Any:
        """The option's value from a given one (None: its default), read and checked: a
        ValueError says what was expected."""
        return self.read(self.default if given is None else given)


_DEFAULT_CASE = Case(recipe="")


def _case(name: str, metavar: str, help_text: str, field: str | None = None,
          ini: Any = int) -> Option:
    """An option that sets a field of the session's base Case, read by the Case's own reader
    (`recipe.case.CASE_SETTINGS`), its default the Case's."""
    field = field or name.replace("-", "_")
    return Option(name, getattr(_DEFAULT_CASE, field), help_text, CASE_SETTINGS[field], metavar,
                  ini, field=field)


OPTIONS: tuple[Option, ...] = (
    # what to run: the grid and its selection
    Option("recipes", "", "glob(s) of recipe names (e.g. 'resnet20/*') or recipe file paths, "
           "comma-separated; default: the recipes grid.yaml lists", metavar="GLOBS"),
    Option("schedules", "", "your recipe folder(s), added to the library (its grid.yaml, else "
           "all its recipes, is the default selection)", _names, "DIR[,DIR]"),
    Option("model", "", "model(s), comma-separated: a built-in name or module:callable, "
           "(num_classes, in_channels) -> nn.Module (default: the grid's models)", _names,
           "NAMES"),
    Option("device", "", "OpenVINO device(s), comma-separated (default: the grid's, CPU)",
           _names, "DEVICES"),
    Option("precision", "", "inference precision(s), comma-separated: f32, bf16, f16, "
           "default, or int8 (NNCF post-training quantization, timed against dense at f32) "
           "(default: the grid's)", _names_of(*PRECISIONS, "default", INT8), "PRECISIONS"),
    Option("control", "", "controls beside the pruning cases: scratch (each case's pruned "
           "architecture also trained from scratch, the same epochs in all), zoo (the dense "
           "family trained from scratch, timed against the same dense model), or scratch,zoo",
           _names_of("scratch", "zoo"), "scratch,zoo"),
    # the case settings every case of the session shares
    _case("dataset", "NAME", "fashion-mnist (Debian's dataset-fashion-mnist), digits "
          "(embedded: a smoke test), cifar10 (needs --data-dir), imagefolder:PATH (train/ and "
          "val/, a folder per class) or module:callable", ini=str),
    Option("data-dir", "", "folder of the CIFAR-10 python batches or of the Fashion-MNIST "
           "files", _optional, "DIR", field="data_dir"),
    _case("train-images", "N|all", "at most this many training images (a stratified subset "
          "of those left after the validation split), or all", ini=int | Literal["all"]),
    _case("epochs", "N", "fine-tuning epochs per case"),
    _case("dense-epochs", "N", "training epochs of the dense baseline (cached)"),
    _case("schedule-scale", "X", "multiply every policy epoch and lr step of the recipes "
          "(0.1: a 180-epoch Distiller recipe in 18; schedules/README.md)", ini=float),
    _case("seed", "N", "random seed (training, the validation split's draw, the bench rounds)"),
    Option("accuracy-threshold", "-1pt", "Top-1 floor: absolute (0.97) or below the dense "
           "model (-1pt)", _threshold, "FLOOR"),
    # how latency is measured
    _case("niter", "N", "benchmark_app iterations per run (per-layer counters, cross-check)"),
    _case("bench-repeats", "N", "benchmark_app runs per model (median of medians)",
          field="repeats"),
    _case("bench-threads", "N|default", "inference threads of the paired speed-up "
          "measurement, or default (the runtime's choice)", field="threads",
          ini=int | Literal["default"]),
    _case("bench-seconds", "S", "time cap of the paired rounds, which otherwise stop when the "
          "speed-up's 95 percent interval is within 1 percent", field="bench_seconds",
          ini=float),
    Option("sparse-weights-rate", "off", "with --precision int8 on a CPU: OpenVINO's "
           "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE; INT8 FullyConnected layers whose weights are "
           "at least this fraction zeros run sparse kernels (CPUs with AMX, weight dimensions "
           "multiples of 64)", CASE_SETTINGS["sparse_weights_rate"], "R|off",
           float | Literal["off"], field="sparse_weights_rate"),
    Option("paired-mode", _DEFAULT_CASE.paired_mode, "paired measurement: alternate "
           "(random-order rounds) or duet (both models at once, one thread each)",
           choice(*PAIRED_MODES), "{" + ",".join(PAIRED_MODES) + "}", field="paired_mode"),
    # where stages run and results go
    Option("executor", "", "how stages run: redis (prune and bench workers behind a Redis "
           "broker; the default with the broker extra) or local (in this process)",
           _choice_or_none("redis", "local"), "{redis,local}"),
    Option("wandb", "", "W&B mode: offline, online or disabled (default: offline unless "
           "WANDB_MODE or WANDB_API_KEY say otherwise)",
           _choice_or_none("offline", "online", "disabled"), "{offline,online,disabled}"),
    Option("latency-baseline", "", "fail cases whose speed-up fell below this baseline "
           "file's", _optional, "FILE"),
    Option("latency-tolerance", 0.05, "allowed relative drop of the speed-up against the "
           "baseline (a case fails when its interval's upper end is below it)", _at_least(0),
           "X", float),
    Option("save-latency-baseline", "", "write this session's speed-ups as a baseline file",
           _optional, "FILE"),
    Option("force", False, "ignore cached results and re-run every case", _switch,
           ini=bool, switch=True),
    Option("no-calibration", False, "skip the session's A/A calibration (dense measured "
           "against itself)", _switch, ini=bool, switch=True),
    # the broker (broker_fixtures)
    Option("redis-url", "", "Redis URL of the broker (redis://, rediss://, unix://; also "
           f"${URL_ENV}, which keeps a password out of `ps`); default: a private "
           "redis-server on a unix socket for this session", _optional, "URL", part=BROKER),
    Option("no-local-workers", False, "with --redis-url: start no local workers (external "
           "workers serve that Redis)", _switch, ini=bool, part=BROKER, switch=True),
    # sweeps (sweep_items): pytest -m sweep --sweep FILE
    Option("sweep", "", "sweep config file (W&B grammar; schedules/sweeps/README.md)",
           _optional, "FILE", part=SWEEP),
    Option("sweep-count", 10, "trials in the sweep (its total budget, shared by all its "
           "agents)", integer(1), "N", int, part=SWEEP),
    Option("sweep-engine", "sweeps", "sweeps (W&B's engine, offline) or optuna (GPSampler)",
           choice("sweeps", "optuna"), "{sweeps,optuna}", part=SWEEP),
    Option("sweep-id", "", "name of the sweep's shared state in Redis (default: the config's "
           "name, engine and seed); agents with the same id share one sweep", _optional, "ID",
           part=SWEEP),
    Option("sweep-redis", "", "Redis URL of the sweep state (default: a private redis-server "
           "with its AOF under .cache/benchsuite/sweeps/redis)", _optional, "URL", part=SWEEP),
    Option("sweep-seed", 0, "seed of the engine's random choices", integer(0), "N", int,
           part=SWEEP),
    Option("sweep-lease", 120.0, "seconds a trial stays claimed without its agent's heartbeat "
           "(then another agent, or a resumed sweep, re-runs it)",
           greater_than(0), "S", float, part=SWEEP),
)


BY_NAME = {o.name: o for o in OPTIONS}


def shown_default(default: Any) -> str:
    if default is None:
        return "all"
    if isinstance(default, bool):
        return "off"
    return str(default) if default != "" else "-"


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

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SessionConfig:
        """The session's settings from option names (`epochs`, `dense-epochs`, ...; `_` for
        `-` accepted) to values; a name not given takes its default. A bad value is a
        ValueError naming the option; an unknown name too."""
        given = {str(k).replace("_", "-"): v for k, v in values.items()}
        if unknown := sorted(set(given) - set(BY_NAME)):
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: "
                             f"{', '.join(BY_NAME)}")
        read = {}
        for o in OPTIONS:
            try:
                read[o.name] = o.value(given.get(o.name))
            except ValueError as e:
                raise ValueError(f"{o.name}: {e}") from None
        controls = read["control"] or []
        case = {o.field: read[o.name] for o in OPTIONS if o.field}
        base = replace(Case(recipe=""), **case, control="scratch" if "scratch" in controls else "")
        return cls(
            base=base, recipes=read["recipes"], schedules=read["schedules"],
            models=read["model"], devices=read["device"], precisions=read["precision"],
            threshold=read["accuracy-threshold"], executor=read["executor"],
            wandb=read["wandb"], latency_baseline=read["latency-baseline"],
            latency_tolerance=read["latency-tolerance"],
            save_latency_baseline=read["save-latency-baseline"], force=read["force"],
            calibration=not read["no-calibration"], zoo="zoo" in controls)
