"""Sensitivity analysis, as Distiller offered it: prune one layer alone at each sparsity of a
range, evaluate, and write a CSV (layer, sparsity, top1, top5) and a plot.

Element-wise (`group_type="element"`, the default) zeroes the smallest-|w| fraction of the
weight; `"Filters"` / `"Channels"` zero the lowest-L1 filters / input channels. Each point
starts from the unpruned model. Optional per-point latency: pass `latency=fn(model) -> µs`.
The module imports torch only inside its functions, so `add_subcommand` costs nothing in a
torch-less environment.

CLI (wired by `benchsuite.frontends.cli`): `benchsuite sensitivity --model resnet20 --sparsities
0.1:0.9:0.2 --out DIR` trains (or takes from the cache) the dense model, as the pytest cases do,
then writes DIR/sensitivity.csv and DIR/sensitivity.png.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where used: the CLI parser must load without it
    import torch
    from torch import nn

FIELDS = ("layer", "sparsity", "top1", "top5", "latency_us")


def _mask(weight: torch.Tensor, sparsity: float, group_type: str) -> torch.Tensor:
    import torch

    from benchsuite.prune.elementwise import magnitude_mask
    from benchsuite.prune.structured import kept_count, l1_scores, structure_mask

    if group_type == "element":
        return magnitude_mask(weight, sparsity)
    dim = 0 if group_type == "Filters" else 1
    scores = l1_scores(weight, group_type)
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[scores.argsort(descending=True)[: kept_count(scores.numel(), sparsity)]] = True
    return structure_mask(weight, keep, dim)


def sensitivity_analysis(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, sparsities: list[float],
    weights: list[str] | None = None, group_type: str = "element", progress: bool = True,
    latency: Callable[[nn.Module], float] | None = None,
) -> list[dict]:
    """One row per (layer, sparsity): Top-1 / Top-5 (fractions) with only that layer pruned."""
    import torch
    from torch import nn
    from tqdm import tqdm

    from benchsuite.prune.masks import clone_model, make_permanent
    from benchsuite.prune.names import prunable_weights
    from benchsuite.prune.training import evaluate

    model = clone_model(model).eval()
    make_permanent(model)
    if weights is None:
        weights = prunable_weights(model)
        if group_type != "element":
            weights = [w for w in weights
                       if isinstance(model.get_submodule(w.rpartition(".")[0]), nn.Conv2d)]
    dense = evaluate(model, x, y)
    rows = []
    bar = tqdm(weights, desc="sensitivity", unit="layer", disable=not progress, file=sys.stderr)
    for name in bar:
        bar.set_postfix_str(name)
        param = model.get_parameter(name)
        original = param.detach().clone()
        for s in sparsities:
            with torch.no_grad():
                param.mul_(_mask(original, s, group_type))
            metrics = dense if s == 0 else evaluate(model, x, y)
            rows.append({"layer": name, "sparsity": s, "top1": metrics["top1"],
                         "top5": metrics["top5"],
                         "latency_us": latency(model) if latency else None})
            with torch.no_grad():
                param.copy_(original)
    return rows


def write_csv(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in FIELDS})
    return path


def plot(rows: list[dict], path: Path, title: str = "") -> Path:
    """Top-1 against sparsity, one line per layer (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    for layer in layers:
        pts = [(r["sparsity"], 100 * r["top1"]) for r in rows if r["layer"] == layer]
        ax.plot(*zip(*pts, strict=True), marker="o", markersize=3, label=layer)
    ax.set_xlabel("sparsity of the one pruned layer")
    ax.set_ylabel("Top-1 (%)")
    ax.set_title(title or "Sensitivity: each layer pruned alone")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2 if len(layers) > 12 else 1, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


