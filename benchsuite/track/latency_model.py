"""Predicted vs measured latency over the results table (`benchsuite latency-model report`).

In a case that had a latency table (the recipe uses `LatencyBudgetPruner`, or
`BENCHSUITE_LATENCY_MODEL=1`), the bench stage adds to its result (`bench/latency_table.py`),
from the table and the convs of the dense and pruned IRs:

- `latency_predicted_us`: pruned table sum x the table's scale (the dense network measured
  whole when the table was built, over its table sum; `spec.py` says why a scale): what the
  pruner predicted, made before the case's own measurement;
- `speedup_predicted`: dense sum / pruned sum;
- `latency_table_sum_us`, `dense_latency_table_sum_us`, `dense_latency_table_measured_us`: the
  two sums and the build-time dense measurement, so the report can recompute and refit.
A "sum" here is what the model charges (`LatencyTable.cost_us`): the ops' table entries plus,
when the table was built with a calibration network, the network's per-op cost for each op.

`benchsuite latency-model report` compares, over every row that has them, the model's
predictions from those recorded figures with the measured ones: the latency, the latency with
the scale refitted per model from the dense latencies of the whole results table (median of
measured / sum), the latency against the measured latency x the run's CPU share (the table is
on the CPU-time clock, `bench/latency_table.py`; on a loaded machine the wall-clock latency is
inflated by about 1 / share), and the speed-up (both of whose latencies come from the same
paired rounds, so machine drift and load cancel: the figure to judge the model by on a shared
machine; the absolute latency of a 2-vCPU VM drifts by 10-15 % between runs), overall and, when
the rows hold several models, per model (the table's kinds fit the families differently: convs,
depthwise convs, linear layers and attention, `latency/spec.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def prediction_frame(rows: Any) -> Any:
    """Per row with predictions: measured and predicted latency and speed-up, relative errors."""
    import pandas as pd

    need = ["latency_predicted_us", "latency_table_sum_us", "dense_latency_table_sum_us",
            "latency_median_us", "dense_latency_median_us", "speedup"]
    if any(k not in rows.columns for k in need):
        return pd.DataFrame()
    df = rows.dropna(subset=need).copy()
    if df.empty:
        return df
    # rows recorded before the scale model (2026-11-30) predicted sum + (measured - dense sum):
    # their build-time dense measurement is predicted - sum + dense sum
    built = df.get("dense_latency_table_measured_us", pd.Series(float("nan"), index=df.index))
    built = built.astype(float).fillna(df["latency_predicted_us"] - df["latency_table_sum_us"]
                                       + df["dense_latency_table_sum_us"])
    df["latency_predicted_us"] = df["latency_table_sum_us"] * built / df[
        "dense_latency_table_sum_us"]
    df["speedup_predicted"] = df["dense_latency_table_sum_us"] / df["latency_table_sum_us"]
    key = ["model", "device_name", "precision", "threads"]
    scale = (df["dense_latency_median_us"] / df["dense_latency_table_sum_us"]).groupby(
        [df[k].astype(str) for k in key]).transform("median")
    df["latency_refit_us"] = df["latency_table_sum_us"] * scale
    df["err_latency"] = df["latency_predicted_us"] / df["latency_median_us"] - 1
    df["err_latency_refit"] = df["latency_refit_us"] / df["latency_median_us"] - 1
    df["err_speedup"] = df["speedup_predicted"] / df["speedup"] - 1
    # the table is on the CPU-time clock (bench/latency_table.py); a case measured on a loaded
    # machine has a wall-clock latency inflated by 1 / CPU share: measured x share
    # approximates its CPU time
    share = df["bench_cpu_share"] if "bench_cpu_share" in df else pd.Series(float("nan"),
                                                                            index=df.index)
    df["latency_cpu_us"] = df["latency_median_us"] * share.astype(float)
    df["err_latency_cpu"] = df["latency_predicted_us"] / df["latency_cpu_us"] - 1
    return df


def counters_check(df: Any, results: Path) -> Any:
    """benchmark_app's per-layer counters as a cross-check of the table: per row whose per-layer
    table is in `results/per_layer/<case_id>.csv`, the Convolution layers' summed real time of
    dense and pruned, and the error of the table's conv-time ratio (dense sum / pruned sum)
    against theirs. The counters are wall-clock over separate runs, so on a loaded machine their
    absolute µs are inflated; their ratio is what compares."""
    import pandas as pd

    out = df.copy()
    for col in ("pc_conv_dense_us", "pc_conv_pruned_us", "err_conv_ratio"):
        out[col] = float("nan")
    for i, r in out.iterrows():
        path = results / "per_layer" / f"{r['case_id']}.csv"
        if not path.is_file():
            continue
        layers = pd.read_csv(path)
        convs = layers[layers["layer_type"] == "Convolution"].groupby("model")["real_time_us"]
        sums = convs.sum()
        if not {"dense", "pruned"} <= set(sums.index) or not sums["pruned"]:
            continue
        out.loc[i, ["pc_conv_dense_us", "pc_conv_pruned_us"]] = [sums["dense"], sums["pruned"]]
        table_ratio = r["dense_latency_table_sum_us"] / r["latency_table_sum_us"]
        out.loc[i, "err_conv_ratio"] = table_ratio / (sums["dense"] / sums["pruned"]) - 1
    return out


def summary_lines(df: Any, skipped: int) -> list[str]:
    if df.empty:
        return [f"no row has a latency prediction ({skipped} rows without one: run cases with "
                "a latency table, e.g. BENCHSUITE_LATENCY_MODEL=1 or a LatencyBudgetPruner "
                "recipe)"]
    lines = [f"{'case':45s} {'measured µs':>11s} {'×share':>7s} {'predicted':>9s} {'err':>6s} "
             f"{'refit':>6s} {'×share':>6s} {'speed-up':>8s} {'pred':>6s} {'err':>6s}"]
    for _, r in df.iterrows():
        lines.append(f"{str(r['label'])[:45]:45s} {r['latency_median_us']:11.1f} "
                     f"{r['latency_cpu_us']:7.1f} {r['latency_predicted_us']:9.1f} "
                     f"{r['err_latency']:+6.1%} {r['err_latency_refit']:+6.1%} "
                     f"{r['err_latency_cpu']:+6.1%} {r['speedup']:7.2f}x "
                     f"{r['speedup_predicted']:5.2f}x {r['err_speedup']:+6.1%}")
    med = {k: float(df[k].abs().median()) for k in ("err_latency", "err_latency_refit",
                                                    "err_latency_cpu", "err_speedup")}
    if "err_conv_ratio" in df and df["err_conv_ratio"].notna().any():
        for _, r in df[df["err_conv_ratio"].notna()].iterrows():
            lines.append(f"  {str(r['label'])[:45]:45s} benchmark_app counters: convs dense "
                         f"{r['pc_conv_dense_us']:.0f} µs, pruned {r['pc_conv_pruned_us']:.0f} µs "
                         f"(ratio {r['pc_conv_dense_us'] / r['pc_conv_pruned_us']:.2f}x); table "
                         f"{r['dense_latency_table_sum_us']:.0f} / "
                         f"{r['latency_table_sum_us']:.0f} µs "
                         f"({r['dense_latency_table_sum_us'] / r['latency_table_sum_us']:.2f}x), "
                         f"{r['err_conv_ratio']:+.1%}")
        lines.append(f"median |error| of the conv-time ratio against benchmark_app's per-layer "
                     f"counters: {float(df['err_conv_ratio'].abs().median()):.1%}")
    if "model" in df and df["model"].nunique() > 1:  # a family per model (issue 23: CNNs, ViTs)
        per = df.groupby(df["model"].astype(str))
        lines.append("median |error| of the speed-up per model: " + ", ".join(
            f"{m} {float(g['err_speedup'].abs().median()):.1%} ({len(g)} cases)"
            for m, g in per))
    lines.append(f"median |error| over {len(df)} cases: latency {med['err_latency']:.1%} "
                 f"(scale refitted per model from the dense latencies: "
                 f"{med['err_latency_refit']:.1%}; vs measured x CPU share: "
                 f"{med['err_latency_cpu']:.1%}), speed-up {med['err_speedup']:.1%}"
                 + (f"; {skipped} rows without a prediction" if skipped else ""))
    return lines
