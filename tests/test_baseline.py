"""Latency regression checks: the verdict against a saved baseline, and its conditions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchsuite.track.baseline import check, load_baseline, save_baseline


def row(speedup: float, **conditions: object) -> dict:
    base = {"device": "CPU", "device_name": "AMD EPYC (FP32, INT8)", "precision": "f32",
            "threads": 2, "streams": 1, "batch": 1, "input_shape": "[1,1,32,32]",
            "runtime_version": "2026.4.1"}
    return {"label": "resnet20-l1_filters-0.5-CPU-f32", "speedup": speedup, "top1": 0.99,
            "dense_top1": 0.992, "latency_median_us": 500.0 / speedup,
            "dense_latency_median_us": 500.0, "git_sha": "abc", **base, **conditions}


@pytest.fixture
def baseline(tmp_path: Path) -> dict:
    return load_baseline(save_baseline([row(1.6)], tmp_path / "b.json"))


def test_within_tolerance_passes(baseline: dict) -> None:
    verdict = check(row(1.45), baseline, tolerance=0.10)  # floor 1.44
    assert verdict.ok and not verdict.note


def test_regression_fails_with_both_runs_figures(baseline: dict) -> None:
    verdict = check(row(1.40), baseline, tolerance=0.10)
    assert not verdict.ok
    assert "1.400x is below the baseline 1.600x - 10% = 1.440x" in verdict.message
    assert "pruned 357.1 µs vs dense 500.0 µs in this run" in verdict.message


def test_other_hardware_is_named(baseline: dict) -> None:
    verdict = check(row(1.5, device_name="Intel Xeon (FP32, BF16, INT8)", threads=4), baseline)
    assert verdict.ok
    assert "device_name 'AMD EPYC (FP32, INT8)' vs 'Intel Xeon (FP32, BF16, INT8)' now" in \
        verdict.note
    assert "threads 2 vs 4 now" in verdict.note and verdict.note in verdict.message


def test_case_missing_from_baseline_is_not_checked(baseline: dict) -> None:
    verdict = check({**row(0.5), "label": "other"}, baseline)
    assert verdict.ok and "not in the baseline" in verdict.message


def test_bad_baseline_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--save-latency-baseline"):
        load_baseline(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 99, "cases": {}}))
    with pytest.raises(ValueError, match="version 99, expected 1"):
        load_baseline(bad)
