"""One typed result record, one recording service: every output takes its fields from the
record's declarations, and recording loses nothing when a step fails."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchsuite.core.result import (
    BASELINE,
    BENCH,
    COLUMNS,
    CONDITION,
    CONFIG,
    SUMMARY,
    TABLE,
    TRIAL,
    CaseResult,
    keys_for,
)
from benchsuite.core.threshold import Threshold
from benchsuite.pipeline.assemble import result_from_stages
from benchsuite.pipeline.run import _cached, _store
from benchsuite.recipe.case import CASE_CODE
from benchsuite.track.recording import Recorder


def _result(**kw: object) -> CaseResult:
    return CaseResult(**{
        "case_id": "c0", "label": "resnet20-l1_filters-0.5-CPU-f32", "recipe": "l1_filters",
        "model": "resnet20", "dataset": "digits", "device": "CPU", "precision": "f32",
        "top1": 0.975, "dense_top1": 0.985, "speedup": 1.9, "speedup_ci_low": 1.88,
        "speedup_ci_high": 1.92, "latency_median_us": 300.0, "dense_latency_median_us": 570.0,
        "runtime_version": "2026.4.1", "timestamp": "2026-11-30T12:00:00+00:00"} | kw)


def test_every_output_reads_its_fields_from_the_record(tmp_path) -> None:
    from benchsuite.sweep.trials import REPORT_KEYS
    from benchsuite.track import baseline, benchjson, html_report, results_table, wandb_log

    assert results_table.COLUMNS == COLUMNS == keys_for(TABLE)
    assert wandb_log.SUMMARY_KEYS == keys_for(SUMMARY)
    assert wandb_log.CONFIG_KEYS == keys_for(CONFIG)
    assert baseline.CONDITIONS == keys_for(CONDITION)
    assert REPORT_KEYS == keys_for(TRIAL)
    assert set(html_report.TABLE_COLUMNS) >= {"label", "threshold", "passed", "wandb_run"}
    row = _result()
    for entry in benchjson.benchmark_entries(row):  # dense and pruned
        assert set(entry["extra_info"]) == set(keys_for(BENCH))
    saved = json.loads(baseline.save_baseline([row], tmp_path / "b.json").read_text())
    assert set(saved["cases"][row.label]) == {*keys_for(BASELINE), "conditions"}


def test_the_record_reads_like_a_row_and_round_trips() -> None:
    row = _result(per_layer={"dense": [{"layer": "conv1", "real_time_us": 3.0}]})
    assert row["top1"] == row.top1 == row.get("top1") and "speedup" in row
    assert row.get("no_such", 7) == 7
    with pytest.raises(KeyError):
        row["no_such"]
    back = CaseResult.from_dict(json.loads(row.to_json()) | {"a_column_of_another_version": 1})
    assert back == row
    assert "per_layer" not in json.loads(row.to_json(compact=True))


def test_the_recorder_decides_records_and_marks(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    row = _result()
    _store(row)
    out = Recorder(results=tmp_path / "results").record(row, Threshold.parse("-1pt"))
    assert out.threshold == pytest.approx(0.975) and out.passed is True and out.recorded
    table = pd.read_csv(tmp_path / "results" / "results.csv")
    assert table["passed"].tolist() == [True] and table["threshold"].tolist() == [0.975]
    assert _cached("c0").recorded is True
    failing = Recorder(results=tmp_path / "results").record(row, Threshold.parse("0.98"))
    assert failing.passed is False  # decided against its own threshold


def test_a_failed_append_leaves_the_case_unrecorded(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    row = _result()
    _store(row)
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    with pytest.raises(OSError):
        Recorder(results=blocked).record(row, Threshold.parse("-1pt"))
    assert _cached("c0").recorded is False  # the next run records it again
    cached = _cached("c0")
    cached.cached = True
    Recorder(results=tmp_path / "results").record(cached, Threshold.parse("-1pt"))
    assert len(pd.read_csv(tmp_path / "results" / "results.csv")) == 1
    assert _cached("c0").recorded is True


def test_the_code_that_builds_a_row_is_in_the_cache_key() -> None:
    import benchsuite
    from benchsuite.pipeline.assemble import top1_fields

    package = Path(benchsuite.__file__).resolve().parent
    for builder in (result_from_stages, top1_fields):
        path = Path(inspect.getfile(builder)).resolve().relative_to(package)
        assert path.as_posix() in CASE_CODE, path


def test_every_cache_key_names_files_that_exist() -> None:
    """A module moved without its cache key following it fails here, not in every case."""
    from benchsuite.core.hashing import code_version
    from benchsuite.pipeline.dense import TRAIN_CODE

    for parts in (CASE_CODE, TRAIN_CODE):
        assert len(code_version(*parts)) == 12
    with pytest.raises(FileNotFoundError, match=r"nosuch\.py"):
        code_version("nosuch.py")


def test_case_does_not_import_the_tracking_side() -> None:
    """case -> result, and track -> case: no cycle (case used to import track.results)."""
    code = ("import sys, benchsuite.pipeline.run; "
            "print(sorted(m for m in sys.modules if m.startswith('benchsuite.track')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_broken_table_fails_before_the_w_and_b_run(tmp_path, monkeypatch) -> None:
    """The W&B run was logged before the append that failed on the broken table, so each re-run
    logged one more run for the same row; now neither is written until the table is fixed."""
    from benchsuite.core.errors import UserError

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    logged: list[str] = []

    class Tracker:
        def log_case(self, row, onnx=None) -> str:
            logged.append(row["case_id"])
            return "run-folder"

    results = tmp_path / "results"
    Recorder(Tracker(), results=results).record(_result(case_id="c1"), Threshold.parse("-1pt"))
    path = results / "results.csv"
    header, first = path.read_text().splitlines(keepends=True)
    path.write_text(header + "garbage,x,y,z,m,d,not-a-seed\n" + first)
    row = _result()
    _store(row)
    with pytest.raises(UserError, match=r"results.csv, line 2: column seed: 'not-a-seed' is "
                                        r"not a number"):
        Recorder(Tracker(), results=results).record(row, Threshold.parse("-1pt"))
    assert logged == ["c1"]  # no W&B run for c0
    assert _cached("c0").recorded is False


@pytest.mark.parametrize("disturbed", [True, False, None])
def test_a_disturbed_result_is_measured_again_not_taken_from_the_cache(
        tmp_path, monkeypatch, disturbed) -> None:
    """A result whose paired rounds were preempted (bench_disturbed) is not final: the next
    run measures the case again and says why; an undisturbed one (or one measured by a method
    that cannot tell, None) is taken from the cache as before."""
    from benchsuite.pipeline import run
    from benchsuite.recipe.case import Case

    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    case = Case(recipe="level_elementwise", model="small_cnn", dataset="digits")
    _store(_result(case_id=case.case_id, label=case.label, bench_disturbed=disturbed,
                   recorded=True))

    class Measuring(Exception):
        pass

    def measure(_case) -> None:  # the first step of a run that measures: stop there
        raise Measuring

    monkeypatch.setattr(run, "validate", measure)
    said: list[str] = []
    if disturbed:
        with pytest.raises(Measuring):
            run.run_case(case, executor=None, progress=said.append)
        assert said == ["the cached result was disturbed (its paired rounds were preempted): "
                        "measuring the case again"]
    else:
        out = run.run_case(case, executor=None, progress=said.append)
        assert out.cached and out.bench_disturbed is disturbed and said == ["cached result"]
    with pytest.raises(Measuring):  # --force measures every case, disturbed or not
        run.run_case(case, executor=None, force=True)


def test_the_scratch_gap_compares_like_with_like():
    """Pruned against scratch: deployed against deployed where the bench stage scored the
    scratch model (an INT8 case: both quantized), else torch against torch."""
    from benchsuite.core.result import scratch_gap

    both = {"top1": 0.92, "top1_torch": 0.95, "scratch_top1": 0.90, "scratch_top1_torch": 0.91}
    gap, how = scratch_gap(both)
    assert how == "deployed" and gap == pytest.approx(2.0)
    torch_only = both | {"scratch_top1_torch": float("nan")}  # a results-table row before
    gap, how = scratch_gap(torch_only)
    assert how == "torch" and gap == pytest.approx(5.0)
    assert scratch_gap({"top1": 0.9, "scratch_top1": None}) is None


def test_a_scratch_control_scored_only_in_torch_is_compared_in_torch():
    """A bench stage that did not score the scratch model (the legacy env's interleaved mode,
    where `top1` is torch's too): the row carries no separate torch figure, and the gap is
    labelled torch against torch; scored, it is deployed against deployed."""
    from benchsuite.core.result import scratch_gap
    from benchsuite.pipeline.assemble import scratch_fields

    pruned = {"scratch_top1": 0.91, "test_images": 10_000}
    torch_only = scratch_fields(pruned, {})
    assert torch_only["scratch_top1"] == 0.91 and torch_only["scratch_top1_torch"] is None
    gap, how = scratch_gap({"top1": 0.92, "top1_torch": 0.92} | torch_only)
    assert how == "torch" and gap == pytest.approx(1.0)
    scored = scratch_fields(pruned, {"scratch_top1_deployed": 0.90,
                                     "test_images_deployed": 10_000})
    assert scored["scratch_top1"] == 0.90 and scored["scratch_top1_torch"] == 0.91
    assert scratch_gap({"top1": 0.92} | scored) == (pytest.approx(2.0), "deployed")
