"""Selective Kernel Networks (arXiv 1903.06586).

An SK unit: M branches of grouped 3x3 convs (branch i dilated i+1, so the second stands for 5x5),
each with BN + ReLU; fuse by sum; global average pool; fc to d = max(C/r, L) with BN + ReLU; one fc
per branch; softmax across the M branches; weighted sum. The paper's official release is Caffe
(github.com/implus/SKNet); this follows its ``sknet50.prototxt``: the fc before BN and the branch
fcs (one 1x1 conv to M*C outputs, ``B_fc2``) carry no bias. ``-p fc_bias=true`` adds branch biases
as common PyTorch ports do. The seed's simplified version defines the softmax but never applies it:
here it is applied. The paper's reduction ``r`` is the argument ``reduction`` (``r`` still accepted).

In a backbone the unit replaces the bottleneck's 3x3 convolution and carries its stride (in both
branches), as in the official Caffe model: ``resnext50_32x4d --attn sk`` is SKNet-50. Since the
weighted sum goes straight into the last 1x1 conv there, the bottleneck keeps no ``bn2``.
"""

from __future__ import annotations

import torch
from torch import nn



class SelectiveKernel(nn.Module):
    """Selective Kernel convolution: branches of growing receptive field mixed by a softmax."""

    position = "replace_3x3"
    norm_after = False  # each branch ends in its own BN + ReLU: no BN follows the unit
    arg_aliases = {"r": "reduction"}

    def __init__(
        self,
        channels: int,
        out_channels: int | None = None,
        stride: int = 1,
        M: int = 2,
        G: int = 32,
        reduction: int = 16,
        L: int = 32,
        fc_bias: bool = False,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        if channels % G or out_channels % G:
            raise ValueError(f"channels ({channels}, {out_channels}) must be divisible by G={G}")
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, not {reduction}")
        d = max(out_channels // reduction, L)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, out_channels, 3, stride, padding=1 + i, dilation=1 + i, groups=G, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )
            for i in range(M)
        )
        self.fc = nn.Sequential(nn.Conv2d(out_channels, d, 1, bias=False), nn.BatchNorm2d(d), nn.ReLU(inplace=True))
        self.fcs = nn.ModuleList(nn.Conv2d(d, out_channels, 1, bias=fc_bias) for _ in range(M))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([branch(x) for branch in self.branches], dim=1)  # (N, M, C, H, W)
        z = self.fc(feats.sum(dim=1).mean(dim=(2, 3), keepdim=True))  # (N, d, 1, 1)
        logits = torch.stack([fc(z) for fc in self.fcs], dim=1)  # (N, M, C, 1, 1)
        return (feats * logits.softmax(dim=1)).sum(dim=1)
