"""What the latency-budget pruner (`prune/latency_budget.py`) removes, and how it prices and ranks
each unit: the blocks it knows, their prunable widths (`Dim`), the ops each width changes, and
the importance of each step of a width or of a whole block.

A block's widths:
- `filters`: its inner width (`Layout`), in groups of `round_to` channels: the CIFAR ResNets'
  `BasicBlock` (conv1's filters, which conv2's input channels follow), MobileNetV2's
  `InvertedResidual` (the expansion conv `conv.0.0`'s filters, which the depthwise conv
  `conv.1.0` and the projection `conv.2.0`'s inputs follow), the ViT's encoder block (the MLP's
  hidden width: `mlp.fc1`'s output features, `mlp.fc2`'s inputs);
- `heads`: an encoder block's attention heads, one at a time (head h: its query, key and value
  rows of `attn.qkv`, its slice of the attention op, its columns of `attn.proj`), at least one
  kept.
Every width is ranked and priced the same way: the channels its reader layer reads (conv2, the
projection, fc2, attn.proj) are scored, ordered least important first, and each step removes the
next group of them (a head: its `head_dim` channels of attn.proj's input).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from itertools import pairwise

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from benchsuite.latency.spec import (
    AttentionSpec,
    ConvSpec,
    DepthwiseSpec,
    LinearSpec,
    OpSpec,
)
from benchsuite.models.blocks import is_residual_block
from benchsuite.models.mobilenetv2 import InvertedResidual
from benchsuite.models.resnet_cifar import BasicBlock
from benchsuite.models.vit import Block as EncoderBlock
from benchsuite.prune.criteria import Calibration
from benchsuite.prune.graph import dependency_graph
from benchsuite.prune.heads import head_channels, head_scores, is_attention
from benchsuite.prune.masks import effective


@dataclass(frozen=True)
class Layout:
    """Where a block's prunable inner width is (module names within the block): the `inner`
    layer's filters (output channels or features), the channels of the `follow` ops (a
    depthwise conv) and the input channels of the `reader` layer (whose input the channels'
    Taylor scores are taken on); `branches` the modules whose outputs the block adds to its
    input (its bypass's Taylor score)."""

    inner: str
    follow: tuple[str, ...]
    reader: str
    branches: tuple[str, ...]
    linear: bool = False  # inner and reader are linear layers: the pruner removes the features
    # itself (the recipe's FilterRemover thins conv filters only)


BASIC = Layout("conv1", (), "conv2", ("bn2",))
INVERTED = Layout("conv.0.0", ("conv.1.0",), "conv.2.0", ("conv.2.1",))
ENCODER = Layout("mlp.fc1", (), "mlp.fc2", ("attn.proj", "mlp.fc2"), linear=True)


LAYOUTS: dict[type[nn.Module], Layout] = {BasicBlock: BASIC, InvertedResidual: INVERTED,
                                           EncoderBlock: ENCODER}
KNOWN = tuple(LAYOUTS)
ATTENTION = "attn"  # an encoder block's attention module (timm's name)


def _kind_layout(block: nn.Module) -> Layout:
    """The layout of the block's kind (one of `KNOWN`)."""
    return next(lay for cls, lay in LAYOUTS.items() if isinstance(block, cls))


def layout_of(block: nn.Module) -> Layout | None:
    """The block's layout; None for a block the pruner does not know, or one with no inner
    width to prune (an inverted residual without expansion: it removes such a block only)."""
    if not isinstance(block, KNOWN) or (isinstance(block, InvertedResidual)
                                        and not isinstance(block.conv[0], nn.Sequential)):
        return None
    return _kind_layout(block)


def has_heads(block: nn.Module) -> bool:
    """An encoder block whose attention module can lose heads (timm's layout)."""
    return isinstance(block, EncoderBlock) and is_attention(getattr(block, ATTENTION, None))


def known_blocks(model: nn.Module) -> list[str]:
    """The blocks the pruner works on, in forward order: residual CIFAR `BasicBlock`s, every
    `InvertedResidual` (with a shortcut or not) and the ViT's encoder blocks."""
    return [n for n, m in model.named_modules()
            if (isinstance(m, BasicBlock) and is_residual_block(m))
            or isinstance(m, InvertedResidual | EncoderBlock)]


def thinned(model: nn.Module, example: torch.Tensor, step: int, keep: float = 0.5
            ) -> nn.Module | None:
    """A copy of `model` with every known block's inner width (`Layout`: conv1's filters, the
    expansion, the MLP's hidden units) at `keep` of itself, rounded to a multiple of `step`
    (at least `step`), removed through torch-pruning's dependency graph (the ops that follow
    the width follow it). It differs from the model as a width-only plan of the pruner does,
    with the same ops: the latency table's calibration network (`latency.spec.fit_per_op`).
    None when no width changes."""
    clone = copy.deepcopy(model).eval()
    dg = dependency_graph(clone, example)
    changed = 0
    for b in known_blocks(clone):
        lay = layout_of(clone.get_submodule(b))
        if lay is None:
            continue
        inner = clone.get_submodule(f"{b}.{lay.inner}")
        n = inner.out_features if lay.linear else inner.out_channels
        k = max(step, round(n * keep / step) * step)
        if k >= n:
            continue
        handler = tp.prune_linear_out_channels if lay.linear else tp.prune_conv_out_channels
        dg.get_pruning_group(inner, handler, idxs=list(range(k, n))).prune()
        changed += 1
    return clone if changed else None


@dataclass(frozen=True)
class Dim:
    """A prunable width of a block: `kind` "filters" (its inner width, in channels) or "heads"
    (its attention heads, of `head_dim` channels each); `roles` the block's modules whose ops
    the width changes, with their role; `reader` the module whose input channels carry it."""

    block: str
    kind: str
    roles: tuple[tuple[str, str], ...]  # (module, role)
    reader: str
    head_dim: int = 0

    def channels(self, size: int) -> int:
        """The reader's input channels at `size` (heads: size x head_dim)."""
        return size * self.head_dim if self.kind == "heads" else size


def filters_dim(block: str, layout: Layout) -> Dim:
    roles = ((layout.inner, "inner"), (layout.reader, "reader"),
             *((f, "follow") for f in layout.follow))
    return Dim(block, "filters", roles, layout.reader)


def heads_dim(block: str, attn: nn.Module) -> Dim:
    return Dim(block, "heads", ((f"{ATTENTION}.qkv", "qkv"), (ATTENTION, "attention"),
                                (f"{ATTENTION}.proj", "proj")),
               f"{ATTENTION}.proj", int(attn.head_dim))


def resized(op: OpSpec, role: str, size: int, head_dim: int = 0) -> OpSpec:
    """`op` with its block's width at `size` where its `role` has it: "inner", "follow",
    "reader" (channels of the inner width), "qkv", "attention", "proj" (heads of `head_dim`)."""
    if isinstance(op, AttentionSpec):
        return replace(op, heads=size)
    if role in ("qkv", "proj") and isinstance(op, LinearSpec):
        return (replace(op, fout=3 * size * head_dim) if role == "qkv"
                else replace(op, fin=size * head_dim))
    if isinstance(op, DepthwiseSpec):
        return replace(op, c=size)
    if isinstance(op, ConvSpec):
        return op.with_channels(cout=size) if role == "inner" else op.with_channels(cin=size)
    if isinstance(op, LinearSpec):
        return replace(op, fout=size) if role == "inner" else replace(op, fin=size)
    raise TypeError(f"{type(op).__name__} has no inner width")


def _on_channels(keep: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`keep` (one value per channel) shaped to multiply `x`: channels are dim 1 of a conv's
    maps (B, C, H, W), the last dim of tokens (B, N, C)."""
    return keep[None, :, None, None] if x.dim() == 4 else keep


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over every dim but the batch's and the channels' (B, C)."""
    return t.sum((2, 3)) if t.dim() == 4 else t.sum(1)


@dataclass
class Unit:
    """A removable unit: a block, or the next group of one of a block's widths."""

    block: str
    kind: str  # "block", "filters" or "heads"
    importance: float
    saved_us: float
    keep: int = 0  # filters, heads: the width after removing this group


def kept_counts(n: int, step: int) -> list[int]:
    """Widths a conv of n filters passes through: n, then multiples of `step` down to `step`."""
    return [n, *sorted((c for c in range(step, n, step)), reverse=True)]


def kept_heads(n: int) -> list[int]:
    """Head counts an attention module of n heads passes through: n, n - 1, ... 1."""
    return list(range(n, 0, -1))


def calibration_loss(model: nn.Module, calib: Calibration) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(calib[0]), calib[1]))


def l1_order(model: nn.Module, dim: Dim) -> list[int]:
    """The width's reader channels, least important by weight first: an inner layer's filters
    by L1 (`filters`), heads by the L1 of their qkv rows and proj columns, each head's channels
    together (`heads`)."""
    block = model.get_submodule(dim.block)
    if dim.kind == "heads":
        heads = head_scores(block.get_submodule(ATTENTION), "l1").argsort(stable=True).tolist()
        return head_channels(heads, dim.head_dim)
    inner = next(m for m, role in dim.roles if role == "inner")
    w = effective(model, f"{dim.block}.{inner}.weight")
    return w.abs().flatten(1).sum(1).argsort(stable=True).tolist()


def head_order(scores: torch.Tensor, head_dim: int) -> list[int]:
    """attn.proj's input channels, head by head, the heads least scored (summed) first."""
    heads = scores.reshape(-1, head_dim).sum(1).argsort(stable=True).tolist()
    return head_channels(heads, head_dim)


def group_losses(model: nn.Module, reader: str, order: list[int], counts: list[int],
                 calib: Calibration, base: float) -> list[float]:
    """Loss increase of each successive group of the `reader` layer's input channels (removed
    cumulatively in `order`, `counts` the channels kept after each): the group's channels are
    zeroed at the reader's input, as thinning removes them."""
    layer = model.get_submodule(reader)
    keep = torch.ones(layer.weight.shape[1])  # input channels (features) of a conv (linear)
    hook = layer.register_forward_pre_hook(
        lambda _m, inp: (inp[0] * _on_channels(keep, inp[0]),))
    out, prev = [], base
    try:
        for k in counts[1:]:
            keep[order[:counts[0] - k]] = 0.0
            loss = calibration_loss(model, calib)
            out.append(loss - prev)
            prev = loss
    finally:
        hook.remove()
    return out


def group_sums(scores: torch.Tensor, order: list[int], counts: list[int]) -> list[float]:
    """Each successive group's summed channel score (groups least-scored first)."""
    n = counts[0]
    return [float(scores[order[n - hi:n - lo]].sum())
            for hi, lo in pairwise(counts)]


def taylor_scores(model: nn.Module, readers: list[str], branches: list[str],
                  calib: Calibration) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Per-channel Taylor scores of the input of each `readers` layer (a block's reader: conv2,
    the projection, fc2, attn.proj), and the summed score of each `branches` block's residual
    branch (of each output the block adds to its input: a ResNet block's last BN's, an encoder
    block's attention and MLP outputs)."""
    acts: dict[tuple[str, str], torch.Tensor] = {}
    hooks = []
    for r in readers:
        hooks.append(model.get_submodule(r).register_forward_pre_hook(
            lambda _m, inp, r=r: acts.__setitem__((r, "input"), inp[0])))
    for b in branches:
        for i, name in enumerate(_kind_layout(model.get_submodule(b)).branches):
            hooks.append(model.get_submodule(f"{b}.{name}").register_forward_hook(
                lambda _m, _i, out, k=(b, f"branch{i}"): acts.__setitem__(k, out)))
    try:
        with torch.enable_grad():
            loss = F.cross_entropy(model(calib[0]), calib[1])
            keys = list(acts)
            grads = torch.autograd.grad(loss, [acts[k] for k in keys], allow_unused=True)
    finally:
        for h in hooks:
            h.remove()
    scores = {}
    for k, g in zip(keys, grads, strict=True):
        a = acts[k].detach()
        g = torch.zeros_like(a) if g is None else g
        scores[k] = _per_channel(a * g).abs().mean(0)
    return ({r: scores[(r, "input")] for r in readers},
            {b: sum(float(v.sum()) for (o, kind), v in scores.items()
                    if o == b and kind.startswith("branch")) for b in branches})
