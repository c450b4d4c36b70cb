"""Per-layer analysis: OpenVINO layers -> torch modules, dense vs pruned, latency efficiency.

Name mapping. The TorchScript ONNX exporter names nodes by module scope, e.g.
``/layer2/layer2.0/downsample/downsample.0/Conv``; OpenVINO keeps that name on the executed layer
and may add suffixes (``/Conv/WithoutBiases``). The leading segments up to the first one that
starts with an upper-case letter (the ONNX op type) are the scope; a segment ``a.b`` that extends
the previous segment ``a`` replaces it, so the scope above is the module ``layer2.0.downsample.0``.
Ops fused into a convolution (BN, ReLU, the residual Add) show as ``NOT_RUN`` rows with zero
time: their cost is inside the conv's row, so the conv row *is* the fused node. An executed
conv/fc row named after another op (``.../relu2/Relu`` with type Convolution) is a fused node
too: it is attributed to the module its name gives, flagged ``fused``. Reorders, poolings,
reshapes and layers whose names carry no scope (2021.4's ``Convolution_7``, an output name such
as ``logits``) get ``module`` None unless ``known_modules`` resolves them; everything that is
not conv/fc is ``kind == "other"``.

Latency efficiency = speed-up / MACs reduction (dense MACs / pruned MACs): 1.0 when latency
falls in proportion to MACs, below 1 when it falls less (overhead-bound layers), NaN where
MACs are unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas

CONV_TYPES = frozenset({"Convolution", "GroupConvolution", "Deconvolution",
                        "ConvolutionBackpropData", "BinaryConvolution"})
FC_TYPES = frozenset({"FullyConnected", "MatMul", "Gemm", "InnerProduct"})
_WEIGHT_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")
OTHER = "(other)"


def scope_of(layer: str) -> tuple[str | None, str | None]:
    """``/layer1/layer1.0/conv1/Conv/WithoutBiases`` -> (``layer1.0.conv1``, ``Conv``)."""
    if not layer.startswith("/"):
        return None, None
    parts: list[str] = []
    op = None
    for seg in layer.strip("/").split("/"):
        if not seg or seg[0].isupper():
            op = seg or None
            break
        if parts and seg.startswith(parts[-1] + "."):
            parts[-1] = seg
        else:
            parts.append(seg)
    return (".".join(parts) if parts else None), op


def kind_of(layer_type: str) -> str:
    if layer_type in CONV_TYPES:
        return "conv"
    if layer_type in FC_TYPES:
        return "fc"
    return "other"


def map_layers(frame: pandas.DataFrame,
               known_modules: Iterable[str] | None = None) -> pandas.DataFrame:
    """Add ``module``, ``kind``, ``fused`` and ``share`` (of the total real time) columns.

    ``known_modules`` (e.g. the keys of a MACs dict) resolves scopes to real module names (the
    longest known name that is the scope or a prefix of it) and attributes a lone unnamed fc
    layer (ONNX names the last Gemm after the graph output) to the one known module no other
    layer claimed, if there is exactly one.
    """
    known = sorted(set(known_modules or ()), key=len, reverse=True)
    out = frame.copy()
    modules: list[str | None] = []
    fused: list[bool] = []
    for layer, ltype in zip(out["layer"], out["layer_type"], strict=True):
        module, op = scope_of(str(layer))
        kind = kind_of(str(ltype))
        if module is not None and known:
            module = next((k for k in known if module == k or module.startswith(k + ".")),
                          module)
        if kind == "other" and str(ltype) in ("Reorder", "Convert", "Parameter", "Result"):
            module = None  # data movement: kept as other, not charged to a module
        modules.append(module)
        fused.append(kind != "other" and op is not None and op not in _WEIGHT_OPS)
    out["module"] = modules
    out["kind"] = [kind_of(str(t)) for t in out["layer_type"]]
    out["fused"] = fused
    if known:
        claimed = {m for m in out["module"] if m}
        spare = [k for k in known if k not in claimed]
        lone = out.index[(out["kind"] == "fc") & out["module"].isna()
                         & (out["status"] == "EXECUTED")]
        if len(lone) == 1 and len(spare) == 1:
            out.loc[lone[0], "module"] = spare[0]
    total = float(out["real_time_us"].sum())
    out["share"] = out["real_time_us"] / total if total > 0 else 0.0
    return out


def module_table(frame: pandas.DataFrame, macs: Mapping[str, float] | None = None,
                 known_modules: Iterable[str] | None = None) -> pandas.DataFrame:
    """One row per torch module (conv/fc layers) plus one ``(other)`` row for everything else:
    ``real_time_us``, ``share``, ``kind``, ``layers`` (count), ``macs`` (from the caller)."""
    names = set(known_modules or ()) | set(macs or {})
    mapped = map_layers(frame, names or None)
    key = [m if (k != "other" and m) else (f"[{layer}]" if k != "other" else OTHER)
           for m, k, layer in zip(mapped["module"], mapped["kind"], mapped["layer"], strict=True)]
    mapped["key"] = key
    agg: dict[str, Any] = {"real_time_us": "sum", "share": "sum", "kind": "first",
                           "layer": "count"}
    spreads = [c for c in ("real_time_us_sd", "real_time_us_se") if c in mapped]
    for col in spreads:  # layers of one module add up: their variances add
        mapped[f"{col}_var"] = mapped[col].fillna(0.0) ** 2
        agg[f"{col}_var"] = "sum"
    table = mapped.groupby("key", sort=False).agg(agg).rename(columns={"layer": "layers"})
    for col in spreads:
        table[col] = table.pop(f"{col}_var") ** 0.5
    table["macs"] = [float((macs or {}).get(k, math.nan)) for k in table.index]
    table.index.name = "module"
    return table


def compare_layers(dense: pandas.DataFrame, pruned: pandas.DataFrame,
                   dense_macs: Mapping[str, float] | None = None,
                   pruned_macs: Mapping[str, float] | None = None) -> pandas.DataFrame:
    """Dense vs pruned per module: times, shares, speed-up, MACs reduction, efficiency.

    A module present on one side only (a layer removed by depth pruning) has NaN on the other;
    its speed-up is NaN. ``delta_us`` = pruned - dense (positive: slower after pruning).
    """
    names = set(dense_macs or {}) | set(pruned_macs or {})
    d = module_table(dense, dense_macs, names)
    p = module_table(pruned, pruned_macs, names)
    joined = d.merge(p, how="outer", left_index=True, right_index=True,
                     suffixes=("_dense", "_pruned"), sort=False)
    order = [*d.index, *[k for k in p.index if k not in d.index]]
    joined = joined.reindex(order)
    joined["kind"] = joined["kind_dense"].fillna(joined["kind_pruned"])
    joined = joined.drop(columns=["kind_dense", "kind_pruned"])
    joined["delta_us"] = joined["real_time_us_pruned"] - joined["real_time_us_dense"]
    joined["speedup"] = joined["real_time_us_dense"] / joined["real_time_us_pruned"].where(
        joined["real_time_us_pruned"] > 0)
    joined["macs_reduction"] = joined["macs_dense"] / joined["macs_pruned"].where(
        joined["macs_pruned"] > 0)
    joined["latency_efficiency"] = joined["speedup"] / joined["macs_reduction"]
    return joined


def latency_efficiency(speedup: float, macs_dense: float, macs_pruned: float) -> float:
    """Model-level: speed-up / (dense MACs / pruned MACs)."""
    if not macs_pruned or not macs_dense:
        return math.nan
    return speedup / (macs_dense / macs_pruned)


def model_summary(dense_median_us: float, pruned_median_us: float, macs_dense: float | None,
                  macs_pruned: float | None) -> dict[str, float]:
    s = dense_median_us / pruned_median_us
    ratio = (macs_pruned / macs_dense) if macs_dense and macs_pruned else math.nan
    eff = latency_efficiency(s, macs_dense or 0.0, macs_pruned or 0.0)
    return {"speedup": s, "macs_ratio": ratio, "latency_efficiency": eff}
