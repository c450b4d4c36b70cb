"""The end-of-session table: one line per case, every figure with its 95 % interval, then each
pruning result beside its controls (scratch, dense zoo), the A/A calibration and the conditions
of the latency figures."""

from __future__ import annotations

import math

from benchsuite.core.result import Row, scratch_gap


def _num(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out


def speedup_text(r: Row) -> str:
    """``2.48x [2.47, 2.49]``, or the bare estimate where no interval was recorded."""
    s, lo, hi = (_num(r.get(k)) for k in ("speedup", "speedup_ci_low", "speedup_ci_high"))
    if math.isnan(s):
        return "n/a"
    mark = ("!" if r.get("bench_disturbed") is True else "") + (
        "~" if r.get("bench_drifted") is True else "")
    if math.isnan(lo) or math.isnan(hi):
        return f"{s:.2f}x{mark}"
    return f"{s:.2f}x [{lo:.2f}, {hi:.2f}]{mark}"


def top1_text(r: Row) -> str:
    """``0.9889 [0.980, 0.994]`` (95 % Wilson interval over the test images)."""
    t, lo, hi = _num(r.get("top1")), _num(r.get("top1_ci_low")), _num(r.get("top1_ci_high"))
    if math.isnan(lo) or math.isnan(hi):
        return f"{t:.4f}"
    return f"{t:.4f} [{lo:.3f}, {hi:.3f}]"


def _missing(value: object) -> bool:
    return math.isnan(_num(value))


def _same_reference(r: Row) -> tuple:
    return (r.get("model"), r.get("dataset"), r.get("seed"), r.get("device"), r.get("precision"))


def _faster(a: Row, b: Row) -> bool:
    """a is as fast as b or faster: a's interval reaches b's estimate."""
    high = _num(a.get("speedup_ci_high"))
    return (_num(a.get("speedup")) if math.isnan(high) else high) >= _num(b.get("speedup"))


def control_lines(rows: list[Row]) -> list[str]:
    """Each pruning result beside its controls: the same architecture trained from scratch
    (Liu et al., ICLR 2019) and the fastest network of the dense family that holds the same
    floor, saying plainly when a control is as good."""
    lines: list[str] = []
    zoo = [r for r in rows if str(r.get("control") or "").startswith("zoo:")]
    pruning = [r for r in rows if not str(r.get("control") or "").startswith("zoo:")]
    if pruning and not zoo and all(_missing(r.get("scratch_top1")) for r in pruning):
        return ["controls: none ran beside these results; a pruning result means something "
                "only beside them: --control scratch,zoo (or benchsuite frontier)"]
    for r in pruning:
        got = scratch_gap(r)
        if got is None:
            continue
        gap, how = got
        scratch = _num(r.get("scratch_top1"))
        low, high = _num(r.get("scratch_top1_ci_low")), _num(r.get("scratch_top1_ci_high"))
        verdict = ("the same architecture trained from scratch is as good or better: the "
                   "pruning bought an architecture, not weights" if gap <= 0 else
                   f"pruning keeps {gap:.2f} pt over training it from scratch")
        lines.append(f"scratch control of {r['label']}: Top-1 {scratch:.4f} [{low:.3f}, "
                     f"{high:.3f}] after {r.get('scratch_epochs')} epochs from scratch "
                     f"({how}); {verdict}")
    for r in pruning:
        if not zoo or not r.get("passed"):
            continue
        holding = [z for z in zoo if _same_reference(z) == _same_reference(r) and z.get("passed")]
        if not holding:
            lines.append(f"dense zoo beside {r['label']}: no network of the dense family holds "
                         f"its floor ({_num(r.get('threshold')):.4f})")
            continue
        best = max(holding, key=lambda z: _num(z.get("speedup")))
        name = str(best["control"]).removeprefix("zoo:")
        if _faster(best, r):
            verdict = "as fast or faster than the pruned model at the same floor: prefer it"
        else:
            verdict = "slower than the pruned model: the pruning beats the dense zoo"
        lines.append(f"dense zoo beside {r['label']}: fastest at the floor is {name}, "
                     f"{speedup_text(best)}, Top-1 {top1_text(best)}; {verdict}")
    return lines


def smoke_lines(rows: list[Row]) -> list[str]:
    from benchsuite.data import SMOKE_DATASETS

    smoke = sorted({str(r.get("dataset")) for r in rows} & set(SMOKE_DATASETS))
    return [f"{name}: a smoke test, not a benchmark (too easy and too small to tell pruning "
            "from picking a smaller network; use fashion-mnist for figures)" for name in smoke]


def calibration_lines(calibrations: list[dict]) -> list[str]:
    lines = []
    for c in calibrations:
        if c.get("speedup") is None:
            lines.append(f"A/A calibration ({c.get('model')}): {c.get('note', 'not measured')}")
            continue
        cond = c.get("conditions") or {}
        lines.append(
            f"A/A calibration: {c.get('model')} dense vs itself {speedup_text(c)} "
            f"({c.get('bench_rounds')} rounds, {c.get('speedup_method')}, threads "
            f"{cond.get('threads')}, precision {cond.get('precision')}); 1.00x is unbiased")
    return lines


# issue 21 item 9c: each interval is one measurement's; what repeats showed beside it
BETWEEN_SESSIONS = (
    "intervals: each [low, high] is one measurement's 95 % interval; separate measurements of "
    "one pair spread more (CV 0.3-1.2 % over 40 of them, each interval holding their median in "
    "22-24 of 40: docs/measurements.md, \"Measurement noise\"): read differences of a few "
    "percent from repeats")
MAX_LABEL = 90  # a longer label keeps its start and its end (what tells cases apart)


def _label(label: str, width: int) -> str:
    if len(label) <= width:
        return label
    keep = (width - 1) // 2
    return f"{label[:keep]}…{label[-(width - 1 - keep):]}"


def format_table(rows: list[Row], calibrations: list[dict] | None = None) -> str:
    width = min(max([len("case"), *(len(str(r["label"])) for r in rows)]), MAX_LABEL)
    head = (f"{'result':<13} {'case':<{width}} {'Top-1 [95% CI]':>24} {'val':>6} {'floor':>6} "
            f"{'dense µs':>8} {'lat µs':>8} {'speed-up [95% CI]':>22} {'MACs':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        macs = r["macs"] / r["dense_macs"] if r.get("dense_macs") else math.nan
        outcome = r.get("outcome") or ("passed" if r.get("passed") else "failed")
        verdict = {"passed": "pass", "failed": "FAIL"}.get(outcome, outcome)
        if r.get("cached"):
            verdict += " (cached)"
        lines.append(
            f"{verdict:<13} {_label(str(r['label']), width):<{width}} {top1_text(r):>24} "
            f"{_num(r.get('val_top1')):>6.3f} {_num(r.get('threshold')):>6.3f} "
            f"{_num(r.get('dense_latency_median_us')):>8.1f} "
            f"{_num(r.get('latency_median_us')):>8.1f} {speedup_text(r):>22} {macs:>5.2f}")
    lines.extend(control_lines(rows))
    lines.extend(smoke_lines(rows))
    lines.extend(calibration_lines(calibrations or []))
    if any(r.get("bench_disturbed") is True for r in [*rows, *(calibrations or [])]):
        lines.append("! disturbed: the machine was oversubscribed during the measurement (this "
                     "process got < 90% of a core in most rounds); the interval may not hold")
    if any(r.get("bench_drifted") is True for r in [*rows, *(calibrations or [])]):
        lines.append("~ drifted: the speed-up moved between the first and the second half of the "
                     "rounds by more than noise (a neighbour's load changed); the interval spans "
                     "both halves")
    if any(r.get("speedup_ci_low") is not None for r in rows):
        lines.append(BETWEEN_SESSIONS)
    conds = {(r["device"], r.get("device_name") or "unknown", r["precision"], r.get("threads"),
              r.get("streams"), r.get("batch"), r.get("input_shape"), r["runtime_version"],
              r.get("speedup_method") or "benchmark_app interleaved runs")
             for r in rows}
    for dev, name, prec, threads, streams, batch, shape, version, method in sorted(conds, key=str):
        lines.append(f"conditions: device {dev} [{name}], precision {prec}, threads {threads}, "
                     f"streams {streams}, batch {batch}, input {shape}, OpenVINO {version}; "
                     f"sync API, latency hint; method: {method}")
    n_images = {r.get("test_images") for r in rows if r.get("test_images")}
    images = f" on {', '.join(str(n) for n in sorted(n_images))} test images" if n_images else ""
    lines.append("speed-up = dense / pruned latency, median of per-round ratios with a bootstrap "
                 "95% interval; latencies = median of round medians; Top-1 of the deployed "
                 "(OpenVINO) model at the precision benchmarked, with its 95% Wilson "
                 f"interval{images}; val = Top-1 on the validation split (what a search "
                 "chooses by); MACs = pruned / dense")
    if any(r.get("precision") == "int8" for r in rows):
        lines.append("int8: the pruned model quantized by NNCF (post-training, calibrated on "
                     "training images); its speed-up and floor are against dense at f32")
    return "\n".join(lines)
