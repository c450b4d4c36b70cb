"""The paired in-process speed-up: bootstrap interval, stopping rule, and real OpenVINO runs on
two tiny models built here (a wide and a narrow conv net)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchsuite.bench.measurement import BenchSettings
from benchsuite.bench.paired import PairedSettings, measure_paired, ratio_estimate
from benchsuite.bench.verdict import calibrate, in_process_usable, measure_pair
from benchsuite.core.stats import batch_halfwidth, bootstrap_median_ci, estimate


def _conv_ir(folder: Path, name: str, channels: int, layers: int) -> Path:
    """A static-shape IR of `layers` 3x3 convs with `channels` channels on 1x16x32x32."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(channels)
    x = ops.parameter([1, 16, 32, 32], ov.Type.f32, name="input")
    node, cin = x, 16
    for _ in range(layers):
        w = rng.standard_normal((channels, cin, 3, 3)).astype(np.float32) * 0.1
        node = ops.relu(ops.convolution(node, ops.constant(w), [1, 1], [1, 1], [1, 1], [1, 1]))
        cin = channels
    path = folder / f"{name}.xml"
    ov.save_model(ov.Model([node], [x], name), str(path), compress_to_fp16=False)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("paired")
    return {"dense": _conv_ir(folder, "wide", 64, 4), "pruned": _conv_ir(folder, "narrow", 16, 4)}


QUICK = {"round_size": 5, "warmup": 5, "min_rounds": 10, "check_every": 10, "max_seconds": 5.0,
         "bootstrap": 500}


def test_bootstrap_interval_brackets_the_median() -> None:
    values = np.random.default_rng(1).normal(2.0, 0.1, 200)
    mid, low, high = bootstrap_median_ci(values)
    assert low < mid < high
    assert mid == pytest.approx(np.median(values))
    assert high - low < 0.1  # 200 values of SD 0.1: the median is known to a few hundredths


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.5, 5.0), min_size=3, max_size=60), st.integers(0, 2**16))
def test_bootstrap_interval_lies_within_the_data(values: list[float], seed: int) -> None:
    mid, low, high = bootstrap_median_ci(np.asarray(values), resamples=200, seed=seed)
    assert min(values) <= low <= mid <= high <= max(values)


def test_a_ratio_that_moved_mid_measurement_widens_the_interval_to_both_halves() -> None:
    """What CI saw beside a CPU hog: 1.57x for the first rounds, then 1.71x. The bootstrap over
    all rounds (exchangeable) would claim about ±1 %; the interval must span both levels."""
    rng = np.random.default_rng(3)
    logs = list(np.log(np.r_[np.full(60, 1.57), np.full(60, 1.71)]) + rng.normal(0, 0.01, 120))
    mid, low, high = ratio_estimate(logs, PairedSettings())
    assert low <= 1.58 and high >= 1.70 and low <= mid <= high
    result = estimate(logs)
    assert result.drifted and result.drift == pytest.approx(1.71 / 1.57, rel=0.01)
    _, narrow_low, narrow_high = bootstrap_median_ci(np.asarray(logs))
    assert np.exp(narrow_high) - np.exp(narrow_low) < high - low


def test_rounds_that_wander_together_widen_the_interval_to_their_batches() -> None:
    """Neighbouring rounds alike (the level wanders by batch): resampling single rounds would
    claim a tight median; the t-interval over the batches' medians is the honest width."""
    rng = np.random.default_rng(5)
    levels = np.log(2.49) + np.array([0.004, -0.003, 0.005, -0.004, 0.0])
    logs = list(np.repeat(levels, 10) + rng.normal(0, 0.0005, 50))
    result = estimate(logs)
    _, boot_low, boot_high = bootstrap_median_ci(np.asarray(logs))
    assert (result.ci_high - result.ci_low) > 1.2 * (np.exp(boot_high) - np.exp(boot_low))
    assert np.log(result.ci_high) - np.log(result.speedup) >= batch_halfwidth(logs) - 1e-12


def test_exchangeable_rounds_are_rarely_called_drifted() -> None:
    """The drift test's false alarm rate on rounds without drift (disjoint 95 % intervals of
    two halves: about 0.6 % in theory); an alarm only widens the interval."""
    rng = np.random.default_rng(0)
    alarms = sum(estimate(list(rng.normal(0.4, 0.03, 60)), 400).drifted
                 for _ in range(300))
    assert alarms <= 6  # 2 %: a biased test (halves judged on ragged intervals) would show


@given(st.lists(st.floats(-1.0, 1.0), min_size=2, max_size=40))
@settings(max_examples=30, deadline=None)
def test_ratio_interval_brackets_its_estimate(logs: list[float]) -> None:
    mid, low, high = ratio_estimate(logs, PairedSettings(bootstrap=200))
    assert low <= mid <= high
    assert np.exp(min(logs)) - 1e-9 <= low and high <= np.exp(max(logs)) + 1e-9


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"mode": "solo"}, "mode 'solo'"),
    ({"min_rounds": 1}, "min_rounds"),
    ({"target_halfwidth": 0.0}, "target_halfwidth"),
    ({"max_seconds": 0}, "max_seconds"),
    ({"threads": 0}, "threads"),
])
def test_bad_settings_fail_early(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PairedSettings(**kwargs)


def test_narrow_model_is_faster_with_a_tight_interval(pair: dict[str, Path]) -> None:
    result = measure_paired(pair, PairedSettings(**QUICK), reference="dense")
    # 16 vs 64 channels: 16x fewer MACs; on any CPU the narrow net is clearly faster
    assert result.ci_low > 1.5
    assert result.ci_low <= result.speedup <= result.ci_high
    assert result.rounds >= 10 and len(result.ratios) == result.rounds
    assert result.latency_median_us["dense"] > result.latency_median_us["pruned"] > 0
    # the ratio of the two latency medians lies within the per-round ratios (a median is
    # monotone: d_i <= b * p_i for all rounds gives median(d) <= b * median(p))
    lat = result.latency_median_us
    assert min(result.ratios) * (1 - 1e-9) <= lat["dense"] / lat["pruned"] <= max(
        result.ratios) * (1 + 1e-9)
    # drift = the second half's median ratio over the first's: bounded by the rounds' ratios
    spread = max(result.ratios) / min(result.ratios)
    assert 1 / spread <= result.conditions["drift"] <= spread
    assert isinstance(result.conditions["drifted"], bool)
    assert len(result.round_medians_us["pruned"]) == result.rounds
    c = result.conditions
    assert (c["threads"], c["streams"], c["batch"]) == (1, 1, 1)
    assert c["precision"] == "f32" and c["input_shape"] == "[1, 16, 32, 32]"
    assert result.method == "in-process paired rounds (alternate)"


def test_stops_at_the_time_cap_when_the_target_is_out_of_reach(pair: dict[str, Path]) -> None:
    s = PairedSettings(**QUICK | {"target_halfwidth": 1e-9, "max_seconds": 0.5,
                                  "max_rounds": 100000})
    result = measure_paired(pair, s)
    assert not result.converged
    assert result.seconds < 10  # the cap is checked every `check_every` rounds


def test_stops_once_the_interval_is_within_the_target(pair: dict[str, Path]) -> None:
    """A reachable target ends the rounds before the time cap, and the progress lines say
    nothing of too few unpreempted rounds once there are enough (both broke when the clean
    rounds were compared by identity: every measurement ran to its cap)."""
    lines: list[str] = []
    s = PairedSettings(**QUICK | {"target_halfwidth": 0.5, "max_seconds": 60.0,
                                  "min_cpu_share": 0.0})  # every round counts, even under load
    result = measure_paired(pair, s, progress=lines.append)
    assert result.converged and result.seconds < 60
    assert result.rounds == 10 and len(lines) == 1  # stopped at the first check
    assert "unpreempted" not in lines[0], lines


def test_a_a_reads_one(pair: dict[str, Path]) -> None:
    """The same model against itself (compiled twice) reads 1: the method has no bias between
    the two slots (a loose bound here; `pytest -m benchmark` holds it to 2 %)."""
    result = calibrate(pair["pruned"], BenchSettings(precision="f32"), QUICK)
    assert abs(result["speedup"] - 1) < 0.03
    assert result["speedup_ci_low"] <= result["speedup"] <= result["speedup_ci_high"]


def test_duet_mode_measures_the_same_direction(pair: dict[str, Path]) -> None:
    result = measure_paired(pair, PairedSettings(**QUICK | {"mode": "duet"}))
    assert result.speedup > 1.5 and result.method.endswith("(duet)")


def test_measure_pair_reports_both_methods(pair: dict[str, Path], tmp_path: Path) -> None:
    out = measure_pair(pair, tmp_path, BenchSettings(precision="f32", niter=50), QUICK)
    assert out["speedup_method"] == "in-process paired rounds (alternate)"
    assert out["speedup_ci_low"] <= out["speedup"] <= out["speedup_ci_high"]
    assert out["speedup_benchmark_app"] > 1.2  # the cross-check agrees on the direction
    assert out["dense"]["per_layer"] and out["pruned"]["per_layer"]  # benchmark_app's counters
    # both models' latency per round the speed-up used (pytest-benchmark's data)
    assert len(out["dense_round_medians_us"]) == len(out["pruned_round_medians_us"]) \
        == out["bench_rounds"]
    assert out["dense_latency_median_us"] == pytest.approx(
        float(np.median(out["dense_round_medians_us"])))


def test_another_benchmark_app_falls_back_to_its_runs(pair: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """A worker whose operator named a benchmark_app (the legacy env's) cannot time in-process:
    the figure then comes from benchmark_app's interleaved runs and says so."""
    from benchsuite.bench.runner import find_benchmark_app

    settings = BenchSettings(precision="f32", niter=50, repeats=3,
                             executable=find_benchmark_app())
    assert not in_process_usable(settings)
    out = measure_pair(pair, tmp_path, settings, QUICK)
    assert out["speedup_method"] == "benchmark_app interleaved runs"
    assert out["bench_rounds"] == 3
    assert out["speedup_ci_low"] <= out["speedup"] <= out["speedup_ci_high"]
    assert len(out["dense_round_medians_us"]) == len(out["pruned_round_medians_us"]) == 3


def test_preempted_rounds_are_left_out_and_an_oversubscribed_run_says_so(
        pair: dict[str, Path]) -> None:
    """Three CPU-bound processes beside on a 2-core machine: this process gets about half a
    core, so its rounds measure the scheduler. The result says so (cpu share, disturbed)."""
    import os
    import subprocess
    import sys

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(max(3, 2 * (os.cpu_count() or 2) - 1))]
    try:
        loaded = measure_paired(pair, PairedSettings(**QUICK | {"max_seconds": 2.0}))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert loaded.conditions["cpu_share"] < 0.9
    assert loaded.conditions["disturbed"] is True
    assert loaded.conditions["rounds_preempted"] > 0


def test_a_mostly_preempted_measurement_is_disturbed_even_with_enough_clean_rounds() -> None:
    from benchsuite.bench.paired import Rounds, disturbed

    settings = PairedSettings(min_rounds=20)
    clean = {"dense": (100.0, 1.0), "pruned": (50.0, 1.0)}
    preempted = {"dense": (180.0, 0.45), "pruned": (90.0, 0.45)}
    quiet = Rounds([clean] * 40)
    assert not disturbed(quiet, settings)
    assert disturbed(Rounds([clean] * 25 + [preempted] * 35), settings)  # share median 0.45
    assert not disturbed(Rounds([clean] * 35 + [preempted] * 25), settings)  # most clean
    assert disturbed(Rounds([clean] * 5 + [preempted] * 4), settings)  # too few clean: all used


def test_the_latencies_beside_a_speedup_lie_within_its_interval() -> None:
    from benchsuite.bench.paired import agreeing_interval

    # the figures the hostile run found: 1.172x [1.160, 1.183] beside 772.4 / 691.3 us
    low, high = agreeing_interval(1.160, 1.183, 772.4 / 691.3)
    assert (low, high) == (772.4 / 691.3, 1.183) and low <= 1.172 <= high
    assert agreeing_interval(1.160, 1.183, 1.170) == (1.160, 1.183)  # agreeing: unchanged
