"""A result row's accuracy fields: the deployed model's Top-1 is the verdict's, torch's beside it.

``top1`` / ``dense_top1`` (and their Wilson intervals) are measured on the OpenVINO compiled
models at the precision that was benchmarked (f32, bf16 through the inference precision hint,
or INT8 after NNCF; for INT8 the dense reference is at f32, as for its speed-up), on the same
test split as torch's, by the bench worker. The accuracy floor (``Threshold.floor(dense_top1)``,
``top1 >= floor``) therefore applies to what was deployed. ``top1_torch`` /
``dense_top1_torch`` are the torch models' figures. ``top1_method`` names where ``top1`` came
from; where the bench runtime could not run the model in-process (the legacy MYRIAD env), it
says so and ``top1`` is torch's.

`CaseResult.from_stages` (benchsuite/core/result.py) takes this block as it is.
"""

from __future__ import annotations

from typing import Any

from benchsuite.core.threshold import wilson_interval

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
