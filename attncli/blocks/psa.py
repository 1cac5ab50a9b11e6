"""EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural Network (arXiv 2105.14447).

The Pyramid Squeeze Attention module as in the official code (github.com/murufeng/EPSANet):
four grouped convs (kernels 3,5,7,9; groups 1,4,8,16; no bias) each to C/4 channels, one
SEWeight module shared by the four branches, a softmax across the branches, and the weighted
branches concatenated in reversed order (branch 4 first), exactly as the official loop does.

In a backbone the module replaces the bottleneck's 3x3 convolution and carries its stride; the
official code keeps ``bn2`` + ReLU after it, as a plain bottleneck has after its 3x3 conv, and that
is what gives its exact counts: ``resnet50 --attn psa`` is EPSANet-50 (22,561,715 parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from attncli.blocks.se import SEWeight


class PSA(nn.Module):
    """Pyramid Squeeze Attention: multi-scale grouped convs re-weighted by a softmax over scales."""

    position = "replace_3x3"
    norm_after = True  # the official EPSANet keeps bn2 + ReLU after PSA

    def __init__(
        self,
        channels: int,
        out_channels: int | None = None,
        stride: int = 1,
        kernels: tuple[int, ...] = (3, 5, 7, 9),
        groups: tuple[int, ...] = (1, 4, 8, 16),
        reduction: int = 16,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        if len(kernels) != len(groups):
            raise ValueError(f"kernels {kernels} and groups {groups} must have the same length")
        self.branches = len(kernels)
        if out_channels % self.branches:
            raise ValueError(f"out_channels ({out_channels}) must be divisible by {self.branches}")
        self.split = out_channels // self.branches
        for g in groups:
            if channels % g or self.split % g:
                raise ValueError(f"group count {g} must divide channels {channels} and the split {self.split}")
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, self.split, k, stride, padding=k // 2, groups=g, bias=False)
            for k, g in zip(kernels, groups)
        )
        self.se = SEWeight(self.split, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([conv(x) for conv in self.convs], dim=1)  # (N, S, C/S, H, W)
        weights = torch.stack([self.se(feats[:, i]) for i in range(self.branches)], dim=1)
        weighted = feats * weights.softmax(dim=1)
        return torch.cat([weighted[:, i] for i in reversed(range(self.branches))], dim=1)
