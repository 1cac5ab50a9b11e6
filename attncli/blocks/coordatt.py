"""Coordinate Attention for Efficient Mobile Network Design (arXiv 2103.02907).

Official code: github.com/Andrew-Qibin/CoordAttention. Pool along W and along H separately,
concatenate, a shared 1x1 conv to mip = max(8, C/32) channels with BN and h-swish, split, one 1x1
conv per direction with sigmoid, rescale by both. The official code pools with
``AdaptiveAvgPool2d((None, 1))``, which the TorchScript exporter cannot express and the dynamo
exporter freezes to the example size; ``mean`` over one axis computes the same numbers at any size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn



class HSwish(nn.Module):
    """x * ReLU6(x + 3) / 6, as in MobileNetV3 and the official code."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu6(x + 3) / 6


class CoordAtt(nn.Module):
    """Coordinate Attention: direction-aware pooling along H and W, one gate per direction."""

    position = "branch_end"

    def __init__(self, channels: int, out_channels: int | None = None, reduction: int = 32, min_mid: int = 8) -> None:
        super().__init__()
        out_channels = out_channels or channels
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, not {reduction}")
        mid = max(min_mid, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act = HSwish()
        self.conv_h = nn.Conv2d(mid, out_channels, 1)
        self.conv_w = nn.Conv2d(mid, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        x_h = x.mean(dim=3, keepdim=True)  # (N, C, H, 1)
        x_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (N, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        a_h = self.conv_h(y[:, :, :h]).sigmoid()
        a_w = self.conv_w(y[:, :, h:].transpose(2, 3)).sigmoid()
        return x * a_w * a_h
