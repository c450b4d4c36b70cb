"""Parsers for benchmark_app's console output and report folders.

Handles what three benchmark_apps write (docs/measurements.md, "OpenVINO and benchmark_app"):
- OpenVINO 2026 Python benchmark_app: stdout prints latency as ``Median: 48.01 us`` when the
  average is under 1 ms (else ``0.42 ms``); ``benchmark_report.csv`` (``;``-separated, three
  sections) or ``.json`` (with ``-json_stats``) with keys ``latency (ms)``, ``avg latency``, ...;
- the C++ benchmark_app: keys ``Median latency (ms)``, ``Average latency (ms)``, ... and a trailing
  ``;`` after every value;
- OpenVINO 2021.4's Python benchmark_app (legacy env): ``Latency: 0.42 ms`` on stdout (10 µs).
The per-layer report (``benchmark_detailed_counters_report.csv``/``.json``, or the
``average_counters`` one) has one block per infer request, each closed by a ``Total`` row.
All times returned here are in microseconds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas

from benchsuite.bench.measurement import PER_LAYER_COLUMNS

_TYPE_NAMES = {
    "float32": "f32", "f32": "f32", "fp32": "f32",
    "bfloat16": "bf16", "bf16": "bf16",
    "float16": "f16", "f16": "f16", "fp16": "f16",
    "i8": "i8", "int8": "i8", "u8": "u8", "uint8": "u8", "int8_t": "i8", "uint8_t": "u8",
}
_LATENCY_KEYS = {"median": "latency_median_us", "average": "latency_avg_us",
                 "min": "latency_min_us", "max": "latency_max_us"}
_NUM = r"([0-9]+(?:\.[0-9]+)?)"


def normalise_precision(text: str | None) -> str | None:
    """``"<Type: 'bfloat16'>"``, ``"FP32"``, ``"f16"`` -> ``"bf16"``, ``"f32"``, ``"f16"``."""
    if not text:
        return None
    m = re.search(r"'([^']+)'", text)
    key = (m.group(1) if m else text).strip().lower()
    return _TYPE_NAMES.get(key)


def _to_us(value: str, unit: str) -> float:
    return float(value) * (1000.0 if unit == "ms" else 1.0)


def error_text(text: str) -> str:
    """benchmark_app's own error lines: ``[ ERROR ] ...`` plus its continuation lines."""
    lines = text.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("[ ERROR ]"):
            out.append(line)
            for cont in lines[i + 1:]:
                if cont.startswith(("[", "Traceback")):
                    break
                if cont.strip():
                    out.append(cont)
    if not out:  # an exception before the logger is set up: the traceback's last line
        tb = [ln for ln in lines if re.match(r"^\w*(Error|Exception)\b.*:", ln)]
        out = tb[-1:]
    return "\n".join(out)


def parse_stdout(text: str) -> dict[str, Any]:
    """Parse benchmark_app console output (2026 and 2021.4 Python, or C++).

    Returns the keys found among: runtime_version, latency_{median,avg,min,max}_us,
    latency_resolution_us, throughput_fps, iterations, duration_ms, inference_precision
    (normalised), inference_precision_raw, streams, threads, batch, input_shape, input_precision,
    execution_devices, errors.
    """
    out: dict[str, Any] = {}
    m = re.search(r"(?:Build|API version)\s*\.*\s*(?:version\s+)?(\d{4}\.\S+)", text)
    if m:
        out["runtime_version"] = m.group(1)
    resolutions = []
    for name, key in _LATENCY_KEYS.items():
        m = re.search(rf"^\[ INFO \]\s+{name}:\s+{_NUM}\s*(us|ms)\s*$", text, re.M | re.I)
        if m:
            out[key] = _to_us(m.group(1), m.group(2))
            resolutions.append(0.01 if m.group(2) == "us" else 10.0)
    for pct, value, unit in re.findall(rf"^\[ INFO \]\s+(\d+) percentile:\s+{_NUM}\s*(us|ms)\s*$",
                                       text, re.M):  # -latency_percentile N replaces the median
        out.setdefault(f"latency_p{pct}_us", _to_us(value, unit))
    legacy = False
    if "latency_median_us" not in out:  # 2021.4: a single "Latency: 0.42 ms" (the median)
        m = re.search(rf"^(?:\[ INFO \])?\s*Latency:\s+{_NUM}\s*(us|ms)\s*$", text, re.M)
        if m:
            legacy = True
            out["latency_median_us"] = _to_us(m.group(1), m.group(2))
            resolutions.append(0.01 if m.group(2) == "us" else 10.0)
    if resolutions:
        out["latency_resolution_us"] = max(resolutions)
    m = re.search(rf"Throughput:\s+{_NUM}\s*FPS", text)
    if m:
        out["throughput_fps"] = float(m.group(1))
    m = re.search(r"Count:\s+(\d+)\s+iterations", text)
    if m:
        out["iterations"] = int(m.group(1))
    m = re.search(rf"Duration:\s+{_NUM}\s*ms", text)
    if m:
        out["duration_ms"] = float(m.group(1))
    m = re.search(r"INFERENCE_PRECISION_HINT:\s*(.+)$", text, re.M)
    if m:
        out["inference_precision_raw"] = m.group(1).strip()
        out["inference_precision"] = normalise_precision(m.group(1))
    threads = "(?:INFERENCE_NUM_THREADS|CPU_THREADS_NUM)"
    for key, prop in (("streams", "NUM_STREAMS"), ("threads", threads)):
        m = re.search(rf"^\[ INFO \]\s+{prop}\s*[:,]\s*(\d+)\s*$", text, re.M)
        if m:
            out[key] = int(m.group(1))
    m = re.search(r"(?:Model|Network) batch size:\s*(\d+)", text)
    if m:
        out["batch"] = int(m.group(1))
    out.update(_input_info(text))
    if legacy and "throughput_fps" in out and "inference synchronously" in text:
        # 2021.4's sync mode computes fps = batch * 1000 / median_ms and prints fps to 0.01 FPS:
        # invert it for the median at far better than the printed 10 µs.
        out["latency_median_us"] = round(out.get("batch", 1) * 1e6 / out["throughput_fps"], 3)
        out["latency_source"] = "throughput (2021.4 sync: fps = batch * 1000 / median_ms)"
        out["latency_resolution_us"] = round(out["latency_median_us"] ** 2 * 0.005 / 1e6 + 0.001, 3)
    if legacy and out.get("iterations") and "duration_ms" in out and "latency_avg_us" not in out:
        out["latency_avg_us"] = round(out["duration_ms"] * 1000 / out["iterations"], 3)
        out["latency_avg_source"] = "duration / iterations (2021.4 prints no average)"
    m = re.search(r"Execution Devices:\s*\[?([^\]\n]*)\]?", text)
    if m:
        out["execution_devices"] = [d.strip(" '\"") for d in m.group(1).split(",") if d.strip()]
    errors = error_text(text)
    if errors:
        out["errors"] = errors
    return out


def _input_info(text: str) -> dict[str, Any]:
    """Input shapes/precisions after the model is configured (Step 6 in both versions)."""
    step6 = text.split("[Step 6/11]", 1)
    section = step6[1].split("[Step 7/11]", 1)[0] if len(step6) > 1 else text
    found = re.findall(
        r"^\[ INFO \]\s+(\S+)(?: \(node: [^)]*\))?\s*:\s*(\w+)\s*/\s*\[[^\]]*\]\s*/\s*(\[[^\]]*\])",
        section.split("Model outputs", 1)[0], re.M)
    if not found:  # 2021.4: "Network input 'x' precision U8, dimensions (NCHW): 1 3 16 16"
        legacy = re.findall(r"Network input '([^']+)' precision (\w+), dimensions \(\w*\):([\d ]+)",
                            text)
        found = [(n, p, "[" + ",".join(d.split()) + "]") for n, p, d in legacy]
    if not found:
        return {}
    if len(found) == 1:
        shape = found[0][2].replace(" ", "")
    else:
        shape = ";".join(f"{n}={s.replace(' ', '')}" for n, _, s in found)
    return {"input_shape": shape, "input_precision": found[0][1]}


# ---- report folders -------------------------------------------------------------------------

def _split_fields(line: str) -> list[str]:
    fields = line.rstrip("\n").split(";")
    while len(fields) > 1 and fields[-1] == "":
        fields.pop()  # the C++ tool's trailing ';'
    return fields


def _summary_from_sections(sections: dict[str, dict[str, str]]) -> dict[str, Any]:
    res = {k.lower(): v for k, v in sections.get("execution_results", {}).items()}
    out: dict[str, Any] = {"sections": sections}

    def pick(*names: str) -> float | None:
        for n in names:
            if n in res and str(res[n]).strip() not in ("", "nan"):
                return float(str(res[n]).strip())
        return None

    ms_fields = {
        "latency_median_us": ("latency (ms)", "median latency (ms)", "latency"),
        "latency_avg_us": ("avg latency", "average latency (ms)", "avg latency (ms)"),
        "latency_min_us": ("min latency", "min latency (ms)"),
        "latency_max_us": ("max latency", "max latency (ms)"),
    }
    for key, names in ms_fields.items():
        v = pick(*names)
        if v is not None:
            out[key] = v * 1000.0
    for key, names in (("throughput_fps", ("throughput", "throughput (fps)")),
                       ("iterations", ("total number of iterations",)),
                       ("duration_ms", ("total execution time (ms)",))):
        v = pick(*names)
        if v is not None:
            out[key] = int(v) if key == "iterations" else v
    out["latency_resolution_us"] = 10.0  # the report files round to 0.01 ms
    return out


def parse_summary_csv(path: Path) -> dict[str, Any]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            current = None
            continue
        fields = _split_fields(line)
        if current is None and len(fields) == 1:
            name = fields[0].strip().lower().replace(" ", "_")
            current = sections.setdefault(name, {})
            continue
        if current is None:
            current = sections.setdefault("other", {})
        current[fields[0].strip()] = ";".join(fields[1:]).strip()
    return _summary_from_sections(sections)


def parse_summary_json(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    sections = {k: {str(a): str(b) for a, b in v.items()} for k, v in data.items()
                if isinstance(v, dict)}
    return _summary_from_sections(sections)


def _status(text: str) -> str:
    return text.strip().rsplit(".", 1)[-1]


def _frame(rows: list[dict[str, Any]]) -> pandas.DataFrame:
    frame = pandas.DataFrame(rows, columns=[*PER_LAYER_COLUMNS, "request"])
    return frame.astype({"real_time_us": float, "cpu_time_us": float, "request": int})


def parse_counters_csv(path: Path) -> pandas.DataFrame:
    """Per-layer counters: one row per (request, layer); ``attrs['totals_us']`` per request."""
    rows: list[dict[str, Any]] = []
    totals: list[dict[str, float]] = []
    request = -1
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        f = _split_fields(line)
        if f[0] == "layerName":
            request += 1
            continue
        if len(f) < 6:
            continue
        if f[0] == "Total" and not f[1].strip():
            totals.append({"real_time_us": float(f[4]) * 1000, "cpu_time_us": float(f[5]) * 1000})
            continue
        rows.append({"layer": f[0], "status": _status(f[1]), "layer_type": f[2],
                     "exec_type": f[3], "real_time_us": round(float(f[4]) * 1000, 3),
                     "cpu_time_us": round(float(f[5]) * 1000, 3), "request": max(request, 0)})
    frame = _frame(rows)
    frame.attrs["totals_us"] = totals
    return frame


def parse_counters_json(path: Path) -> pandas.DataFrame:
    data = json.loads(Path(path).read_text())
    blocks = data.get("detailed_performance") or [data["avg_performance"]]
    rows: list[dict[str, Any]] = []
    totals: list[dict[str, float]] = []
    for request, block in enumerate(blocks):
        for n in block["nodes"]:
            rows.append({"layer": n["name"], "status": _status(n["status"]),
                         "layer_type": n["node_type"], "exec_type": n["exec_type"],
                         "real_time_us": round(float(n["real_time"]) * 1000, 3),
                         "cpu_time_us": round(float(n["cpu_time"]) * 1000, 3), "request": request})
        totals.append({"real_time_us": float(block["total_real_time"]) * 1000,
                       "cpu_time_us": float(block["total_cpu_time"]) * 1000})
    frame = _frame(rows)
    frame.attrs["totals_us"] = totals
    return frame


def average_over_requests(frame: pandas.DataFrame) -> pandas.DataFrame:
    """One row per layer (first-seen order): times averaged over the infer requests."""
    if frame.empty or frame["request"].nunique() <= 1:
        return frame.drop(columns="request", errors="ignore").reset_index(drop=True)
    keys = ["layer", "status", "layer_type", "exec_type"]
    first = frame.drop_duplicates("layer")[keys]
    times = frame.groupby("layer", sort=False)[["real_time_us", "cpu_time_us"]].mean()
    return first.merge(times.reset_index(), on="layer", how="left").reset_index(drop=True)


def parse_report_folder(folder: Path) -> tuple[dict[str, Any], pandas.DataFrame]:
    """Summary dict and per-layer frame from a ``-report_folder`` (CSV or ``-json_stats`` JSON).

    The frame has PER_LAYER_COLUMNS plus ``request`` (infer request index); its
    ``attrs['totals_us']`` holds each request's ``Total`` row. Empty frame when no counters file.
    """
    folder = Path(folder)
    summary: dict[str, Any] = {}
    for name, parser in (("benchmark_report.json", parse_summary_json),
                         ("benchmark_report.csv", parse_summary_csv)):
        if (folder / name).is_file():
            summary = parser(folder / name)
            summary["summary_file"] = name
            break
    frame = _frame([])
    frame.attrs["totals_us"] = []
    for kind in ("detailed_counters", "average_counters"):
        for ext, parser in ((".json", parse_counters_json), (".csv", parse_counters_csv)):
            path = folder / f"benchmark_{kind}_report{ext}"
            if path.is_file():
                frame = parser(path)
                summary["counters_file"] = path.name
                return summary, frame
    return summary, frame
