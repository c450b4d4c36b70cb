"""The report's plots (matplotlib, files only): Top-1 vs speed-up, speed-up vs MACs ratio, and
per-module time; PNG with an SVG beside it (text kept as text). `track/html_report.py` puts them
in the page. Also the readers of the results table's columns both use (yes/no flags, a column
that may be missing)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd

from benchsuite.track.layer_names import module_times

SPEEDUP_AXIS = "speed-up (dense / pruned latency, same run)"


def flag(value: object) -> bool | None:
    """A yes/no field as the table holds it (True, "True", 1.0, NaN) -> True, False or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return {"true": True, "1": True, "1.0": True, "false": False, "0": False,
                "0.0": False}.get(value.strip().lower())
    return bool(value)


def column(frame: pd.DataFrame, key: str) -> pd.Series:
    return frame[key] if key in frame.columns else pd.Series(math.nan, index=frame.index)


def flags(frame: pd.DataFrame, key: str) -> pd.Series:
    return column(frame, key).map(lambda v: flag(v) is True).astype(bool)


def failed(frame: pd.DataFrame) -> pd.Series:
    return column(frame, "passed").map(lambda v: flag(v) is False).astype(bool)


def is_zoo(frame: pd.DataFrame) -> pd.Series:
    return column(frame, "control").map(
        lambda v: isinstance(v, str) and v.startswith("zoo:")).astype(bool)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _save(fig, ax, title: str, path: Path) -> Path:
    """The PNG at `path` and the SVG beside it (text as text: the browser shows and finds the
    titles and axis names), cropped to what is drawn so no title or legend is cut off."""
    ax.set_title(_wrap(title, 70), fontsize=11)
    plt = _pyplot()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(path.with_suffix(".svg"), bbox_inches="tight")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _legend(ax) -> None:
    """Beside the plot, not over its points."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [_wrap(x, 36) for x in labels], fontsize=8, loc="upper left",
              bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


MARKERS = "os^DvPX<>"


def _style(i: int) -> dict:
    """A distinct colour and marker per paradigm (more paradigms than one palette has)."""
    plt = _pyplot()
    return {"color": plt.get_cmap("tab10")(i % 10), "marker": MARKERS[i % len(MARKERS)]}


def run_link(where: object) -> str | None:
    """A link to a case's W&B run: its URL (online), or its local folder (offline runs; `wandb
    sync <folder>` uploads one)."""
    if not isinstance(where, str) or not where:
        return None
    return where if where.startswith(("http://", "https://")) else Path(where).as_uri() \
        if Path(where).is_absolute() else None


def _interval(frame: pd.DataFrame, key: str, scale: float = 1.0) -> tuple[pd.DataFrame, list]:
    """The rows that have `key`'s 95 % interval, and its error-bar lengths [below, above]."""
    low, high = column(frame, f"{key}_ci_low"), column(frame, f"{key}_ci_high")
    known = frame[low.notna() & high.notna()]
    est = known[key].astype(float)
    below = ((est - low[known.index].astype(float)) * scale).clip(lower=0)
    above = ((high[known.index].astype(float) - est) * scale).clip(lower=0)
    return known, [below.to_numpy(), above.to_numpy()]


def _error_bars(ax, frame: pd.DataFrame, x: str, y: str, key: str, horizontal: bool, gid: str,
                y_scale: float = 1.0) -> None:
    """Error bars of `key`'s 95 % interval at the points (x, y × y_scale), drawn under the
    points: horizontal for the x axis's figure, vertical for the y axis's. They are one SVG
    group, `<gid>-<key>-interval`."""
    rows, err = _interval(frame, key, 1.0 if horizontal else y_scale)
    if rows.empty:
        return
    bars = ax.errorbar(rows[x].astype(float), rows[y].astype(float) * y_scale,
                       **{"xerr" if horizontal else "yerr": err}, fmt="none", ecolor="0.35",
                       elinewidth=1.0, capsize=2.5, zorder=2)
    for collection in bars.lines[2]:
        collection.set_gid(f"{gid}-{key.replace('_', '-')}-interval")


def plot_accuracy_speedup(frame: pd.DataFrame, path: Path) -> Path:
    """Top-1 vs speed-up, both with their intervals; PNG at `path`, SVG beside it (each point
    links to its W&B run)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for key, horizontal in (("speedup", True), ("top1", False)):
        _error_bars(ax, frame, "speedup", "top1", key, horizontal, "accuracy-speedup", 100)
    zoo = is_zoo(frame)
    series = [(str(recipe), group) for recipe, group in frame[~zoo].groupby("recipe")]
    if zoo.any():
        series.append(("dense zoo control: a smaller dense network from scratch", frame[zoo]))
    for i, (name, group) in enumerate(series):
        points = ax.scatter(group["speedup"], group["top1"] * 100, label=name, alpha=0.85,
                            zorder=3, **_style(i))
        points.set_urls([run_link(w) for w in column(group, "wandb_run")])
    scratch = frame[~zoo & column(frame, "scratch_top1").notna()]
    if not scratch.empty:
        ax.vlines(scratch["speedup"], scratch["top1"] * 100, scratch["scratch_top1"] * 100,
                  colors="0.5", linestyles=":", lw=1, zorder=1)
        ax.scatter(scratch["speedup"], scratch["scratch_top1"] * 100, marker="o", s=40,
                   facecolors="none", edgecolors="0.3", zorder=3,
                   label="scratch control: the same architecture trained from scratch")
    keys = [k for k in ("model", "dataset", "seed") if k in frame.columns]
    dense = frame.drop_duplicates(keys).assign(speedup=1.0)  # each model's reference
    references = dense[["speedup"]].assign(
        top1=dense["dense_top1"], top1_ci_low=column(dense, "dense_top1_ci_low"),
        top1_ci_high=column(dense, "dense_top1_ci_high"))
    _error_bars(ax, references, "speedup", "top1", "top1", False, "dense", 100)
    ax.scatter(dense["speedup"], dense["dense_top1"] * 100, marker="*", s=160, c="k", zorder=4,
               label="dense reference (speed-up 1 by definition)")
    ax.axvline(1.0, color="0.7", lw=0.8, zorder=0)
    front = frame[frame["pareto"]].sort_values("speedup")
    ax.plot(front["speedup"], front["top1"] * 100, "k--", lw=1, zorder=2,
            label="Pareto front (speed-up × Top-1)")
    under = frame[failed(frame)]
    if not under.empty:
        ax.scatter(under["speedup"], under["top1"] * 100, marker="x", s=80, c="red", zorder=5,
                   label="failed (under the floor)")
    for key, colour, style, text in (
            ("bench_disturbed", "red", "-", "disturbed (!): rounds preempted, the interval "
                                            "may not hold"),
            ("bench_drifted", "darkorange", "--", "drifted (~): the ratio moved during the "
                                                  "rounds")):
        marked = frame[flags(frame, key)]
        if not marked.empty:
            ax.scatter(marked["speedup"], marked["top1"] * 100, s=260, facecolors="none",
                       edgecolors=colour, linewidths=1.4, linestyles=style, zorder=4,
                       label=text)
    if "threshold" in frame.columns:
        floors = frame.dropna(subset=["threshold"]).drop_duplicates("model")
        for j, (_, r) in enumerate(floors.iterrows()):
            ax.axhline(float(r["threshold"]) * 100, color="red", ls=":", lw=1,
                       label="accuracy floor" if j == 0 else None)
    ax.set_xlabel(SPEEDUP_AXIS)
    ax.set_ylabel("Top-1 (%)")
    _legend(ax)
    return _save(fig, ax, "Top-1 vs speed-up", path)


def plot_speedup_macs(frame: pd.DataFrame, path: Path) -> Path:
    """Speed-up (with its interval) vs MACs ratio, with the ideal curve."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    known = frame[frame["macs_ratio"].notna()]
    _error_bars(ax, known, "macs_ratio", "speedup", "speedup", False, "speedup-macs")
    zoo = is_zoo(known)
    series = [(str(recipe), group) for recipe, group in known[~zoo].groupby("recipe")]
    if zoo.any():
        series.append(("dense zoo control", known[zoo]))
    for i, (name, group) in enumerate(series):
        ax.scatter(group["macs_ratio"], group["speedup"], label=name, alpha=0.85, zorder=3,
                   **_style(i))
    low = max(min(known["macs_ratio"].min() if not known.empty else 1.0, 1.0) * 0.8, 0.02)
    ratios = np.linspace(low, 1.0, 200)
    ax.plot(ratios, 1 / ratios, "k:", lw=1, label="ideal: speed-up = 1 / MACs ratio")
    ax.scatter([1.0], [1.0], marker="*", s=160, c="k", zorder=4, label="dense reference")
    ax.axhline(1.0, color="0.7", lw=0.8, zorder=0)
    top = max(float(known["speedup_ci_high"].max()) if "speedup_ci_high" in known and
              known["speedup_ci_high"].notna().any() else 0.0,
              float(known["speedup"].max()) if not known.empty else 1.0, 1.0)
    ax.set_ylim(0, top * 1.25)
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("MACs ratio (pruned / dense MACs)")
    ax.set_ylabel(SPEEDUP_AXIS)
    _legend(ax)
    return _save(fig, ax, "Speed-up vs MACs ratio", path)


def plot_per_layer(per_layer: pd.DataFrame, label: str, path: Path, top: int = 15) -> Path:
    """The dense and the pruned model's time per module (the `top` slowest in the dense one)."""
    plt = _pyplot()
    table = module_times(per_layer).head(top)
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(table) + 2.0))
    table.plot.barh(ax=ax)
    ax.invert_yaxis()
    ax.set_xlabel("time per inference (µs; benchmark_app's counters of this case's run)")
    ax.set_ylabel("module of the model")
    ax.tick_params(axis="y", labelsize=8)
    _legend(ax)
    return _save(fig, ax, f"Per-module time: {label}", path)
