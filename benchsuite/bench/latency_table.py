"""Build the per-conv latency table on the bench side (openvino + numpy, no torch).

Why tiny models written with the OpenVINO model API (`openvino.opset13`) and not ONNX from the
prune side: the bench environment has no torch, a grid needs hundreds of models of which only
channel counts differ, and what OpenVINO runs for a conv of the exported network is a
Convolution with its BatchNorm folded into a bias and its ReLU fused, which these models are.

Each grid point (c_in, c_out) of a geometry (kernel, stride, input h x w) is measured with the
project's in-process paired rounds (`bench/paired.py`'s settings: 1 thread, 1 stream, latency
hint, the precision asked for; timed in CPU time per inference, `timing.py` says why) as the
median per-round difference of two models:

    anchor: input -> 1x1 conv (c_in -> c_in) + bias + ReLU -> spatial mean -> output
    unit:   input -> the anchor's conv -> k x k conv (c_in -> c_out, stride) + bias + ReLU
            -> spatial mean -> output

so the unit conv reads its input in the layout a preceding conv leaves it in and its output
stays in the runtime's blocked layout (as in the network: without the mean, the reorder of the
output to the planar layout differed between the two models and a stride-2 conv measured a
negative time), and the runtime's per-inference cost cancels. The table is cached on disk per
conditions (device, its name and capabilities, precision, threads, streams, runtime version,
step); grid points are added to a cached table when a new network needs them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from benchsuite.bench.paired import PairedSettings, cpu_paired
from benchsuite.core.hashing import content_hash
from benchsuite.core.paths import cache_dir
from benchsuite.latency.spec import (
    TABLE_VERSION,
    ConvSpec,
    LatencyTable,
    grid_units,
    monotone,
    parse_geometry,
)

log = logging.getLogger(__name__)

# a grid point needs far less than a case's speed-up: ±3 % (or ±1 µs) of a 1-100 µs difference
UNIT_SETTINGS = {"mode": "alternate", "round_size": 20, "warmup": 20, "min_rounds": 20,
                 "target_halfwidth": 0.03, "max_seconds": 1.0}
NETWORK_SECONDS = 10.0


def convs_from_ir(model_path: Path) -> list[ConvSpec]:
    """The convolutions of a static-shape model (IR or ONNX), in topological order."""
    import openvino as ov

    model = ov.Core().read_model(str(model_path))
    out = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        _, cin, h, w = (int(d) for d in op.input(0).get_shape())
        cout, _, k, _ = (int(d) for d in op.input(1).get_shape())
        stride = int(op.get_attributes()["strides"][0])
        out.append(ConvSpec(cin, cout, k, stride, h, w))
    return out


def _conv_relu(ops: Any, x: Any, cin: int, cout: int, k: int, stride: int,
               rng: np.random.Generator) -> Any:
    weights = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.1
    pad = k // 2
    conv = ops.convolution(x, ops.constant(weights), [stride, stride], [pad, pad], [pad, pad],
                           [1, 1])
    bias = ops.constant(rng.standard_normal((1, cout, 1, 1)).astype(np.float32) * 0.1)
    return ops.relu(ops.add(conv, bias))


def unit_models(conv: ConvSpec, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the (unit, anchor) IR pair of one grid point; returns their .xml paths."""
    import openvino as ov
    import openvino.opset13 as ops

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, with_unit in (("unit", True), ("anchor", False)):
        rng = np.random.default_rng(seed)
        x = ops.parameter([1, conv.cin, conv.h, conv.w], np.float32, name="input")
        y = _conv_relu(ops, x, conv.cin, conv.cin, 1, 1, rng)
        if with_unit:
            y = _conv_relu(ops, y, conv.cin, conv.cout, conv.k, conv.stride, rng)
        y = ops.reduce_mean(y, ops.constant(np.array([2, 3], dtype=np.int64)), keep_dims=True)
        path = folder / f"{name}.xml"
        ov.save_model(ov.Model([ops.result(y)], [x], name), str(path), compress_to_fp16=False)
        paths.append(path)
    return paths[0], paths[1]


def measure_unit(conv: ConvSpec, settings: PairedSettings, folder: Path) -> tuple[float, dict]:
    """Marginal latency (µs) of one conv: the median over paired rounds of unit - anchor, in CPU
    time per inference (`timing.py`)."""
    unit, anchor = unit_models(conv, folder)
    res = cpu_paired({"unit": unit, "anchor": anchor}, settings, difference=("unit", "anchor"))
    return res["difference_us"], res


def measure_network(model_xml: Path, settings: PairedSettings, folder: Path) -> dict:
    """A whole network's CPU µs per inference, in paired rounds beside a tiny anchor, with a
    longer time cap than a grid point (NETWORK_SECONDS)."""
    import dataclasses

    convs = convs_from_ir(model_xml)
    first = convs[0] if convs else ConvSpec(1, 1, 1, 1, 8, 8)
    _, anchor = unit_models(first, folder / "network-anchor")
    longer = dataclasses.replace(settings, max_seconds=max(settings.max_seconds,
                                                           NETWORK_SECONDS))
    res = cpu_paired({"net": model_xml, "anchor": anchor}, longer)
    return {"measured_us": res["cpu_us"]["net"], "cpu_share": res["cpu_share"],
            "rounds": res["rounds"]}


def table_key(settings: PairedSettings, step: int) -> dict[str, Any]:
    """What a table's figures depend on (the file name is its hash)."""
    import openvino as ov

    from benchsuite.bench.devices import device_name

    return {"device": settings.device, "device_name": device_name(settings.device),
            "precision_requested": settings.precision, "threads": settings.threads,
            "streams": settings.streams, "runtime_version": ov.get_version(), "step": step,
            "version": TABLE_VERSION}


def table_path(settings: PairedSettings, step: int, folder: Path | None = None) -> Path:
    folder = Path(folder or cache_dir() / "latency_tables")
    return folder / f"{content_hash(table_key(settings, step))}.json"


def _grid(points: dict[str, float], cins: list[int], couts: list[int]) -> list[list[float]]:
    return monotone([[points[f"{ci},{co}"] for co in couts] for ci in cins])


def build_table(dense_xml: Path, network: str, step: int, settings: PairedSettings | None = None,
                folder: Path | None = None, workdir: Path | None = None,
                progress: Callable[[str], None] | None = None) -> LatencyTable:
    """The table covering every pruned version of `dense_xml` (channel counts at multiples of
    `step`), measured where missing, with the dense network measured whole as `network`."""
    base = {"threads": 1, "streams": 1, "precision": "f32"} | UNIT_SETTINGS
    settings = settings or PairedSettings(**base)
    path = table_path(settings, step, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(workdir or path.parent / "work")
    say = progress or (lambda _m: None)
    with FileLock(path.with_suffix(".lock")):  # one builder per table (xdist, workers)
        data = json.loads(path.read_text()) if path.is_file() else {
            "conditions": table_key(settings, step), "points": {}, "networks": {}}
        todo = _missing(data["points"], grid_units(convs_from_ir(dense_xml), step))
        for i, (g, ci, co) in enumerate(todo):
            k, s, h, w = parse_geometry(g)
            us, cond = measure_unit(ConvSpec(ci, co, k, s, h, w), settings, workdir / "unit")
            data["points"].setdefault(g, {})[f"{ci},{co}"] = us
            data["conditions"] |= {"precision": cond["precision"], "clock": cond["clock"]}
            if i % 10 == 0 or i == len(todo) - 1:
                say(f"latency table: {i + 1}/{len(todo)} grid points ({g} {ci}->{co}: "
                    f"{us:.1f} µs)")
        if todo or network not in data["networks"]:
            table = _table(data, step)
            data["networks"][network] = measure_network(dense_xml, settings, workdir) | {
                "sum_us": table.sum_us(convs_from_ir(dense_xml))}
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(path)
    return _table(data, step)


def _missing(points: dict[str, dict[str, float]],
             needed: dict[str, tuple[list[int], list[int]]]) -> list[tuple[str, int, int]]:
    """Grid points to measure so that every geometry's points stay a full cross product of its
    c_in and c_out counts (those already measured and those this network needs)."""
    todo = []
    for g, (cins, couts) in needed.items():
        have = [tuple(int(v) for v in p.split(",")) for p in points.get(g, {})]
        all_cins = sorted({*cins, *(ci for ci, _ in have)})
        all_couts = sorted({*couts, *(co for _, co in have)})
        todo += [(g, ci, co) for ci in all_cins for co in all_couts
                 if f"{ci},{co}" not in points.get(g, {})]
    return todo


def _table(data: dict, step: int) -> LatencyTable:
    """Grids from the raw points (per geometry a full cross product, see `_missing`)."""
    entries = {}
    for g, points in data["points"].items():
        pairs = [tuple(int(v) for v in p.split(",")) for p in points]
        cins = sorted({ci for ci, _ in pairs})
        couts = sorted({co for _, co in pairs})
        entries[g] = {"cin": cins, "cout": couts, "us": _grid(points, cins, couts)}
    return LatencyTable(conditions=data["conditions"], step=step, entries=entries,
                        networks=data.get("networks", {}))


def load_table(settings: PairedSettings, step: int, folder: Path | None = None
               ) -> LatencyTable | None:
    """The cached table for these conditions, if one was built."""
    path = table_path(settings, step, folder)
    if not path.is_file():
        return None
    return _table(json.loads(path.read_text()), step)


def predict_pair(models: dict[str, Path], table_data: dict, dense_measured_us: float | None
                 ) -> dict[str, Any]:
    """The prediction fields of the bench stage for {"dense": xml, "pruned": xml}
    (`core.result.PREDICTION_KEYS`): what the latency model predicted, made before the case's
    own measurement (`track.latency_model` compares them with what was measured)."""
    table = LatencyTable.from_dict(table_data)
    dense = table.sum_us(convs_from_ir(models["dense"]))
    pruned = table.sum_us(convs_from_ir(models["pruned"]))
    scale = table.scale()
    return {"latency_predicted_us": pruned * scale, "speedup_predicted": dense / pruned,
            "latency_table_sum_us": pruned, "dense_latency_table_sum_us": dense,
            "dense_latency_table_measured_us": dense * scale}
