"""The detrimental-pruner filter: classify measured cases, narrow the search space.

The rule (one place, used for whole models and for layers). A speed-up s = dense / pruned is
compared with the measurement noise in log space, so that 2x faster and 2x slower are equally
far from 1::

    noise = max(k * sqrt(cv_dense**2 + cv_pruned**2), min_noise)
    gain         if ln(s) >  ln(1 + noise)
    detrimental  if ln(s) < -ln(1 + noise)
    no_gain      otherwise (the speed-up is within noise)

cv_* are coefficients of variation of the repeat medians (BenchResult.latency_cv); the CV of a
ratio of two independent medians is about the root-sum-square of theirs. k = 2 by default
(about 95% for normal noise); min_noise = 0.02 guards against a CV of 0 from one repeat or
identical repeats (a 2% difference is not a result on this kind of shared machine). A case may
give ``cv`` (already combined) instead of ``cv_dense``/``cv_pruned``.

A recipe (or paradigm) is *gain* if any of its cases is a gain, *detrimental* if all its cases
are detrimental, else *no_gain*. Only gain recipes go into the narrowed search space, each with
the range of its numeric parameters over its gain cases (and categorical values seen there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas
import yaml

GAIN, NO_GAIN, DETRIMENTAL = "gain", "no_gain", "detrimental"
DEFAULT_K = 2.0
DEFAULT_MIN_NOISE = 0.02
RULE = ("noise = max(k * sqrt(cv_dense^2 + cv_pruned^2), min_noise); speed-up s: gain if "
        "ln(s) > ln(1 + noise), detrimental if ln(s) < -ln(1 + noise), else no_gain; a recipe "
        "is gain if any case is, detrimental if all are")


def noise_band(cv_dense: float = 0.0, cv_pruned: float = 0.0, k: float = DEFAULT_K,
               min_noise: float = DEFAULT_MIN_NOISE) -> float:
    """Relative half-width of the no-gain band around a speed-up of 1."""
    combined = math.sqrt(max(cv_dense, 0.0) ** 2 + max(cv_pruned, 0.0) ** 2)
    return max(k * combined, min_noise)


def classify_speedup(speedup: float, noise: float) -> str:
    if not math.isfinite(speedup) or speedup <= 0:
        return NO_GAIN
    limit = math.log1p(noise)
    if math.log(speedup) > limit:
        return GAIN
    if math.log(speedup) < -limit:
        return DETRIMENTAL
    return NO_GAIN


def _case_noise(case: Mapping[str, Any], k: float, min_noise: float) -> float:
    if "cv" in case and case["cv"] is not None:
        return max(k * float(case["cv"]), min_noise)
    return noise_band(float(case.get("cv_dense") or 0.0), float(case.get("cv_pruned") or 0.0),
                      k, min_noise)


def classify_cases(cases: Iterable[Mapping[str, Any]], k: float = DEFAULT_K,
                   min_noise: float = DEFAULT_MIN_NOISE) -> pandas.DataFrame:
    """One row per case: its fields plus ``noise`` and ``verdict``.

    Each case: ``recipe`` (and/or ``paradigm``), ``speedup``, ``cv`` or ``cv_dense``/``cv_pruned``,
    optional ``params`` (dict of the recipe parameters), anything else is carried along."""
    rows = []
    for case in cases:
        row = dict(case)
        row["noise"] = _case_noise(case, k, min_noise)
        row["verdict"] = classify_speedup(float(case["speedup"]), row["noise"])
        rows.append(row)
    frame = pandas.DataFrame(rows)
    frame.attrs.update(k=k, min_noise=min_noise)
    return frame


def verdict_of(verdicts: Iterable[str]) -> str:
    vs = list(verdicts)
    if GAIN in vs:
        return GAIN
    if vs and all(v == DETRIMENTAL for v in vs):
        return DETRIMENTAL
    return NO_GAIN


def summarise(classified: pandas.DataFrame, by: str = "recipe") -> pandas.DataFrame:
    """Per recipe (or ``by="paradigm"``): verdict, cases, best/median speed-up, counts."""
    rows = []
    for name, group in classified.groupby(by, sort=False):
        rows.append({by: name, "verdict": verdict_of(group["verdict"]), "cases": len(group),
                     "best_speedup": float(group["speedup"].max()),
                     "median_speedup": float(group["speedup"].median()),
                     **{f"n_{v}": int((group["verdict"] == v).sum())
                        for v in (GAIN, NO_GAIN, DETRIMENTAL)}})
    return pandas.DataFrame(rows)


def classify_layers(comparison: pandas.DataFrame, cv_dense: float = 0.0, cv_pruned: float = 0.0,
                    k: float = DEFAULT_K, min_noise: float = DEFAULT_MIN_NOISE,
                    resolution_us: float = 1.0) -> pandas.DataFrame:
    """Verdict per module row of ``analysis.compare_layers``: same rule, with each layer's noise
    also covering the counters' 1 µs resolution and, when present, the standard error of the
    layer's mean time over repeats (``real_time_us_se_*``). Rows missing on one side get
    ``removed``/``added``."""
    out = comparison.copy()
    verdicts, noises = [], []
    for _, row in out.iterrows():
        d, p = row.get("real_time_us_dense"), row.get("real_time_us_pruned")
        if pandas.isna(p):
            verdicts.append("removed")
            noises.append(math.nan)
            continue
        if pandas.isna(d):
            verdicts.append("added")
            noises.append(math.nan)
            continue
        rel = [resolution_us / v for v in (d, p) if v > 0]
        for side, v in (("dense", d), ("pruned", p)):
            se = row.get(f"real_time_us_se_{side}")  # the times are means over repeats
            if se is not None and not pandas.isna(se) and v > 0:
                rel.append(float(se) / v)
        layer_cv = math.sqrt(sum(r * r for r in rel) + cv_dense ** 2 + cv_pruned ** 2)
        noise = max(k * layer_cv, min_noise)
        noises.append(noise)
        if d <= 0 and p <= 0:
            verdicts.append(NO_GAIN)
        else:
            verdicts.append(classify_speedup(d / p if p > 0 else math.inf, noise))
    out["noise"] = noises
    out["verdict"] = verdicts
    return out


def _ranges(group: pandas.DataFrame) -> dict[str, Any]:
    params: dict[str, list[Any]] = {}
    for value in group.get("params", pandas.Series(dtype=object)):
        for key, v in (value or {}).items():
            params.setdefault(key, []).append(v)
    out: dict[str, Any] = {}
    for key, values in params.items():
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = {"min": min(values), "max": max(values)}
        else:
            out[key] = {"values": sorted({str(v) for v in values})}
    return out


def narrowed_search_space(classified: pandas.DataFrame, by: str = "recipe") -> dict[str, Any]:
    """Recipes worth searching (gain) with their parameter ranges over the gain cases, the
    dropped ones with why, and a W&B-sweep-style ``parameters`` block."""
    summary = summarise(classified, by)
    keep: dict[str, Any] = {}
    dropped: dict[str, Any] = {}
    for row in summary.to_dict("records"):
        name = str(row[by])
        group = classified[classified[by] == row[by]]
        entry = {"verdict": row["verdict"], "cases": row["cases"],
                 "best_speedup": round(row["best_speedup"], 4)}
        if row["verdict"] == GAIN:
            entry["parameters"] = _ranges(group[group["verdict"] == GAIN])
            keep[name] = entry
        else:
            dropped[name] = entry
    union: dict[str, Any] = {by: {"values": list(keep)}}
    for entry in keep.values():
        for key, rng in entry["parameters"].items():
            if "min" in rng and key in union and "min" in union[key]:
                union[key] = {"min": min(union[key]["min"], rng["min"]),
                              "max": max(union[key]["max"], rng["max"])}
            elif key not in union:
                union[key] = dict(rng)
    rule = {"rule": RULE, "k": classified.attrs.get("k", DEFAULT_K),
            "min_noise": classified.attrs.get("min_noise", DEFAULT_MIN_NOISE)}
    return {**rule, "keep": keep, "dropped": dropped, "parameters": union}


def write_search_space(classified: pandas.DataFrame, path: Path, by: str = "recipe") -> Path:
    """Write ``narrowed_search_space`` as YAML (plain types only) and return the path."""
    space = narrowed_search_space(classified, by)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by benchsuite.bench.selection (the detrimental-pruner filter)\n"
                    + yaml.safe_dump(space, sort_keys=False))
    return path


# --- on the paired intervals: `benchsuite select` ----------------------------------------------
INTERVAL_RULE = ("a case is gain when its speed-up's 95 % interval lies above 1, detrimental "
                 "when below 1, else no_gain; a recipe is gain if any case is, detrimental if "
                 "all are")


def classify_interval(low: float, high: float) -> str:
    """The verdict of a paired speed-up from its 95 % interval."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return NO_GAIN
    if low > 1.0:
        return GAIN
    if high < 1.0:
        return DETRIMENTAL
    return NO_GAIN


def classify_rows(rows: pandas.DataFrame) -> pandas.DataFrame:
    """Results-table rows (pruning cases; controls left out) with ``verdict`` from their
    paired intervals and ``params`` from ``recipe_params``. A row with no interval falls back
    to the noise band of its benchmark_app CVs."""
    import json

    frame = rows.copy()
    if "control" in frame:
        frame = frame[~frame["control"].fillna("").astype(str).str.startswith("zoo:")]
    verdicts, params = [], []
    for _, row in frame.iterrows():
        low, high = row.get("speedup_ci_low"), row.get("speedup_ci_high")
        if low is None or high is None or pandas.isna(low) or pandas.isna(high):
            noise = noise_band(float(row.get("dense_latency_cv") or 0.0),
                               float(row.get("latency_cv") or 0.0))
            verdicts.append(classify_speedup(float(row["speedup"]), noise))
        else:
            verdicts.append(classify_interval(float(low), float(high)))
        try:
            params.append(json.loads(row.get("recipe_params") or "{}"))
        except (TypeError, ValueError):
            params.append({})
    frame["verdict"] = verdicts
    frame["params"] = params
    frame.attrs.update(rule=INTERVAL_RULE)
    return frame.reset_index(drop=True)


def layer_types(per_layer: Path, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """benchmark_app's per-layer counters of the cases, summed per layer type (dense vs
    pruned, µs over the cases), each type classified by the same noise rule (counter
    resolution 1 µs a layer)."""
    dense: dict[str, float] = {}
    pruned: dict[str, float] = {}
    layers: dict[str, int] = {}
    for case_id in case_ids:
        path = per_layer / f"{case_id}.csv"
        if not path.is_file():
            continue
        frame = pandas.read_csv(path)
        if not {"model", "layer_type", "real_time_us"} <= set(frame.columns):
            continue
        for (model, kind), group in frame.groupby(["model", "layer_type"]):
            side = dense if model == "dense" else pruned
            side[kind] = side.get(kind, 0.0) + float(group["real_time_us"].sum())
            layers[kind] = layers.get(kind, 0) + len(group)
    out = {}
    for kind in sorted(set(dense) | set(pruned)):
        d, p = dense.get(kind, 0.0), pruned.get(kind, 0.0)
        noise = max(DEFAULT_K * math.sqrt(2) * layers[kind] / max(d, p, 1e-9), DEFAULT_MIN_NOISE)
        out[kind] = {"dense_us": round(d, 1), "pruned_us": round(p, 1),
                     "verdict": classify_speedup(d / p if p > 0 else math.inf, noise)
                     if d > 0 else NO_GAIN}
    return out


def sweep_from_space(space: dict[str, Any], base: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """A sweep config whose parameters are the narrowed space (the kept recipes and their
    measured ranges); everything else (method, metric, early_terminate, the case constants)
    from `base`, else a bayes search maximising the speed-up."""
    config = dict(base or {"method": "bayes", "metric": {"name": "speedup",
                                                         "goal": "maximize"}})
    constants = {k: v for k, v in (config.get("parameters") or {}).items()
                 if isinstance(v, dict) and "value" in v and k != "recipe"}
    params: dict[str, Any] = {}
    for key, rng in space["parameters"].items():
        if key == "recipe":
            params[key] = rng
        elif "min" in rng and rng["min"] == rng["max"]:
            params[key] = {"value": rng["min"]}
        else:
            params[key] = rng
    config["parameters"] = params | constants
    return config


