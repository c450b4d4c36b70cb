"""Build the per-op latency table on the bench side (openvino + numpy, no torch).

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
negative time), and the runtime's per-inference cost cancels. The other kinds (`latency/spec.py`)
are measured the same way, each unit after the op that precedes it in the networks:

    depthwise: the anchor's 1x1 conv (c -> c), then a k x k GroupConvolution of c groups + bias
               + ReLU (MobileNetV2's follows its expansion conv), spatial mean;
    linear:    input [1, t, in] -> layer norm (MVN, what precedes a ViT's qkv and fc1) -> MatMul
               by a constant [out, in] + bias -> mean over the tokens;
    attention: input [1, n, 3 h d] (a qkv layer's output) -> x 1 (a node the runtime keeps)
               -> reshape, transpose, split into q, k, v [1, h, n, d] -> q x 1 / sqrt(d) ->
               ScaledDotProductAttention -> transpose, reshape to [1, n, h d] (what `proj`
               reads) -> mean over the tokens; the anchor takes the mean of the input itself.
               The marginal cost is the head split and merge with the attention, what removing
               heads saves besides the linear layers. q is scaled by a Multiply, not by the
               attention's scale input, as in the export: the CPU plugin then fuses the output
               transpose into its attention subgraph as it does in the network (with the scale
               input it did not, and the ViT's attentions measured 16 % above the network's
               per-layer counters).

The table is cached on disk per conditions (device, its name and capabilities, precision,
threads, streams, runtime version, step); grid points are added to a cached table when a new
network needs them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from benchsuite.bench.paired import PairedSettings, cpu_paired, measure_paired
from benchsuite.core.hashing import content_hash
from benchsuite.core.paths import cache_dir
from benchsuite.latency.spec import (
    KINDS,
    TABLE_VERSION,
    AttentionSpec,
    ConvSpec,
    DepthwiseSpec,
    LatencyTable,
    LinearSpec,
    OpSpec,
    fit_per_op,
    grid_units,
    monotone,
    spec_at,
)

log = logging.getLogger(__name__)

# a grid point needs far less than a case's speed-up: ±3 % (or ±1 µs) of a 1-100 µs difference
UNIT_SETTINGS = {"mode": "alternate", "round_size": 20, "warmup": 20, "min_rounds": 20,
                 "target_halfwidth": 0.03, "max_seconds": 1.0}
NETWORK_SECONDS = 10.0


def convs_from_ir(model_path: Path) -> list[ConvSpec]:
    """The convolutions of a static-shape model (IR or ONNX), in topological order."""
    return [o for o in ops_from_ir(model_path) if isinstance(o, ConvSpec)]


# what may stand between a constant weight and its MatMul (a compressed IR's decompression)
_WEIGHT_PATH = ("Constant", "Convert", "Reshape", "Transpose")


def _is_constant(output: Any) -> bool:
    node = output.get_node()
    if node.get_type_name() not in _WEIGHT_PATH:
        return False
    return all(_is_constant(i.get_source_output()) for i in node.inputs()[:1])


def _attention_matmul(softmax: Any) -> Any | None:
    """The q k^T MatMul of activations feeding `softmax` (through a scale or a mask), if any."""
    node = softmax.input(0).get_source_output().get_node()
    while node.get_type_name() in ("Add", "Multiply", "Divide"):
        node = node.input(0).get_source_output().get_node()
    if node.get_type_name() == "MatMul" and not any(
            _is_constant(i.get_source_output()) for i in node.inputs()):
        return node
    return None


def _shape(port: Any) -> list[int]:
    return [int(d) for d in port.get_shape()]


def ops_from_ir(model_path: Path) -> list[OpSpec]:
    """The latency model's ops of a static-shape model (IR or ONNX), in topological order:
    Convolution, GroupConvolution with one channel per group (another grouping is refused:
    the model has no kind for it), MatMul by a constant (a linear layer), and attention:
    ScaledDotProductAttention, or a Softmax fed by a MatMul of two activations (its q k^T; the
    x v MatMul after it goes with it). Other MatMuls of two activations are not modelled."""
    import openvino as ov

    model = ov.Core().read_model(str(model_path))
    out: list[OpSpec] = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind == "Convolution":
            _, cin, h, w = _shape(op.input(0))
            cout, _, k, _ = _shape(op.input(1))
            out.append(ConvSpec(cin, cout, k, int(op.get_attributes()["strides"][0]), h, w))
        elif kind == "GroupConvolution":
            _, cin, h, w = _shape(op.input(0))
            groups, per_out, per_in, k, _ = _shape(op.input(1))
            if groups != cin or per_out != 1 or per_in != 1:
                raise ValueError(f"{op.get_friendly_name()}: a grouped convolution of {cin} "
                                 f"channels in {groups} groups of {per_in} -> {per_out}: the "
                                 "latency model has depthwise ones only")
            out.append(DepthwiseSpec(cin, k, int(op.get_attributes()["strides"][0]), h, w))
        elif kind == "MatMul" and _is_constant(op.input(1).get_source_output()) and not \
                _is_constant(op.input(0).get_source_output()):
            weight = _shape(op.input(1))
            transpose_b = op.get_attributes()["transpose_b"]
            fin, fout = (weight[-1], weight[-2]) if transpose_b else (weight[-2], weight[-1])
            tokens = int(np.prod(_shape(op.input(0)))) // fin
            out.append(LinearSpec(tokens, fin, fout))
        elif kind == "ScaledDotProductAttention":
            *lead, n, d = _shape(op.input(0))
            out.append(AttentionSpec(n, int(np.prod(lead[1:])), d))
        elif kind == "Softmax" and (qk := _attention_matmul(op)) is not None:
            *lead, n, d = _shape(qk.input(0))
            out.append(AttentionSpec(n, int(np.prod(lead[1:])), d))
    return out


def _conv_relu(ops: Any, x: Any, cin: int, cout: int, k: int, stride: int,
               rng: np.random.Generator) -> Any:
    weights = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.1
    pad = k // 2
    conv = ops.convolution(x, ops.constant(weights), [stride, stride], [pad, pad], [pad, pad],
                           [1, 1])
    bias = ops.constant(rng.standard_normal((1, cout, 1, 1)).astype(np.float32) * 0.1)
    return ops.relu(ops.add(conv, bias))


def _depthwise_relu(ops: Any, x: Any, c: int, k: int, stride: int,
                    rng: np.random.Generator) -> Any:
    weights = rng.standard_normal((c, 1, 1, k, k)).astype(np.float32) * 0.1
    pad = k // 2
    conv = ops.group_convolution(x, ops.constant(weights), [stride, stride], [pad, pad],
                                 [pad, pad], [1, 1])
    bias = ops.constant(rng.standard_normal((1, c, 1, 1)).astype(np.float32) * 0.1)
    return ops.relu(ops.add(conv, bias))


def _mean(ops: Any, y: Any, axes: list[int]) -> Any:
    return ops.reduce_mean(y, ops.constant(np.array(axes, dtype=np.int64)), keep_dims=True)


def _unit_graph(ops: Any, spec: OpSpec, with_unit: bool, rng: np.random.Generator
                ) -> tuple[Any, Any]:
    """(input parameter, output) of one model of the pair (module docstring)."""
    if isinstance(spec, ConvSpec | DepthwiseSpec):
        c = spec.cin if isinstance(spec, ConvSpec) else spec.c
        x = ops.parameter([1, c, spec.h, spec.w], np.float32, name="input")
        y = _conv_relu(ops, x, c, c, 1, 1, rng)
        if with_unit and isinstance(spec, ConvSpec):
            y = _conv_relu(ops, y, spec.cin, spec.cout, spec.k, spec.stride, rng)
        elif with_unit:
            y = _depthwise_relu(ops, y, spec.c, spec.k, spec.stride, rng)
        return x, _mean(ops, y, [2, 3])
    if isinstance(spec, LinearSpec):
        x = ops.parameter([1, spec.tokens, spec.fin], np.float32, name="input")
        y = ops.mvn(x, ops.constant(np.array([-1], dtype=np.int64)), True, 1e-6, "inside_sqrt")
        if with_unit:
            w = rng.standard_normal((spec.fout, spec.fin)).astype(np.float32) * 0.1
            b = rng.standard_normal((spec.fout,)).astype(np.float32) * 0.1
            y = ops.add(ops.matmul(y, ops.constant(w), False, True), ops.constant(b))
        return x, _mean(ops, y, [1])
    n, h, d = spec.tokens, spec.heads, spec.head_dim
    x = ops.parameter([1, n, 3 * h * d], np.float32, name="input")
    y = ops.multiply(x, ops.constant(np.ones((1, 1, 3 * h * d), dtype=np.float32)))
    if with_unit:
        y = ops.reshape(y, ops.constant(np.array([1, n, 3, h, d], dtype=np.int64)), False)
        y = ops.transpose(y, ops.constant(np.array([2, 0, 3, 1, 4], dtype=np.int64)))
        q, k, v = (ops.squeeze(t, ops.constant(np.array([0], dtype=np.int64)))
                   for t in ops.split(y, ops.constant(np.int64(0)), 3).outputs())
        q = ops.multiply(q, ops.constant(np.float32(d ** -0.5)))  # the export scales q
        y = ops.scaled_dot_product_attention(q, k, v, scale=ops.constant(np.float32(1.0)))
        y = ops.transpose(y, ops.constant(np.array([0, 2, 1, 3], dtype=np.int64)))
        y = ops.reshape(y, ops.constant(np.array([1, n, h * d], dtype=np.int64)), False)
    return x, _mean(ops, y, [1])


def unit_models(conv: OpSpec, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the (unit, anchor) IR pair of one grid point; returns their .xml paths."""
    import openvino as ov
    import openvino.opset13 as ops

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, with_unit in (("unit", True), ("anchor", False)):
        x, y = _unit_graph(ops, conv, with_unit, np.random.default_rng(seed))
        path = folder / f"{name}.xml"
        ov.save_model(ov.Model([ops.result(y)], [x], name), str(path), compress_to_fp16=False)
        paths.append(path)
    return paths[0], paths[1]


def measure_unit(conv: OpSpec, settings: PairedSettings, folder: Path) -> tuple[float, dict]:
    """Marginal latency (µs) of one op: the median over paired rounds of unit - anchor, in CPU
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


def per_op_fields(net: dict, table: LatencyTable, calibration: tuple[Path, Path],
                  ops: tuple[list[OpSpec], list[OpSpec]], settings: PairedSettings) -> dict:
    """The network's per-op cost (`spec.fit_per_op`), fitted on the speed-up of the calibration
    pair (the network and its calibration network, both untrained from one initialisation:
    `pipeline.stages.calibration_net_stage` says why) measured by the cases' own method
    (`paired.measure_paired`, its default rounds at `settings`' device, precision, threads and
    streams): the cost is there to predict those speed-ups. Not on the CPU-time clock of the
    table's entries: on MobileNetV2 (AMD EPYC, f32) that clock gave the calibration network
    1.79x where the paired rounds measured 1.63x. `ops`: the network's and the calibration
    network's ops (`ops_from_ir`)."""
    dense_xml, calibration_xml = calibration
    dense_ops, cal_ops = ops
    case = PairedSettings.from_dict({k: v for k, v in settings.to_dict().items()
                                     if k not in UNIT_SETTINGS})
    res = measure_paired({"dense": dense_xml, "calibration": calibration_xml}, case)
    n_dense, n_cal = len(table.modelled(dense_ops)), len(table.modelled(cal_ops))
    cal_sum = table.sum_us(cal_ops)
    if res.conditions.get("disturbed"):
        log.warning("the calibration network's speed-up was measured with preempted rounds "
                    "(%.3fx): the per-op cost fitted on it may be off", res.speedup)
    try:
        per_op = fit_per_op(net["sum_us"], n_dense, cal_sum, n_cal, 1 / res.speedup)
    except ValueError as e:
        log.warning("no per-op cost for this network: %s", e)
        per_op = 0.0
    return {"ops": n_dense, "per_op_us": per_op,
            "calibration": {"speedup": res.speedup, "ci_low": res.ci_low,
                            "ci_high": res.ci_high, "sum_us": cal_sum, "ops": n_cal,
                            "method": res.method,
                            "disturbed": bool(res.conditions.get("disturbed"))}}


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


def _grid(points: dict[str, float], cins: list[int], couts: list[int], envelope: bool
          ) -> list[list[float]]:
    grid = [[points[f"{ci},{co}"] for co in couts] for ci in cins]
    return monotone(grid) if envelope else grid


def build_table(dense_xml: Path, network: str, step: int, settings: PairedSettings | None = None,
                folder: Path | None = None, workdir: Path | None = None,
                progress: Callable[[str], None] | None = None,
                calibration: tuple[Path, Path] | None = None) -> LatencyTable:
    """The table covering every pruned version of `dense_xml` (channel counts at multiples of
    `step`, every head count), for every op kind it has, measured where missing, with the dense
    network measured whole as `network`; with `calibration` (the network untrained and its
    calibration network, the same ops narrower: `prune.budget_units.thinned`), the network's
    per-op cost fitted on their measured speed-up (`per_op_fields`)."""
    base = {"threads": 1, "streams": 1, "precision": "f32"} | UNIT_SETTINGS
    settings = settings or PairedSettings(**base)
    path = table_path(settings, step, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(workdir or path.parent / "work")
    say = progress or (lambda _m: None)
    with FileLock(path.with_suffix(".lock")):  # one builder per table (xdist, workers)
        data = json.loads(path.read_text()) if path.is_file() else {
            "conditions": table_key(settings, step), "points": {}, "networks": {}}
        dense_ops = ops_from_ir(dense_xml)
        cal_ops = ops_from_ir(calibration[1]) if calibration else []
        todo = _missing(data["points"], grid_units(dense_ops + cal_ops, step))
        for i, (g, ci, co) in enumerate(todo):
            us, cond = measure_unit(spec_at(g, ci, co), settings, workdir / "unit")
            data["points"].setdefault(g, {})[f"{ci},{co}"] = us
            data["conditions"] |= {"precision": cond["precision"], "clock": cond["clock"]}
            if i % 10 == 0 or i == len(todo) - 1:
                say(f"latency table: {i + 1}/{len(todo)} grid points ({g} {ci}->{co}: "
                    f"{us:.1f} µs)")
        known = data["networks"].get(network)
        if todo or known is None or (calibration and "per_op_us" not in known):
            table = _table(data, step)
            say(f"latency table: {network} measured whole"
                + (", its calibration pair against each other" if calibration else ""))
            net = measure_network(dense_xml, settings, workdir) | {
                "sum_us": table.sum_us(dense_ops)}
            if calibration:
                net |= per_op_fields(net, table, calibration, (dense_ops, cal_ops), settings)
            data["networks"][network] = net
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


def _table(data: dict, step: int, envelope: bool = True) -> LatencyTable:
    """Grids from the raw points (per geometry a full cross product, see `_missing`), each the
    smallest monotone one above them (`spec.monotone`) unless `envelope` is False."""
    entries = {}
    for g, points in data["points"].items():
        pairs = [tuple(int(v) for v in p.split(",")) for p in points]
        cins = sorted({ci for ci, _ in pairs})
        couts = sorted({co for _, co in pairs})
        entries[g] = {"cin": cins, "cout": couts, "us": _grid(points, cins, couts, envelope)}
    return LatencyTable(conditions=data["conditions"], step=step, entries=entries,
                        networks=data.get("networks", {}), kinds=list(KINDS))


def load_table(settings: PairedSettings, step: int, folder: Path | None = None,
               envelope: bool = True) -> LatencyTable | None:
    """The cached table for these conditions, if one was built; with `envelope=False` its grids
    are the measured points as they are (what the monotone envelope adds, measured:
    docs/measurements.md, "MobileNetV2 at Fashion-MNIST's input")."""
    path = table_path(settings, step, folder)
    if not path.is_file():
        return None
    return _table(json.loads(path.read_text()), step, envelope)


def predict_pair(models: dict[str, Path], table_data: dict, dense_measured_us: float | None
                 ) -> dict[str, Any]:
    """The prediction fields of the bench stage for {"dense": xml, "pruned": xml}
    (`core.result.PREDICTION_KEYS`): what the latency model predicted, made before the case's
    own measurement (`track.latency_model` compares them with what was measured)."""
    table = LatencyTable.from_dict(table_data)
    dense = table.cost_us(ops_from_ir(models["dense"]))
    pruned = table.cost_us(ops_from_ir(models["pruned"]))
    scale = table.scale()
    return {"latency_predicted_us": pruned * scale, "speedup_predicted": dense / pruned,
            "latency_table_sum_us": pruned, "dense_latency_table_sum_us": dense,
            "dense_latency_table_measured_us": dense * scale}
