"""The pytest plugin: glue between pytest and the library. It declares the options (defined
and validated in options.py; each a flag and an ini key `benchsuite_<name>`, the flag winning),
parametrises the case grid (the recipe library's `grid.yaml`, or the `--schedules` folder's,
filtered by `--recipes`, `--model`, `--device`, `--precision`) and provides the fixtures
(`run_experiment`, `accuracy_threshold`, ...; registered as a pytest11 entry point, so any test
can use them); session_report.py writes the end-of-session outputs. Result rows travel from the
test to the summary on the report's `user_properties`, so the summary, the baseline and the
pytest-benchmark file also work under pytest-xdist (the controller sees every worker's reports).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import warnings
from collections.abc import Callable

import pytest

from benchsuite.core.errors import OperatorError, UserError
from benchsuite.core.extras import (
    default_executor,
    default_wandb_mode,
    session_extras_notes,
    session_extras_problem,
)
from benchsuite.core.progress import CaseCounter
from benchsuite.core.result import CaseResult
from benchsuite.core.threshold import Threshold
from benchsuite.frontends.plugin.options import (
    MAIN,
    add_options,
    contradictions,
    option_value,
    session_config,
)
from benchsuite.frontends.plugin.session_report import AA_PROPERTY, ROW_PROPERTY
from benchsuite.pipeline.executor import LocalExecutor
from benchsuite.pipeline.run import calibrate_case
from benchsuite.recipe.case import Case


class BenchsuiteWarning(UserWarning):
    """Something a user of the plugin should know (pytest shows it in the warnings summary)."""


SELECTION_ERROR = pytest.StashKey[str]()
# the broker's fixtures: --redis-url, --no-local-workers, the session Redis and local workers
# and the sweep's: --sweep, --sweep-count, --sweep-engine, ... (pytest -m sweep)
# and pytest-benchmark's files of the cases (--benchmark-json, --benchmark-autosave, ...)
# and the end of the session: the rows collected from the reports, the outputs, the summary
pytest_plugins = ["benchsuite.frontends.plugin.session_report",
                  "benchsuite.frontends.plugin.broker_fixtures",
                  "benchsuite.frontends.plugin.sweep_items",
                  "benchsuite.frontends.plugin.benchmark_files"]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, MAIN)  # the one option table: options.py


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """`--schedules /abs/dir` (space-separated) must not move the rootdir (rootdir.py)."""
    from benchsuite.frontends.plugin.rootdir import fix_setup

    fix_setup(early_config, args)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "latency: a pruning experiment (prune, fine-tune, bench)")
    executor, wandb = option_value(config, "executor"), option_value(config, "wandb")
    if problem := session_extras_problem(executor, wandb):
        raise pytest.UsageError(problem)
    session_config(config)  # every setting typed and range-checked before any work


def pytest_report_header(config: pytest.Config) -> list[str]:
    return session_extras_notes(option_value(config, "executor"), option_value(config, "wandb")) + (
        _wandb_notes(config))


def _wandb_mode(config: pytest.Config) -> str:
    """The session's W&B mode: --wandb, else W&B's default (disabled without wandb)."""
    from benchsuite.track.wandb_log import default_mode

    return default_wandb_mode(session_config(config).wandb) or default_mode()


def _wandb_notes(config: pytest.Config) -> list[str]:
    """Where W&B writes, when not in the project's folder (a read-only project)."""
    from benchsuite.track.wandb_log import wandb_notes

    return wandb_notes(_wandb_mode(config))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "latency_case" not in metafunc.fixturenames:
        return
    from benchsuite.pipeline.grid import GridError, generate_cases, zoo_cases

    config = metafunc.config
    cfg = session_config(config)
    try:
        cases = generate_cases(
            recipes_glob=cfg.recipes, models=cfg.models, devices=cfg.devices,
            precisions=cfg.precisions, base=cfg.base, extra_folders=cfg.schedules,
        )
        if cfg.zoo:
            cases += zoo_cases(cases)
    except GridError as e:  # an empty or wrong selection must not pass silently: a usage
        config.stash[SELECTION_ERROR] = str(e)  # error once collection is over
        cases = []
    metafunc.parametrize("latency_case", cases, ids=[c.label for c in cases])


@pytest.fixture(scope="session")
def base_case(pytestconfig: pytest.Config) -> Case:
    """The session's base case: every case setting of the options (--dataset, --epochs,
    --dense-epochs, --seed, --train-images, --bench-threads, ...) on a blank recipe. Build your
    own cases from it, so they follow the command line:

        def test_mine(base_case, run_experiment, accuracy_threshold):
            case = replace(base_case, recipe="l1_filters", model="mymodels:tiny",
                           params={"sparsity": 0.5})
            row = run_experiment(case, accuracy_threshold)
    """
    return session_config(pytestconfig).base


@pytest.fixture(scope="session")
def accuracy_threshold(pytestconfig: pytest.Config) -> Threshold:
    return session_config(pytestconfig).threshold


@pytest.fixture(scope="session")
def latency_baseline(pytestconfig: pytest.Config):
    """(cases, tolerance) of --latency-baseline, or None when no baseline was given."""
    from benchsuite.track.baseline import load_baseline

    cfg = session_config(pytestconfig)
    path = cfg.latency_baseline
    return (load_baseline(path), cfg.latency_tolerance) if path else None


@pytest.fixture
def measure_again(stage_executor, pytestconfig):
    """Callable (case, row): the case's bench stage once more on the same models, its progress
    shown like the case's; None for a cached result (its models are not kept)."""
    from benchsuite.pipeline.run import measure_again as again

    write = _live(pytestconfig)

    def run(case: Case, row: CaseResult) -> dict | None:
        return again(row, stage_executor,
                     progress=lambda line: write(f"    {case.label}: benchmark again: {line}"))

    return run


def _live(config: pytest.Config) -> Callable[[str], None]:
    """Writes a line to the terminal as it comes (not captured), unless -q."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        if reporter is not None and config.getoption("verbose") >= 0:
            with capman.global_and_fixture_disabled():
                reporter.write_line(line)

    return write


@pytest.fixture(scope="session")
def stage_executor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Runs the stages: through the Redis broker (its workers) by default, or in-process."""
    kind = default_executor(session_config(request.config).executor)
    if kind == "redis":
        return request.getfixturevalue("broker_executor")
    if kind == "local":
        return LocalExecutor(tmp_path_factory.mktemp("stages"))
    raise pytest.UsageError(f"--executor must be redis or local, got {kind!r}")


@pytest.fixture(scope="session")
def tracker(pytestconfig: pytest.Config):
    """The W&B tracker of this session (one run per case, grouped by session)."""
    from benchsuite.core.hashing import git_sha
    from benchsuite.track.wandb_log import WandbTracker

    # one group for the whole session, shared by pytest-xdist workers (their testrunuid)
    run_id = getattr(pytestconfig, "workerinput", {}).get("testrunuid")
    stamp = run_id[:12] if run_id else dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    t = WandbTracker(group=f"session-{stamp}-{git_sha()}",
                     mode=default_wandb_mode(session_config(pytestconfig).wandb))
    yield t
    t.close()


@pytest.fixture(scope="session")
def hardware_skip_reason(pytestconfig):
    """Callable (device, precision) -> why this session cannot measure them, or None: a device
    OpenVINO does not list, a precision the device does not run natively. External bench
    workers (--redis-url --no-local-workers) may sit on other hardware: then nothing is checked
    here (their benchmark names what is missing there)."""
    from benchsuite.bench.devices import device_skip_reason, precision_skip_reason
    from benchsuite.frontends.plugin.broker_fixtures import external_workers_only

    remote_bench = external_workers_only(pytestconfig)

    def reason(device: str, precision: str | None) -> str | None:
        if remote_bench:
            return None
        return device_skip_reason(device) or precision_skip_reason(device, precision)

    return reason


@pytest.fixture(scope="session")
def int8_problem(pytestconfig):
    """Callable (case) -> why an INT8 case cannot run, or None; checked before any training:
    the device lists INT8 and nncf imports in the bench workers' environment (the local
    workers' interpreter). External bench workers are not checked here (their bench stage
    says what is missing there)."""
    from benchsuite.bench.int8 import int8_problem as problem
    from benchsuite.frontends.plugin.broker_fixtures import external_workers_only

    remote_bench = external_workers_only(pytestconfig)
    known: dict[str, str | None] = {}

    def check(case: Case) -> str | None:
        if not case.int8 or remote_bench:
            return None
        if case.device not in known:
            known[case.device] = problem(case.device, _bench_python(pytestconfig))
        return known[case.device]

    return check


def _bench_python(config: pytest.Config) -> str | None:
    """The interpreter the session's local bench worker runs in (None: this one)."""
    import sys

    from benchsuite.broker.local import env_python
    from benchsuite.core.extras import default_executor

    if default_executor(session_config(config).executor) != "redis":
        return None
    python = env_python("bench")
    return None if python == sys.executable else python


@pytest.fixture(scope="session")
def aa_calibration(stage_executor, pytestconfig: pytest.Config):
    """Callable (case) -> the session's A/A figure (case.calibrate_case) the first time it is
    called, else None."""
    done: list[bool] = []

    def run(case: Case) -> dict | None:
        if done or not session_config(pytestconfig).calibration:
            return None
        done.append(True)
        return calibrate_case(case, stage_executor)

    return run


@pytest.fixture
def run_experiment(request: pytest.FixtureRequest, stage_executor, tracker, pytestconfig,
                   hardware_skip_reason, aa_calibration, int8_problem):
    """Callable: run a case (or take its cached result), decide and record it (the recording
    service: track/recording.py), return its `CaseResult` (read like a dict)."""
    from benchsuite.track.recording import Recorder, run_and_record

    write = _live(pytestconfig)
    force = session_config(pytestconfig).force
    recorder = Recorder(tracker)

    def run(case: Case, threshold: Threshold, watch: Callable[[str], None] | None = None
            ) -> CaseResult:
        """`watch`: also gets the progress lines, with the held-out Top-1 after every
        fine-tuning epoch (a sweep's early stopping; it may raise `progress.StopStage`)."""
        for line in contradictions(pytestconfig, case):
            warnings.warn(line, BenchsuiteWarning, stacklevel=2)
        if (problem := int8_problem(case)) is not None:
            pytest.fail(problem, pytrace=False)  # asked for, not possible: an error, not a skip
        if (reason := hardware_skip_reason(case.device, case.precision)) is not None:
            pytest.skip(reason)

        def progress(stage: str) -> None:  # stages and epochs; shown unless -q
            write(f"    {case.label}: {stage}")
            if watch is not None:
                watch(stage)

        counter = pytestconfig.stash.setdefault(CASES, CaseCounter())
        write(f"  {counter.start()}: {case.label}")
        t0 = time.perf_counter()
        try:
            row = run_and_record(case, stage_executor, threshold, recorder, force=force,
                                 progress=progress, epoch_top1=watch is not None)
        except (UserError, OperatorError) as e:  # the user's (or operator's) to fix: the
            raise pytest.fail.Exception(str(e), pytrace=False) from None  # message, no traceback
        finally:
            counter.done(time.perf_counter() - t0)
        request.node.user_properties.append((ROW_PROPERTY, row.to_json(compact=True)))
        if (aa := aa_calibration(case)) is not None:
            from benchsuite.track.summary import speedup_text

            progress(f"A/A calibration: {speedup_text(aa)}")
            request.node.user_properties.append((AA_PROPERTY, json.dumps(aa)))
        return row

    return run


CASES = pytest.StashKey[CaseCounter]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[CASES] = CaseCounter(sum(
        "run_experiment" in getattr(item, "fixturenames", ()) for item in session.items))
    if (error := session.config.stash.get(SELECTION_ERROR, None)) is not None:
        raise pytest.UsageError(error)
    if any("latency_baseline" in getattr(item, "fixturenames", ()) for item in session.items):
        from benchsuite.track.baseline import baseline_problem

        path = session_config(session.config).latency_baseline
        if path is not None and (problem := baseline_problem(path)) is not None:
            raise pytest.UsageError(problem)
    if any("run_experiment" in getattr(item, "fixturenames", ()) for item in session.items):
        from benchsuite.track.recording import output_problems

        cfg = session_config(session.config)
        if problems := output_problems(wandb=_wandb_mode(session.config) != "disabled",
                                       baseline=cfg.save_latency_baseline):
            raise pytest.UsageError("; ".join(problems))
