"""pytest plugin of the sweeps: `pytest -m sweep --sweep FILE --sweep-count N`.

Needs the main plugin (`benchsuite.frontends.plugin`: the case options, `run_experiment`,
`accuracy_threshold`, `tracker`). Its options are the table's sweep part (options.py).
The sweep file is loaded and checked at start-up: a bad one stops the session before any
training. `experiments/test_sweep.py` is parametrized with N slots; each slot claims the next
trial of the sweep (shared through Redis), runs its case, and tells the engine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchsuite.frontends.plugin.options import SWEEP, add_options, base_case, option_value
from benchsuite.sweep import SWEEPS_PYDANTIC

_STATE = "_benchsuite_sweep"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, SWEEP)  # the one option table: options.py


def sweep_spec(config: pytest.Config):
    """The session's loaded sweep config (a SweepSpec), or None without --sweep."""
    state = getattr(config, _STATE, None)
    return state["spec"] if state else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sweep: a trial of a sweep (run with -m sweep --sweep F)")
    config.addinivalue_line("markers", "sweep_bench: bayes vs random search at equal budget")
    for rule in (SWEEPS_PYDANTIC, "ignore:Valid config keys have changed in V2:UserWarning"):
        config.addinivalue_line("filterwarnings", rule)  # pytest resets the module's filters
    path = option_value(config, "sweep")
    if not path:
        return
    from benchsuite.core.extras import MissingExtra, require
    from benchsuite.sweep.config import SweepConfigError, load_sweep
    from benchsuite.sweep.engines import ENGINES, optuna_distributions

    try:
        require("sweep", "--sweep")
    except MissingExtra as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        spec = load_sweep(path)
        engine = option_value(config, "sweep-engine")
        if engine not in ENGINES:
            raise SweepConfigError(f"--sweep-engine: unknown engine {engine!r} (one of "
                                   f"{', '.join(ENGINES)})")
        if engine == "optuna":
            optuna_distributions(spec)
        for name in ("sweep-count", "sweep-seed", "sweep-lease", "sweep-id", "sweep-redis"):
            option_value(config, name)  # a usage error naming the option, before any work
    except (SweepConfigError, ValueError) as e:
        raise pytest.UsageError(f"bad sweep config: {e}") from None
    setattr(config, _STATE, {"spec": spec, "lines": [], "outputs": []})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sweep_slot" not in metafunc.fixturenames:
        return
    state = getattr(metafunc.config, _STATE, None)
    if state is None:
        metafunc.parametrize("sweep_slot", [0], ids=["no-sweep"])
        return
    count = option_value(metafunc.config, "sweep-count")
    name = state["spec"].name
    metafunc.parametrize("sweep_slot", range(1, count + 1),
                         ids=[f"{name}-{i:02d}" for i in range(1, count + 1)])


def default_sweep_id(config: pytest.Config) -> str:
    spec = getattr(config, _STATE)["spec"]
    engine, seed = option_value(config, "sweep-engine"), option_value(config, "sweep-seed")
    return option_value(config, "sweep-id") or f"{spec.name}-{engine}-s{seed}"


@pytest.fixture(scope="session")
def sweep_redis_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """`--sweep-redis`, else a private redis-server keeping its AOF in the project cache."""
    url = option_value(pytestconfig, "sweep-redis")
    if url:
        yield url
        return
    from benchsuite.core.paths import cache_dir
    from benchsuite.sweep.store import SweepStoreError, private_store

    if hasattr(pytestconfig, "workerinput"):  # xdist: workers would share one datadir
        pytest.fail("sweeps under pytest-xdist need a shared Redis: pass --sweep-redis URL",
                    pytrace=False)
    store = private_store(cache_dir() / "sweeps" / "redis")
    try:
        url = store.__enter__()
    except SweepStoreError as e:  # its AOF damaged: once, not a traceback per trial
        pytest.exit(str(e), returncode=pytest.ExitCode.TESTS_FAILED)
    try:
        yield url
    finally:
        store.__exit__(None, None, None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A sweep store lost or damaged under the session stops it with its message: every
    later trial would meet the same store."""
    from benchsuite.sweep.store import SweepStoreError

    try:
        return (yield)
    except SweepStoreError as e:
        pytest.exit(str(e), returncode=pytest.ExitCode.TESTS_FAILED)


@pytest.fixture(scope="session")
def sweep_session(pytestconfig: pytest.Config, accuracy_threshold, tracker, sweep_redis_url):
    """The sweep this session is an agent of; at the end: best printed, logged, saved."""
    from benchsuite.sweep.engines import make_engine
    from benchsuite.sweep.store import RedisStore, SweepStoreError
    from benchsuite.sweep.trials import SweepSession, log_best

    state = getattr(pytestconfig, _STATE, None)
    if state is None:
        pytest.skip("no sweep: give --sweep FILE (see schedules/sweeps/README.md)")
    spec = state["spec"]
    sweep_id = default_sweep_id(pytestconfig)
    budget = option_value(pytestconfig, "sweep-count")
    try:
        store = RedisStore(sweep_redis_url, sweep_id, config=spec.config)
    except ValueError as e:  # its id holds another sweep: once, not an error per item
        pytest.exit(f"--sweep-id {sweep_id}: {e} (this session's: --sweep "
                    f"{option_value(pytestconfig, 'sweep')})",
                    returncode=pytest.ExitCode.USAGE_ERROR)
    engine = make_engine(option_value(pytestconfig, "sweep-engine"), spec, store, budget,
                         seed=option_value(pytestconfig, "sweep-seed"),
                         redis_url=sweep_redis_url, study_name=sweep_id,
                         lease=option_value(pytestconfig, "sweep-lease"))
    session = SweepSession(spec, engine, base_case(pytestconfig), accuracy_threshold, sweep_id)
    yield session
    session.hand_back()  # a trial still held (an interrupt outside its run): free at once
    try:
        state["lines"] = session.summary_lines()
        best = session.best()
    except SweepStoreError as e:  # said once already by the item that met it
        state["lines"] = [str(e)]
        best = None
    if best is not None and (why := session.no_gain(best)) is not None:
        state["lines"].append(why)
    elif best is not None:
        found = session.save_found(best)
        state["outputs"].append(found)
        log_best(tracker, session, best, found)
    store.close()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    state = getattr(config, _STATE, None)
    if not state or not state["lines"]:
        return
    terminalreporter.section("benchsuite: sweep")
    for line in state["lines"]:
        terminalreporter.write_line(line)
    for path in state["outputs"]:
        terminalreporter.write_line(f"found recipe: {path}")
