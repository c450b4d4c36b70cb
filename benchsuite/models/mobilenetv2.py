"""MobileNetV2 (Sandler et al., CVPR 2018) sized for 28x28 and 32x32 inputs.

Written here (torchvision does not import against the CPU torch this suite pins). The blocks and
the stage table are the paper's (expansion t, output channels c, repeats n, stride s):
(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
(6, 320, 1, 1), a 3x3 stem of 32 channels and a 1x1 head conv of 1280 channels, global average
pooling and a linear classifier; channels scaled by the width multiplier and rounded to
multiples of 8 (torchvision's `_make_divisible`; the head conv keeps 1280 below width 1). For
small images the stem keeps stride 1: four strides of 2 in all, the paper's less the stem's
(28x28: 28 -> 14 in stage 2 -> 7 -> 4 -> 2 in stage 6; 32x32: 32 -> 16 -> 8 -> 4 -> 2), so that
the dense model trains in minutes on two cores (23 M MACs at 28x28; the CIFAR adaptations' three
strides, stage 2 at full resolution, cost 77 M and train 3x slower here); `strides` changes them.

An inverted-residual block is `conv`: expansion 1x1 conv (`conv.0`, absent when t = 1) - BN -
ReLU6, depthwise 3x3 (`conv.1`) - BN - ReLU6, projection 1x1 (`conv.2`) - BN (linear
bottleneck); with stride 1 and equal input and output channels it adds its input
(`residual`). Names: `stem.0` (conv), `stem.1` (BN), `stage1` ... `stage7` (Sequential of blocks),
`stage3.1.conv.0.0.weight` (that block's expansion conv), `head.0`, `classifier`.
"""

from __future__ import annotations

import torch
from torch import nn

# (expansion t, output channels c, repeats n, stride s): the paper's table
STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
LAST_CHANNELS = 1280


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's rounding: the nearest multiple of `divisor`, never below 90 % of `v`."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=False))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """Expansion 1x1 (if t > 1), depthwise 3x3, linear projection 1x1; x + branch(x) when
    `residual` (stride 1, same channels): its bypass is an identity (`models/blocks.py`)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = round(cin * expansion)
        self.residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn(cin, hidden, 1))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, act=False)]
        if expansion == 1:  # keep the depthwise conv at index 1 and the projection at 2
            layers.insert(0, nn.Identity())
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0,
                 strides: tuple[int, ...] = (1, 1, 2, 2, 2, 1, 2, 1),
                 stages: tuple[tuple[int, int, int, int], ...] = STAGES) -> None:
        """`strides`: the stem's, then each stage's first block's (the paper's: 2, 1, 2, 2, 2,
        1, 2, 1 for 224x224; here 1, 1, 2, 2, 2, 1, 2, 1)."""
        super().__init__()
        if len(strides) != len(stages) + 1:
            raise ValueError(f"strides: one for the stem and one per stage ({len(stages) + 1}),"
                             f" got {len(strides)}")
        self.width = width
        cin = make_divisible(32 * width)
        self.stem = conv_bn(in_channels, cin, 3, strides[0])
        for i, ((t, c, n, _), stride) in enumerate(zip(stages, strides[1:], strict=True)):
            cout = make_divisible(c * width)
            blocks = []
            for b in range(n):
                blocks.append(InvertedResidual(cin, cout, stride if b == 0 else 1, t))
                cin = cout
            self.add_module(f"stage{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(stages)
        last = make_divisible(LAST_CHANNELS * max(1.0, width))
        self.head = conv_bn(cin, last, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """torchvision's initialisation of MobileNetV2 (Kaiming fan-out convs, BN 1 / 0,
        classifier N(0, 0.01)); masked weights (`weight_orig`) in place of their masked view,
        so the scratch control starts from the dense model's initialisation."""
        for m in self.modules():
            w = getattr(m, "weight_orig", getattr(m, "weight", None))
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(w, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(w)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(w, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(self.num_stages):
            x = getattr(self, f"stage{i + 1}")(x)
        x = self.head(x)
        return self.classifier(torch.flatten(self.avgpool(x), 1))


def mobilenetv2(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> MobileNetV2:
    return MobileNetV2(num_classes, in_channels, width)
