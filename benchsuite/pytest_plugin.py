"""The pytest plugin: experiment options, the case grid, fixtures, the end-of-session outputs.

Every option is both a command-line flag and an ini key (`benchsuite_<name>` in pytest.ini),
the flag winning. Cases come from the recipe library's `grid.yaml` (or the `--schedules`
folder's) filtered by `--recipes`, `--model`, `--device`, `--precision`. Registered as a pytest11
entry point: any test can use the fixtures (`run_experiment`, `accuracy_threshold`, ...).
Result rows travel from the test to the summary on the report's
`user_properties`, so the summary, the baseline and the pytest-benchmark file also work under
pytest-xdist (the controller sees every worker's reports).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from .case import Case, mark_recorded, run_case
from .executor import LocalExecutor
from .extras import (
    default_executor,
    default_wandb_mode,
    session_extras_notes,
    session_extras_problem,
)
from .threshold import Threshold

OPTIONS: list[tuple[str, str, str]] = [
    # (name, default, help)
    ("recipes", "", "glob(s) of recipe names (e.g. 'resnet20/*') or recipe file paths, "
                    "comma-separated; default: the recipes grid.yaml lists"),
    ("schedules", "", "your recipe folder, added to the library (its grid.yaml, else all its "
                      "recipes, is the default selection)"),
    ("model", "", "model(s), comma-separated: a built-in name or module:callable, "
                  "(num_classes, in_channels) -> nn.Module (default: the grid's models)"),
    ("device", "", "OpenVINO device(s), comma-separated (default: the grid's, CPU)"),
    ("precision", "", "inference precision(s): f32, bf16, f16, default (default: the grid's)"),
    ("dataset", "digits", "digits (embedded), cifar10 (needs --data-dir), imagefolder:PATH "
                          "(train/ and val/, a folder per class) or module:callable"),
    ("data-dir", "", "folder of the CIFAR-10 python batches"),
    ("epochs", "8", "fine-tuning epochs per case"),
    ("dense-epochs", "30", "training epochs of the dense baseline (cached)"),
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
ROW_PROPERTY = "benchsuite_row"
AA_PROPERTY = "benchsuite_aa"
SELECTION_ERROR = pytest.StashKey[str]()
# the broker's fixtures: --redis-url, --no-local-workers, the session Redis and local workers
# and the sweep's: --sweep, --sweep-count, --sweep-engine, ... (pytest -m sweep)
pytest_plugins = ["benchsuite.broker.fixtures", "benchsuite.sweep.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("benchsuite", "latency-aware pruning experiments")
    for name, default, help_text in OPTIONS:
        ini = "benchsuite_" + name.replace("-", "_")
        group.addoption(f"--{name}", dest=ini, default=None, help=f"{help_text} [{default}]")
        parser.addini(ini, help_text, default=default)
    group.addoption("--force", action="store_true", default=False,
                    help="ignore cached results and re-run every case")
    group.addoption("--no-calibration", action="store_true", default=False,
                    help="skip the session's A/A calibration (dense measured against itself)")


def option(config: pytest.Config, name: str) -> str:
    key = "benchsuite_" + name.replace("-", "_")
    value = config.getoption(key)
    return str(value if value is not None else config.getini(key))


def _list(config: pytest.Config, name: str) -> list[str] | None:
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
    for value in _list(config, name) or []:
        if value not in allowed:
            raise pytest.UsageError(f"--{name}: {value!r} is not one of {', '.join(allowed)}")


def base_case(config: pytest.Config) -> Case:
    from .bench.paired import MODES
    from .bench.result import PRECISIONS

    _choices(config, "precision", (*PRECISIONS, "default"))
    _choices(config, "paired-mode", MODES)
    _number(config, "latency-tolerance", float, 0.0)
    return Case(
        recipe="", dataset=option(config, "dataset"),
        data_dir=option(config, "data-dir") or None, seed=_number(config, "seed", int, 0),
        epochs=_number(config, "epochs", int, 1),
        dense_epochs=_number(config, "dense-epochs", int, 1),
        niter=_number(config, "niter", int, 1),
        repeats=_number(config, "bench-repeats", int, 1),
        threads=_threads(option(config, "bench-threads")),
        bench_seconds=_number(config, "bench-seconds", float, 0.0, exclusive=True),
        paired_mode=option(config, "paired-mode"),
        schedule_scale=_number(config, "schedule-scale", float, 0.0, exclusive=True),
    )


def _threads(text: str) -> int | None:
    if text.strip().lower() in ("default", "auto", ""):
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise pytest.UsageError(f"--bench-threads: a positive integer or 'default', got {text!r}")
    return value


class RowCollector:
    """Collects the result rows from the test reports (in the xdist controller too)."""

    name = "benchsuite-rows"

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.calibrations: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == ROW_PROPERTY:
                # an xfail (a sweep's infeasible trial) reports as "skipped": say what it was
                outcome = "infeasible" if hasattr(report, "wasxfail") else report.outcome
                self.rows.append(json.loads(value) | {"outcome": outcome})
            elif key == AA_PROPERTY:
                self.calibrations.append(json.loads(value))


def _rows(config: pytest.Config) -> list[dict]:
    return config.pluginmanager.get_plugin(RowCollector.name).rows


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "latency: a pruning experiment (prune, fine-tune, bench)")
    config.pluginmanager.register(RowCollector(), RowCollector.name)
    if problem := session_extras_problem(option(config, "executor"), option(config, "wandb")):
        raise pytest.UsageError(problem)
    base_case(config)  # every setting typed and range-checked before any collection or work


def pytest_report_header(config: pytest.Config) -> list[str]:
    return session_extras_notes(option(config, "executor"), option(config, "wandb"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "latency_case" not in metafunc.fixturenames:
        return
    from .grid import GridError, generate_cases

    config = metafunc.config
    try:
        cases = generate_cases(
            recipes_glob=option(config, "recipes"), models=_list(config, "model"),
            devices=_list(config, "device"), precisions=_list(config, "precision"),
            base=base_case(config), extra_folders=_list(config, "schedules"),
        )
    except GridError as e:  # an empty or wrong selection must not pass silently: a usage
        config.stash[SELECTION_ERROR] = str(e)  # error once collection is over
        cases = []
    metafunc.parametrize("latency_case", cases, ids=[c.label for c in cases])


@pytest.fixture(scope="session")
def accuracy_threshold(pytestconfig: pytest.Config) -> Threshold:
    return Threshold.parse(option(pytestconfig, "accuracy-threshold"))


@pytest.fixture(scope="session")
def latency_baseline(pytestconfig: pytest.Config):
    """(cases, tolerance) of --latency-baseline, or None when no baseline was given."""
    from .track.baseline import load_baseline

    path = option(pytestconfig, "latency-baseline")
    tolerance = float(option(pytestconfig, "latency-tolerance"))
    return (load_baseline(path), tolerance) if path else None


@pytest.fixture(scope="session")
def stage_executor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Runs the stages: through the Redis broker (its workers) by default, or in-process."""
    kind = default_executor(option(request.config, "executor"))
    if kind == "redis":
        return request.getfixturevalue("broker_executor")
    if kind == "local":
        return LocalExecutor(tmp_path_factory.mktemp("stages"))
    raise pytest.UsageError(f"--executor must be redis or local, got {kind!r}")


@pytest.fixture(scope="session")
def tracker(pytestconfig: pytest.Config):
    """The W&B tracker of this session (one run per case, grouped by session)."""
    from .track.results import git_sha
    from .track.wandb_log import WandbTracker

    # one group for the whole session, shared by pytest-xdist workers (their testrunuid)
    run_id = getattr(pytestconfig, "workerinput", {}).get("testrunuid")
    stamp = run_id[:12] if run_id else dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    t = WandbTracker(group=f"session-{stamp}-{git_sha()}",
                     mode=default_wandb_mode(option(pytestconfig, "wandb")))
    yield t
    t.close()


@pytest.fixture(scope="session")
def hardware_skip_reason(pytestconfig):
    """Callable (device, precision) -> why this session cannot measure them, or None: a device
    OpenVINO does not list, a precision the device does not run natively. External bench
    workers (--redis-url --no-local-workers) may sit on other hardware: then nothing is checked
    here (their benchmark names what is missing there)."""
    from .bench.devices import device_skip_reason, precision_skip_reason
    from .broker.fixtures import external_workers_only

    remote_bench = external_workers_only(pytestconfig)

    def reason(device: str, precision: str | None) -> str | None:
        if remote_bench:
            return None
        return device_skip_reason(device) or precision_skip_reason(device, precision)

    return reason


@pytest.fixture(scope="session")
def aa_calibration(stage_executor, pytestconfig: pytest.Config):
    """Callable (case) -> the session's A/A figure the first time it is called, else None: the
    dense model of the first case measured against itself by the bench workers, with the same
    method and settings as the cases. A speed-up's interval says how repeatable the method is;
    A/A says whether it is biased (it should read 1.000x within its interval)."""
    done: list[bool] = []

    def run(case: Case) -> dict | None:
        if done or pytestconfig.getoption("no_calibration"):
            return None
        done.append(True)
        dense = stage_executor.run("train", case.dense_spec(), {})
        result = stage_executor.run("calibrate", {
            "input_shape": dense.result["input_shape"], "settings": case.bench_settings(),
            "paired": case.paired_settings(),
        }, {"dense_onnx": dense.files["onnx"]}).result
        return result | {"model": case.model, "device": case.device,
                         "precision_requested": case.precision}

    return run


@pytest.fixture
def run_experiment(request: pytest.FixtureRequest, stage_executor, tracker, pytestconfig,
                   hardware_skip_reason, aa_calibration):
    """Callable: run a case (or take its cached result), record it, return the result row."""
    from .track.results import append_row

    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capman = pytestconfig.pluginmanager.get_plugin("capturemanager")
    force = bool(pytestconfig.getoption("force"))

    def run(case: Case, threshold: Threshold) -> dict:
        if (reason := hardware_skip_reason(case.device, case.precision)) is not None:
            pytest.skip(reason)

        def progress(stage: str) -> None:  # stages and epochs; shown unless -q
            if reporter is None or pytestconfig.getoption("verbose") < 0:
                return
            with capman.global_and_fixture_disabled():  # shown live, not captured
                reporter.write_line(f"    {case.label}: {stage}")

        row = run_case(case, stage_executor, force=force, progress=progress)
        floor = threshold.floor(row["dense_top1"])
        row |= {"threshold": floor, "passed": row["top1"] >= floor}
        if not row["cached"] or not row.get("recorded", True):  # new, or its append failed
            append_row(row)
            onnx = (row.get("artifacts") or {}).get("pruned_onnx")
            tracker.log_case(row, onnx)
            mark_recorded(row["case_id"])
        compact = {k: v for k, v in row.items() if k not in ("per_layer", "artifacts")}
        request.node.user_properties.append((ROW_PROPERTY, json.dumps(compact)))
        if (aa := aa_calibration(case)) is not None:
            from .track.summary import speedup_text

            progress(f"A/A calibration: {speedup_text(aa)}")
            request.node.user_properties.append((AA_PROPERTY, json.dumps(aa)))
        return row

    return run


def pytest_collection_finish(session: pytest.Session) -> None:
    if (error := session.config.stash.get(SELECTION_ERROR, None)) is not None:
        raise pytest.UsageError(error)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    rows = _rows(config)
    if hasattr(config, "workerinput") or not rows:  # xdist workers: the controller writes
        return
    from .paths import results_dir
    from .track.baseline import save_baseline
    from .track.benchjson import write_benchmark_json

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    config._benchsuite_outputs = [  # type: ignore[attr-defined]
        write_benchmark_json(rows, results_dir() / "pytest-benchmark" / f"{stamp}.json")]
    if path := option(config, "save-latency-baseline"):
        config._benchsuite_outputs.append(save_baseline(rows, path))  # type: ignore[attr-defined]
    if path := option(config, "latency-baseline"):
        config._benchsuite_baseline = _baseline_coverage(rows, path)  # type: ignore[attr-defined]
        if not config._benchsuite_baseline[0]:  # type: ignore[attr-defined]
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a check that checked nothing


def _baseline_coverage(rows: list[dict], path: str) -> tuple[list[str], list[str], str]:
    """(labels checked, labels not in the baseline, the baseline's path)."""
    from .track.baseline import load_baseline

    known = load_baseline(path)
    checked = [r["label"] for r in rows if r["label"] in known]
    return checked, [r["label"] for r in rows if r["label"] not in known], path


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = _rows(config)
    if not rows:
        return
    from .paths import results_dir
    from .track.summary import format_table

    calibrations = config.pluginmanager.get_plugin(RowCollector.name).calibrations
    terminalreporter.section("benchsuite: latency cases")
    for line in format_table(rows, calibrations).splitlines():
        terminalreporter.write_line(line)
    if coverage := getattr(config, "_benchsuite_baseline", None):
        checked, unchecked, path = coverage
        if not checked:
            terminalreporter.write_line(
                f"latency baseline {path}: no case of this session is in it, so nothing was "
                "checked (a baseline of another grid, model or precision?): session failed",
                red=True)
        else:
            terminalreporter.write_line(
                f"latency baseline {path}: {len(checked)} case(s) checked"
                + (f"; unchecked (not in the baseline): {', '.join(unchecked)}"
                   if unchecked else ""), yellow=bool(unchecked))
    terminalreporter.write_line(f"results table: {results_dir() / 'results.csv'}")
    for path in getattr(config, "_benchsuite_outputs", []):
        terminalreporter.write_line(f"written: {path}")
