"""`benchsuite report`: speed-ups and MACs ratios (never absolute latencies across cases) with
their intervals as error bars, the Pareto front on speed-up × Top-1, the flags, per-module rows,
the verdict first; checked in the files and in a real browser (headless Chromium)."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from benchsuite.frontends.cli import main
from benchsuite.track.pareto import pareto_front


def _row(i, recipe, top1, lat, macs, **kw):
    return {"case_id": f"c{i}", "label": f"resnet20-{recipe}-{i}-CPU-f32", "recipe": recipe,
            "sparsity": 0.5, "model": "resnet20", "device": "CPU", "precision": "f32",
            "top1": top1, "dense_top1": 0.99, "latency_median_us": lat,
            "dense_latency_median_us": 300.0, "speedup": 300.0 / lat, "macs": macs,
            "dense_macs": 40e6, "latency_cv": 0.01, "weight_sparsity": 0.0,
            "runtime_version": "2026.4.1-x", "timestamp": f"2026-11-28T10:00:0{i}"} | kw


TABLE = [  # (Top-1, speed-up): c0, c2, c3 are the Pareto set; c1 and c4 are dominated
    _row(0, "l1_filters", 0.99, 250.0, 20e6),
    _row(1, "l1_filters", 0.98, 260.0, 20e6),   # slower and less accurate than c0
    _row(2, "blocks", 0.97, 150.0, 10e6),
    _row(3, "blocks", 0.95, 100.0, 5e6),
    _row(4, "level", 0.95, 300.0, 40e6),       # dominated by c3
]


def test_pareto_front_of_a_hand_made_table():
    frame = pd.DataFrame(TABLE)
    assert frame.loc[pareto_front(frame), "case_id"].tolist() == ["c0", "c2", "c3"]


def test_report_writes_html_and_pngs(tmp_path):
    results = tmp_path / "results"
    (results / "per_layer").mkdir(parents=True)
    pd.DataFrame(TABLE).to_csv(results / "results.csv", index=False)
    pd.DataFrame([
        {"layer": "conv1", "real_time_us": 10.0, "model": "dense"},
        {"layer": "conv1", "real_time_us": 6.0, "model": "pruned"},
        {"layer": "fc", "real_time_us": 2.0, "model": "dense"},
        {"layer": "fc", "real_time_us": 2.0, "model": "pruned"},
    ]).to_csv(results / "per_layer" / "c3.csv", index=False)
    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--out", str(out),
                 "--case", "resnet20-blocks-3-CPU-f32"]) == 0
    page = (out / "report.html").read_text()
    for png in ("accuracy_speedup.png", "speedup_macs.png",
                "per_layer_resnet20-blocks-3-CPU-f32.png"):
        assert (out / png).stat().st_size > 5000 and png in page
    assert page.count("<tr>") == len(TABLE) and "sortable" in page  # one row per case
    assert "CPU f32, OpenVINO 2026.4.1" in page


def test_report_without_results_says_what_to_do(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "run `pytest -m latency` first" in capsys.readouterr().err


def test_report_out_that_is_a_file_is_one_line(tmp_path, capsys):
    """Hostile round 4: a FileExistsError traceback, after the plots were drawn."""
    (tmp_path / "results.csv").write_text(pd.DataFrame(TABLE).to_csv(index=False))
    (tmp_path / "afile").write_text("x")
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path / 'afile'}: cannot be the report's folder (File exists" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("bad", ["nope-CPU-f32"])
def test_report_unknown_case(tmp_path, bad, capsys):
    (tmp_path / "results.csv").write_text(pd.DataFrame(TABLE).to_csv(index=False))
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--case", bad]) == 2
    assert f"no case labelled '{bad}'" in capsys.readouterr().err


def test_report_marks_the_floor_and_failures_and_links_wandb_runs(tmp_path):
    """The record's decision and W&B run reach the report: a floor line, failed cases marked,
    each label and each point linking to its run."""
    run = tmp_path / "wandb" / "offline-run-20261130_120000-abc123"
    run.mkdir(parents=True)
    rows = [r | {"threshold": 0.96, "passed": r["top1"] >= 0.96,
                 "wandb_run": str(run) if r["case_id"] == "c0" else "https://wandb.ai/e/p/runs/x"}
            for r in TABLE]
    results = tmp_path / "results"
    results.mkdir()
    pd.DataFrame(rows).to_csv(results / "results.csv", index=False)
    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert page.count(">FAIL<") == 2  # c3 and c4 (Top-1 0.95 < 0.96)
    assert f'href="{run.as_uri()}"' in page and 'href="https://wandb.ai/e/p/runs/x"' in page
    svg = (out / "accuracy_speedup.svg").read_text()
    assert "accuracy floor" in svg and "failed (under the floor)" in svg
    assert svg.count("https://wandb.ai/e/p/runs/x") == 4  # each point of the other 4 cases


# --- what the report plots, and how (issue 22, item 4) ---------------------------------------

def _ov(layer: str, time_us: float, model: str, kind: str = "Convolution",
        status: str = "EXECUTED") -> dict:
    return {"layer": layer, "status": status, "layer_type": kind, "exec_type": "jit_avx2_f32",
            "real_time_us": time_us, "cpu_time_us": time_us, "model": model}


PER_LAYER = pd.DataFrame([  # benchmark_app's rows, OpenVINO node names (ov2026_resnet20_bf16)
    *(_ov(f"/layer1/layer1.0/conv{i}/Conv/WithoutBiases", t, m)
      for i, t in ((1, 14.0), (2, 16.0)) for m in ("dense", "pruned")),
    _ov("/layer2/layer2.0/downsample/downsample.0/Conv/WithoutBiases", 8.0, "dense"),
    _ov("/layer2/layer2.0/downsample/downsample.0/Conv/WithoutBiases", 3.0, "pruned"),
    _ov("/layer1/layer1.0/Add", 0.0, "dense", "Add", "NOT_RUN"),
    _ov("logits", 5.0, "dense", "FullyConnected"), _ov("logits", 5.0, "pruned", "FullyConnected"),
    _ov("x_f32_abcd_bf16_acdb_/conv1/Conv/WithoutBiases", 1.0, "dense", "Reorder"),
])


def _case(i: int, speedup: float, low: float, high: float, top1: float, **kw) -> dict:
    """A case whose dense model read `dense_us` in its own run (the machine's state then)."""
    dense_us = kw.pop("dense_us", 1000.0)
    return _row(i, kw.pop("recipe", "l1_filters"), top1, dense_us / speedup, 20e6 / speedup) | {
        "dense_latency_median_us": dense_us, "speedup": speedup, "speedup_ci_low": low,
        "speedup_ci_high": high, "top1_ci_low": top1 - 0.01, "top1_ci_high": top1 + 0.005,
        "dense_top1_ci_low": 0.98, "dense_top1_ci_high": 0.995, "threshold": 0.95,
        "passed": top1 >= 0.95, "bench_disturbed": False, "bench_drifted": False,
        "dense_macs": 20e6, "control": "", "dataset": "fashion-mnist", "seed": 0} | kw


CASES = [
    # the dense model of c0 read 3,823 µs (a loaded machine), the others' ~1,070 µs: by
    # absolute latency c1 (650 µs) would beat c0 (1,950 µs); by speed-up c0 is the faster
    _case(0, 1.96, 1.20, 2.80, 0.97, dense_us=3823.0, bench_disturbed=True),
    _case(1, 1.64, 1.62, 1.66, 0.97, dense_us=1066.0, bench_drifted=True),
    _case(2, 1.10, 1.09, 1.11, 0.985, dense_us=1070.0, recipe="level", control="scratch",
          scratch_top1=0.975, scratch_top1_ci_low=0.965, scratch_top1_ci_high=0.982,
          scratch_epochs=9),
    _case(3, 2.40, 2.35, 2.45, 0.93, dense_us=1072.0, recipe="blocks"),  # FAIL
    _case(4, 3.10, 3.00, 3.20, 0.955, dense_us=1071.0, recipe="dense", control="zoo:resnet8",
          macs=2.5e6),
]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    (results / "per_layer").mkdir(parents=True)
    pd.DataFrame(CASES).to_csv(results / "results.csv", index=False)
    PER_LAYER.to_csv(results / "per_layer" / "c1.csv", index=False)
    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--out", str(out),
                 "--case", "resnet20-l1_filters-1-CPU-f32"]) == 0
    return out


def test_the_pareto_front_is_on_speedup_not_absolute_latency():
    frame = pd.DataFrame(CASES)
    front = frame.loc[pareto_front(frame), "case_id"].tolist()
    assert "c0" in front and "c1" not in front  # c0: 1.96x at the same Top-1 as c1's 1.64x
    assert front == ["c0", "c2", "c4"]


def test_the_report_plots_speedups_with_intervals_never_absolute_latencies(report: Path):
    svg = (report / "accuracy_speedup.svg").read_text()
    assert ">speed-up (dense / pruned latency, same run)<" in svg  # the axes, as text
    assert ">Top-1 (%)<" in svg
    assert "µs" not in svg and "latency (" not in svg.replace("pruned latency", "")
    # one horizontal error bar (the speed-up's interval) and one vertical (Top-1's) per case
    for gid in ("accuracy-speedup-speedup-interval", "accuracy-speedup-top1-interval"):
        group = re.search(rf'<g id="{gid}">(.*?)</g>', svg, re.S)
        assert group and group.group(1).count("<path") == len(CASES), gid
    assert "Pareto front (speed-up × Top-1)" in svg
    for legend in ("disturbed (!)", "drifted (~)", "scratch control", "dense zoo control",
                   "dense reference", "failed (under the floor)", "accuracy floor"):
        assert legend in svg, legend
    macs = (report / "speedup_macs.svg").read_text()
    assert "MACs ratio (pruned / dense MACs)" in macs and "1 / MACs ratio" in macs
    assert macs.count("<path") and re.search(
        r'<g id="speedup-macs-speedup-interval">(.*?)</g>', macs, re.S).group(1).count(
        "<path") == len(CASES)
    assert not list(report.glob("accuracy_latency*"))


def test_the_per_layer_plot_names_the_models_modules(report: Path):
    svg = (report / "per_layer_resnet20-l1_filters-1-CPU-f32.svg").read_text()
    for module in ("layer1.0.conv1", "layer1.0.conv2", "layer2.0.downsample.0",
                   "output layer (logits)", "(layout conversions)"):
        assert f">{module}<" in svg, module
    assert "/Conv/WithoutBiases" not in svg and "layer1.0.Add" not in svg  # not run: no row


@pytest.mark.parametrize(("layer", "kind", "module"), [
    ("/layer2/layer2.0/downsample/downsample.0/Conv/WithoutBiases", "Convolution",
     "layer2.0.downsample.0"),
    ("/layer1/layer1.0/relu2/Relu", "Convolution", "layer1.0.relu2"),  # a fused node's name
    ("/avgpool/GlobalAveragePool", "ReduceMean", "avgpool"),
    ("/0/Conv/WithoutBiases", "Convolution", "0"),  # an nn.Sequential's child
    ("logits", "FullyConnected", "output layer (logits)"),
    ("/conv1/Conv/WithoutBiases_abcd_acdb", "Reorder", "(layout conversions)"),
    ("Convolution_7", "Convolution", "[Convolution_7]"),  # 2021.4: no scope in the name
    ("conv1", None, "conv1"),  # a table of module names already
])
def test_openvino_layers_are_named_by_their_module(layer, kind, module):
    from benchsuite.track.layer_names import module_of

    assert module_of(layer, kind) == module


def test_the_table_starts_with_the_verdict_and_shows_the_flags(report: Path):
    page = (report / "report.html").read_text()
    head = re.search(r'<tr class="head">(.*?)</tr>', page, re.S).group(1)
    headers = re.findall(r"<th>(.*?)</th>", head)
    assert headers[:5] == ["result", "Top-1 [95% CI]", "speed-up [95% CI]", "floor", "case"]
    first = re.search(r"<tbody>\s*<tr>(.*?)</tr>", page, re.S).group(1)  # fastest: the zoo
    cells = [html.unescape(re.sub("<.*?>", "", c)) for c in re.findall(r"<td.*?</td>", first)]
    assert cells[:4] == ["pass", "0.9550 [0.945, 0.960]", "3.10x [3.00, 3.20]", "0.9500"]
    assert "1.96x [1.20, 2.80]!" in page and "1.64x [1.62, 1.66]~" in page
    assert page.count(">FAIL<") == 1  # c3
    assert "! 1 case(s) disturbed" in page and "~ 1 case(s) drifted" in page
    assert "scratch control of resnet20-level-2-CPU-f32" in page  # the controls beside
    assert headers.count("MACs ratio (pruned / dense)") == 1


# --- the page in a real browser --------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
# run in the page (a copy of it): every figure's size, its texts, the texts drawn outside
# their figure (cut off), and the error bars' on-screen extents
CHECK = """<script>
const figures = [...document.querySelectorAll('figure')].map(fig => {
  const svg = fig.querySelector('svg');
  if (!svg) return {id: fig.id, svg: false};
  const box = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll('text')];
  const out = texts.filter(t => { const r = t.getBoundingClientRect();
    return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1
                           || r.top < box.top - 1 || r.bottom > box.bottom + 1); });
  const bars = {};
  svg.querySelectorAll('g[id$="-interval"]').forEach(g => { bars[g.id] =
    [...g.querySelectorAll('path')].map(p => { const r = p.getBoundingClientRect();
                                               return [r.width, r.height]; }); });
  return {id: fig.id, svg: true, width: box.width, height: box.height, right: box.right,
          texts: texts.map(t => t.textContent), outside: out.map(t => t.textContent), bars};
});
document.body.dataset.check = JSON.stringify(
  {figures, page: document.documentElement.clientWidth, rows: document.querySelectorAll(
    'table.sortable tbody tr').length});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.is_file():
        pytest.skip(f"headless Chromium is not installed ({CHROMIUM} missing: Debian's "
                    "`chromium` package, `apt-get install -y chromium`)")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,1000", *args],
        capture_output=True, text=True, timeout=180)


def test_the_report_in_a_browser(report: Path, tmp_path: Path):
    checked = report / "checked.html"
    checked.write_text((report / "report.html").read_text().replace("</body>",
                                                                      CHECK + "</body>"))
    dom = _chromium(tmp_path, "--dump-dom", checked.as_uri())
    found = re.search(r'data-check="([^"]*)"', dom.stdout)
    assert found, f"the page did not render: {dom.stderr[-2000:]}"
    check = json.loads(html.unescape(found.group(1)))
    assert check["rows"] == len(CASES)
    figures = {f["id"]: f for f in check["figures"]}
    assert set(figures) == {"accuracy-speedup", "speedup-macs",
                            "per-layer-resnet20-l1_filters-1-CPU-f32"}
    for fig in figures.values():
        assert fig["svg"] and fig["width"] > 300 and fig["height"] > 200, fig["id"]
        assert fig["right"] <= check["page"] + 1, fig["id"]  # not cut off by the page
        assert fig["outside"] == [], fig["id"]  # no title, label or legend cut off
    accuracy = figures["accuracy-speedup"]
    assert "Top-1 vs speed-up" in accuracy["texts"] and "Top-1 (%)" in accuracy["texts"]
    assert any(t.startswith("speed-up (dense / pruned latency") for t in accuracy["texts"])
    bars = accuracy["bars"]["accuracy-speedup-speedup-interval"]
    assert len(bars) == len(CASES)
    widths = sorted(w for w, _ in bars)  # drawn as wide as the intervals: c0's [1.20, 2.80]
    assert widths[0] > 0 and widths[-1] > 20 * widths[0]  # is 1.6 wide, c2's 0.02
    assert all(h > 0 for _, h in accuracy["bars"]["accuracy-speedup-top1-interval"])
    assert len(figures["speedup-macs"]["bars"]["speedup-macs-speedup-interval"]) == len(CASES)
    assert "layer1.0.conv1" in figures["per-layer-resnet20-l1_filters-1-CPU-f32"]["texts"]

    shot = tmp_path / "report.png"
    taken = _chromium(tmp_path, f"--screenshot={shot}", (report / "report.html").as_uri())
    assert shot.is_file(), taken.stderr[-2000:]
    from PIL import Image

    image = Image.open(shot).convert("L")
    dark = sum(image.histogram()[:200]) / (image.width * image.height)
    assert image.size == (1280, 1000) and dark > 0.02  # drawn, not a blank page
