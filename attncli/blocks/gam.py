"""Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions (arXiv 2112.05561).

There is no official code. The paper: a channel submodule (permute to N,H,W,C, a two-layer MLP
with reduction ``reduction`` on the last axis, reverse permutation, sigmoid) followed by a spatial
submodule (7x7 conv to C/rate, BN, ReLU, 7x7 conv back to C, BN, sigmoid). The seed's code omits
the channel sigmoid; we follow the paper (``-p channel_gate=false`` gives the seed's form).
For ResNet-50 the paper uses group convolution with channel shuffle in the spatial submodule to
keep the parameter count in check; ``groups`` > 1 does that: both 7x7 convs grouped, each followed
by a channel shuffle over ``groups`` groups. The paper does not give the group count; the
registered ``gam_resnet50`` uses ``groups=reduction=4``. The reduction was called ``rate`` (the
paper's r); ``rate`` is still accepted.
"""

from __future__ import annotations

import torch
from torch import nn



class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: (N, g*c, H, W) -> interleave the g groups."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class GAM(nn.Module):
    """GAM: a per-position channel MLP then a 7x7 spatial attention, both as sigmoid gates."""

    position = "branch_end"

    arg_aliases = {"rate": "reduction"}

    def __init__(self, channels: int, reduction: int = 4, groups: int = 1, channel_gate: bool = True) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, not {reduction}")
        hidden = channels // reduction
        if hidden < 1 or hidden % groups or channels % groups:
            raise ValueError(
                f"channels {channels} / reduction {reduction} must leave a width divisible by groups={groups}"
            )
        self.channel_gate = channel_gate
        self.channel_mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        shuffle = (lambda: ChannelShuffle(groups)) if groups > 1 else nn.Identity
        self.spatial = nn.Sequential(
            nn.Conv2d(channels, hidden, 7, padding=3, groups=groups),
            shuffle(),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 7, padding=3, groups=groups),
            shuffle(),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.channel_mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = x * (att.sigmoid() if self.channel_gate else att)
        return x * self.spatial(x).sigmoid()
