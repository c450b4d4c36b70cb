"""Attention-head pruning (`class: AttentionHeadPruner` in a recipe): whole heads of multi-head
self-attention removed physically, through torch-pruning's dependency graph.

An attention module here is laid out as timm's (and the suite's ViT, `models/vit.py`): one
`qkv` linear layer (3 x heads x head size outputs: the queries, keys and values of every head
in turn), a `proj` linear layer reading heads x head size features, and `head_dim`; its head
count is `num_heads` (a property following `qkv`'s width, or an attribute this pruner updates).
Removing head h removes its rows of `qkv` in the query, key and value sections and its columns
of `proj`: torch-pruning's dependency graph, asked to remove head h's query rows of `qkv`, takes
its key and value rows with them (through the `unbind` of q, k, v) and `proj`'s columns (through
the matmuls and reshapes), which `AttentionHeadPruner` checks before it removes anything.
Removing a head computes exactly what the model computed with that head's `proj` columns
zeroed (`tests/test_mobilenet_vit.py`).

Ranking (`criterion`): `l1` (default) the mean |w| of the head's `qkv` rows and `proj` columns,
`l2` their root mean square. `desired_sparsity: s` removes int(s x heads) heads of every
attention module (keeping at least one), counted from the module's heads when the recipe was
bound, so a policy that fires again removes nothing more. `weights` (the `qkv` weights) limits
it to some modules; absent: every attention module of the model. The optimizer is rebuilt
(physical); the removed heads are recorded per module in the scheduler's `thinned`.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from benchsuite.prune.graph import dependency_graph
from benchsuite.prune.masks import masks_lifted
from benchsuite.prune.names import resolve_list
from benchsuite.prune.pruner import PruneContext, Pruner
from benchsuite.prune.structured import kept_count
from benchsuite.recipe import Component, RecipeError


def is_attention(m: nn.Module) -> bool:
    """timm's layout: `qkv` and `proj` linear layers, `head_dim`, `num_heads`."""
    return (isinstance(getattr(m, "qkv", None), nn.Linear)
            and isinstance(getattr(m, "proj", None), nn.Linear)
            and isinstance(getattr(m, "head_dim", None), int) and hasattr(m, "num_heads")
            and m.qkv.out_features == 3 * m.num_heads * m.head_dim)


def attention_modules(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if n and is_attention(m)]


def head_scores(attn: nn.Module, criterion: str) -> torch.Tensor:
    """One score per head: its qkv rows (query, key and value) and proj columns."""
    h, d = attn.num_heads, attn.head_dim
    qkv = attn.qkv.weight.detach().reshape(3, h, d, -1).transpose(0, 1).reshape(h, -1)
    proj = attn.proj.weight.detach().reshape(-1, h, d).transpose(0, 1).reshape(h, -1)
    w = torch.cat([qkv, proj], dim=1)
    return w.abs().mean(1) if criterion == "l1" else w.pow(2).mean(1).sqrt()


def head_channels(heads: list[int], head_dim: int) -> list[int]:
    """The channels of `heads` in a projection's input (head h: h x head_dim ... + head_dim - 1),
    head by head in the order given."""
    return [int(h) * head_dim + j for h in heads for j in range(head_dim)]


def remove_heads(dg: tp.DependencyGraph, name: str, attn: nn.Module, heads: list[int],
                 path: str) -> None:
    """Remove `heads` of the attention module `name` (`attn`) through the model's dependency
    graph `dg` (traced with the masks lifted): their qkv rows (query, key and value) and proj
    columns. A module whose graph does not tie them head by head is refused (RecipeError at
    `path`) before anything is removed."""
    idxs = sorted(head_channels(heads, attn.head_dim))
    group = dg.get_pruning_group(attn.qkv, tp.prune_linear_out_channels, idxs=idxs)
    rows = {len(i) for dep, i in group.items if dep.target.module is attn.qkv}
    cols = {len(i) for dep, i in group.items if dep.target.module is attn.proj}
    if rows != {3 * len(idxs)} or cols != {len(idxs)}:
        raise RecipeError(path, f"{name}: torch-pruning does not tie its qkv rows and proj "
                          "columns head by head (qkv must be split into q, k, v by reshape(b, "
                          "n, 3, heads, head_dim) and unbind); its heads cannot be removed")
    count = attn.num_heads
    group.prune()
    if not isinstance(getattr(type(attn), "num_heads", None), property):
        attn.num_heads = count - len(heads)  # an attribute (timm's), not derived from qkv


class AttentionHeadPruner(Pruner):
    """Remove the lowest-ranked heads of every attention module (physical)."""

    physical = True

    def __init__(self, component: Component, model: nn.Module,
                 example_input: torch.Tensor | None = None) -> None:
        super().__init__(component, model)
        if example_input is None:
            raise RecipeError(f"{self.path}.class", "AttentionHeadPruner traces the model: bind "
                              "with an example input (CompressionScheduler does)")
        self.example_input = example_input
        if self.args.get("weights") is None:
            self.modules = attention_modules(model)
            if not self.modules:
                raise RecipeError(f"{self.path}.class", f"the model ({type(model).__name__}) has "
                                  "no attention modules AttentionHeadPruner can prune (modules "
                                  "laid out as timm's: qkv and proj linear layers, head_dim, "
                                  "num_heads)")
        else:
            names = resolve_list(model, self.args["weights"], f"{self.path}.weights")
            self.modules = []
            for i, w in enumerate(names):
                parent = w.removesuffix(".qkv.weight")
                if parent == w or not is_attention(model.get_submodule(parent)):
                    raise RecipeError(f"{self.path}.weights[{i}]", f"{w} is not the qkv weight "
                                      "of an attention module (qkv, proj, head_dim, num_heads)")
                self.modules.append(parent)
        self.initial = {n: model.get_submodule(n).num_heads for n in self.modules}
        self.thinned: dict[str, int] = {}

    def weights(self) -> list[str]:
        return [f"{n}.{layer}.weight" for n in self.modules for layer in ("qkv", "proj")]

    def apply(self, ctx: PruneContext) -> bool:
        model = ctx.model
        todo = []
        for name in self.modules:
            try:
                attn = model.get_submodule(name)
            except AttributeError:
                continue  # removed with its block
            keep = kept_count(self.initial[name], self.args["desired_sparsity"])
            if attn.num_heads > keep:
                todo.append((name, attn, attn.num_heads - keep))
        if not todo:
            return False
        with masks_lifted(model):  # element-wise masks stay where weights are still zero
            dg = dependency_graph(model, self.example_input)
            for name, attn, drop in todo:
                heads = head_scores(attn, self.args["criterion"]).argsort(stable=True)[:drop]
                remove_heads(dg, name, attn, heads.tolist(), f"{self.path}.class")
                self.thinned[f"{name}.heads"] = self.thinned.get(f"{name}.heads", 0) + drop
        return True
