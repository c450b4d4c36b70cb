"""Run a benchmark_app executable as a subprocess and turn its output into a BenchResult.

Works with the current env's benchmark_app (OpenVINO 2026) and the legacy env's (2021.4): the
options an executable accepts are read once from its ``-h`` text, so the command adapts (2021.4
has no ``-hint``/``-infer_precision``; it takes ``-enforcebf16`` and upper-case ``-ip FP32``).

Latency figures come from stdout, not the report files (which round to 10 µs): 2026 prints
``Median: 48.01 us`` while the average is under 1 ms, and ``x.xx ms`` (10 µs resolution) above;
2021.4 prints ``Latency: 0.42 ms`` but in sync mode its FPS is ``1000 / median_ms``, which gives
the median to well under 1 µs. ``BenchResult.latency_resolution_us`` records which applied.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchsuite.bench.bapp_output import (
    average_over_requests,
    normalise_precision,
    parse_report_folder,
    parse_stdout,
)
from benchsuite.bench.devices import device_name, unavailable_reason
from benchsuite.bench.measurement import SPARSE_RATE, BenchResult, BenchSettings
from benchsuite.core.children import die_with_parent
from benchsuite.core.stats import coefficient_of_variation

TAIL_LINES = 25
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the MYRIAD plugin's coloured log lines
DEFAULT_TIMEOUT_S = 900.0
_REPORT_KINDS = ("report", "detailed_counters_report", "average_counters_report", "sorted_report")
REPORT_FILES = (*(f"benchmark_{kind}.{ext}" for kind in _REPORT_KINDS for ext in ("csv", "json")),
                "stdout.txt", "stderr.txt")


class BenchmarkAppError(RuntimeError):
    """benchmark_app failed; the message holds its own error text, the command and output tail."""

    def __init__(self, message: str, command: list[str] | None = None, output: str = "") -> None:
        super().__init__(message)
        self.command = command or []
        self.output = output


class DeviceUnavailableError(BenchmarkAppError):
    """benchmark_app says the device is absent (unknown name, or MYRIAD's NC_ERROR: no stick).
    ``reason`` is a ready-made skip reason quoting benchmark_app."""

    def __init__(self, message: str, reason: str, command: list[str] | None = None,
                 output: str = "") -> None:
        super().__init__(message, command, output)
        self.reason = reason


def find_benchmark_app(executable: str | None = None) -> str:
    """The named executable, else the one beside ``sys.executable``, else the one on PATH."""
    if executable:
        path = shutil.which(executable) or executable
        if not Path(path).is_file():
            raise BenchmarkAppError(f"benchmark_app executable not found: {executable}")
        return str(path)
    beside = Path(sys.executable).parent / "benchmark_app"
    if beside.is_file():
        return str(beside)
    on_path = shutil.which("benchmark_app")
    if on_path:
        return on_path
    raise BenchmarkAppError(
        f"no benchmark_app next to {sys.executable} or on PATH (pip install openvino)")


def _subprocess_env() -> dict[str, str]:
    # The executable may belong to another Python (the legacy 3.6 env): keep our PYTHONPATH and
    # PYTHONHOME out of it.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@functools.lru_cache(maxsize=16)
def _options(executable: str, mtime: float) -> frozenset[str]:
    proc = subprocess.run([executable, "-h"], capture_output=True, text=True, timeout=120,
                          env=_subprocess_env(), check=False)
    text = proc.stdout + proc.stderr
    return frozenset(re.findall(r"^\s+(-[A-Za-z][A-Za-z0-9_]*)[\s,]", text, re.M))


def supported_options(executable: str) -> frozenset[str]:
    """The short options a benchmark_app accepts, read from its ``-h`` output (cached)."""
    return _options(executable, Path(executable).stat().st_mtime)


def build_command(model: Path, report_dir: Path, settings: BenchSettings,
                  executable: str) -> tuple[list[str], list[str]]:
    """Command line for one run, and notes on what was adapted (e.g. hint forced to none)."""
    opts = supported_options(executable)
    notes: list[str] = []
    cmd = [executable, "-m", str(model), "-d", settings.device, "-api", settings.api]
    hint = settings.hint
    if (settings.threads is not None or settings.streams is not None) and hint != "none":
        if "-hint" in opts:
            notes.append(f"hint {hint} -> none: benchmark_app takes -nthreads/-nstreams only "
                         "with -hint none")
        hint = "none"
    if "-hint" in opts:
        cmd += ["-hint", hint]
    elif settings.hint != "none":
        notes.append(f"hint {settings.hint} not sent: this benchmark_app has no -hint option")
    if settings.niter is not None:
        cmd += ["-niter", str(settings.niter)]
    if settings.time_s is not None:
        cmd += ["-t", f"{settings.time_s:g}"]
    for flag, value in (("-nthreads", settings.threads), ("-nstreams", settings.streams),
                        ("-b", settings.batch)):
        if value is not None:
            cmd += [flag, str(value)]
    if settings.precision is not None:
        if "-infer_precision" in opts:
            cmd += ["-infer_precision", settings.precision]
        elif "-enforcebf16" in opts and settings.precision in ("f32", "bf16"):
            cmd += ["-enforcebf16", "True" if settings.precision == "bf16" else "False"]
        else:
            raise BenchmarkAppError(
                f"precision {settings.precision} cannot be requested from {executable} "
                "(no -infer_precision option)")
    if settings.input_precision is not None and "-ip" in opts:
        legacy_ip = "-infer_precision" not in opts  # 2021.4 wants U8/FP16/FP32
        ip = {"f32": "FP32", "f16": "FP16", "u8": "U8"}.get(settings.input_precision, "")
        cmd += ["-ip", ip if legacy_ip and ip else settings.input_precision]
    if settings.sparse_weights_rate is not None:
        if "-load_config" not in opts:
            raise BenchmarkAppError(f"{SPARSE_RATE} cannot be given to {executable} (no "
                                    "-load_config option)")
        config = Path(report_dir) / "sparse_weights.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(
            {settings.device: {SPARSE_RATE: str(settings.sparse_weights_rate)}}))
        cmd += ["-load_config", str(config)]
    report = "detailed_counters" if settings.per_layer else "no_counters"
    cmd += ["-report_type", report, "-report_folder", str(report_dir)]
    return cmd, notes


def _tail(text: str, n: int = TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_once(model: Path, report_dir: Path, settings: BenchSettings,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """One benchmark_app process; returns parsed stdout merged over the report folder's data."""
    executable = find_benchmark_app(settings.executable)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)  # benchmark_app crashes at the end without it
    for stale in REPORT_FILES:  # a reused folder must not feed an earlier run's figures
        (report_dir / stale).unlink(missing_ok=True)
    cmd, notes = build_command(Path(model), report_dir, settings, executable)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=_subprocess_env(), check=False,
                              preexec_fn=die_with_parent)  # no orphan loads the next bench
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkAppError(f"benchmark_app timed out after {timeout_s:g} s\ncommand: "
                                f"{' '.join(cmd)}", cmd) from exc
    wall = time.perf_counter() - start
    proc.stdout, proc.stderr = _ANSI.sub("", proc.stdout), _ANSI.sub("", proc.stderr)
    (report_dir / "stdout.txt").write_text(proc.stdout)
    (report_dir / "stderr.txt").write_text(proc.stderr)
    out = parse_stdout(proc.stdout + "\n" + proc.stderr)
    if proc.returncode != 0 or "latency_median_us" not in out:
        own = out.get("errors") or _tail(proc.stderr, 5) or _tail(proc.stdout, 5)
        message = (
            f"benchmark_app failed (exit {proc.returncode}): {own}\ncommand: {' '.join(cmd)}\n"
            f"--- stderr tail ---\n{_tail(proc.stderr)}\n--- stdout tail ---\n{_tail(proc.stdout)}")
        reason = unavailable_reason(own, settings.device)
        if reason:
            raise DeviceUnavailableError(message, reason, cmd, proc.stdout + proc.stderr)
        raise BenchmarkAppError(message, cmd, proc.stdout + proc.stderr)
    summary, frame = parse_report_folder(report_dir)
    layers = average_over_requests(frame)
    merged = {k: v for k, v in summary.items() if k != "sections"}
    merged.update(out)  # stdout figures win: 1 µs resolution
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        notes.append("machine busy: 1-min load average above the CPU count during a run "
                     "(see repeats[].load_1min)")
    merged.update(command=cmd, notes=notes, wall_time_s=wall, executable=executable, load_1min=load,
                  per_layer=layers.to_dict("records"), totals_us=frame.attrs.get("totals_us", []))
    return merged


def precision_from_exec_types(per_layer: list[dict[str, Any]]) -> str | None:
    """Most common precision suffix of executed Convolution/FullyConnected/MatMul kernels."""
    counts: dict[str, int] = {}
    for row in per_layer:
        if row.get("status") != "EXECUTED" or row.get("layer_type") not in (
                "Convolution", "GroupConvolution", "FullyConnected", "MatMul", "Deconvolution"):
            continue
        prec = normalise_precision(str(row.get("exec_type", "")).rsplit("_", 1)[-1])
        if prec:
            counts[prec] = counts.get(prec, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


def _used_precision(run: dict[str, Any], settings: BenchSettings, notes: list[str]) -> str:
    hinted = run.get("inference_precision")
    kernels = precision_from_exec_types(run["per_layer"])
    if hinted and kernels and hinted != kernels:
        notes.append(f"INFERENCE_PRECISION_HINT says {hinted} but conv/fc kernels run {kernels}")
    used = hinted or kernels
    if used is None:
        notes.append("inference precision not reported; recorded the request or 'unknown'")
        return settings.precision or "unknown"
    return used


def _repeat_record(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("latency_median_us", "latency_avg_us", "latency_min_us", "latency_max_us",
            "throughput_fps", "iterations", "wall_time_s", "load_1min")
    return {k: run.get(k) for k in keys}


def merge_per_layer(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-layer rows averaged over repeats (each repeat's counters are one inference's), with
    ``real_time_us_sd`` (sample SD over repeats) and ``real_time_us_se`` (standard error of the
    mean, SD / sqrt(repeats)) when there are several."""
    if len(runs) == 1:
        return runs[0]["per_layer"]
    merged: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[float]] = {}
    for run in runs:
        for row in run["per_layer"]:
            merged.setdefault(row["layer"], dict(row))
            samples.setdefault(row["layer"], []).append((row["real_time_us"], row["cpu_time_us"]))
    for name, row in merged.items():
        real = [a for a, _ in samples[name]]
        row["real_time_us"] = round(statistics.fmean(real), 3)
        row["cpu_time_us"] = round(statistics.fmean(b for _, b in samples[name]), 3)
        sd = statistics.stdev(real) if len(real) > 1 else 0.0
        row["real_time_us_sd"] = round(sd, 3)
        row["real_time_us_se"] = round(sd / len(real) ** 0.5, 3)
    return list(merged.values())


def aggregate(model: Path, runs: list[dict[str, Any]], settings: BenchSettings) -> BenchResult:
    """Combine repeat runs: median over repeats of each figure, conditions of the middle run,
    per-layer times averaged over repeats, CV of the repeat medians."""
    medians = [r["latency_median_us"] for r in runs]
    middle = sorted(runs, key=lambda r: r["latency_median_us"])[(len(runs) - 1) // 2]
    notes = list(dict.fromkeys(n for r in runs for n in r["notes"]))

    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(vals), 3) if vals else None

    return BenchResult(
        latency_median_us=statistics.median(medians),
        latency_avg_us=med("latency_avg_us"),
        latency_min_us=med("latency_min_us"),
        latency_max_us=med("latency_max_us"),
        throughput_fps=med("throughput_fps") or 0.0,
        iterations=int(med("iterations") or 0),
        device=settings.device,
        precision=_used_precision(middle, settings, notes),
        precision_requested=settings.precision,
        threads=middle.get("threads", settings.threads),
        streams=middle.get("streams", settings.streams),
        batch=int(middle.get("batch") or settings.batch or 1),
        input_shape=str(middle.get("input_shape", "")),
        runtime_version=str(middle.get("runtime_version", "unknown")),
        executable=str(middle["executable"]),
        hint="none" if "-hint" in middle["command"] and
             middle["command"][middle["command"].index("-hint") + 1] == "none" else settings.hint,
        api=settings.api,
        per_layer=merge_per_layer(runs),
        repeats=[_repeat_record(r) for r in runs],
        latency_cv=coefficient_of_variation(medians),
        latency_resolution_us=max(r.get("latency_resolution_us", 10.0) for r in runs),
        model=str(model),
        input_precision=middle.get("input_precision"),
        wall_time_s=sum(r["wall_time_s"] for r in runs),
        notes=notes,
        device_name=device_name(settings.device),
    )


def _repeat_dir(report_dir: Path, index: int, repeats: int) -> Path:
    return Path(report_dir) if repeats == 1 else Path(report_dir) / f"repeat_{index:02d}"


def run_benchmark(model: Path, report_dir: Path, settings: BenchSettings,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> BenchResult:
    """Benchmark one model ``settings.repeats`` times (reports in ``report_dir[/repeat_NN]``)."""
    runs = [run_once(model, _repeat_dir(report_dir, i, settings.repeats), settings, timeout_s)
            for i in range(settings.repeats)]
    return aggregate(Path(model), runs, settings)


def benchmark_interleaved(models: dict[str, Path], report_dir: Path, settings: BenchSettings,
                          timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, BenchResult]:
    """Benchmark several models interleaved, one run of each per repeat (order reversed every
    other repeat: a b, b a, a b, ...), so that ratios between them are taken under the same
    machine state; reports in ``report_dir/<name>[/repeat_NN]``."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in models}
    names = list(models)
    for i in range(settings.repeats):
        order = names if i % 2 == 0 else names[::-1]  # a, b, b, a, a, b: linear drift cancels
        for name in order:
            model = models[name]
            folder = _repeat_dir(Path(report_dir) / name, i, settings.repeats)
            runs[name].append(run_once(model, folder, settings, timeout_s))
    return {name: aggregate(Path(models[name]), runs[name], settings) for name in models}


def speedup(dense: BenchResult, pruned: BenchResult) -> float:
    """Dense median latency / pruned median latency (> 1: the pruned model is faster)."""
    return dense.latency_median_us / pruned.latency_median_us


def paired_speedups(dense: BenchResult, pruned: BenchResult) -> dict[str, Any]:
    """Per-repeat ratios of two interleaved results (repeat i of each ran back to back):
    ``ratios``, their ``median``, ``min``, ``max`` and ``cv``. Under a drifting machine load the
    CV of these paired ratios is the noise that matters for a speed-up (it is what the
    detrimental-pruner filter can take as a case's ``cv``)."""
    ratios = [d["latency_median_us"] / p["latency_median_us"]
              for d, p in zip(dense.repeats, pruned.repeats, strict=False)]
    if not ratios:
        ratios = [speedup(dense, pruned)]
    return {"ratios": ratios, "median": statistics.median(ratios), "min": min(ratios),
            "max": max(ratios), "cv": coefficient_of_variation(ratios)}
