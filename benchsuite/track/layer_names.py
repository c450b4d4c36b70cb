"""OpenVINO's per-layer rows named by the torch modules they come from.

The TorchScript ONNX exporter names a node by its module scope, e.g.
``/layer2/layer2.0/downsample/downsample.0/Conv``; OpenVINO keeps that name on the executed layer
and may add suffixes (``/Conv/WithoutBiases``). The leading segments up to the first one that
starts with an upper-case letter (the ONNX op type) are the scope; a segment ``a.b`` that extends
the previous segment ``a`` replaces it, so that node is the module ``layer2.0.downsample.0``.
Ops fused into a convolution (BN, ReLU, the residual Add) run inside the conv's row (theirs are
``NOT_RUN`` with zero time). What carries no scope is named for what it is: the output layer
(OpenVINO names the last Gemm after the graph's output, ``logits``), the layout conversions
(Reorder, Convert: the plugin's, not a module's, wherever they sit) and the rest by its own
name in brackets (2021.4's ``Convolution_7``).
"""

from __future__ import annotations

import pandas as pd

DATA_MOVEMENT = "(layout conversions)"
OUTPUT_TYPES = frozenset({"FullyConnected", "MatMul", "Gemm", "InnerProduct"})
MOVEMENT_TYPES = frozenset({"Reorder", "Convert"})


def scope_of(layer: str) -> str | None:
    """``/layer1/layer1.0/conv1/Conv/WithoutBiases`` -> ``layer1.0.conv1`` (None: no scope)."""
    if not layer.startswith("/"):
        return None
    parts: list[str] = []
    for seg in layer.strip("/").split("/"):
        if not seg or seg[0].isupper():
            break
        if parts and seg.startswith(parts[-1] + "."):
            parts[-1] = seg
        else:
            parts.append(seg)
    return ".".join(parts) or None


def module_of(layer: str, layer_type: str | None = None) -> str:
    """The torch module an OpenVINO layer runs, or what the layer is when it names none
    (layout conversions are the plugin's, not a module's, whatever their name)."""
    if layer_type in MOVEMENT_TYPES:
        return DATA_MOVEMENT
    if (scope := scope_of(layer)) is not None:
        return scope
    if layer_type in OUTPUT_TYPES:
        return f"output layer ({layer})"
    if layer_type is None and "/" not in layer:  # a table of module names already
        return layer
    return f"[{layer}]"


def module_times(per_layer: pd.DataFrame) -> pd.DataFrame:
    """Time per inference (µs) of each module (rows) for each model (columns: dense, pruned),
    executed layers only, layers of one module added up; slowest in the first column first."""
    executed = per_layer[per_layer["real_time_us"] > 0]
    if "status" in executed.columns:
        executed = executed[executed["status"].fillna("EXECUTED").astype(str).str.endswith(
            "EXECUTED")]
    types = (executed["layer_type"] if "layer_type" in executed.columns
             else pd.Series([None] * len(executed), index=executed.index))
    modules = [module_of(str(name), None if pd.isna(kind) else str(kind))
               for name, kind in zip(executed["layer"], types, strict=True)]
    table = executed.assign(module=modules).pivot_table(
        index="module", columns="model", values="real_time_us", aggfunc="sum").fillna(0.0)
    order = [c for c in ("dense", "pruned") if c in table.columns]
    table = table[order + [c for c in table.columns if c not in order]]
    return table.sort_values(table.columns[0], ascending=False)
