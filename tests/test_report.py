import pandas as pd
import pytest

from benchsuite.frontends.cli import main
from benchsuite.track.pareto import pareto_front


def _row(i, recipe, top1, lat, macs, **kw):
    return {"case_id": f"c{i}", "label": f"resnet20-{recipe}-{i}-CPU-f32", "recipe": recipe,
            "sparsity": 0.5, "model": "resnet20", "device": "CPU", "precision": "f32",
            "top1": top1, "dense_top1": 0.99, "latency_median_us": lat,
            "dense_latency_median_us": 300.0, "speedup": 300.0 / lat, "macs": macs,
            "dense_macs": 40e6, "latency_cv": 0.01, "weight_sparsity": 0.0,
            "runtime_version": "2026.4.1-x", "timestamp": f"2026-11-28T10:00:0{i}"} | kw


TABLE = [  # (Top-1, latency): c0, c2, c3 are the Pareto set; c1 and c4 are dominated
    _row(0, "l1_filters", 0.99, 250.0, 20e6),
    _row(1, "l1_filters", 0.98, 260.0, 20e6),   # slower and less accurate than c0
    _row(2, "blocks", 0.97, 150.0, 10e6),
    _row(3, "blocks", 0.95, 100.0, 5e6),
    _row(4, "level", 0.95, 300.0, 40e6),       # dominated by c3
]


def test_pareto_front_of_a_hand_made_table():
    frame = pd.DataFrame(TABLE)
    assert frame.loc[pareto_front(frame), "case_id"].tolist() == ["c0", "c2", "c3"]


def test_report_writes_html_and_pngs(tmp_path):
    results = tmp_path / "results"
    (results / "per_layer").mkdir(parents=True)
    pd.DataFrame(TABLE).to_csv(results / "results.csv", index=False)
    pd.DataFrame([
        {"layer": "conv1", "real_time_us": 10.0, "model": "dense"},
        {"layer": "conv1", "real_time_us": 6.0, "model": "pruned"},
        {"layer": "fc", "real_time_us": 2.0, "model": "dense"},
        {"layer": "fc", "real_time_us": 2.0, "model": "pruned"},
    ]).to_csv(results / "per_layer" / "c3.csv", index=False)
    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--out", str(out),
                 "--case", "resnet20-blocks-3-CPU-f32"]) == 0
    page = (out / "report.html").read_text()
    for png in ("accuracy_latency.png", "speedup_macs.png",
                "per_layer_resnet20-blocks-3-CPU-f32.png"):
        assert (out / png).stat().st_size > 5000 and png in page
    assert page.count("<tr>") == len(TABLE) and "sortable" in page  # one row per case
    assert "CPU f32, OpenVINO 2026.4.1" in page


def test_report_without_results_says_what_to_do(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "run `pytest -m latency` first" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["nope-CPU-f32"])
def test_report_unknown_case(tmp_path, bad, capsys):
    (tmp_path / "results.csv").write_text(pd.DataFrame(TABLE).to_csv(index=False))
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--case", bad]) == 2
    assert f"no case labelled '{bad}'" in capsys.readouterr().err


def test_report_marks_the_floor_and_failures_and_links_wandb_runs(tmp_path):
    """The record's decision and W&B run reach the report: a floor line, failed cases marked,
    each label and each point linking to its run."""
    run = tmp_path / "wandb" / "offline-run-20261130_120000-abc123"
    run.mkdir(parents=True)
    rows = [r | {"threshold": 0.96, "passed": r["top1"] >= 0.96,
                 "wandb_run": str(run) if r["case_id"] == "c0" else "https://wandb.ai/e/p/runs/x"}
            for r in TABLE]
    results = tmp_path / "results"
    results.mkdir()
    pd.DataFrame(rows).to_csv(results / "results.csv", index=False)
    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert page.count(">FAIL<") == 2  # c3 and c4 (Top-1 0.95 < 0.96)
    assert f'href="{run.as_uri()}"' in page and 'href="https://wandb.ai/e/p/runs/x"' in page
    svg = (out / "accuracy_latency.svg").read_text()
    assert "accuracy floor" in svg and "failed (under the floor)" in svg
    assert svg.count("https://wandb.ai/e/p/runs/x") == 4  # each point of the other 4 cases
