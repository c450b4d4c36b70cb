"""The experiments: one case per (recipe of the library or --schedules, its grid parameters,
model, device, precision). Run with `pytest --pyargs benchsuite.experiments -m latency` (in this
repository: `pytest -m latency`, experiments/test_latency.py is the same test); options:
`pytest --help` (group "benchsuite").
"""

import warnings

import pytest

from benchsuite.track.baseline import confirmed_check
from benchsuite.track.summary import speedup_text, top1_text


@pytest.mark.latency
def test_latency(latency_case, run_experiment, accuracy_threshold, latency_baseline,
                 measure_again):
    row = run_experiment(latency_case, accuracy_threshold)
    assert row["latency_median_us"] > 0 and row["dense_latency_median_us"] > 0
    assert row["top1"] >= row["threshold"], (
        f"{row['label']}: Top-1 {top1_text(row)} is below the floor {row['threshold']:.4f} "
        f"(dense {row['dense_top1']:.4f}, threshold {accuracy_threshold}, "
        f"{row.get('test_images')} test images); speed-up {speedup_text(row)}"
    )
    if latency_baseline is not None:
        cases, tolerance = latency_baseline
        # a regression is measured again before it fails the case (track/baseline.py)
        verdict = confirmed_check(row, cases, tolerance, lambda: measure_again(latency_case, row))
        if verdict.note:
            warnings.warn(f"{row['label']}{verdict.note}", stacklevel=1)
        assert verdict.ok, verdict.message
