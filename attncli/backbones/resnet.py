"""Deep Residual Learning for Image Recognition (arXiv 1512.03385): one ResNet, attention pluggable.

The layout is torchvision's (its "ResNet v1.5"): 7x7 stem, max-pool, the stride of a bottleneck in
its 3x3 conv (the paper puts it in the first 1x1), adaptive average pool, fc, and Kaiming
(fan_out) init of every conv; only the last BN of each residual branch starts lower (see
``RESIDUAL_BN_GAMMA``). We follow torchvision, as the official ECA-Net, EPSANet and SimAM codes do,
so their parameter counts are reproduced exactly. With ``groups`` and ``width_per_group`` the same
class is ResNeXt (arXiv 1611.05431), the base of SKNet.

``attn`` puts an attention block into every residual unit, at the position the block declares
(``attncli.blocks.POSITIONS``) or at ``attn_position``:

- ``branch_end``: after the last BN of the branch, before the addition (SE, ECA, CBAM, GAM, CoordAtt);
- ``after_3x3``: right after the (last) 3x3 conv, before its BN (SimAM, as the official SimAM ResNet);
- ``after_3x3_act``: after the bottleneck's 3x3 conv, BN and ReLU (bottlenecks only);
- ``replace_3x3``: in place of the bottleneck's 3x3 conv, built with ``channels``, ``out_channels``
  and ``stride``; the BN + ReLU after it stay unless the block says ``norm_after = False``. So
  ``resnet50 --attn psa`` is EPSANet-50 and ``resnext50_32x4d --attn sk`` is SKNet-50.

Block arguments given as a tuple with one value per stage (``k_size=(3, 5, 5, 7)``) go stage by
stage, unless the block's own default for that argument is a tuple. Named networks (``eca_resnet50``,
``sknet50``...) are rows of :mod:`attncli.zoo` over :func:`resnet` and :func:`resnext`.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Sequence

import torch
from torch import nn

from attncli.backbones.insertion import Insertion, check_backbone_args, check_insertable, plan_insertion

# The last BN of every residual branch starts at gamma = 0.2 instead of 1. Weights here are untrained
# and BN statistics are at their defaults, so with gamma = 1 each block adds a unit-variance branch to
# the trunk and activations grow with depth: a ResNet-152's logits reach 1e8 at 224x224, where
# float32 itself is 1e2 away from float64 and no parity check can pass at honest tolerances. A small
# gamma (the idea of torchvision's zero_init_residual and timm's zero_init_last, Goyal et al. 2017,
# but not zero, so the attention blocks still shape the output) keeps logits near 0.1-1 and the
# float32/float64 gap near 1e-7. Parameter counts are unchanged; trained weights (--weights) replace it.
RESIDUAL_BN_GAMMA = 0.2

_BASIC_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
_BOTTLENECK_LAYERS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride, padding=1, groups=groups, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs; the attention block after bn2 (``branch_end``) or after conv2 (``after_3x3``)."""

    expansion = 1
    positions = ("branch_end", "after_3x3")

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        attn: Insertion | None = None,
        stage: int = 0,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("the basic block (ResNet-18/34) has no groups or width_per_group; use a bottleneck depth")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attn_position = attn.position if attn else None
        self.attn_channels = planes
        self.attn = attn.make(stage, planes) if attn else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.attn_position == "after_3x3":
            out = self.attn(out)
        out = self.bn2(out)
        if self.attn_position == "branch_end":
            out = self.attn(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand; an attention block at any of the four positions."""

    expansion = 4
    positions = ("branch_end", "after_3x3", "after_3x3_act", "replace_3x3")

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        attn: Insertion | None = None,
        stage: int = 0,
    ) -> None:
        super().__init__()
        width = int(planes * base_width / 64) * groups
        out_ch = planes * self.expansion
        self.attn_position = attn.position if attn else None
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        replaced = attn is not None and attn.position == "replace_3x3"
        if replaced:
            # the block is the 3x3 conv: kept as conv2, so the module paths match the official codes
            self.conv2: nn.Module = attn.make(stage, width, out_channels=width, stride=stride)
        else:
            self.conv2 = conv3x3(width, width, stride, groups)
        self.bn2 = nn.BatchNorm2d(width) if not replaced or attn.norm_after else None
        self.conv3 = conv1x1(width, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.attn_channels = out_ch if self.attn_position == "branch_end" else width
        self.attn = attn.make(stage, self.attn_channels) if attn and not replaced else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.attn_position == "after_3x3":
            out = self.attn(out)
        if self.bn2 is not None:
            out = self.relu(self.bn2(out))
        if self.attn_position == "after_3x3_act":
            out = self.attn(out)
        out = self.bn3(self.conv3(out))
        if self.attn_position == "branch_end":
            out = self.attn(out)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet / ResNeXt with an optional attention block in every residual unit."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        groups: int = 1,
        width_per_group: int = 64,
        attn: Any = None,
        attn_args: dict[str, Any] | None = None,
        attn_position: str | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_backbone_args(num_classes, attn, attn_args, attn_position)
        name = "a ResNet with basic blocks (18/34)" if block is BasicBlock else "a bottleneck ResNet"
        ins = plan_insertion(attn, attn_args, attn_position, len(layers), block.positions, name)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        for i, (num_blocks, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            stage = self._make_stage(block, planes, num_blocks, 1 if i == 0 else 2, groups, width_per_group, ins, i)
            self.add_module(f"layer{i + 1}", stage)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, int(num_classes))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            last_bn = m.bn3 if isinstance(m, Bottleneck) else m.bn2 if isinstance(m, BasicBlock) else None
            if last_bn is not None:
                nn.init.constant_(last_bn.weight, RESIDUAL_BN_GAMMA)
        if ins is not None:
            first = self.layer1[0]  # stride 1
            replaced = ins.position == "replace_3x3"
            check_insertable(ins, first.conv2 if replaced else first.attn, first.attn_channels)

    def _make_stage(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        num_blocks: int,
        stride: int,
        groups: int,
        width_per_group: int,
        attn: Insertion | None,
        stage: int,
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        common = dict(groups=groups, base_width=width_per_group, attn=attn, stage=stage)
        blocks = [block(self.inplanes, planes, stride, downsample, **common)]
        self.inplanes = planes * block.expansion
        for _ in range(1, num_blocks):
            blocks.append(block(self.inplanes, planes, **common))
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(
    depth: int,
    num_classes: int = 1000,
    groups: int = 1,
    width_per_group: int = 64,
    attn: Any = None,
    attn_args: dict[str, Any] | None = None,
    attn_position: str | None = None,
    in_channels: int = 3,
) -> ResNet:
    """The ResNet of a given depth (18, 34, 50, 101, 152), with ``attn`` in every residual unit."""
    kwargs: dict[str, Any] = dict(
        groups=groups, width_per_group=width_per_group, attn=attn, attn_args=attn_args,
        attn_position=attn_position, in_channels=in_channels,
    )
    if depth in _BASIC_LAYERS:
        return ResNet(BasicBlock, _BASIC_LAYERS[depth], num_classes, **kwargs)
    if depth in _BOTTLENECK_LAYERS:
        return ResNet(Bottleneck, _BOTTLENECK_LAYERS[depth], num_classes, **kwargs)
    raise ValueError(f"ResNet depth must be one of 18, 34, 50, 101, 152, not {depth}")


def resnext(depth: int, num_classes: int = 1000, groups: int = 32, width_per_group: int = 4, **kwargs: Any) -> ResNet:
    """ResNeXt-{depth} ({groups}x{width_per_group}d): a bottleneck ResNet with grouped 3x3 convs."""
    if depth not in _BOTTLENECK_LAYERS:
        raise ValueError(f"ResNeXt depth must be one of 50, 101, 152, not {depth}")
    return resnet(depth, num_classes, groups=groups, width_per_group=width_per_group, **kwargs)
