"""The result row of a case from its stages' results (train, prune, bench): `result_from_stages`.

The accuracy block: the deployed model's Top-1 is the verdict's, torch's beside it.
``top1`` / ``dense_top1`` (and their Wilson intervals) are measured on the OpenVINO compiled
models at the precision that was benchmarked (f32, bf16 through the inference precision hint,
or INT8 after NNCF; for INT8 the dense reference is at f32, as for its speed-up), on the same
test split as torch's, by the bench worker. The accuracy floor (``Threshold.floor(dense_top1)``,
``top1 >= floor``) therefore applies to what was deployed. ``top1_torch`` /
``dense_top1_torch`` are the torch models' figures. ``top1_method`` names where ``top1`` came
from; where the bench runtime could not run the model in-process (the legacy MYRIAD env), it
says so and ``top1`` is torch's.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from benchsuite.core.hashing import git_sha
from benchsuite.core.result import PREDICTION_KEYS, CaseResult
from benchsuite.core.stats import wilson_interval
from benchsuite.recipe.case import Case

TORCH_ONLY = "torch (the bench runtime could not run the deployed model in-process)"


def _with_ci(prefix: str, top1: float, images: int) -> dict[str, Any]:
    low, high = wilson_interval(top1, images) if images else (None, None)
    return {prefix: top1, f"{prefix}_ci_low": low, f"{prefix}_ci_high": high}


def top1_fields(dense: dict, pruned: dict, bench: dict) -> dict[str, Any]:
    """The row's accuracy block from the train, prune and bench stages' results."""
    images = int(pruned.get("test_images") or dense.get("test_images") or 0)
    torch_fields = (_with_ci("top1_torch", pruned["top1"], images)
                    | _with_ci("dense_top1_torch", dense["top1"], images))
    if bench.get("top1_deployed") is not None:
        images = int(bench["test_images_deployed"])
        top1, top5 = bench["top1_deployed"], bench["top5_deployed"]
        dense_top1, dense_top5 = bench["dense_top1_deployed"], bench["dense_top5_deployed"]
        method = bench["top1_method"]
    else:
        top1, top5, dense_top1, dense_top5 = (pruned["top1"], pruned["top5"], dense["top1"],
                                              dense["top5"])
        method = TORCH_ONLY
    return (_with_ci("top1", top1, images) | {"test_images": images or None, "top5": top5,
                                              "top1_method": method}
            | _with_ci("dense_top1", dense_top1, images) | {"dense_top5": dense_top5}
            | torch_fields | {"quantization": bench.get("quantization"),
                               "int8_layers": bench.get("int8_layers")})


def scratch_fields(pruned: dict, bench: dict) -> dict[str, Any]:
    """The scratch control's figures, when it ran: `scratch_top1` the deployed model's where
    the bench stage scored it (as `top1` is the pruned model's: like with like, at INT8 too),
    else torch's; with its Wilson interval, and torch's figure beside it when they differ in
    kind (None when the bench stage did not score it: `scratch_top1` is then torch's)."""
    from benchsuite.core.stats import wilson_interval

    if pruned.get("scratch_top1") is None:
        return {}
    deployed = bench.get("scratch_top1_deployed")
    top1 = pruned["scratch_top1"] if deployed is None else deployed
    images = bench.get("test_images_deployed") if deployed is not None else None
    low, high = wilson_interval(top1, images or pruned["test_images"])
    return {"scratch_top1": top1, "scratch_top1_ci_low": low, "scratch_top1_ci_high": high,
            "scratch_top1_torch": None if deployed is None else pruned["scratch_top1"],
            "scratch_val_top1": pruned.get("scratch_val_top1"),
            "scratch_epochs": pruned.get("scratch_epochs"),
            "scratch_seconds": pruned.get("scratch_seconds")}


def result_from_stages(case: Case, dense: dict, pruned: dict, bench: dict,
                wall_seconds: float) -> CaseResult:
    """The train, prune and bench stages' results joined.

    ``speedup`` and both latency medians come from the bench stage's headline method
    (``speedup_method``: in-process paired rounds, or benchmark_app where the runtime
    cannot run the device); benchmark_app's own statistics (avg/min/max, CV over runs, FPS)
    and its speed-up (``speedup_benchmark_app``) stand beside them. Top-1 carries its 95 %
    Wilson interval over ``test_images``; ``top1`` and ``dense_top1`` are the deployed
    models' (`top1_fields`). An INT8 case's precision is int8 and its speed-up method names
    its reference, dense at f32."""
    d, p = bench["dense"], bench["pruned"]
    cond = bench.get("conditions") or {}
    params = case.effective_params()
    method = bench["speedup_method"]
    if case.int8:
        method = (f"{method}; reference: dense at {cond.get('precision', 'f32')}, pruned "
                  "INT8 (NNCF)")
    return CaseResult(
        case_id=case.case_id, label=case.label, recipe=case.recipe_name,
        recipe_params=json.dumps(params, sort_keys=True), model=case.model,
        dataset=case.dataset, seed=case.seed, sparsity=params.get("sparsity"),
        train_images=dense.get("train_images"), control=case.control,
        sparse_weights_rate=case.sparse_weights_rate,
        val_top1=pruned.get("val_top1"), dense_val_top1=dense.get("val_top1"),
        val_images=pruned.get("val_images"),
        **scratch_fields(pruned, bench),
        device=p["device"], device_name=cond.get("device_name",
                                                 p.get("device_name", "unknown")),
        precision="int8" if case.int8 else cond.get("precision", p["precision"]),
        precision_requested=case.precision,
        threads=cond.get("threads", p.get("threads")),
        streams=cond.get("streams", p.get("streams")), batch=p.get("batch"),
        input_shape=p.get("input_shape"),
        **top1_fields(dense, pruned, bench),
        params=pruned["params"], dense_params=dense["params"],
        macs=pruned["macs"], dense_macs=dense["macs"],
        weight_sparsity=pruned["weight_sparsity"],
        speedup=bench["speedup"], speedup_ci_low=bench["speedup_ci_low"],
        speedup_ci_high=bench["speedup_ci_high"], speedup_method=method,
        bench_rounds=bench["bench_rounds"], bench_cpu_share=bench.get("bench_cpu_share"),
        bench_disturbed=bench.get("bench_disturbed"),
        bench_drift=bench.get("bench_drift"), bench_drifted=bench.get("bench_drifted"),
        speedup_benchmark_app=bench["speedup_benchmark_app"],
        latency_median_us=bench["latency_median_us"],
        dense_latency_median_us=bench["dense_latency_median_us"],
        latency_avg_us=p["latency_avg_us"], latency_min_us=p["latency_min_us"],
        latency_max_us=p["latency_max_us"], latency_cv=p.get("latency_cv"),
        dense_latency_cv=d.get("latency_cv"),
        fps=p["throughput_fps"], dense_fps=d["throughput_fps"],
        runtime_version=p["runtime_version"], finetune_epochs=pruned["finetune_epochs"],
        dense_epochs=case.dense_epochs, train_seconds=dense["train_seconds"],
        finetune_seconds=pruned["finetune_seconds"], export_seconds=pruned["export_seconds"],
        pruned_cached=pruned.get("cached"),
        bench_seconds=bench["bench_seconds"], wall_seconds=wall_seconds,
        git_sha=git_sha(), timestamp=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        per_layer={"dense": d.get("per_layer", []), "pruned": p.get("per_layer", [])},
        pruned_round_medians_us=bench.get("pruned_round_medians_us") or [],
        dense_round_medians_us=bench.get("dense_round_medians_us") or [],
        **{k: bench.get(k) for k in PREDICTION_KEYS},
        kd_teacher_top1=pruned.get("kd_teacher_top1"),
        epoch_top1=json.dumps(pruned["epoch_top1"]) if pruned.get("epoch_top1") else None,
    )


