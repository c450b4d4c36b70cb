"""pytest-benchmark's files for the session's cases: with `--benchmark-json PATH`,
`--benchmark-save NAME` or `--benchmark-autosave`, each case's dense and pruned latency
(`track/benchjson.py`) joins pytest-benchmark's own session before it saves, so pytest-benchmark
writes the files where it always does (its storage, `.benchmarks/<machine>/NNNN_<name>.json`,
or PATH), shows its table and compares (`--benchmark-compare`) as for its `benchmark` fixture."""

from __future__ import annotations

import pytest

ROWS_PLUGIN = "benchsuite-rows"  # the plugin's RowCollector


def hand_over(config: pytest.Config) -> int:
    """Give the session's cases to pytest-benchmark when one of its saving options is given;
    returns how many benchmarks were added."""
    session = getattr(config, "_benchmarksession", None)
    collector = config.pluginmanager.get_plugin(ROWS_PLUGIN)
    if (session is None or collector is None or hasattr(config, "workerinput")
            or not (session.json or session.save or session.autosave)):
        return 0
    from benchsuite.track.benchjson import case_benchmarks

    added = [b for row in collector.rows for b in case_benchmarks(row)]
    session.benchmarks.extend(added)
    return len(added)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session):
    """Before pytest-benchmark's own session end (its hook saves the files)."""
    hand_over(session.config)
    return (yield)
