"""`benchsuite report`: an HTML report with plots (PNG too) from the results table.

Plots: Top-1 vs latency with the Pareto front; speed-up vs MACs reduction per paradigm with
the ideal line (speed-up = MACs reduction); per-layer latency of dense vs pruned for chosen
cases. Then a sortable table of every case. The figures state their conditions.
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchsuite.core.result import REPORT, keys_for
from benchsuite.track.pareto import pareto_front
from benchsuite.track.results_table import read_results

SORT_JS = """
<script>
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click',
  () => { const body = th.closest('table').tBodies[0]; const rows = [...body.rows];
    const asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    const key = r => { const t = r.cells[col].innerText; const n = parseFloat(t);
      return isNaN(n) ? t : n; };
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1));
    rows.forEach(r => body.appendChild(r)); }));
</script>"""
# the record's report fields, then what the report derives
TABLE_COLUMNS = [*keys_for(REPORT), "macs_reduction", "pareto"]


REQUIRED = ("label", "timestamp", "speedup", "latency_median_us", "top1")


def _complete(frame: pd.DataFrame, source: object) -> pd.DataFrame:
    """Drop rows missing a figure the report needs (a row cut short by a killed writer parses
    with NaNs), with a warning that names the table and the rows."""
    present = [c for c in REQUIRED if c in frame.columns]
    bad = frame[present].isna().any(axis=1)
    if "timestamp" in frame.columns:
        stamps = pd.to_datetime(frame["timestamp"], errors="coerce", utc=True)
        bad |= stamps.isna()
    if bad.any():
        warnings.warn(f"{source}: ignored {int(bad.sum())} incomplete row(s) (table lines "
                      f"{', '.join(str(i + 2) for i in frame.index[bad][:10])})", stacklevel=2)
    return frame[~bad]


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest row of each case (the table is append-only, and a code change re-runs a
    case under a new case id, so a case is its label on its dataset and seed)."""
    frame = frame.sort_values("timestamp")
    keys = [k for k in ("label", "dataset", "seed") if k in frame.columns]
    return frame.drop_duplicates(keys, keep="last").reset_index(drop=True)


def _conditions(frame: pd.DataFrame) -> str:
    parts = []
    keys = [k for k in ("device", "precision", "runtime_version", "threads", "speedup_method")
            if k in frame.columns]
    for values, _ in frame.groupby(keys, dropna=False):
        c = dict(zip(keys, values, strict=True))
        text = f"{c['device']} {c['precision']}, OpenVINO {str(c['runtime_version']).split('-')[0]}"
        if "threads" in c:
            text += f", threads {c['threads']}"
        parts.append(text + f", {c.get('speedup_method', 'benchmark_app interleaved runs')}")
    return "; ".join(parts) + ", batch 1, sync API, latency hint"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(fig, ax, title: str, path: Path, legend: bool = True, close: bool = True) -> Path:
    ax.set_title(title, fontsize=8)
    if legend:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    if close:
        _pyplot().close(fig)
    return path


MARKERS = "os^DvPX<>"


def _style(i: int) -> dict:
    """A distinct colour and marker per paradigm (more paradigms than one palette has)."""
    plt = _pyplot()
    return {"color": plt.get_cmap("tab20")(i % 20), "marker": MARKERS[i % len(MARKERS)]}


def run_link(where: object) -> str | None:
    """A link to a case's W&B run: its URL (online), or its local folder (offline runs; `wandb
    sync <folder>` uploads one)."""
    if not isinstance(where, str) or not where:
        return None
    return where if where.startswith(("http://", "https://")) else Path(where).as_uri() \
        if Path(where).is_absolute() else None


def _failed(frame: pd.DataFrame) -> pd.Series:
    if "passed" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["passed"].map(lambda v: str(v).lower() in ("false", "0", "0.0"))


def plot_accuracy_latency(frame: pd.DataFrame, path: Path) -> Path:
    """Top-1 vs latency: the Pareto front, each model's accuracy floor, failed cases crossed
    out. Also written as SVG (`path` with .svg) where each point links to its W&B run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (recipe, group) in enumerate(frame.groupby("recipe")):
        points = ax.scatter(group["latency_median_us"], group["top1"] * 100, label=recipe,
                            alpha=0.8, **_style(i))
        points.set_urls([run_link(w) for w in group.get("wandb_run", [None] * len(group))])
    failed = frame[_failed(frame)]
    if not failed.empty:
        ax.scatter(failed["latency_median_us"], failed["top1"] * 100, marker="x", s=80,
                   c="red", label="failed (under the floor)")
    front = frame[frame["pareto"]].sort_values("latency_median_us")
    ax.plot(front["latency_median_us"], front["top1"] * 100, "k--", lw=1, label="Pareto front")
    dense = frame.drop_duplicates("model")
    ax.scatter(dense["dense_latency_median_us"], dense["dense_top1"] * 100, marker="*", s=150,
               c="k", label="dense")
    if "threshold" in frame.columns:
        floors = frame.dropna(subset=["threshold"]).drop_duplicates("model")
        for j, (_, r) in enumerate(floors.iterrows()):
            ax.axhline(float(r["threshold"]) * 100, color="red", ls=":", lw=1,
                       label="accuracy floor" if j == 0 else None)
    ax.set_xlabel("median latency (µs)")
    ax.set_ylabel("Top-1 (%)")
    _save(fig, ax, f"Top-1 vs latency ({_conditions(frame)})", path.with_suffix(".svg"),
          close=False)
    return _save(fig, ax, f"Top-1 vs latency ({_conditions(frame)})", path)


def plot_speedup_macs(frame: pd.DataFrame, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (recipe, group) in enumerate(frame.groupby("recipe")):
        ax.scatter(group["macs_reduction"], group["speedup"], label=recipe, alpha=0.8,
                   **_style(i))
    top = max(frame["macs_reduction"].max(), frame["speedup"].max(), 1.0) * 1.1
    ax.plot([0, top], [0, top], "k:", lw=1, label="ideal (speed-up = MACs reduction)")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("MACs reduction (dense / pruned)")
    ax.set_ylabel("speed-up (dense / pruned latency)")
    return _save(fig, ax, f"Speed-up vs MACs reduction ({_conditions(frame)})", path)


def plot_per_layer(per_layer: pd.DataFrame, label: str, path: Path, top: int = 15) -> Path:
    plt = _pyplot()
    executed = per_layer[per_layer["real_time_us"] > 0]
    table = executed.pivot_table(index="layer", columns="model", values="real_time_us",
                                 aggfunc="sum").fillna(0.0)
    table = table.sort_values(table.columns[0], ascending=False).head(top)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(table) + 1.5))
    table.plot.barh(ax=ax)
    ax.invert_yaxis()
    ax.set_xlabel("time per inference (µs)")
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=6)
    return _save(fig, ax, f"per-layer latency: {label}", path, legend=True)


def _figure(out: Path, title: str, name: str) -> str:
    """A figure: inline SVG where there is one (its points are links), else the PNG."""
    svg = out / Path(name).with_suffix(".svg")
    body = (svg.read_text()[svg.read_text().find("<svg"):] if svg.is_file()
            else f'<img src="{html.escape(name)}" alt="{html.escape(title)}">')
    png = f' (<a href="{html.escape(name)}">{html.escape(name)}</a>)' if svg.is_file() else ""
    return f"<figure>{body}<figcaption>{html.escape(title)}{png}</figcaption></figure>"


def cases_table(frame: pd.DataFrame) -> str:
    """Every case, fastest first: label linked to its W&B run, pass/fail marked."""
    cols = [c for c in TABLE_COLUMNS if c in frame.columns and c != "wandb_run"]
    shown = frame.sort_values("speedup", ascending=False)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for _, r in shown.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            text = f"{v:.4g}" if isinstance(v, float) else ("" if pd.isna(v) else str(v))
            if c == "passed" and text:
                text = "pass" if str(v).lower() in ("true", "1", "1.0") else "FAIL"
            cell = html.escape(text)
            if c == "label" and (link := run_link(r.get("wandb_run"))):
                cell = f'<a href="{html.escape(link)}">{cell}</a>'
            style = ' style="color:#b00;font-weight:bold"' if text == "FAIL" else ""
            cells.append(f"<td{style}>{cell}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="sortable"><thead><tr class="head">{head}</tr></thead><tbody>'
            + "\n".join(rows) + "</tbody></table>")


def build_report(results: Path, out: Path, cases: list[str] | None = None,
                 per_layer_top: int = 3) -> Path:
    """Write `out/report.html` and its PNGs from `results/results.csv`; returns the HTML path."""
    table_path = Path(results) / "results.csv"
    if not table_path.is_file():
        raise FileNotFoundError(f"no results table at {table_path}: run `pytest -m latency` "
                                "first (or pass --results DIR)")
    frame = _latest(_complete(read_results(Path(results)), table_path))
    if frame.empty:
        raise ValueError(f"{table_path} has no rows")
    frame["macs_reduction"] = frame["dense_macs"] / frame["macs"]
    frame["pareto"] = pareto_front(frame)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = cases or frame.sort_values("speedup", ascending=False)["label"].head(
        per_layer_top).tolist()
    steps = ["accuracy-latency", "speedup-macs", *[f"per-layer {c}" for c in chosen]]
    figures: list[tuple[str, str]] = []
    with tqdm(steps, desc="report", unit="plot") as bar:
        for step in bar:
            bar.set_postfix_str(step[:40])
            if step == "accuracy-latency":
                p = plot_accuracy_latency(frame, out / "accuracy_latency.png")
            elif step == "speedup-macs":
                p = plot_speedup_macs(frame, out / "speedup_macs.png")
            else:
                label = step.removeprefix("per-layer ")
                row = frame[frame["label"] == label]
                if row.empty:
                    raise ValueError(f"no case labelled {label!r} in {table_path}")
                layers = Path(results) / "per_layer" / f"{row.iloc[0]['case_id']}.csv"
                if not layers.is_file():
                    continue
                p = plot_per_layer(pd.read_csv(layers), label, out / f"per_layer_{label}.png")
            figures.append((step, p.name))
    imgs = "\n".join(_figure(out, t, n) for t, n in figures)
    from benchsuite.track.summary import control_lines, smoke_lines

    records = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
               for r in frame.to_dict("records")]
    notes = control_lines(records) + smoke_lines(records)
    controls = ("<h2>Controls</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                + "</ul>") if notes else (
        "<h2>Controls</h2><p>No control was run: pass <code>--control scratch,zoo</code> "
        "(or run <code>benchsuite frontier</code>) to see each pruning result beside the same "
        "architecture trained from scratch and the fastest dense network at its floor.</p>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>benchsuite report</title>
<style>body{{font-family:sans-serif;margin:2em}} img{{max-width:800px}}
table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #ccc;padding:3px}}
th{{cursor:pointer;background:#eee}}</style></head><body>
<h1>benchsuite report</h1>
<p>{len(frame)} cases from {html.escape(str(table_path))}.
Conditions: {html.escape(_conditions(frame))}.
Speed-up = dense / pruned latency, both measured in the same run (median of per-round ratios
with its 95% interval, speedup_ci_low/high); Top-1 with its 95% Wilson interval.
Pareto = no other case is both faster and more accurate. Floor = the accuracy floor the case
was held to (red dotted line); failed cases are crossed out in red and marked FAIL. A case's
label (and its point in the first plot) links to its W&B run. Click a column to sort.</p>
{controls}
{imgs}
<h2>All cases</h2>
{cases_table(frame)}
{SORT_JS}
</body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path
