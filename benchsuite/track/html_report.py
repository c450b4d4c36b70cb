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

import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from benchsuite.core.result import REPORT, keys_for
from benchsuite.track.pareto import pareto_front
from benchsuite.track.plots import (
    column,
    flag,
    plot_accuracy_speedup,
    plot_per_layer,
    plot_speedup_macs,
    run_link,
)
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


def _records(frame: pd.DataFrame) -> list[dict]:
    """The rows as plain dicts: NaN -> None, yes/no fields as Python bools (what the summary's
    formatters read)."""
    out = []
    for r in frame.to_dict("records"):
        r = {k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
        out.append(r | {k: flag(r.get(k)) for k in FLAGS if k in r})
    return out


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
    frame["macs_ratio"] = column(frame, "macs") / column(frame, "dense_macs")
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
