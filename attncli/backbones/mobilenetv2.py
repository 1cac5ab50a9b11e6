"""MobileNetV2: Inverted Residuals and Linear Bottlenecks (arXiv 1801.04381), attention pluggable.

The layout is torchvision's (width 1.0: 3,504,872 parameters; the paper's table says 3.4M), and so
are the module names; both official attention codes below use the same layout.
Two places take an attention block, by registry name:

- ``attn``: after the projection BN of every inverted residual, where the official ECA code
  (github.com/BangguWu/ECANet, ``eca_mobilenetv2.py``) puts ECA, including the t=1 block.
  ``eca_mobilenetv2`` uses k=1 in the stages with fewer than 96 channels and k=3 from 96 on, as
  the current official code does (``c < 96``; an earlier commit had ``c <= 96``).
- ``dw_attn``: after the depthwise conv's BN + ReLU6, before the projection, where the official
  Coordinate Attention code (github.com/Andrew-Qibin/CoordAttention, ``mbv2_ca.py``) puts
  CoordAtt(hidden, hidden). As there, only blocks with an expansion layer get it: the t=1 block
  has none.

Block arguments with one value per stage (7 stages) are spread over the stages, as in the ResNet.
The official codes' classifier dropout (0.25 ECA, 0.1 CoordAtt) differs from torchvision's 0.2;
``dropout`` sets it and no parameter depends on it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attncli.backbones.resnet import check_backbone_args, check_insertable, stage_block_args
from attncli.blocks import make_block
from attncli.registry import register

_PAPER = ("MobileNetV2: Inverted Residuals and Linear Bottlenecks", "1801.04381")
_INPUT = (1, 3, 224, 224)
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


class InvertedResidual(nn.Module):
    """1x1 expansion (t > 1), 3x3 depthwise, linear 1x1 projection; residual when shapes allow."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int,
        expand_ratio: int,
        attn: str | None = None,
        attn_args: dict[str, Any] | None = None,
        dw_attn: str | None = None,
        dw_attn_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_ch, hidden, kernel_size=1))
        layers.append(ConvBNReLU(hidden, hidden, stride=stride, groups=hidden))
        if dw_attn and expand_ratio != 1:
            layers.append(make_block(dw_attn, channels=hidden, **(dw_attn_args or {})))
        layers += [nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        if attn:
            layers.append(make_block(attn, channels=out_ch, **(attn_args or {})))
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 with optional attention after each projection and/or after each depthwise conv."""

    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        attn: str | None = None,
        attn_args: dict[str, Any] | None = None,
        dw_attn: str | None = None,
        dw_attn_args: dict[str, Any] | None = None,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        check_backbone_args(num_classes, attn, attn_args)
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, not {width_mult}")
        stages = len(SETTINGS)
        stage_attn = stage_block_args(attn, attn_args, stages) if attn else [{}] * stages
        stage_dw = stage_block_args(dw_attn, dw_attn_args, stages) if dw_attn else [{}] * stages
        in_ch = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNReLU(3, in_ch, stride=2)]
        for i, (t, c, n, s) in enumerate(SETTINGS):
            out_ch = make_divisible(c * width_mult)
            for j in range(n):
                features.append(
                    InvertedResidual(in_ch, out_ch, s if j == 0 else 1, t, attn, stage_attn[i], dw_attn, stage_dw[i])
                )
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
        if attn:
            block = self.features[1].conv
            check_insertable(attn, block[-1], block[-2].num_features)
        if dw_attn:
            block = self.features[2].conv  # the first block with an expansion layer: expand, depthwise, dw_attn
            check_insertable(dw_attn, block[2], block[1][1].num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.classifier(x)


@register(
    "mobilenetv2",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000, "width_mult": 1.0},
    aliases=("mobilenet_v2",),
    takes_attn=True,
    reference={
        "source": "MobileNetV2 (arXiv 1801.04381), ImageNet results; exact count from torchvision",
        "units": "decimal",
        "params_m": 3.4,
        "macs_g": 0.30,
        "exact_params": 3504872,
    },
)
def mobilenetv2(
    num_classes: int = 1000, width_mult: float = 1.0, attn: str | None = None, attn_args: dict[str, Any] | None = None
) -> MobileNetV2:
    """MobileNetV2 (width 1.0); --attn NAME inserts a block after the projection BN of every inverted residual."""
    return MobileNetV2(num_classes, width_mult, attn=attn, attn_args=attn_args)


@register(
    "eca_mobilenetv2",
    kind="backbone",
    input_shape=_INPUT,
    paper=("ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks", "1910.03151"),
    defaults={"num_classes": 1000, "width_mult": 1.0},
    baseline="mobilenetv2",
    reference={
        "source": "ECA-Net official README (eca_mobilenetv2_k13), counted with thop",
        "units": "binary",
        "params_m": 3.34,
        "macs_g": 0.3199,
    },
)
def eca_mobilenetv2(
    num_classes: int = 1000, width_mult: float = 1.0, k_size: int | tuple[int, ...] | None = None
) -> MobileNetV2:
    """ECA-MobileNetV2: ECA after every projection BN, k=1 below 96 channels and k=3 from 96 on."""
    if k_size is None:
        k_size = tuple(1 if c < 96 else 3 for _, c, _, _ in SETTINGS)
    return MobileNetV2(num_classes, width_mult, attn="eca", attn_args={"k_size": k_size})


@register(
    "coordatt_mobilenetv2",
    kind="backbone",
    input_shape=_INPUT,
    paper=("Coordinate Attention for Efficient Mobile Network Design", "2103.02907"),
    defaults={"num_classes": 1000, "width_mult": 1.0, "reduction": 32},
    aliases=("mbv2_ca",),
    baseline="mobilenetv2",
    reference={
        "source": "Coordinate Attention (arXiv 2103.02907), ImageNet results",
        "units": "decimal",
        "params_m": 3.95,
        "macs_g": 0.31,
    },
)
def coordatt_mobilenetv2(num_classes: int = 1000, width_mult: float = 1.0, reduction: int = 32) -> MobileNetV2:
    """CoordAtt-MobileNetV2: coordinate attention after the depthwise conv of every block with t > 1."""
    return MobileNetV2(num_classes, width_mult, dw_attn="coordatt", dw_attn_args={"reduction": reduction})
