"""One row per pruning paradigm on ResNet-20 (digits): sparsity, MACs, Top-1, latency speed-up.

Runs the pipeline stages in-process (train once, cached; prune + fine-tune; benchmark_app on
dense and pruned, interleaved) for a list of library recipes and prints a Markdown table.

    PATH=.venv/bin:$PATH python scripts/paradigm_table.py [LABEL ...] > table.md

One intra-op torch thread: on a shared 2-core machine it is faster and steadier.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from benchsuite.core.paths import schedules_dir
from benchsuite.pipeline.stages import bench_stage, prune_stage, train_stage
from benchsuite.recipe import render

RUNS: list[tuple[str, str, dict]] = [
    ("level", "level_elementwise", {"sparsity": 0.5}),
    ("agp element-wise", "resnet20/agp_elementwise", {"sparsity": 0.5}),
    ("sensitivity (s·std)", "resnet20/sensitivity_pruner", {}),
    ("network surgery", "resnet20/network_surgery", {}),
    ("L1 filters, masks only", "resnet20/filters_masked", {"sparsity": 0.5}),
    ("L1 filters + thinning", "resnet20/filters_oneshot", {"sparsity": 0.5}),
    ("L2 filters + thinning", "resnet20/filters_oneshot",
     {"pruner_class": "L2RankedStructureParameterPruner"}),
    ("APoZ filters + thinning", "resnet20/filters_oneshot",
     {"pruner_class": "ActivationAPoZRankedFilterPruner"}),
    ("Taylor filters + thinning", "resnet20/filters_oneshot",
     {"pruner_class": "GradientRankedFilterPruner"}),
    ("random filters + thinning", "resnet20/filters_oneshot",
     {"pruner_class": "RandomRankedFilterPruner"}),
    ("Bernoulli filters + thinning", "resnet20/filters_oneshot",
     {"pruner_class": "BernoulliFilterPruner"}),
    ("L1 filters global + thinning", "resnet20/filters_oneshot", {"ranking": "global"}),
    ("L1 filters AGP + thinning", "resnet20/filters_agp", {}),
    ("L1 channels + thinning", "resnet20/channels_oneshot", {}),
    ("hybrid AGP (Distiller)", "resnet20/hybrid_agp", {}),
    ("group lasso → filters + thinning", "resnet20/group_lasso", {}),
    ("blocks 1/stage (branch_norm)", "resnet20/block_removal", {}),
    ("blocks 1/stage (bypass_loss)", "resnet20/block_removal", {"criterion": "bypass_loss"}),
    ("blocks 2/stage", "resnet20/block_removal", {"blocks": 2}),
    ("blocks 1/stage + filters 0.5", "resnet20/blocks_and_filters", {}),
]


def run(label: str, recipe: str, params: dict, dense, work: Path) -> dict:
    path = schedules_dir() / f"{recipe}.yaml"
    spec = {"model": "resnet20", "dataset": "digits", "seed": 0, "epochs": 2,
            "recipe_text": render(path.read_text(), params, source=path.name),
            "recipe_name": path.name}
    folder = work / label.replace(" ", "_").replace("/", "-")
    folder.mkdir(parents=True, exist_ok=True)
    pruned = prune_stage(spec, {"checkpoint": dense.files["checkpoint"]}, folder)
    row = {"label": label, "recipe": recipe, "recipe_params": params, **pruned.result}
    onnx = {"dense_onnx": dense.files["onnx"], "pruned_onnx": pruned.files["onnx"]}
    for precision in ("f32", None):
        bench = bench_stage({"input_shape": dense.result["input_shape"],
                             "settings": {"precision": precision, "niter": 1000, "repeats": 5}},
                            onnx, folder / f"bench-{precision}")
        row[f"speedup_{precision or 'default'}"] = bench.result["speedup"]
    return row


def main(labels: list[str]) -> int:
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="paradigms-"))
    dense = train_stage({"model": "resnet20", "dataset": "digits", "seed": 0, "epochs": 5},
                        {}, work)
    print("| paradigm | zeros | params | MACs | blocks removed | Top-1 | FT epochs "
          "| speed-up f32 | speed-up default |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, recipe, params in RUNS:
        if labels and label not in labels:
            continue
        r = run(label, recipe, params, dense, work)
        print(json.dumps(r), file=sys.stderr)
        print(f"| {label} | {r['weight_sparsity']:.3f} | {r['params'] / dense.result['params']:.3f}"
              f" | {r['macs'] / dense.result['macs']:.3f} | {len(r['removed_blocks'])}"
              f" | {100 * dense.result['top1']:.1f} → {100 * r['top1']:.1f}"
              f" | {r['finetune_epochs']} | {r['speedup_f32']:.2f}"
              f" | {r['speedup_default']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
