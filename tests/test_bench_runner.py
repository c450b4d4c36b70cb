"""Runner tests: the real benchmark_app of this env on a tiny model exported in the test."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from benchsuite.bench import (
    BenchmarkAppError,
    BenchResult,
    BenchSettings,
    benchmark_interleaved,
    paired_speedups,
    parse_report_folder,
    run_benchmark,
    speedup,
)

FAST = BenchSettings(niter=100)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tinymodel import export_tiny_model

    return export_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def f32_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("f32") / "not" / "yet" / "there"


@pytest.fixture(scope="module")
def f32_run(tiny: tuple[Path, Path], f32_folder: Path) -> BenchResult:
    assert not f32_folder.exists()
    return run_benchmark(tiny[1], f32_folder, FAST.replace(precision="f32"))


def test_latencies_positive_and_conditions_recorded(f32_run: BenchResult) -> None:
    r = f32_run
    assert 0 < r.latency_min_us <= r.latency_median_us <= r.latency_max_us
    assert r.latency_avg_us > 0 and r.throughput_fps > 0
    assert r.iterations == 100
    assert r.latency_resolution_us <= 0.01  # tiny model: stdout prints µs
    assert r.precision == "f32" and r.precision_requested == "f32"
    assert r.device == "CPU" and r.batch == 1 and r.input_shape == "[1,3,16,16]"
    assert r.runtime_version.startswith("20")
    assert r.threads and r.streams == 1 and r.hint == "latency" and r.api == "sync"


def test_report_folder_created_and_kept(f32_run: BenchResult, f32_folder: Path) -> None:
    names = {p.name for p in f32_folder.iterdir()}
    assert {"benchmark_report.csv", "benchmark_detailed_counters_report.csv"} <= names
    assert "stdout.txt" in names and Path(f32_run.executable).is_file()
    summary, frame = parse_report_folder(f32_folder)
    assert summary["sections"]["command_line_parameters"]["-infer_precision"] == "f32"
    assert len(frame) == len(f32_run.per_layer)


def test_per_layer_times_sum_to_total_row(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    run_benchmark(tiny[1], tmp_path / "rep", FAST)
    summary, frame = parse_report_folder(tmp_path / "rep")
    assert (tmp_path / "rep" / "benchmark_detailed_counters_report.csv").is_file()
    assert summary["iterations"] == 100 and summary["latency_median_us"] > 0
    total = frame.attrs["totals_us"][0]["real_time_us"]
    executed = frame[frame["real_time_us"] > 0]
    # every row and the Total are rounded to 1 µs (0.001 ms) from the same unrounded times
    assert abs(frame["real_time_us"].sum() - total) <= 0.5 * (len(executed) + 1)
    assert set(frame["status"]) <= {"EXECUTED", "NOT_RUN", "OPTIMIZED_OUT"}
    assert (frame["layer_type"] == "Convolution").sum() == 2


def test_default_precision_is_what_the_device_used(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    r = run_benchmark(tiny[1], tmp_path, FAST)
    assert r.precision_requested is None
    assert r.precision in ("f32", "bf16", "f16")
    kernels = {row["exec_type"] for row in r.per_layer if row["layer_type"] == "Convolution"}
    assert any(k.lower().endswith(r.precision) for k in kernels), kernels


def test_bad_model_path_raises_with_benchmark_app_text(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkAppError) as err:
        run_benchmark(tmp_path / "missing.xml", tmp_path / "rep", FAST)
    assert "Could not open the file" in str(err.value) or "missing.xml" in str(err.value)
    assert "-m " in str(err.value)  # the command line is in the message
    assert (tmp_path / "rep").is_dir()


def test_bad_device_raises_with_benchmark_app_text(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(BenchmarkAppError, match="NOSUCHDEV"):
        run_benchmark(tiny[1], tmp_path, FAST.replace(device="NOSUCHDEV"))


def test_threads_force_hint_none(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    r = run_benchmark(tiny[1], tmp_path, FAST.replace(threads=1))
    assert r.hint == "none" and r.threads == 1
    assert any("hint" in n for n in r.notes)


def test_repeats_interleaved_and_json_roundtrip(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    onnx, xml = tiny
    res = benchmark_interleaved({"ir": xml, "onnx": onnx}, tmp_path,
                                BenchSettings(niter=50, repeats=3))
    for r in res.values():
        medians = sorted(x["latency_median_us"] for x in r.repeats)
        # the CV over the three repeats' medians, as recorded
        assert len(r.repeats) == 3 and r.latency_cv == pytest.approx(
            statistics.stdev(medians) / statistics.fmean(medians))
        assert r.latency_median_us == medians[1]
    assert (tmp_path / "onnx" / "repeat_02" / "benchmark_report.csv").is_file()
    assert speedup(res["ir"], res["onnx"]) > 0
    paired = paired_speedups(res["ir"], res["onnx"])
    assert len(paired["ratios"]) == 3 and paired["min"] <= paired["median"] <= paired["max"]
    again = BenchResult.from_dict(json.loads(json.dumps(res["ir"].to_dict())))
    assert again == res["ir"]
    assert list(again.per_layer_frame().columns)[:2] == ["layer", "status"]


def test_without_counters(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    r = run_benchmark(tiny[1], tmp_path, FAST.replace(per_layer=False))
    assert r.latency_median_us > 0 and r.per_layer == []
    assert (tmp_path / "benchmark_report.csv").is_file()
    assert not (tmp_path / "benchmark_detailed_counters_report.csv").exists()


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        BenchSettings(niter=10, time_s=1.0)
    with pytest.raises(ValueError):
        BenchSettings(precision="int4")


def test_reused_folder_does_not_mix_in_stale_reports(tiny: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    stale = tmp_path / "benchmark_report.json"
    stale.write_text('{"execution_results": {"latency (ms)": "99.0"}}')
    run_benchmark(tiny[1], tmp_path, FAST)
    summary, _ = parse_report_folder(tmp_path)
    assert not stale.exists() and summary["summary_file"] == "benchmark_report.csv"
    assert summary["latency_median_us"] < 99_000
