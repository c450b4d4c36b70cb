"""Devices: what the current OpenVINO lists, the legacy (2021.4, MYRIAD) env, skip reasons.

``device_skip_reason("GPU")`` -> ``"device GPU not available (available: CPU)"`` or None.
MYRIAD lives only in the legacy env (the plugin was removed in OpenVINO 2023.0): its reason
names the missing env, or quotes the plugin (``NC_ERROR``: no Neural Compute Stick 2).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

LEGACY_ENV_VAR = "BENCHSUITE_LEGACY_BENCHMARK_APP"
LEGACY_ENV_NAME = "bench-myriad"
LEGACY_DEVICES = frozenset({"MYRIAD", "HDDL"})
VIRTUAL_DEVICES = frozenset({"MULTI", "AUTO", "HETERO", "BATCH"})  # their targets decide
_PROBE = Path(__file__).with_name("legacy.py")
# benchmark_app error texts meaning "this device is not here" rather than "the run is broken"
UNAVAILABLE_PATTERNS = ("NC_ERROR", "Can not init Myriad device",
                        "is not registered in the OpenVINO Runtime")


class LegacyApp(NamedTuple):
    path: Path | None
    reason: str  # why path is None ("" when found)


def _base(device: str) -> str:
    """``GPU.1`` / ``HETERO:GPU,CPU`` -> ``GPU`` / ``HETERO``."""
    return device.split(":", 1)[0].split(".", 1)[0].upper()


@functools.cache
def _capabilities(device: str) -> tuple[str, ...] | None:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of ``device`` (None: no openvino here, or a
    device it cannot query)."""
    try:
        import openvino

        return tuple(openvino.Core().get_property(device, "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # no openvino in this env, or a device it does not list
        return None


@functools.cache
def device_name(device: str) -> str:
    """What the device is, for the conditions of every figure: OpenVINO's ``FULL_DEVICE_NAME``
    and ``OPTIMIZATION_CAPABILITIES`` (whether bf16 is native, say), e.g. ``AMD EPYC (FP32,
    INT8, BIN, EXPORT_IMPORT)``; for a CPU this env's OpenVINO cannot query, the model name
    from /proc/cpuinfo; else "unknown". A speed-up measured on one CPU says little about
    another (bf16 runs natively with AMX/AVX512-BF16, and is emulated or ignored without)."""
    try:
        import openvino

        name = str(openvino.Core().get_property(device, "FULL_DEVICE_NAME"))
        caps = ", ".join(_capabilities(device) or ())
        return f"{name} ({caps})" if caps else name
    except Exception:  # no openvino here, or a device it does not list
        pass
    if device.upper().startswith("CPU"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return "unknown"


@functools.cache
def available_devices() -> tuple[str, ...]:
    """``openvino.Core().available_devices`` of this env, e.g. ('CPU',)."""
    import openvino

    return tuple(openvino.Core().available_devices)


def _repo_roots() -> list[Path]:
    here = Path(__file__).resolve().parents[2]
    return list(dict.fromkeys([here, Path.cwd()]))


def legacy_candidates() -> list[Path]:
    found = [Path(os.environ[LEGACY_ENV_VAR])] if os.environ.get(LEGACY_ENV_VAR) else []
    for root in _repo_roots():
        found += [root / ".tox" / LEGACY_ENV_NAME / "bin" / "benchmark_app",
                  root / ".venvs" / LEGACY_ENV_NAME / "bin" / "benchmark_app"]
    return found


@functools.cache
def python36() -> str | None:
    """A working Python 3.6: ``$BENCH_PY36``, pyenv's 3.6.15 (under ``$PYENV_ROOT`` or
    ``~/.pyenv``), else ``python3.6`` on PATH if it really runs (a pyenv shim exists even when
    3.6 is not selected)."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for cand in (os.environ.get("BENCH_PY36"), str(pyenv / "versions/3.6.15/bin/python3.6"),
                 shutil.which("python3.6")):
        if cand and Path(cand).is_file():
            probe = "import sys; assert sys.version_info[:2] == (3, 6)"
            check = subprocess.run([cand, "-c", probe], capture_output=True, timeout=60,
                                   check=False)
            if check.returncode == 0:
                return cand
    return None


def legacy_benchmark_app() -> LegacyApp:
    """The legacy env's benchmark_app (``$BENCHSUITE_LEGACY_BENCHMARK_APP``, else
    ``.tox/bench-myriad`` or ``.venvs/bench-myriad`` under the repo), or None and a reason."""
    candidates = legacy_candidates()
    for path in candidates:
        if path.is_file():
            return LegacyApp(path, "")
    py = python36()
    if py is None:
        return LegacyApp(None, "legacy OpenVINO 2021.4 env not built and no Python 3.6 "
                               "interpreter found (python3.6 on PATH or pyenv 3.6.15)")
    tried = ", ".join(str(p) for p in candidates)
    return LegacyApp(None, f"legacy OpenVINO 2021.4 env not built (no benchmark_app at {tried}); "
                           f"build it with `tox -e {LEGACY_ENV_NAME}` or scripts/legacy_env.sh "
                           f"(Python 3.6 found: {py})")


def legacy_python(app: Path) -> Path:
    return Path(app).parent / "python"


def legacy_probe(app: Path, model: Path | None = None, device: str | None = None) -> dict:
    """Run legacy.py in the legacy env: {version, devices, load_error}."""
    cmd = [str(legacy_python(app)), str(_PROBE)]
    if device is not None:
        cmd += [device] + ([str(model)] if model is not None else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"legacy probe failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@functools.lru_cache(maxsize=32)
def _cached_probe(app: Path, model: Path | None, device: str) -> dict:
    return legacy_probe(app, model, device)  # MYRIAD's NC_ERROR takes ~5 s: ask once


def unavailable_reason(error_text: str, device: str) -> str | None:
    """A skip reason when benchmark_app's error says the device is absent, else None."""
    for pattern in UNAVAILABLE_PATTERNS:
        if pattern in error_text:
            line = next((ln for ln in error_text.splitlines() if pattern in ln), pattern)
            line = line.replace("[ ERROR ]", "").strip()
            return f"device {device} not usable: {line}"
    return None


NATIVE_CAPABILITY = {"bf16": "BF16", "f16": "FP16"}  # OpenVINO's OPTIMIZATION_CAPABILITIES
CPU_FEATURE = {"BF16": "AVX512-BF16 or AMX", "FP16": "AVX512-FP16 or AMX-FP16"}


def precision_skip_reason(device: str, precision: str | None) -> str | None:
    """None when ``device`` runs ``precision`` natively (or no reduced precision is asked for),
    else a reason naming what is missing. OpenVINO's CPU plugin quietly runs f32 when asked
    for bf16 on a CPU without AVX512-BF16/AMX: such a figure would be f32 under a bf16 label."""
    capability = NATIVE_CAPABILITY.get((precision or "").lower())
    if capability is None or _base(device) in LEGACY_DEVICES | VIRTUAL_DEVICES:
        return None
    capabilities = _capabilities(device)  # None: a device OpenVINO does not list (see below)
    if capabilities is None or capability in capabilities:
        return None
    return (f"precision {precision} not supported natively by {device} ({device_name(device)}): "
            f"OpenVINO would run f32 and label it {precision}; {precision} figures need a "
            f"device with {capability} (on CPU: {CPU_FEATURE[capability]})")


def device_skip_reason(device: str, model: Path | None = None) -> str | None:
    """None when ``device`` can run here, else a reason naming what is missing.

    MYRIAD/HDDL need the legacy env; the plugin is asked to load a probe network (or ``model``,
    an ONNX file), so a missing stick gives the plugin's own reason (``NC_ERROR``)."""
    base = _base(device)
    if base in LEGACY_DEVICES:
        app = legacy_benchmark_app()
        if app.path is None:
            return f"device {device} needs the legacy env: {app.reason}"
        try:
            probe = _cached_probe(app.path, model, device)
        except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
            return f"device {device}: cannot probe the legacy env at {app.path}: {exc}"
        if probe.get("load_error"):
            return (unavailable_reason(probe["load_error"], device)
                    or f"device {device} not usable: {probe['load_error']}")
        return None
    if base in VIRTUAL_DEVICES:
        return None  # virtual devices; their targets decide
    devices = available_devices()
    if base not in {d.split(".")[0] for d in devices}:
        return f"device {device} not available (available: {', '.join(devices) or 'none'})"
    return None
