"""Squeeze-and-Excitation Networks (arXiv 1709.01507).

``se``: pool, Linear C -> C/r, ReLU, Linear C/r -> C, sigmoid, rescale. The linears carry no bias,
as in the common PyTorch port the seeds use (2*C*C/r parameters); ``-p bias=true`` adds them as in
the original Caffe model. ``se_weight`` is EPSANet's SEWeightModule (official code,
github.com/murufeng/EPSANet): 1x1 convolutions with bias, and it returns the sigmoid weights,
not the rescaled input.
"""

from __future__ import annotations

import torch
from torch import nn



class SE(nn.Module):
    """Squeeze-and-Excitation: a bottleneck MLP on the pooled descriptor gates each channel."""

    position = "branch_end"

    def __init__(self, channels: int, reduction: int = 16, bias: bool = False) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, not {reduction}")
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"channels // reduction must be at least 1 ({channels} // {reduction})")
        self.fc1 = nn.Linear(channels, hidden, bias=bias)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3))
        y = self.fc2(self.relu(self.fc1(y))).sigmoid()
        return x * y[:, :, None, None]


class SEWeight(nn.Module):
    """EPSANet's SEWeightModule: returns sigmoid channel weights of shape (N, C, 1, 1)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, not {reduction}")
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"channels // reduction must be at least 1 ({channels} // {reduction})")
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3), keepdim=True)
        return self.fc2(self.relu(self.fc1(y))).sigmoid()
