"""CBAM: Convolutional Block Attention Module (arXiv 1807.06521).

Follows the official code (github.com/Jongchan/attention-module): a channel gate (one MLP with
biases shared by the average- and max-pooled descriptors, summed, sigmoid), then a spatial gate
(channel-wise max and mean, concatenated in that order, one k x k conv without bias + BN, sigmoid).
The official channel gate pools with ``F.avg_pool2d(x, (H, W))``, a kernel fixed to the example size
once exported; ``mean``/``amax`` compute the same numbers at every size.
"""

from __future__ import annotations

import torch
from torch import nn



class ChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, not {reduction}")
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"channels // reduction must be at least 1 ({channels} // {reduction})")
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * att.sigmoid()[:, :, None, None]


class SpatialGate(nn.Module):
    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"spatial kernel_size must be odd, not {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * self.bn(self.conv(pooled)).sigmoid()


class CBAM(nn.Module):
    """CBAM: channel attention, then spatial attention (7x7 by default)."""

    position = "branch_end"

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7, spatial: bool = True) -> None:
        super().__init__()
        self.channel = ChannelGate(channels, reduction)
        self.spatial = SpatialGate(kernel_size) if spatial else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
