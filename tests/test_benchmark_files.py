"""pytest-benchmark's files of a session's cases, read back by the real `pytest-benchmark` CLI
(`list`, `compare`, `compare --histogram`): each case's dense and pruned latency over the paired
rounds, the speed-up in the group and in `extra_info`, pytest-benchmark's own statistics."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from benchsuite.core.paths import project_root
from benchsuite.core.result import BENCH, CaseResult, keys_for

pytest_plugins = ["pytester"]
pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed")


def _rounds(center: float, n: int, outlier: float, seed: int) -> list[float]:
    """n per-round medians (µs) around `center`, the last one preempted (`outlier` times)."""
    rng = np.random.default_rng(seed)
    values = center * (1 + 0.01 * rng.standard_normal(n))
    values[-1] = center * outlier
    return [float(v) for v in values]


def _row(i: int, speedup: float, disturbed: bool = False) -> dict:
    dense = _rounds(1000.0, 30, 3.0, seed=i)
    pruned = _rounds(1000.0 / speedup, 30, 2.5, seed=10 + i)
    return CaseResult(
        case_id=f"c{i}", label=f"resnet20-l1_filters-0.{i + 3}-CPU-f32", recipe="l1_filters",
        model="resnet20", dataset="digits", device="CPU", precision="f32", top1=0.97,
        top1_ci_low=0.96, top1_ci_high=0.98, dense_top1=0.98, speedup=speedup,
        speedup_ci_low=speedup - 0.02, speedup_ci_high=speedup + 0.02,
        speedup_method="in-process paired rounds (alternate)", bench_rounds=30,
        bench_disturbed=disturbed, latency_median_us=float(np.median(pruned)),
        dense_latency_median_us=float(np.median(dense)), macs=10_000_000,
        dense_macs=40_000_000, runtime_version="2026.4.1", pruned_round_medians_us=pruned,
        dense_round_medians_us=dense).to_json(compact=True)


ROWS = [_row(0, 1.64), _row(1, 2.10, disturbed=True)]
INNER = textwrap.dedent(f"""
    ROWS = {ROWS!r}

    def test_cases(request):  # what run_experiment leaves on the report: the rows
        for row in ROWS:
            request.node.user_properties.append(("benchsuite_row", row))
""")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "pytest-benchmark"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "pytest_benchmark"]
    out = subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.fixture
def session(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    pytester.makepyfile(test_inner=INNER)
    storage = tmp_path / "storage"
    result = pytester.runpytest_subprocess(
        "-p", "benchsuite.frontends.plugin", "-p", "no:cacheprovider", "--executor", "local",
        "--wandb", "disabled", "--benchmark-json", str(tmp_path / "bench.json"),
        "--benchmark-autosave", "--benchmark-storage", f"file://{storage}")
    result.assert_outcomes(passed=1)
    return result, storage


def test_benchmark_json_and_autosave_write_what_pytest_benchmark_reads(session, tmp_path):
    result, storage = session
    result.stdout.fnmatch_lines(["*resnet20-l1_filters-0.3-CPU-f32: speed-up 1.64x*"])
    (saved,) = storage.glob("*/0001_*.json")  # autosave: <machine>/0001_<tag>.json
    listed = _cli("--storage", str(storage), "list", cwd=tmp_path).stdout
    assert str(saved) in listed

    doc = json.loads((tmp_path / "bench.json").read_text())
    by_name = {b["name"]: b for b in doc["benchmarks"]}
    assert set(by_name) == {f"test_latency[resnet20-l1_filters-0.{i}-CPU-f32-{m}]"
                            for i in (3, 4) for m in ("dense", "pruned")}
    dense = by_name["test_latency[resnet20-l1_filters-0.3-CPU-f32-dense]"]
    pruned = by_name["test_latency[resnet20-l1_filters-0.3-CPU-f32-pruned]"]
    row = CaseResult.from_dict(json.loads(ROWS[0]))
    # both models' rounds, in seconds, with pytest-benchmark's statistics of them
    assert dense["stats"]["data"] == pytest.approx([v / 1e6 for v in row.dense_round_medians_us])
    assert pruned["stats"]["median"] == pytest.approx(row.latency_median_us / 1e6)
    assert dense["stats"]["rounds"] == 30 and dense["stats"]["iqr_outliers"] >= 1
    assert dense["stats"]["outliers"] != "0;0" and dense["stats"]["max"] > 2.9e-3
    # the speed-up in the group (one group per case: its dense and pruned) and in extra_info
    assert dense["group"] == pruned["group"] == (
        "resnet20-l1_filters-0.3-CPU-f32: speed-up 1.64x [1.62, 1.66]")
    assert by_name["test_latency[resnet20-l1_filters-0.4-CPU-f32-dense]"]["group"].endswith("!")
    assert set(pruned["extra_info"]) == set(keys_for(BENCH))
    assert pruned["extra_info"]["speedup"] == 1.64 and pruned["params"]["model"] == "pruned"

    # pytest-benchmark compare: both models of each case, grouped under the speed-up
    compare = _cli("--storage", str(storage), "compare", str(saved), "--histogram",
                   str(tmp_path / "hist" / "h"), cwd=tmp_path).stdout
    for text in ("resnet20-l1_filters-0.3-CPU-f32: speed-up 1.64x [1.62, 1.66]",
                 "latency[resnet20-l1_filters-0.3-CPU-f32-dense]",
                 "latency[resnet20-l1_filters-0.3-CPU-f32-pruned]",
                 "resnet20-l1_filters-0.4-CPU-f32: speed-up 2.10x [2.08, 2.12]!"):
        assert text in compare, compare
    svgs = sorted((tmp_path / "hist").glob("h-*.svg"))
    assert len(svgs) == 2  # one box plot per case: dense beside pruned
    assert "CPU-f32-dense" in svgs[0].read_text() and "CPU-f32-pruned" in svgs[0].read_text()
    # the --benchmark-json file is read too, and the session's own file
    assert "CPU-f32-pruned" in _cli("compare", str(tmp_path / "bench.json"), cwd=tmp_path).stdout
    (own,) = (tmp_path / "results" / "pytest-benchmark").glob("*.json")
    assert json.loads(own.read_text())["benchmarks"] == doc["benchmarks"]


def test_without_a_benchmark_option_pytest_benchmark_writes_nothing(
        pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """No option, no pytest-benchmark files nor table: only the session's own file."""
    monkeypatch.setenv("PYTHONPATH", str(project_root()))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess(
        "-p", "benchsuite.frontends.plugin", "-p", "no:cacheprovider", "--executor", "local",
        "--wandb", "disabled", "--benchmark-storage", f"file://{tmp_path / 'storage'}")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*speed-up 1.64x [[]1.62, 1.66[]]*")  # no pytest-benchmark table
    assert not list((tmp_path / "storage").rglob("*.json"))
    assert len(list((tmp_path / "results" / "pytest-benchmark").glob("*.json"))) == 1


def test_a_row_without_rounds_is_one_round_at_its_median() -> None:
    from benchsuite.track.benchjson import benchmark_entries

    row = CaseResult.from_dict(json.loads(ROWS[0]) | {"dense_round_medians_us": [],
                                                       "pruned_round_medians_us": []})
    dense, pruned = benchmark_entries(row)
    assert dense["stats"]["data"] == [pytest.approx(row.dense_latency_median_us / 1e6)]
    assert pruned["stats"]["rounds"] == 1 and pruned["stats"]["outliers"] == "0;0"
