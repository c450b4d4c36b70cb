"""Parser tests on report folders captured from the real benchmark_apps (tests/data/bench_reports):
OpenVINO 2026.4 (this env) and 2021.4.2 (the legacy bench-myriad env)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchsuite.bench import parse_report_folder, parse_stdout
from benchsuite.bench.bapp_output import average_over_requests, normalise_precision
from benchsuite.bench.devices import unavailable_reason
from benchsuite.bench.runner import precision_from_exec_types

DATA = Path(__file__).parent / "data" / "bench_reports"


def sample(name: str) -> tuple[dict, object, dict]:
    summary, frame = parse_report_folder(DATA / name)
    return summary, frame, parse_stdout((DATA / name / "stdout.txt").read_text())


def check_totals(frame) -> None:
    for request, total in enumerate(frame.attrs["totals_us"]):
        rows = frame[frame["request"] == request]
        # rows and Total are rounded from the same unrounded times: 2026 to 1 µs, 2021.4's
        # Total to 10 µs
        slack = 0.5 * (int((rows["real_time_us"] > 0).sum()) + 1) + 5.0
        assert abs(rows["real_time_us"].sum() - total["real_time_us"]) <= slack


def test_2026_csv() -> None:
    summary, frame, out = sample("ov2026_cpu_csv")
    assert summary["counters_file"] == "benchmark_detailed_counters_report.csv"
    assert summary["iterations"] == out["iterations"] == 200
    assert summary["latency_resolution_us"] == 10.0 and out["latency_resolution_us"] == 0.01
    assert abs(summary["latency_median_us"] - out["latency_median_us"]) <= 5.0
    assert out["runtime_version"].startswith("2026.4")
    assert out["inference_precision"] == "bf16" and out["input_shape"] == "[1,3,16,16]"
    assert precision_from_exec_types(frame.to_dict("records")) == "bf16"
    assert list(frame.columns) == ["layer", "status", "layer_type", "exec_type", "real_time_us",
                                   "cpu_time_us", "request"]
    assert "Total" not in set(frame["layer"])
    check_totals(frame)


def test_2026_json_stats() -> None:
    summary, frame, out = sample("ov2026_cpu_json")
    assert summary["summary_file"] == "benchmark_report.json"
    assert summary["counters_file"].endswith(".json")
    assert out["inference_precision"] == "f32"
    assert precision_from_exec_types(frame.to_dict("records")) == "f32"
    assert {"latency_median_us", "latency_avg_us", "latency_min_us", "throughput_fps"} <= set(
        summary)
    check_totals(frame)


def test_2026_async_throughput_has_one_block_per_request() -> None:
    _, frame, out = sample("ov2026_cpu_async_throughput")
    n = len(frame.attrs["totals_us"])
    assert n == frame["request"].nunique() >= 2
    check_totals(frame)
    averaged = average_over_requests(frame)
    assert len(averaged) == len(frame) // n and "request" not in averaged
    assert out["streams"] >= 2


def test_2021_4_csv_and_stdout() -> None:
    summary, frame, out = sample("ov2021.4_cpu_csv")
    assert out["runtime_version"].startswith("2021.4.2")
    # 2021.4 prints "Latency: 0.03 ms"; in sync mode FPS = 1000 / median_ms gives µs precision
    assert out["latency_median_us"] == pytest.approx(1e6 / out["throughput_fps"], abs=0.01)
    assert out["latency_resolution_us"] < 1.0
    assert abs(out["latency_median_us"] - summary["latency_median_us"]) <= 5.0
    assert "latency_min_us" not in out and "inference_precision" not in out
    assert set(frame["status"]) <= {"EXECUTED", "NOT_RUN"}
    assert out["input_shape"] == "[1,3,16,16]" and out["batch"] == 1
    assert precision_from_exec_types(frame.to_dict("records")) == "bf16"  # its default here
    check_totals(frame)


def test_2021_4_enforcebf16_false_runs_f32() -> None:
    _, frame, _ = sample("ov2021.4_cpu_f32_csv")
    assert precision_from_exec_types(frame.to_dict("records")) == "f32"


def test_errors_are_benchmark_apps_own_text() -> None:
    out = parse_stdout((DATA / "ov2021.4_myriad_nc_error" / "stdout.txt").read_text())
    assert "Can not init Myriad device: NC_ERROR" in out["errors"]
    assert "NC_ERROR" in unavailable_reason(out["errors"], "MYRIAD")
    out = parse_stdout((DATA / "ov2026_bad_model" / "stdout.txt").read_text())
    assert "Could not open the file" in out["errors"] and "latency_median_us" not in out
    assert unavailable_reason(out["errors"], "CPU") is None


def test_ms_console_figures_have_10us_resolution() -> None:
    out = parse_stdout("[ INFO ] Latency:\n[ INFO ]    Median:        1.25 ms\n"
                       "[ INFO ]    Average:       1.31 ms\n[ INFO ]    Min:           1.10 ms\n"
                       "[ INFO ]    Max:           2.00 ms\n[ INFO ] Throughput:   760.00 FPS\n")
    assert out["latency_median_us"] == 1250.0 and out["latency_resolution_us"] == 10.0


def test_cpp_style_summary_with_trailing_separators(tmp_path: Path) -> None:
    # Layout of the C++ benchmark_app's report (keys per docs/measurements.md; not installed here).
    (tmp_path / "benchmark_report.csv").write_text(
        "Command line parameters;\n-m;model.xml;\n\nExecution results;\n"
        "Median latency (ms);0.15;\nAverage latency (ms);0.16;\nMin latency (ms);0.14;\n"
        "Max latency (ms);0.30;\nthroughput;6500.00;\ntotal number of iterations;500;\n")
    summary, frame = parse_report_folder(tmp_path)
    assert summary["latency_median_us"] == pytest.approx(150.0)
    assert summary["latency_max_us"] == pytest.approx(300.0)
    assert summary["iterations"] == 500 and frame.empty


@pytest.mark.parametrize("text,expected", [("<Type: 'bfloat16'>", "bf16"), ("<Type: 'float32'>",
                         "f32"), ("FP16", "f16"), ("nonsense", None)])
def test_normalise_precision(text: str, expected: str | None) -> None:
    assert normalise_precision(text) == expected


def test_percentile_line() -> None:
    out = parse_stdout("[ INFO ] Latency:\n[ INFO ]    90 percentile:     51.20 us\n"
                       "[ INFO ]    Average:       48.00 us\n")
    assert out["latency_p90_us"] == 51.2 and "latency_median_us" not in out


def test_precision_hint_cross_checked_with_kernels() -> None:
    from benchsuite.bench import BenchSettings
    from benchsuite.bench.runner import _used_precision

    rows = [{"status": "EXECUTED", "layer_type": "Convolution",
             "exec_type": "brgconv_avx512_amx_bf16"}]
    notes: list[str] = []
    used = _used_precision({"inference_precision": "f32", "per_layer": rows}, BenchSettings(),
                           notes)
    assert used == "f32" and "kernels run bf16" in notes[0]
    notes = []
    assert _used_precision({"per_layer": rows}, BenchSettings(), notes) == "bf16" and not notes
    assert _used_precision({"per_layer": []}, BenchSettings(precision="f16"), notes) == "f16"
    assert "not reported" in notes[0]
