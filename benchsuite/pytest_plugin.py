"""The pytest plugin: experiment options, the case grid, the stage executor, the summary table.

Every option is both a command-line flag and an ini key (`benchsuite_<name>` in pytest.ini),
the flag winning. Cases come from `schedules/grid.yaml` filtered by `--recipes` / `--model`.
"""

from __future__ import annotations

import pytest

from .case import Case, run_case
from .executor import LocalExecutor
from .threshold import Threshold

OPTIONS: list[tuple[str, str, str]] = [
    # (name, default, help)
    ("recipes", "*", "glob(s) of recipe names in schedules/ to run, comma-separated"),
    ("model", "", "model name(s), comma-separated (default: the grid's models)"),
    ("dataset", "digits", "digits (embedded) or cifar10 (needs --data-dir)"),
    ("data-dir", "", "folder of the CIFAR-10 python batches"),
    ("epochs", "2", "fine-tuning epochs per case"),
    ("dense-epochs", "5", "training epochs of the dense baseline (cached)"),
    ("seed", "0", "random seed"),
    ("accuracy-threshold", "-1pt", "Top-1 floor: absolute (0.97) or below dense (-1pt)"),
    ("device", "CPU", "OpenVINO device to benchmark on"),
    ("precision", "f32", "inference precision: f32, bf16, f16 or default (the device's)"),
    ("niter", "500", "benchmark_app iterations per run"),
    ("bench-repeats", "3", "benchmark_app runs per model (median of medians)"),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("benchsuite", "latency-aware pruning experiments")
    for name, default, help_text in OPTIONS:
        ini = "benchsuite_" + name.replace("-", "_")
        group.addoption(f"--{name}", dest=ini, default=None, help=f"{help_text} [{default}]")
        parser.addini(ini, help_text, default=default)
    group.addoption("--force", action="store_true", default=False,
                    help="ignore cached results and re-run every case")


def _opt(config: pytest.Config, name: str) -> str:
    key = "benchsuite_" + name.replace("-", "_")
    value = config.getoption(key)
    return str(value if value is not None else config.getini(key))


def base_case(config: pytest.Config) -> Case:
    precision = _opt(config, "precision")
    return Case(
        recipe="", dataset=_opt(config, "dataset"), data_dir=_opt(config, "data-dir") or None,
        seed=int(_opt(config, "seed")), epochs=int(_opt(config, "epochs")),
        dense_epochs=int(_opt(config, "dense-epochs")), device=_opt(config, "device"),
        precision=None if precision == "default" else precision,
        niter=int(_opt(config, "niter")), repeats=int(_opt(config, "bench-repeats")),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "latency: a pruning experiment (prune, fine-tune, bench)")
    config._benchsuite_rows = []  # type: ignore[attr-defined]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "latency_case" not in metafunc.fixturenames:
        return
    from .grid import generate_cases

    config = metafunc.config
    models = [m.strip() for m in _opt(config, "model").split(",") if m.strip()] or None
    cases = generate_cases(recipes_glob=_opt(config, "recipes"), models=models,
                           base=base_case(config))
    metafunc.parametrize("latency_case", cases, ids=[c.label for c in cases])


@pytest.fixture(scope="session")
def accuracy_threshold(pytestconfig: pytest.Config) -> Threshold:
    return Threshold.parse(_opt(pytestconfig, "accuracy-threshold"))


@pytest.fixture(scope="session")
def stage_executor(tmp_path_factory: pytest.TempPathFactory):
    """Runs the stages; in-process by default."""
    return LocalExecutor(tmp_path_factory.mktemp("stages"))


@pytest.fixture
def run_experiment(request: pytest.FixtureRequest, stage_executor, pytestconfig):
    """Callable: run a case (or take its cached result), record it, return the result row."""
    from .track.results import append_row

    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    force = bool(pytestconfig.getoption("force"))

    def run(case: Case, threshold: Threshold) -> dict:
        def progress(stage: str) -> None:
            if reporter is not None and pytestconfig.getoption("verbose") > 0:
                reporter.write_line(f"    {case.label}: {stage}")

        row = run_case(case, stage_executor, force=force, progress=progress)
        floor = threshold.floor(row["dense_top1"])
        row |= {"threshold": floor, "passed": row["top1"] >= floor}
        if not row["cached"]:
            append_row(row)
        pytestconfig._benchsuite_rows.append(row)  # type: ignore[attr-defined]
        return row

    return run


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = getattr(config, "_benchsuite_rows", [])
    if not rows:
        return
    from .track.summary import format_table

    terminalreporter.section("benchsuite: latency cases")
    for line in format_table(rows).splitlines():
        terminalreporter.write_line(line)
    from .paths import results_dir

    terminalreporter.write_line(f"results table: {results_dir() / 'results.csv'}")



