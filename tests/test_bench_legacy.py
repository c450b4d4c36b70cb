"""The legacy path: OpenVINO 2021.4.2's benchmark_app (bench-myriad env, Python 3.6) on ONNX.

Runs when the env is built (`tox -e bench-myriad`, or scripts/legacy_env.sh); otherwise skips
with a reason naming what is missing. MYRIAD cases skip with the plugin's own reason (NC_ERROR)
when no Neural Compute Stick 2 is plugged in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchsuite.bench import (
    BenchSettings,
    device_skip_reason,
    legacy_benchmark_app,
    parse_report_folder,
    run_benchmark,
)

LEGACY = legacy_benchmark_app()
needs_legacy = pytest.mark.skipif(LEGACY.path is None, reason=LEGACY.reason)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tinymodel import export_tiny_model

    return export_tiny_model(tmp_path_factory.mktemp("legacy"))[0]


def test_reason_names_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from benchsuite.bench import devices

    monkeypatch.setenv(devices.LEGACY_ENV_VAR, str(tmp_path / "nowhere" / "benchmark_app"))
    monkeypatch.setattr(devices, "_repo_roots", lambda: [tmp_path])
    found = devices.legacy_benchmark_app()
    assert found.path is None
    assert "not built" in found.reason and "bench-myriad" in found.reason


@needs_legacy
def test_legacy_run_on_cpu(tiny_onnx: Path, tmp_path: Path) -> None:
    settings = BenchSettings(niter=100, precision="f32", executable=str(LEGACY.path))
    r = run_benchmark(tiny_onnx, tmp_path / "rep", settings)
    assert r.runtime_version.startswith("2021.4")
    assert r.latency_median_us > 0 and r.latency_resolution_us < 1.0
    assert r.precision == "f32"  # -enforcebf16 False, read back from the kernels
    assert any("no -hint" in n for n in r.notes)
    summary, frame = parse_report_folder(tmp_path / "rep")
    assert summary["iterations"] == 100 and not frame.empty
    total = frame.attrs["totals_us"][0]["real_time_us"]  # 2021.4 rounds the Total to 10 µs
    assert abs(frame["real_time_us"].sum() - total) <= 5.0 + 0.5 * len(frame)


@needs_legacy
def test_legacy_cannot_request_f16_on_cpu(tiny_onnx: Path, tmp_path: Path) -> None:
    from benchsuite.bench import BenchmarkAppError

    with pytest.raises(BenchmarkAppError, match="no -infer_precision"):
        run_benchmark(tiny_onnx, tmp_path, BenchSettings(precision="f16",
                                                         executable=str(LEGACY.path)))


def test_myriad(tiny_onnx: Path, tmp_path: Path) -> None:
    reason = device_skip_reason("MYRIAD")
    if reason:
        if LEGACY.path is not None:  # env built, no stick: the plugin's own words
            assert "NC_ERROR" in reason
        pytest.skip(reason)
    r = run_benchmark(tiny_onnx, tmp_path, BenchSettings(device="MYRIAD", niter=50,
                                                         executable=str(LEGACY.path)))
    assert r.device == "MYRIAD" and r.latency_median_us > 0
