"""A small Vision Transformer (Dosovitskiy et al., ICLR 2021) for 28x28 and 32x32 inputs.

Written here (no torchvision, no timm), laid out and named as timm's `VisionTransformer` and
initialised as the original ViT's JAX code (`init_weights`): `patch_embed.proj` (a conv of
kernel = stride = the patch size; 4: 7x7 = 49 patches of a 28x28 image, 8x8 = 64 of a 32x32
one), a class token and learned position embeddings (in `patch_embed`; `image`, 32 by default,
sizes them: 64 + 1 positions, of which a 28x28 image uses the first 49 + 1), `blocks.0` ...
pre-norm encoder blocks (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, GELU, `mlp.fc2`;
each sub-block adds its input: x + attn(norm1(x)), then x + mlp(norm2(x))), a final `norm` and
the classifier `head` on the class token.

`dim` (embedding width), `depth` (encoder blocks), `heads` and `mlp_ratio` are parameters; the
head size is dim / heads. The attention is written out (matmul, softmax, matmul), not
`scaled_dot_product_attention`, so the ONNX export (opset 13) and OpenVINO see plain MatMul and
Softmax. An attention module's head count follows its `qkv` layer's width (3 x heads x
head size), so pruning whole heads (`prune/heads.py`) needs no other bookkeeping and a thinned
checkpoint loads into a freshly built model by shapes alone (`models.load_thinned`).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """Patches -> tokens, with the class token and the position embeddings."""

    def __init__(self, in_channels: int, dim: int, patch: int, image: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + (image // patch) ** 2, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)  # B, patches, dim
        n = x.shape[1] + 1
        if n > self.pos_embed.shape[1]:
            raise ValueError(f"{n - 1} patches of {self.patch}x{self.patch}, but position "
                             f"embeddings for {self.pos_embed.shape[1] - 1}: build the model "
                             "for a larger image")
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat((cls, x), dim=1) + self.pos_embed[:, :n]


class Attention(nn.Module):
    """Multi-head self-attention, timm's layout: one `qkv` linear layer, `proj` after."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    @property
    def num_heads(self) -> int:
        return self.qkv.out_features // (3 * self.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(b, n, 3, h, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, -1))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm encoder block: x + attn(norm1(x)), then x + mlp(norm2(x)). The block adds its
    input, so its bypass is an identity (`models/blocks.py`)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    train_optimizer = "adamw"  # prune/training.py OPTIMIZERS: SGD trains it poorly

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dim: int = 128,
                 depth: int = 6, heads: int = 4, mlp_ratio: float = 2.0, patch: int = 4,
                 image: int = 32) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, dim, patch, image)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """The original ViT's initialisation (its JAX code, timm's `jax` mode): Xavier-uniform
        linear layers, zero biases, position embeddings N(0, 0.02); the patch embedding's conv
        as the suite initialises convs (Kaiming, fan-out). With the suite's fixed SGD recipe
        timm's default (truncated normal 0.02) learns far slower: 52 % validation Top-1 after 2
        epochs of 10,000 Fashion-MNIST images against 74 % with Xavier (docs/measurements.md).
        Masked weights (`weight_orig`) are initialised in place of their masked view, so the
        scratch control (`pipeline/stages.reinitialise`) starts from the dense model's
        initialisation."""
        for m in self.modules():
            w = getattr(m, "weight_orig", getattr(m, "weight", None))
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(w)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(w)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, PatchEmbed):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.blocks(self.patch_embed(x)))
        return self.head(x[:, 0])
