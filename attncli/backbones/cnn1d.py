"""The 1-D CNN with ECA of the signal-processing seed, after ECA-Net (arXiv 1910.03151), in PyTorch form.

The original is Keras: conv(16, k=64, stride 16, 'same') + BN + ReLU + max-pool 2, conv(32, k=3,
'same') + BN + ReLU + max-pool 2, x + ECA(x), three conv(64, k=3, 'same') + BN + ReLU + max-pool 2,
flatten, Dense(100) + ReLU, Dense(num_classes). Where Keras and PyTorch differ we keep the Keras
model's numbers:

- 'same' padding of the strided first conv: Keras pads (ceil(L/16) - 1) * 16 + 64 - L in total,
  split evenly; for any length that is a multiple of 16 (2048 by default) that is 24 on each side,
  which we fix as the conv's padding so the graph exports with static shapes.
- Keras convs carry a bias by default; so do these.
- Keras flattens channels-last (N, L, C); we flatten in that order too, so that 4 positions x 64
  channels = 256 features line up with a Keras Dense kernel.

The ECA-Net paper itself has no 1-D network: its ECA (one shared k-tap conv over the pooled
channel descriptor, k from the adaptive rule: 3 for 32 channels) is applied to the signal's features.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attncli.backbones.resnet import check_backbone_args, check_insertable
from attncli.blocks import make_block
from attncli.registry import register

_PAPER = ("ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks", "1910.03151")
_INPUT = (1, 1, 2048)


def conv_stage(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int | None = None) -> nn.Sequential:
    pad = (kernel_size - 1) // 2 if padding is None else padding
    return nn.Sequential(
        nn.Conv1d(in_ch, out_ch, kernel_size, stride, pad),
        nn.BatchNorm1d(out_ch),
        nn.ReLU(inplace=True),
        nn.MaxPool1d(2),
    )


class CNN1D(nn.Module):
    """Five conv stages over a (N, 1, L) signal; an optional 1-D attention block after the second, as x + attn(x)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        length: int = 2048,
        attn: str | None = None,
        attn_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_backbone_args(num_classes, attn, attn_args)
        if length % 512:
            raise ValueError(f"length must be a multiple of 512 (stride 16, then five 2x pools), not {length}")
        self.stage1 = conv_stage(in_channels, 16, 64, stride=16, padding=24)
        self.stage2 = conv_stage(16, 32, 3)
        self.attn = make_block(attn, channels=32, **(attn_args or {})) if attn else None
        self.stage3 = conv_stage(32, 64, 3)
        self.stage4 = conv_stage(64, 64, 3)
        self.stage5 = conv_stage(64, 64, 3)
        self.classifier = nn.Sequential(
            nn.Linear(64 * (length // 512), 100), nn.ReLU(inplace=True), nn.Linear(100, int(num_classes))
        )
        if attn:
            check_insertable(attn, self.attn, 32, rank=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.stage1(x))
        if self.attn is not None:
            x = x + self.attn(x)
        x = self.stage5(self.stage4(self.stage3(x)))
        return self.classifier(x.transpose(1, 2).flatten(1))  # channels-last, as Keras flattens


@register(
    "cnn1d",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 10, "length": 2048},
    takes_attn=True,
)
def cnn1d(
    num_classes: int = 10, length: int = 2048, attn: str | None = None, attn_args: dict[str, Any] | None = None
) -> CNN1D:
    """The seed's 1-D CNN without attention; --attn eca1d adds x + eca(x) after the second stage."""
    return CNN1D(num_classes, length=length, attn=attn, attn_args=attn_args)


@register(
    "eca_cnn1d",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 10, "length": 2048},
    baseline="cnn1d",
)
def eca_cnn1d(num_classes: int = 10, length: int = 2048, k_size: int | None = None) -> CNN1D:
    """1-D CNN for (N, 1, 2048) signals with x + ECA(x) after the second conv stage (k=3 for 32 channels)."""
    return CNN1D(num_classes, length=length, attn="eca1d", attn_args={"k_size": k_size} if k_size else None)
