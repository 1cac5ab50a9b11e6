"""SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks (ICML 2021).

Official code: github.com/ZjjConan/SimAM. Each neuron's weight is sigmoid(1/e*) with the minimal
energy e* from the paper's closed form: d = (x - mean)^2, y = d / (4 (sum(d)/n + lambda)) + 0.5,
n = H*W - 1. The sum over n is written as the unbiased variance, the same number, so that the
exported graph takes n from the input's size instead of freezing it.

Position: the official SimAM ResNet (networks/imagenet/resnet.py) wraps the 3x3 conv as
``Sequential(conv2, simam)``, so SimAM acts right after the 3x3 convolution, before ``bn2``; every
other attention module of that code goes after the last BN. ``--attn simam`` does the same.
"""

from __future__ import annotations

import torch
from torch import nn



class SimAM(nn.Module):
    """SimAM: parameter-free 3-D attention from an energy function (lambda 1e-4)."""

    position = "after_3x3"

    def __init__(self, channels: int | None = None, e_lambda: float = 1e-4) -> None:
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.dim()))
        d = (x - x.mean(dim=dims, keepdim=True)).pow(2)
        n = 1
        for size in x.shape[2:]:
            n = n * size
        y = d / (4 * (d.sum(dim=dims, keepdim=True) / (n - 1) + self.e_lambda)) + 0.5
        return x * y.sigmoid()
