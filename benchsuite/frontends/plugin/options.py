"""Every option of the pytest plugin, in one table: each a command-line flag and an ini key
(`benchsuite_<name>`), the flag winning; one reader (`option_value`) types and checks both, so a bad
value is a usage error naming the option (`--epochs: an integer >= 1 expected, got '0'`)
before any collection or work.

`pytest --help` shows them in the group "benchsuite" with their metavars and defaults, and each
ini key with its type. The three plugin modules (`__init__`, `broker_fixtures`, `sweep_items`)
each declare their part of the table (`add_options(parser, part)`), so the broker's fixtures
still load on their own (`-p benchsuite.frontends.plugin.broker_fixtures`).

The session's settings are read once into a `SessionConfig` (`session_config`), whose base
`Case` is built by `Case.with_settings`, the one reader of case settings that sweeps and the
W&B agent use too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import pytest

from benchsuite.core.threshold import Threshold
from benchsuite.recipe.case import (
    CASE_SETTINGS,
    INT8,
    PAIRED_MODES,
    PRECISIONS,
    Case,
    CaseError,
    choice,
    greater_than,
    integer,
)

GROUP = "benchsuite"
GROUP_TITLE = "benchsuite"  # as README.md names it: pytest --help shows this title
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


def _shown(default: Any) -> str:
    if default is None:
        return "all"
    if isinstance(default, bool):
        return "off"
    return str(default) if default != "" else "-"


def add_options(parser: pytest.Parser, part: str) -> None:
    """Declare the table's options of one plugin module: a flag and a typed ini key each."""
    group = parser.getgroup(GROUP, GROUP_TITLE)
    for o in (o for o in OPTIONS if o.part == part):
        # the default after the help, where there is one to show (an empty one: the help says)
        shown = not o.switch and o.default != ""
        help_text = f"{o.help} [{_shown(o.default)}]" if shown else o.help
        if o.switch:
            group.addoption(f"--{o.name}", dest=o.dest, action="store_true", default=None,
                            help=help_text)
        else:
            group.addoption(f"--{o.name}", dest=o.dest, default=None, metavar=o.metavar,
                            help=help_text)
        default = o.default if o.default is not None else "all"
        parser.addini(o.dest, o.help, type=o.ini, default=default)


def option_value(config: pytest.Config, name: str) -> Any:
    """The option's value, read and checked: the flag, else the ini key, else the default. A
    bad value is a usage error naming where it came from."""
    o = BY_NAME[name]
    given, where = config.getoption(o.dest, default=None), f"--{o.name}"
    if given is None:
        where = o.dest
        try:
            given = config.getini(o.dest)
        except ValueError as e:  # not registered (a plugin module loaded alone), or bad ini
            if "unknown configuration value" in str(e) or "no option named" in str(e):
                given = o.default
            else:
                raise pytest.UsageError(f"{where}: {e}") from None
    if name == "redis-url" and not given:
        given = os.environ.get(URL_ENV) or None  # keeps a password off the command line
    try:
        return o.read(given)
    except ValueError as e:
        raise pytest.UsageError(f"{where}: {e}") from None


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
    read = {o.name: option_value(config, o.name) for o in OPTIONS if o.part == MAIN}
    controls = read["control"] or []
    out = SessionConfig(
        base=base_case(config), recipes=read["recipes"], schedules=read["schedules"],
        models=read["model"], devices=read["device"], precisions=read["precision"],
        threshold=read["accuracy-threshold"], executor=read["executor"], wandb=read["wandb"],
        latency_baseline=read["latency-baseline"], latency_tolerance=read["latency-tolerance"],
        save_latency_baseline=read["save-latency-baseline"], force=read["force"],
        calibration=not read["no-calibration"], zoo="zoo" in controls)
    config.stash[CONFIG_KEY] = out
    return out


def base_case(config: pytest.Config) -> Case:
    """The session's base case: every case setting of the options on a blank recipe (the
    grid, a sweep's trials or a user's `base_case` fixture fill in the rest)."""
    settings = {o.field: option_value(config, o.name) for o in OPTIONS if o.field}
    controls = option_value(config, "control") or []
    settings["control"] = "scratch" if "scratch" in controls else ""
    try:
        return replace(Case(recipe=""), **settings)
    except CaseError as e:  # a setting the option's reader let through but the case refuses
        raise pytest.UsageError(str(e)) from None


def given(config: pytest.Config, o: Option) -> bool:
    """Whether the user set the option (its flag, or its key in the ini file)."""
    return (config.getoption(o.dest, default=None) is not None
            or o.dest in getattr(config, "inicfg", {}))


def contradictions(config: pytest.Config, case: Case) -> list[str]:
    """A line for each case setting the user gave that this case does not follow (a `Case`
    built by hand in a test, not from the `base_case` fixture): it runs as built, and says so."""
    out = []
    base = session_config(config).base
    for o in OPTIONS:
        if o.field and given(config, o) and getattr(case, o.field) != getattr(base, o.field):
            out.append(f"{case.label}: --{o.name} {_shown(getattr(base, o.field))} was given, "
                       f"but this case has {o.field}={getattr(case, o.field)!r} (it runs as "
                       "built; build cases from the base_case fixture to follow the options)")
    return out
