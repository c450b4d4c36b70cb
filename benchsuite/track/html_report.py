"""`benchsuite report`: an HTML report with plots (inline SVG, PNG beside) from the results table.

A case's models are timed against each other in the same run, but different cases ran under
different machine states, so no figure compares absolute latencies across cases; they plot
what each run measured relative to itself:

- Top-1 vs speed-up: every case with the 95 % intervals of its speed-up and Top-1 as error
  bars, the dense references at 1× (with theirs), the Pareto front on speed-up × Top-1, each
  model's accuracy floor, failed cases crossed out, disturbed (!) and drifted (~) measurements
  ringed, each scratch control beside its pruning result, the dense-zoo controls as a series of
  their own; each point links to its W&B run;
- speed-up (with its interval) vs MACs ratio (pruned / dense MACs), with the ideal curve
  speed-up = 1 / MACs ratio;
- per-module time of the dense and the pruned model of chosen cases (one run's counters), rows
  named by the model's modules (`track/layer_names.py`).

Then the cases, verdict first (pass/FAIL, Top-1 and speed-up with their intervals, the floor),
sortable. The conditions are in each figure's caption, not in its title.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchsuite.core.result import REPORT, keys_for
from benchsuite.track.layer_names import module_times
from benchsuite.track.pareto import pareto_front
from benchsuite.track.results_table import read_results
from benchsuite.track.summary import speedup_text, top1_text

# the verdict first, each figure with its interval; then the record's other report fields, then
# what the report derives (wandb_run is the label's link, not a column of its own)
VERDICT_COLUMNS = ("passed", "top1", "speedup", "threshold")
INTERVALS = ("top1_ci_low", "top1_ci_high", "speedup_ci_low", "speedup_ci_high",
             "dense_top1_ci_low", "dense_top1_ci_high")
DERIVED = ("macs_ratio", "pareto")
TABLE_COLUMNS = [*VERDICT_COLUMNS,
                 *(k for k in keys_for(REPORT) if k not in VERDICT_COLUMNS and k not in INTERVALS),
                 *DERIVED]
HEADERS = {"passed": "result", "top1": "Top-1 [95% CI]", "speedup": "speed-up [95% CI]",
           "threshold": "floor", "label": "case", "dense_top1": "dense Top-1 [95% CI]",
           "macs_ratio": "MACs ratio (pruned / dense)",
           "pareto": "Pareto", "bench_disturbed": "disturbed (!)", "bench_drifted": "drifted (~)",
           "latency_median_us": "pruned µs (its run)",
           "dense_latency_median_us": "dense µs (its run)"}
FLAGS = ("passed", "bench_disturbed", "bench_drifted", "pareto")
REQUIRED = ("label", "timestamp", "speedup", "latency_median_us", "top1")
SPEEDUP_AXIS = "speed-up (dense / pruned latency, same run)"

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

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>benchsuite report</title>
<style>
body{font-family:sans-serif;margin:2em;max-width:1400px}
figure{margin:1.5em 0} figure svg,figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#333;max-width:60em}
div.cases{overflow-x:auto} table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:3px;white-space:nowrap}
th{cursor:pointer;background:#eee} td.fail{color:#b00;font-weight:bold}
td.flag{color:#b00}
</style></head><body>
<h1>benchsuite report</h1>
<p>{{ cases }} cases from {{ table_path }}. Conditions: {{ conditions }}.</p>
{% if flags %}<ul class="flags">
{%- for line in flags %}<li>{{ line }}</li>{% endfor -%}
</ul>{% endif %}
<p>Speed-up = dense / pruned latency, both models measured together in the case's own run
(median of per-round ratios with its 95% interval); Top-1 with its 95% Wilson interval; both
intervals are the error bars. Absolute latencies are never compared across cases: each case ran
under its own machine state. Pareto = no other case has both a higher speed-up and a higher
Top-1. Floor = the accuracy floor the case was held to (red dotted line); failed cases are
crossed out in red and marked FAIL. A case's label (and its point in the first plot) links to
its W&B run. Click a column to sort.</p>
<h2>Controls</h2>
{% if controls %}<ul>{% for line in controls %}<li>{{ line }}</li>{% endfor %}</ul>
{% else %}<p>No control was run: pass <code>--control scratch,zoo</code> (or run
<code>benchsuite frontier</code>) to see each pruning result beside the same architecture trained
from scratch and the fastest dense network at its floor.</p>{% endif %}
{% for f in figures %}<figure id="{{ f.anchor }}">{% if f.svg %}{{ f.svg|safe }}{% else %}
<img src="{{ f.png }}" alt="{{ f.caption }}">{% endif %}
<figcaption>{{ f.caption }} (<a href="{{ f.png }}">{{ f.png }}</a>)</figcaption></figure>
{% endfor %}
<h2>All cases</h2>
<div class="cases"><table class="sortable"><thead><tr class="head">
{%- for h in headers %}<th>{{ h }}</th>{% endfor -%}
</tr></thead><tbody>
{% for row in rows %}<tr>
{%- for c in row %}<td{% if c.cls %} class="{{ c.cls }}"{% endif %}>
{%- if c.link %}<a href="{{ c.link }}">{{ c.text }}</a>{% else %}{{ c.text }}{% endif -%}
</td>{% endfor -%}
</tr>
{% endfor %}</tbody></table></div>
{{ sort_js|safe }}
</body></html>
"""


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


def _flag(value: object) -> bool | None:
    """A yes/no field as the table holds it (True, "True", 1.0, NaN) -> True, False or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        return {"true": True, "1": True, "1.0": True, "false": False, "0": False,
                "0.0": False}.get(value.strip().lower())
    return bool(value)


def _records(frame: pd.DataFrame) -> list[dict]:
    """The rows as plain dicts: NaN -> None, yes/no fields as Python bools (what the summary's
    formatters read)."""
    out = []
    for r in frame.to_dict("records"):
        r = {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        out.append(r | {k: _flag(r.get(k)) for k in FLAGS if k in r})
    return out


def _column(frame: pd.DataFrame, key: str) -> pd.Series:
    return frame[key] if key in frame.columns else pd.Series(math.nan, index=frame.index)


def _flags(frame: pd.DataFrame, key: str) -> pd.Series:
    return _column(frame, key).map(lambda v: _flag(v) is True).astype(bool)


def _failed(frame: pd.DataFrame) -> pd.Series:
    return _column(frame, "passed").map(lambda v: _flag(v) is False).astype(bool)


def _is_zoo(frame: pd.DataFrame) -> pd.Series:
    return _column(frame, "control").map(
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
    low, high = _column(frame, f"{key}_ci_low"), _column(frame, f"{key}_ci_high")
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
    zoo = _is_zoo(frame)
    series = [(str(recipe), group) for recipe, group in frame[~zoo].groupby("recipe")]
    if zoo.any():
        series.append(("dense zoo control: a smaller dense network from scratch", frame[zoo]))
    for i, (name, group) in enumerate(series):
        points = ax.scatter(group["speedup"], group["top1"] * 100, label=name, alpha=0.85,
                            zorder=3, **_style(i))
        points.set_urls([run_link(w) for w in _column(group, "wandb_run")])
    scratch = frame[~zoo & _column(frame, "scratch_top1").notna()]
    if not scratch.empty:
        ax.vlines(scratch["speedup"], scratch["top1"] * 100, scratch["scratch_top1"] * 100,
                  colors="0.5", linestyles=":", lw=1, zorder=1)
        ax.scatter(scratch["speedup"], scratch["scratch_top1"] * 100, marker="o", s=40,
                   facecolors="none", edgecolors="0.3", zorder=3,
                   label="scratch control: the same architecture trained from scratch")
    keys = [k for k in ("model", "dataset", "seed") if k in frame.columns]
    dense = frame.drop_duplicates(keys).assign(speedup=1.0)  # each model's reference
    references = dense[["speedup"]].assign(
        top1=dense["dense_top1"], top1_ci_low=_column(dense, "dense_top1_ci_low"),
        top1_ci_high=_column(dense, "dense_top1_ci_high"))
    _error_bars(ax, references, "speedup", "top1", "top1", False, "dense", 100)
    ax.scatter(dense["speedup"], dense["dense_top1"] * 100, marker="*", s=160, c="k", zorder=4,
               label="dense reference (speed-up 1 by definition)")
    ax.axvline(1.0, color="0.7", lw=0.8, zorder=0)
    front = frame[frame["pareto"]].sort_values("speedup")
    ax.plot(front["speedup"], front["top1"] * 100, "k--", lw=1, zorder=2,
            label="Pareto front (speed-up × Top-1)")
    failed = frame[_failed(frame)]
    if not failed.empty:
        ax.scatter(failed["speedup"], failed["top1"] * 100, marker="x", s=80, c="red", zorder=5,
                   label="failed (under the floor)")
    for key, colour, style, text in (
            ("bench_disturbed", "red", "-", "disturbed (!): rounds preempted, the interval "
                                            "may not hold"),
            ("bench_drifted", "darkorange", "--", "drifted (~): the ratio moved during the "
                                                  "rounds")):
        marked = frame[_flags(frame, key)]
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
    zoo = _is_zoo(known)
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


@dataclass
class Figure:
    anchor: str  # the <figure>'s id
    png: str
    caption: str
    svg: str = ""  # shown inline (its points are links; else the PNG is)


def _inline(out: Path, figure: Figure) -> Figure:
    path = out / Path(figure.png).with_suffix(".svg")
    if path.is_file():
        text = path.read_text()
        figure.svg = text[text.find("<svg"):]
    return figure


def _cell(column: str, r: dict) -> dict:
    v = r.get(column)
    cls = ""
    if column == "passed":
        text = "" if v is None else ("pass" if v else "FAIL")
        cls = "fail" if v is False else ""
    elif column == "top1":
        text = top1_text(r)
    elif column == "dense_top1":
        text = "" if v is None else top1_text({
            "top1": v, "top1_ci_low": r.get("dense_top1_ci_low"),
            "top1_ci_high": r.get("dense_top1_ci_high")})
    elif column == "speedup":
        text = speedup_text(r)
        cls = "flag" if r.get("bench_disturbed") or r.get("bench_drifted") else ""
    elif column == "threshold":
        text = "" if v is None else f"{float(v):.4f}"
    elif column in FLAGS:
        text = {True: "yes", False: "no", None: ""}[v]
        cls = "flag" if v and column != "pareto" else ""
    elif isinstance(v, float):
        text = f"{v:.4g}"
    else:
        text = "" if v is None else str(v)
    link = run_link(r.get("wandb_run")) if column == "label" else None
    return {"text": text, "cls": cls, "link": link}


def cases_table(frame: pd.DataFrame) -> tuple[list[str], list[list[dict]]]:
    """The table's headers and cells: every case, fastest first, the verdict first."""
    cols = [c for c in TABLE_COLUMNS if c in frame.columns and c != "wandb_run"]
    records = _records(frame.sort_values("speedup", ascending=False))
    return [HEADERS.get(c, c) for c in cols], [[_cell(c, r) for c in cols] for r in records]


def _flag_lines(records: list[dict]) -> list[str]:
    lines = []
    for key, mark, text in (
            ("bench_disturbed", "!", "disturbed: the machine was oversubscribed during the "
                                     "measurement (this process got < 90% of a core in most "
                                     "rounds); the interval may not hold, and the next run "
                                     "measures the case again"),
            ("bench_drifted", "~", "drifted: the speed-up moved between the first and the "
                                   "second half of the rounds by more than noise; the "
                                   "interval spans both halves")):
        labels = [r["label"] for r in records if r.get(key) is True]
        if labels:
            lines.append(f"{mark} {len(labels)} case(s) {text}: {', '.join(labels)}")
    return lines


def build_report(results: Path, out: Path, cases: list[str] | None = None,
                 per_layer_top: int = 3) -> Path:
    """Write `out/report.html` and its plots from `results/results.csv`; returns the HTML path."""
    import jinja2

    out = Path(out)
    try:  # before any plot: a file in its place was a FileExistsError traceback at the end
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot be the report's folder "
                         f"({e.strerror}{': ' + str(e.filename) if e.filename else ''})") from None
    table_path = Path(results) / "results.csv"
    if not table_path.is_file():
        raise FileNotFoundError(f"no results table at {table_path}: run `pytest -m latency` "
                                "first (or pass --results DIR)")
    frame = _latest(_complete(read_results(Path(results)), table_path))
    if frame.empty:
        raise ValueError(f"{table_path} has no rows")
    frame["macs_ratio"] = _column(frame, "macs") / _column(frame, "dense_macs")
    frame["pareto"] = pareto_front(frame)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = cases or frame.sort_values("speedup", ascending=False)["label"].head(
        per_layer_top).tolist()
    conditions = _conditions(frame)
    steps = ["accuracy-speedup", "speedup-macs", *[f"per-layer {c}" for c in chosen]]
    figures: list[Figure] = []
    with tqdm(steps, desc="report", unit="plot") as bar:
        for step in bar:
            bar.set_postfix_str(step[:40])
            if step == "accuracy-speedup":
                p = plot_accuracy_speedup(frame, out / "accuracy_speedup.png")
                caption = (f"Top-1 vs speed-up, each with its 95% interval ({conditions}). "
                           "Both are the case's own: no absolute latency is compared across "
                           "cases.")
            elif step == "speedup-macs":
                p = plot_speedup_macs(frame, out / "speedup_macs.png")
                caption = (f"Speed-up (95% interval) vs MACs ratio ({conditions}); on the "
                           "ideal curve latency falls in proportion to MACs.")
            else:
                label = step.removeprefix("per-layer ")
                row = frame[frame["label"] == label]
                if row.empty:
                    raise ValueError(f"no case labelled {label!r} in {table_path}")
                layers = Path(results) / "per_layer" / f"{row.iloc[0]['case_id']}.csv"
                if not layers.is_file():
                    continue
                p = plot_per_layer(pd.read_csv(layers), label, out / f"per_layer_{label}.png")
                caption = (f"Per-module time of {label}: the dense and the pruned model, "
                           "benchmark_app's performance counters of this case's run, rows "
                           "named by the model's modules")
            figures.append(_inline(out, Figure(step.replace(" ", "-"), p.name, caption)))
    from benchsuite.track.summary import control_lines, smoke_lines

    records = _records(frame)
    headers, rows = cases_table(frame)
    page = jinja2.Environment(autoescape=True).from_string(PAGE).render(
        cases=len(frame), table_path=str(table_path), conditions=conditions,
        flags=_flag_lines(records), controls=control_lines(records) + smoke_lines(records),
        figures=figures, headers=headers, rows=rows, sort_js=SORT_JS)
    path = out / "report.html"
    path.write_text(page)
    return path
