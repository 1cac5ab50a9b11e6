"""The plugin's block: CBAM's spatial gate with a small kernel (2 * k * k parameters, no bias)."""

import torch
from torch import nn


class SpatialGateLite(nn.Module):
    position = "branch_end"

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * self.conv(pooled).sigmoid()
