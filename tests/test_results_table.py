"""The results table survives a killed writer and a broken file: nothing lost, nothing shown
wrong, errors that name the file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchsuite.core.result import CaseResult
from benchsuite.frontends.cli import main
from benchsuite.pipeline.run import _cached, _store, mark_recorded
from benchsuite.track.results_table import ResultsTableError, append_row, read_results


def _row(i: int, **kw: object) -> dict:
    return {"case_id": f"c{i}", "label": f"resnet20-l1_filters-{i}-CPU-f32", "recipe": "l1",
            "recipe_params": json.dumps({"sparsity": 0.5, "round_to": 8}), "model": "resnet20",
            "device": "CPU", "precision": "f32", "top1": 0.98, "dense_top1": 0.99,
            "latency_median_us": 300.0 - i, "dense_latency_median_us": 700.0,
            "speedup": 700.0 / (300.0 - i), "macs": 10e6, "dense_macs": 40e6,
            "weight_sparsity": 0.0, "runtime_version": "2026.4.1",
            "timestamp": f"2026-11-30T10:00:0{i}+00:00"} | kw


def test_append_after_a_killed_writer_quarantines_the_partial_row(tmp_path) -> None:
    append_row(_row(0), tmp_path)
    path = tmp_path / "results.csv"
    complete = path.read_bytes()
    # a writer killed inside the quoted recipe_params field: no newline at the end
    path.write_bytes(complete + b'c9,resnet20-x,l1,"{""sparsity"": 0.')
    with pytest.warns(UserWarning, match=r"results.csv: its last row was cut short.*partial-"):
        append_row(_row(1), tmp_path)
    table = read_results(tmp_path)
    assert table["case_id"].tolist() == ["c0", "c1"]  # the new row is whole, not glued on
    assert len(table.columns) == len(pd.read_csv(tmp_path / "results.csv").columns)
    (partial,) = tmp_path.glob("results.csv.partial-*")
    assert partial.read_bytes().startswith(b"c9,resnet20-x")  # kept, not thrown away
    append_row(_row(2), tmp_path)  # and the table goes on
    assert read_results(tmp_path)["case_id"].tolist() == ["c0", "c1", "c2"]


def test_an_unreadable_table_is_named_with_what_to_do(tmp_path, capsys) -> None:
    (tmp_path / "results.csv").write_text('case_id,label\n"c0,unterminated\n')
    with pytest.raises(ResultsTableError, match=r"results.csv is not a readable CSV.*move it"):
        append_row(_row(0), tmp_path)
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "results.csv") in err and "move it aside" in err


def test_the_report_drops_an_incomplete_row_instead_of_preferring_it(tmp_path) -> None:
    append_row(_row(0), tmp_path)
    # the same case again, cut short: no timestamp, no latency (NaNs when parsed)
    with open(tmp_path / "results.csv", "a") as f:
        f.write("c0b,resnet20-l1_filters-0-CPU-f32,l1\n")
    with pytest.warns(UserWarning, match=r"ignored 1 incomplete row\(s\) \(table lines 3\)"):
        assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 0
    page = (tmp_path / "o" / "report.html").read_text()
    assert "300" in page and page.count("<tr>") == 1  # the complete row, latency and all


def test_a_cached_row_stays_unrecorded_until_its_append_succeeds(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    _store(CaseResult.from_dict(_row(0) | {"recorded": False}))
    assert _cached("c0")["recorded"] is False  # a later run records it again
    mark_recorded("c0")
    assert _cached("c0")["recorded"] is True


def test_identifiers_that_look_like_numbers_stay_text(tmp_path) -> None:
    """A git sha of digits and one 'e' (63834692e263) read back as a float broke the Parquet
    copy of the table on the next append."""
    append_row(_row(0, git_sha="63834692e263", case_id="1e5"), tmp_path)
    append_row(_row(1, git_sha="abc123"), tmp_path)
    table = read_results(tmp_path)
    assert table["git_sha"].tolist() == ["63834692e263", "abc123"]
    assert table["case_id"].tolist() == ["1e5", "c1"]
    assert pd.read_parquet(tmp_path / "results.parquet")["git_sha"].tolist()[0] == "63834692e263"
