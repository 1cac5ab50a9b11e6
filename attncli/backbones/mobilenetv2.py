"""MobileNetV2: Inverted Residuals and Linear Bottlenecks (arXiv 1801.04381), attention pluggable.

The layout is torchvision's (width 1.0: 3,504,872 parameters; the paper's table says 3.4M), and so
are the module names; both official attention codes below use the same layout. ``attn`` puts a
block into every inverted residual, at the block's own position or at ``attn_position``:

- ``branch_end``: after the projection BN, where the official ECA code (github.com/BangguWu/ECANet,
  ``eca_mobilenetv2.py``) puts ECA, including the t=1 block. ``eca_mobilenetv2`` uses k=1 in the
  stages with fewer than 96 channels and k=3 from 96 on, as the current official code does
  (``c < 96``; an earlier commit had ``c <= 96``).
- ``after_3x3``: right after the depthwise conv, before its BN.
- ``after_3x3_act``: after the depthwise conv's BN + ReLU6, before the projection, where the
  official Coordinate Attention code (github.com/Andrew-Qibin/CoordAttention, ``mbv2_ca.py``) puts
  CoordAtt(hidden, hidden). As there, only blocks with an expansion layer get it: the t=1 block has none.

There is no place to replace the depthwise conv (PSA, SK need a ResNet bottleneck).
Block arguments with one value per stage (7 stages) are spread over the stages, as in the ResNet.
Widths: torchvision rounds ``c * width_mult`` to multiples of 8 (``width_rounding="divisible"``); the
official ECA code takes ``int(c * width_mult)`` (``"floor"``). Both agree at width 1.0.
The official codes' classifier dropout (0.25 ECA, 0.1 CoordAtt) differs from torchvision's 0.2;
``dropout`` sets it and no parameter depends on it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attncli.backbones.insertion import Insertion, check_backbone_args, check_insertable, plan_insertion

# t (expansion), c (output channels), n (blocks), s (stride of the first block): the paper's Table 2.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a width to a multiple of ``divisor``, never more than 10% below ``value`` (TF slim rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


def round_width(value: float, rule: str) -> int:
    """A layer width for ``value`` = channels x width multiplier, by torchvision's rule or the floor."""
    if rule == "divisible":
        return make_divisible(value)
    if rule == "floor":
        return int(value)
    raise ValueError(f"width_rounding must be 'divisible' (torchvision) or 'floor' (official ECA code), not {rule!r}")


class InvertedResidual(nn.Module):
    """1x1 expansion (t > 1), 3x3 depthwise, linear 1x1 projection; residual when shapes allow."""

    positions = ("branch_end", "after_3x3", "after_3x3_act")

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, expand_ratio: int, attn: Insertion | None = None, stage: int = 0
    ) -> None:
        super().__init__()
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        position = attn.position if attn else None
        # where this unit holds a block (None without one: the t=1 unit has no place after_3x3_act)
        self.attn_position = position if position != "after_3x3_act" or expand_ratio != 1 else None
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_ch, hidden, kernel_size=1))
        depthwise = ConvBNReLU(hidden, hidden, stride=stride, groups=hidden)
        if position == "after_3x3":
            depthwise.insert(1, attn.make(stage, hidden))
        layers.append(depthwise)
        if position == "after_3x3_act" and expand_ratio != 1:
            layers.append(attn.make(stage, hidden))
        layers += [nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        if position == "branch_end":
            layers.append(attn.make(stage, out_ch))
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 with an optional attention block in every inverted residual."""

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        attn: Any = None,
        attn_args: dict[str, Any] | None = None,
        attn_position: str | None = None,
        dropout: float = 0.2,
        width_rounding: str = "divisible",
    ) -> None:
        super().__init__()
        check_backbone_args(num_classes, attn, attn_args, attn_position)
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, not {width_mult}")
        round_width(1, width_rounding)
        ins = plan_insertion(attn, attn_args, attn_position, len(SETTINGS), InvertedResidual.positions, "mobilenetv2")
        in_ch = round_width(32 * width_mult, width_rounding)
        self.last_channel = round_width(1280 * max(1.0, width_mult), width_rounding)
        features: list[nn.Module] = [ConvBNReLU(3, in_ch, stride=2)]
        for i, (t, c, n, s) in enumerate(SETTINGS):
            out_ch = round_width(c * width_mult, width_rounding)
            for j in range(n):
                features.append(InvertedResidual(in_ch, out_ch, s if j == 0 else 1, t, ins, i))
                in_ch = out_ch
        features.append(ConvBNReLU(in_ch, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, int(num_classes)))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # torchvision uses fan_out; untrained, that shrinks activations ~0.3x per block, so the
                # logits of a fresh MobileNetV2 are ~1e-9 and any parity check passes vacuously.
                # fan_in (He et al.'s forward-preserving mode) keeps them near 1. Counts are unchanged.
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        if ins is not None:
            # the first block with an expansion layer has every position: expand, depthwise, ..., project
            block = self.features[2]
            check_insertable(ins, _inserted_module(block, ins.position), _inserted_channels(block, ins.position))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.classifier(x)


def _inserted_module(block: InvertedResidual, position: str) -> nn.Module:
    """The inserted block of an expanding unit: conv = [expand, depthwise, (block), project, BN, (block)]."""
    if position == "after_3x3":
        return block.conv[1][1]
    return block.conv[2] if position == "after_3x3_act" else block.conv[-1]


def _inserted_channels(block: InvertedResidual, position: str) -> int:
    return block.conv[-2].num_features if position == "branch_end" else block.conv[0][1].num_features
