"""Latency regression checks: the verdict against a saved baseline, and its conditions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchsuite.track.baseline import check, confirmed_check, load_baseline, save_baseline

pytest_plugins = ["pytester"]


def row(speedup: float, halfwidth: float = 0.01, **conditions: object) -> dict:
    base = {"device": "CPU", "device_name": "AMD EPYC (FP32, INT8)", "precision": "f32",
            "threads": 2, "streams": 1, "batch": 1, "input_shape": "[1,1,32,32]",
            "runtime_version": "2026.4.1"}
    return {"label": "resnet20-l1_filters-0.5-CPU-f32", "speedup": speedup,
            "speedup_ci_low": speedup * (1 - halfwidth),
            "speedup_ci_high": speedup * (1 + halfwidth),
            "speedup_method": "in-process paired rounds (alternate)", "top1": 0.99,
            "dense_top1": 0.992, "latency_median_us": 500.0 / speedup,
            "dense_latency_median_us": 500.0, "git_sha": "abc", **base, **conditions}


@pytest.fixture
def baseline(tmp_path: Path) -> dict:
    return load_baseline(save_baseline([row(1.6)], tmp_path / "b.json"))


def test_within_tolerance_passes(baseline: dict) -> None:
    verdict = check(row(1.45), baseline, tolerance=0.10)  # floor 1.44
    assert verdict.ok and not verdict.note


def test_an_interval_that_reaches_the_floor_passes(baseline: dict) -> None:
    # the estimate is below the floor 1.52 (1.6 - 5%), but its interval's upper end is not:
    # the measurement cannot tell this case from the baseline's
    assert check(row(1.50, halfwidth=0.02), baseline).ok
    assert not check(row(1.50, halfwidth=0.01), baseline).ok  # upper end 1.515 < 1.52


def test_default_tolerance_is_five_percent(baseline: dict) -> None:
    assert check(row(1.53, halfwidth=0.0), baseline).ok
    assert not check(row(1.51, halfwidth=0.0), baseline).ok


def test_regression_fails_with_both_runs_figures(baseline: dict) -> None:
    verdict = check(row(1.40), baseline, tolerance=0.10)
    assert not verdict.ok
    assert ("1.400x [1.386, 1.414] lies below the baseline 1.600x [1.584, 1.616] - 10% = 1.440x"
            in verdict.message)
    assert "in-process paired rounds (alternate)" in verdict.message
    assert "pruned 357.1 µs vs dense 500.0 µs in this run" in verdict.message


def test_version_1_baseline_without_intervals_still_checks(tmp_path: Path) -> None:
    old = tmp_path / "v1.json"
    entry = {"speedup": 1.6, "top1": 0.99, "latency_median_us": 300.0,
             "dense_latency_median_us": 480.0}
    old.write_text(json.dumps({"version": 1, "cases": {row(1.0)["label"]: entry}}))
    verdict = check(row(1.2), load_baseline(old))
    assert not verdict.ok and "1.600x (no interval recorded)" in verdict.message


@pytest.mark.parametrize(("cases", "match"), [
    ([], "'cases' must map case labels"),
    ({"a": {"top1": 0.9}}, r"cases.a.speedup must be a positive number, got None"),
    ({"a": {"speedup": "fast"}}, "cases.a.speedup must be a positive number"),
])
def test_malformed_baselines_fail_at_load(tmp_path: Path, cases: object, match: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"version": 2, "cases": cases}))
    with pytest.raises(ValueError, match=match):
        load_baseline(path)


def test_other_hardware_is_named(baseline: dict) -> None:
    verdict = check(row(1.58, device_name="Intel Xeon (FP32, BF16, INT8)", threads=4), baseline)
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
    with pytest.raises(ValueError, match=r"version 99, expected one of \(1, 2\)"):
        load_baseline(bad)


def _readings(*speedups: float):
    """`again` for confirmed_check: the bench stage's fields of successive re-measurements."""
    queue = [row(s) for s in speedups]
    return lambda: queue.pop(0) if queue else None


def test_a_regression_is_measured_again_before_it_fails(baseline: dict) -> None:
    # a spell of the machine read the first measurement low; the next one reads the usual
    verdict = confirmed_check(row(1.40), baseline, again=_readings(1.59))
    assert verdict.ok and "first measurement regressed, measured again: 1.590x" in verdict.note
    # a real regression reads low every time: it fails, with every reading in the message
    verdict = confirmed_check(row(1.40), baseline, again=_readings(1.41, 1.39, 1.60))
    assert not verdict.ok
    assert verdict.message.endswith("measured again: 1.410x [1.396, 1.424], 1.390x [1.376, "
                                    "1.404]")  # two confirmations, the third never taken


def test_a_passing_case_or_a_cached_result_is_not_measured_again(baseline: dict) -> None:
    calls: list[int] = []
    assert confirmed_check(row(1.6), baseline, again=lambda: calls.append(1)).ok
    assert calls == []
    verdict = confirmed_check(row(1.40), baseline, again=lambda: None)  # cached: no models
    assert not verdict.ok and "measured again" not in verdict.message


@pytest.mark.parametrize("kind", ["missing", "truncated", "deep"])
def test_a_bad_baseline_file_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path,
                                              monkeypatch, kind: str) -> None:
    """A missing or truncated --latency-baseline was a fixture-setup error at the first case,
    with the fixture's source and a traceback."""
    from benchsuite.broker.local import PACKAGE_ROOT

    path = tmp_path / f"{kind}.json"
    if kind == "truncated":
        text = save_baseline([row(1.6)], tmp_path / "whole.json").read_text()
        path.write_text(text[:len(text) // 2])
    elif kind == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    monkeypatch.setenv("BENCHSUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BENCHSUITE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("PYTHONPATH", str(PACKAGE_ROOT))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "benchsuite.experiments", "-m", "latency",
        "--executor", "local", "--wandb", "disabled", "--recipes", "level_elementwise",
        "--model", "small_cnn", "--dense-epochs", "1", "--epochs", "1",
        "--latency-baseline", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    (line,) = [x for x in result.stderr.lines if x.strip()]
    assert line.startswith(f"ERROR: latency baseline {path} ")
    assert {"missing": "not found (write one with --save-latency-baseline",
            "truncated": "is not a benchsuite baseline: ",
            "deep": "is not a benchsuite baseline: RecursionError"}[kind] in line
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
