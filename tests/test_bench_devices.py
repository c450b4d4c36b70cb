"""Devices: CPU always; GPU/NPU run when OpenVINO lists them, else skip naming the device."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchsuite.bench import (
    BenchSettings,
    DeviceUnavailableError,
    available_devices,
    device_skip_reason,
    run_benchmark,
)
from benchsuite.bench.devices import device_name, precision_skip_reason
from benchsuite.bench.file_sizes import model_stats


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tinymodel import export_tiny_model

    return export_tiny_model(tmp_path_factory.mktemp("dev"))


def test_cpu_is_listed() -> None:
    assert "CPU" in available_devices()
    assert device_skip_reason("CPU") is None


def test_missing_device_reason_names_it() -> None:
    reason = device_skip_reason("NOSUCHDEV")
    assert reason == f"device NOSUCHDEV not available (available: {', '.join(available_devices())})"


@pytest.mark.parametrize("device", ["GPU", "NPU"])
def test_accelerator(device: str, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    reason = device_skip_reason(device)
    if reason:
        pytest.skip(reason)
    r = run_benchmark(tiny[1], tmp_path, BenchSettings(device=device, niter=50))
    assert r.latency_median_us > 0 and r.device == device


def test_unknown_device_is_a_device_unavailable_error(tiny: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    with pytest.raises(DeviceUnavailableError) as err:
        run_benchmark(tiny[1], tmp_path, BenchSettings(device="NOSUCHDEV", niter=10))
    assert "NOSUCHDEV" in err.value.reason and "not registered" in err.value.reason


def test_model_stats(tiny: tuple[Path, Path]) -> None:
    stats = model_stats(*tiny)
    assert stats["onnx_bytes"] > 0 and stats["ir_bytes"] == stats["ir_xml_bytes"] + stats[
        "ir_bin_bytes"]
    assert stats["onnx_params"] == stats["onnx_nonzero_params"] > 0


@pytest.mark.parametrize("precision, capability", [("bf16", "BF16"), ("f16", "FP16")])
def test_reduced_precision_skips_where_not_native(precision: str, capability: str) -> None:
    import openvino

    native = capability in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    reason = precision_skip_reason("CPU", precision)
    if native:
        assert reason is None
    else:  # e.g. an AVX2-only CPU: OpenVINO would quietly run f32
        assert reason is not None and f"precision {precision} not supported natively" in reason
        assert device_name("CPU") in reason and capability in reason


def test_f32_and_default_never_skip() -> None:
    assert precision_skip_reason("CPU", "f32") is None
    assert precision_skip_reason("CPU", None) is None
    assert precision_skip_reason("NOSUCHDEV", "bf16") is None  # device_skip_reason covers it


def test_device_name_names_the_cpu() -> None:
    name = device_name("CPU")
    assert name != "unknown" and "(" in name  # model and OpenVINO's optimisation capabilities
