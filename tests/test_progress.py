"""Progress lines (training epochs) reach the session from in-process stages and from Redis
workers alike, and the pytest session shows them without -v."""

from __future__ import annotations

import threading

from broker_stages import PROGRESS

from benchsuite.core.progress import epoch_line, format_seconds, forward, log
from benchsuite.pipeline.executor import LocalExecutor
from benchsuite.pipeline.run import run_case
from benchsuite.recipe.case import Case

pytest_plugins = ["broker_support"]


def test_epoch_line_counts_from_one_and_estimates_the_rest():
    assert epoch_line(0, 4, 1.23456, 2.0) == "epoch 1/4 loss 1.235, 2.0 s/epoch, ETA 6 s"
    assert epoch_line(3, 4, 0.5, 8.0) == "epoch 4/4 loss 0.500, 2.0 s/epoch, done"
    assert format_seconds(125) == "2 min 05 s" and format_seconds(3 * 3600 + 60) == "3 h 01 min"


def test_forward_passes_only_this_threads_lines():
    lines: list[str] = []
    with forward(lines.append):
        log.info("mine %d", 1)
        other = threading.Thread(target=lambda: log.info("another thread's"))
        other.start()
        other.join()
    log.info("after the block")
    assert lines == ["mine 1"]


def test_local_executor_forwards_a_stages_progress(tmp_path):
    lines: list[str] = []
    out = LocalExecutor(tmp_path).run(PROGRESS, {"n": 2}, {}, progress=lines.append)
    assert out.result == {"steps": 2} and lines == ["step 1/2", "step 2/2"]


def test_redis_worker_progress_reaches_the_waiting_session(redis_server, start_worker,
                                                          executor_for):
    start_worker(redis_server.url, "prune")
    lines: list[str] = []
    result = executor_for(redis_server.url).run(PROGRESS, {"n": 3}, {}, progress=lines.append)
    assert result.result == {"steps": 3}
    assert lines == ["step 1/3", "step 2/3", "step 3/3"]


def test_run_case_reports_every_training_epoch(tmp_path, monkeypatch):
    """A real case in-process: each stage name, then each epoch of the dense training and of
    the fine-tuning, with the total and an ETA."""
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    case = Case(recipe="level_elementwise", model="small_cnn", dense_epochs=2, epochs=1,
                niter=20, repeats=1, dataset="digits")
    said: list[str] = []
    run_case(case, LocalExecutor(tmp_path / "work"), progress=said.append)
    assert said[0] == "dense baseline"
    assert said[1].startswith("dense baseline: epoch 1/2 loss ") and "ETA" in said[1]
    assert said[2].startswith("dense baseline: epoch 2/2 loss ") and said[2].endswith("done")
    assert said[3:6] == ["prune + fine-tune", said[4], "benchmark"]
    assert said[4].startswith("fine-tune: epoch 1/1 loss ")
    # the benchmark says what it runs and, as the rounds go, the speed-up so far
    assert said[6] == "benchmark: benchmark_app on dense and pruned: 1 run(s) of 20 iterations " \
                      "each (per-layer counters, cross-check)"
    assert said[7].startswith("benchmark: paired rounds until the speed-up's interval is within")
    rounds = said[8:]
    assert all(line.startswith("benchmark: round ") and "x [" in line for line in rounds)


def test_case_k_of_n_and_the_session_eta():
    from benchsuite.core.progress import CaseCounter

    counter = CaseCounter(total=4)
    assert counter.start() == "case 1/4"  # no ETA before a case has run
    counter.done(0.2)  # from the result cache: not in the mean
    assert counter.start() == "case 2/4"
    counter.done(120.0)
    counter.done(60.0)  # a third case, run elsewhere in this session
    # cases 3 and 4 left, at a mean of 90 s
    assert counter.start() == "case 3/4, session ETA 3 min 00 s (mean 1 min 30 s a case)"


def test_a_cases_passed_line_carries_its_figures():
    import json

    import pytest

    from benchsuite.frontends.plugin.session_report import ROW_PROPERTY, pytest_report_teststatus

    row = {"speedup": 1.5, "speedup_ci_low": 1.49, "speedup_ci_high": 1.51, "top1": 0.9211,
           "top1_ci_low": 0.916, "top1_ci_high": 0.926, "threshold": 0.9144}
    report = pytest.TestReport("t.py::test_latency[x]", ("t.py", 1, "x"), {}, "passed", None,
                               "call", user_properties=[(ROW_PROPERTY, json.dumps(row))])
    category, letter, (word, markup) = pytest_report_teststatus(report, None)
    assert (category, letter) == ("passed", ".") and markup == {"green": True}
    assert word == "PASSED 1.50x [1.49, 1.51], Top-1 0.9211 [0.916, 0.926] (floor 0.9144)"
    report.outcome = "failed"
    assert pytest_report_teststatus(report, None)[2][0].startswith("FAILED 1.50x")
    report.user_properties = []
    assert pytest_report_teststatus(report, None) is None  # not a case: pytest's own line
