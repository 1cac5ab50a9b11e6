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
- Keras' BatchNormalization has epsilon 1e-3 and keeps 0.99 of the running statistics at each
  step; PyTorch's defaults are 1e-5 and ``momentum`` 0.1 for the new batch, so these BNs use
  ``eps=1e-3, momentum=0.01``.
- The Keras model ends in ``Dense(num_classes, activation='softmax')``. PyTorch losses take logits,
  so the model returns logits by default; ``-p softmax=true`` appends the softmax and gives the
  Keras model's output.

The block sits where the seed puts it, as ``x + attn(x)``: this CNN has no residual units, so a
block's declared position does not apply and ``attn_position`` is refused.

The ECA-Net paper itself has no 1-D network: its ECA (one shared k-tap conv over the pooled
channel descriptor, k from the adaptive rule: 3 for 32 channels) is applied to the signal's features.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attncli.backbones.insertion import check_backbone_args, check_insertable, plan_insertion

# Keras' BatchNormalization defaults: epsilon 1e-3; moving = 0.99 * moving + 0.01 * batch.
KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.01


def conv_stage(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int | None = None) -> nn.Sequential:
    pad = (kernel_size - 1) // 2 if padding is None else padding
    return nn.Sequential(
        nn.Conv1d(in_ch, out_ch, kernel_size, stride, pad),
        nn.BatchNorm1d(out_ch, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM),
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
        attn: Any = None,
        attn_args: dict[str, Any] | None = None,
        attn_position: str | None = None,
        softmax: bool = False,
    ) -> None:
        super().__init__()
        check_backbone_args(num_classes, attn, attn_args, attn_position)
        if attn_position is not None:
            raise ValueError("cnn1d has one place for a block (x + attn(x) after the second stage): drop attn_position")
        ins = plan_insertion(attn, attn_args, "branch_end", 1, ("branch_end",), "cnn1d")
        if length % 512:
            raise ValueError(f"length must be a multiple of 512 (stride 16, then five 2x pools), not {length}")
        self.stage1 = conv_stage(in_channels, 16, 64, stride=16, padding=24)
        self.stage2 = conv_stage(16, 32, 3)
        self.attn = ins.make(0, 32) if ins else None
        self.attn_position = ins.position if ins else None  # branch_end: the one place, as x + attn(x)
        self.stage3 = conv_stage(32, 64, 3)
        self.stage4 = conv_stage(64, 64, 3)
        self.stage5 = conv_stage(64, 64, 3)
        self.classifier = nn.Sequential(
            nn.Linear(64 * (length // 512), 100), nn.ReLU(inplace=True), nn.Linear(100, int(num_classes))
        )
        self.softmax = bool(softmax)
        if ins:
            check_insertable(ins, self.attn, 32, rank=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.stage1(x))
        if self.attn is not None:
            x = x + self.attn(x)
        x = self.stage5(self.stage4(self.stage3(x)))
        logits = self.classifier(x.transpose(1, 2).flatten(1))  # channels-last, as Keras flattens
        return logits.softmax(dim=1) if self.softmax else logits

