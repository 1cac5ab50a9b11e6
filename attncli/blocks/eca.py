"""ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks (arXiv 1910.03151).

Official code: github.com/BangguWu/ECANet (``eca_layer``): global average pool, one ``Conv1d(1, 1, k)``
shared by every channel, sigmoid, rescale. ``k`` follows the paper's rule
t = int(|(log2(C) + b) / gamma|), k = t if t is odd else t + 1, when not given.

In a backbone (``--attn eca``) each stage's blocks get k from that rule for the stage's channel
count: 5, 5, 5, 7 for a ResNet-50's 256..2048 channels. The released ECA-ResNets do not follow the
rule: their kernel sizes are fixed per stage and named in the weights (``eca_resnet50_k3557``), and
the registered ``eca_resnet*`` rows use those (``-p attn.k_size=3,5,5,7`` on a plain ResNet-50).
The same class serves 1-D signals (``eca1d``): it pools every axis after the channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def adaptive_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """The paper's psi(C): the odd kernel size nearest above |(log2 C + b) / gamma|."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """ECA: one k-tap 1-D convolution across the pooled channel descriptor, shared by all channels.

    Works on any input of rank >= 3 (``N, C, *spatial``): the pool averages every axis after C.
    """

    position = "branch_end"

    def __init__(self, channels: int, k_size: int | None = None, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        self.k_size = int(k_size) if k_size else adaptive_kernel_size(channels, gamma, b)
        if self.k_size < 1 or self.k_size % 2 == 0:
            raise ValueError(f"k_size must be a positive odd number, not {self.k_size}")
        self.conv = nn.Conv1d(1, 1, self.k_size, padding=(self.k_size - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=tuple(range(2, x.dim())))  # (N, C)
        y = self.conv(y.unsqueeze(1)).squeeze(1)  # channels as the 1-D sequence
        return x * y.sigmoid().reshape(*y.shape, *([1] * (x.dim() - 2)))


class ECANS(nn.Module):
    """ECA-NS, the per-channel variant: each channel has its own k weights (k*C parameters).

    The seed (and the ECA-Net ablation code) unfolds the pooled descriptor into k-wide windows
    over the channel axis and applies ``Conv1d(C, C, k, groups=C)``. ``F.unfold`` does not export
    at low opsets, so the same windows are built from a zero-padded copy sliced k times: the same
    numbers, in an export-friendly form.
    """

    position = "branch_end"

    def __init__(self, channels: int, k_size: int | None = None, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.k_size = int(k_size) if k_size else adaptive_kernel_size(channels, gamma, b)
        if self.k_size < 1 or self.k_size % 2 == 0:
            raise ValueError(f"k_size must be a positive odd number, not {self.k_size}")
        self.conv = nn.Conv1d(channels, channels, self.k_size, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3))  # (N, C)
        pad = (self.k_size - 1) // 2
        padded = F.pad(y, (pad, pad))
        windows = torch.stack([padded[:, i : i + self.channels] for i in range(self.k_size)], dim=-1)
        y = self.conv(windows)  # (N, C, 1): window c weighted by channel c's own kernel
        return x * y.sigmoid().unsqueeze(-1)
