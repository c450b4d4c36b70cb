"""The pytest plugin: experiment options, the case grid, fixtures, the end-of-session outputs.

Every option is both a command-line flag and an ini key (`benchsuite_<name>` in pytest.ini),
the flag winning. Cases come from `schedules/grid.yaml` filtered by `--recipes`, `--model`,
`--device`, `--precision`. Result rows travel from the test to the summary on the report's
`user_properties`, so the summary, the baseline and the pytest-benchmark file also work under
pytest-xdist (the controller sees every worker's reports).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from .case import Case, run_case
from .executor import LocalExecutor
from .threshold import Threshold

OPTIONS: list[tuple[str, str, str]] = [
    # (name, default, help)
    ("recipes", "", "glob(s) of recipe names under schedules/ (e.g. 'resnet20/*'), "
                    "comma-separated; default: the recipes grid.yaml lists"),
    ("model", "", "model name(s), comma-separated (default: the grid's models)"),
    ("device", "", "OpenVINO device(s), comma-separated (default: the grid's, CPU)"),
    ("precision", "", "inference precision(s): f32, bf16, f16, default (default: the grid's)"),
    ("dataset", "digits", "digits (embedded) or cifar10 (needs --data-dir)"),
    ("data-dir", "", "folder of the CIFAR-10 python batches"),
    ("epochs", "3", "fine-tuning epochs per case"),
    ("dense-epochs", "5", "training epochs of the dense baseline (cached)"),
    ("schedule-scale", "1", "multiply every policy epoch and lr step of the recipes (0.1: a "
                            "180-epoch Distiller recipe in 18; see schedules/README.md)"),
    ("seed", "0", "random seed"),
    ("accuracy-threshold", "-1pt", "Top-1 floor: absolute (0.97) or below dense (-1pt)"),
    ("niter", "500", "benchmark_app iterations per run"),
    ("bench-repeats", "3", "benchmark_app runs per model (median of medians)"),
    ("executor", "redis", "how stages run: redis (prune and bench workers behind a Redis "
                          "broker, the default) or local (in this process)"),
    ("wandb", "", "W&B mode: offline, online or disabled (default: offline unless "
                  "WANDB_MODE or WANDB_API_KEY say otherwise)"),
    ("latency-baseline", "", "fail cases whose speed-up fell below this baseline file's"),
    ("latency-tolerance", "0.10", "allowed relative drop of the speed-up vs the baseline"),
    ("save-latency-baseline", "", "write this session's speed-ups as a baseline file"),
]
ROW_PROPERTY = "benchsuite_row"
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


def option(config: pytest.Config, name: str) -> str:
    key = "benchsuite_" + name.replace("-", "_")
    value = config.getoption(key)
    return str(value if value is not None else config.getini(key))


def _list(config: pytest.Config, name: str) -> list[str] | None:
    return [v.strip() for v in option(config, name).split(",") if v.strip()] or None


def base_case(config: pytest.Config) -> Case:
    return Case(
        recipe="", dataset=option(config, "dataset"),
        data_dir=option(config, "data-dir") or None, seed=int(option(config, "seed")),
        epochs=int(option(config, "epochs")), dense_epochs=int(option(config, "dense-epochs")),
        niter=int(option(config, "niter")), repeats=int(option(config, "bench-repeats")),
        schedule_scale=float(option(config, "schedule-scale")),
    )


class RowCollector:
    """Collects the result rows from the test reports (in the xdist controller too)."""

    name = "benchsuite-rows"

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == ROW_PROPERTY:
                # an xfail (a sweep's infeasible trial) reports as "skipped": say what it was
                outcome = "infeasible" if hasattr(report, "wasxfail") else report.outcome
                self.rows.append(json.loads(value) | {"outcome": outcome})


def _rows(config: pytest.Config) -> list[dict]:
    return config.pluginmanager.get_plugin(RowCollector.name).rows


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "latency: a pruning experiment (prune, fine-tune, bench)")
    config.pluginmanager.register(RowCollector(), RowCollector.name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "latency_case" not in metafunc.fixturenames:
        return
    from .grid import generate_cases

    config = metafunc.config
    cases = generate_cases(
        recipes_glob=option(config, "recipes"), models=_list(config, "model"),
        devices=_list(config, "device"), precisions=_list(config, "precision"),
        base=base_case(config),
    )
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
    kind = option(request.config, "executor")
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
                     mode=option(pytestconfig, "wandb") or None)
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


@pytest.fixture
def run_experiment(request: pytest.FixtureRequest, stage_executor, tracker, pytestconfig,
                   hardware_skip_reason):
    """Callable: run a case (or take its cached result), record it, return the result row."""
    from .track.results import append_row

    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capman = pytestconfig.pluginmanager.get_plugin("capturemanager")
    force = bool(pytestconfig.getoption("force"))

    def run(case: Case, threshold: Threshold) -> dict:
        if (reason := hardware_skip_reason(case.device, case.precision)) is not None:
            pytest.skip(reason)

        def progress(stage: str) -> None:
            if reporter is None or pytestconfig.getoption("verbose") <= 0:
                return
            with capman.global_and_fixture_disabled():  # shown live, not captured
                reporter.write_line(f"    {case.label}: {stage}")

        row = run_case(case, stage_executor, force=force, progress=progress)
        floor = threshold.floor(row["dense_top1"])
        row |= {"threshold": floor, "passed": row["top1"] >= floor}
        if not row["cached"]:
            append_row(row)
            onnx = (row.get("artifacts") or {}).get("pruned_onnx")
            tracker.log_case(row, onnx)
        compact = {k: v for k, v in row.items() if k not in ("per_layer", "artifacts")}
        request.node.user_properties.append((ROW_PROPERTY, json.dumps(compact)))
        return row

    return run


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


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = _rows(config)
    if not rows:
        return
    from .paths import results_dir
    from .track.summary import format_table

    terminalreporter.section("benchsuite: latency cases")
    for line in format_table(rows).splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"results table: {results_dir() / 'results.csv'}")
    for path in getattr(config, "_benchsuite_outputs", []):
        terminalreporter.write_line(f"written: {path}")
