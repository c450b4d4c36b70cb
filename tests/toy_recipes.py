"""Recipes and sweep files the suite's own tests write into a temporary `schedules/` folder.

`thin_filters(weights)`: L1 filter pruning at ${sparsity=0.5} (or a fixed value) of the named
convs, then FilterRemover (a structurally smaller model); `LEVELS`: an element-wise level pruner
at ${sparsity=0.5}; `toy_sweep(...)`: the recipe as `toy.yaml` beside a sweep file over it,
loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

LEVELS = ("version: 1\npruners:\n  p:\n    class: SparsityLevelParameterPruner\n"
          "    levels: {'*': ${sparsity=0.5}}\npolicies:\n"
          "  - pruner: {instance_name: p}\n    epochs: [0]\n")


def thin_filters(weights: list[str], sparsity: str = "${sparsity=0.5}") -> str:
    return f"""
version: 1
pruners:
  filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: {sparsity}
    weights: [{", ".join(weights)}]
extensions:
  thin: {{class: FilterRemover}}
policies:
  - pruner: {{instance_name: filters}}
    epochs: [0]
  - extension: {{instance_name: thin}}
    epochs: [0]
"""


def toy_sweep(folder: Path, monkeypatch: pytest.MonkeyPatch, recipe: str,
              parameters: dict[str, Any], **config: Any):
    """`recipe` as schedules `toy`, and a sweep named toy maximising the speed-up over
    `parameters` (plus recipe: toy); `config` overrides the rest (method, early_terminate)."""
    from benchsuite.sweep import load_sweep

    (folder / "toy.yaml").write_text(recipe)
    monkeypatch.setenv("BENCHSUITE_SCHEDULES", str(folder))
    path = folder / "toy_sweep.yaml"
    path.write_text(yaml.safe_dump({
        "name": "toy", "method": "bayes", "metric": {"name": "speedup", "goal": "maximize"},
        **config, "parameters": {"recipe": {"value": "toy"}, **parameters}}))
    return load_sweep(path)
