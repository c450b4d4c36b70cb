"""The end of a session: the result rows, collected from the test reports (in the xdist
controller too: they travel on each report's `user_properties`), the outputs written from them
(results table, baseline, pytest-benchmark file: `track/session_end.py`), each case's
PASSED/FAILED line with its figures, and the summary section."""

from __future__ import annotations

import json

import pytest

from benchsuite.core.result import CaseResult
from benchsuite.frontends.plugin.benchmark_files import ROWS_PLUGIN
from benchsuite.frontends.plugin.options import session_config

ROW_PROPERTY = "benchsuite_row"
AA_PROPERTY = "benchsuite_aa"


class RowCollector:
    """Collects the results from the test reports (in the xdist controller too)."""

    name = ROWS_PLUGIN

    def __init__(self) -> None:
        self.rows: list[CaseResult] = []
        self.calibrations: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == ROW_PROPERTY:
                # an xfail (a sweep's infeasible trial) reports as "skipped": say what it was
                outcome = "infeasible" if hasattr(report, "wasxfail") else report.outcome
                self.rows.append(CaseResult.from_dict(json.loads(value) | {"outcome": outcome}))
            elif key == AA_PROPERTY:
                self.calibrations.append(json.loads(value))


def collected(config: pytest.Config) -> list[CaseResult]:
    return config.pluginmanager.get_plugin(RowCollector.name).rows


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(RowCollector(), RowCollector.name)


OUTPUTS = pytest.StashKey[object]()  # track.session.SessionOutputs


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    rows = collected(config)
    if hasattr(config, "workerinput") or not rows:  # xdist workers: the controller writes
        return
    from benchsuite.track.session_end import write_outputs

    cfg = session_config(config)
    outputs = write_outputs(rows, cfg.save_latency_baseline, cfg.latency_baseline)
    config.stash[OUTPUTS] = outputs
    if outputs.failed:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """A case's PASSED or FAILED line (-v) carries its figures: speed-up and Top-1, each with
    its interval, beside the floor."""
    if report.when != "call" or not (report.passed or report.failed):
        return None
    row = next((json.loads(v) for k, v in report.user_properties if k == ROW_PROPERTY), None)
    if row is None or hasattr(report, "wasxfail"):
        return None
    from benchsuite.track.summary import speedup_text, top1_text

    floor = row.get("threshold")
    figures = (f"{speedup_text(row)}, Top-1 {top1_text(row)}"
               + (f" (floor {floor:.4f})" if isinstance(floor, float) else ""))
    if report.passed:
        return "passed", ".", (f"PASSED {figures}", {"green": True})
    return "failed", "F", (f"FAILED {figures}", {"red": True})


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = collected(config)
    if not rows:
        return
    from benchsuite.track.session_end import summary_lines

    calibrations = config.pluginmanager.get_plugin(RowCollector.name).calibrations
    terminalreporter.section("benchsuite: latency cases")
    for line, colour in summary_lines(rows, calibrations, config.stash.get(OUTPUTS, None)):
        terminalreporter.write_line(line, **({colour: True} if colour else {}))
