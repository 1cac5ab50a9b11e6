"""Deep Residual Learning for Image Recognition (arXiv 1512.03385): one ResNet, attention pluggable.

The layout is torchvision's (its "ResNet v1.5"): 7x7 stem, max-pool, the stride of a bottleneck in
its 3x3 conv (the paper puts it in the first 1x1), adaptive average pool, fc, and Kaiming
(fan_out) init of every conv; only the last BN of each residual branch starts lower (see
``RESIDUAL_BN_GAMMA``). We follow torchvision, as the official ECA-Net and EPSANet codes do,
so their parameter counts are reproduced exactly.

Two things plug in, by registry name:

- ``attn``: a block put after the last BN of the residual branch, before the addition, where ECA,
  SE, CBAM, GAM, SimAM and coordinate attention put theirs. Block arguments given as a tuple with
  one value per stage (``k_size=(3, 5, 5, 7)``) go stage by stage, unless the block's own default
  for that argument is a tuple.
- ``mid_block``: a module replacing the bottleneck's 3x3 conv, built with ``channels``,
  ``out_channels`` and ``stride``; SKNet's SK unit and EPSANet's PSA module. ``mid_norm`` says
  whether ``bn2`` + ReLU follow it: the official EPSANet code keeps them after PSA, while an SK unit
  ends in its branches' own BN + ReLU and has none after it.

With ``groups`` and ``width_per_group`` the same class is ResNeXt (arXiv 1611.05431), the base of SKNet.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import torch
from torch import nn

from attncli import registry
from attncli.blocks import make_block
from attncli.registry import register

_PAPER = ("Deep Residual Learning for Image Recognition", "1512.03385")
_ECA_PAPER = ("ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks", "1910.03151")
_SE_PAPER = ("Squeeze-and-Excitation Networks", "1709.01507")
_CBAM_PAPER = ("CBAM: Convolutional Block Attention Module", "1807.06521")
_GAM_PAPER = ("Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions", "2112.05561")
_SIMAM_PAPER = ("SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks (ICML 2021)",)
_COORDATT_PAPER = ("Coordinate Attention for Efficient Mobile Network Design", "2103.02907")
_INPUT = (1, 3, 224, 224)

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


def stage_block_args(block: str, args: dict[str, Any] | None, num_stages: int) -> list[dict[str, Any]]:
    """Split a block's arguments into one dict per stage.

    A tuple (or list) with one value per stage is spread over the stages, unless the block's own
    default for that argument is a tuple (PSA's ``kernels``): then it is passed whole to every stage.
    """
    args = dict(args or {})
    try:
        params = inspect.signature(registry.get(block).load_factory()).parameters
    except (TypeError, ValueError):
        params = {}
    stages: list[dict[str, Any]] = [{} for _ in range(num_stages)]
    for key, value in args.items():
        if isinstance(value, list):
            value = tuple(value)
        default = params[key].default if key in params else None
        if isinstance(value, tuple) and not isinstance(default, tuple):
            if len(value) != num_stages:
                raise ValueError(
                    f"{block} argument {key}={value} has {len(value)} values: give one, or one per stage ({num_stages})"
                )
            for stage, item in zip(stages, value):
                stage[key] = item
        else:
            for stage in stages:
                stage[key] = value
    return stages


def check_backbone_args(num_classes: int, attn: str | None, attn_args: dict[str, Any] | None) -> None:
    """The arguments every backbone shares: a positive class count, block arguments only with a block."""
    if attn_args and not attn:
        raise ValueError(f"attention arguments {sorted(attn_args)} were given without an attention block (attn)")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be at least 1, not {num_classes}")


def check_insertable(block: str, module: nn.Module, channels: int, rank: int = 4) -> None:
    """Refuse a block that cannot sit inside a residual branch: wrong rank, or output not shaped like its input."""
    spec = registry.get(block)
    if len(spec.input_shape) != rank:
        raise ValueError(
            f"{spec.name} cannot go into this backbone: it is registered for rank-{len(spec.input_shape)} inputs"
            f" {tuple(spec.input_shape)}, and the backbone's features have rank {rank}"
        )
    probe = torch.zeros(2, channels, *([4] * (rank - 2)))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(probe)
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or out.shape != probe.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"{spec.name} cannot go into a residual branch: for an input of shape {tuple(probe.shape)} it returns"
            f" {got}, and an inserted block must return the reweighted input, shaped like its input"
        )


def conv3x3(in_ch: int, out_ch: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride, padding=1, groups=groups, bias=False)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs; the attention block after bn2."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        attn: str | None = None,
        attn_args: dict[str, Any] | None = None,
        mid_block: str | None = None,
        mid_args: dict[str, Any] | None = None,
        mid_norm: bool = True,
    ) -> None:
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("the basic block (ResNet-18/34) has no groups or width_per_group; use a bottleneck depth")
        if mid_block is not None:
            raise ValueError(f"mid_block={mid_block!r} replaces a bottleneck's 3x3 conv; use depth 50, 101 or 152")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attn = make_block(attn, channels=planes, **(attn_args or {})) if attn else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.attn is not None:
            out = self.attn(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride here, or a ``mid_block``), 1x1 expand; the attention block after bn3."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        attn: str | None = None,
        attn_args: dict[str, Any] | None = None,
        mid_block: str | None = None,
        mid_args: dict[str, Any] | None = None,
        mid_norm: bool = True,
    ) -> None:
        super().__init__()
        width = int(planes * base_width / 64) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        if mid_block is None:
            self.conv2: nn.Module = conv3x3(width, width, stride, groups)
        else:
            self.conv2 = make_block(mid_block, channels=width, out_channels=width, stride=stride, **(mid_args or {}))
        self.bn2 = nn.BatchNorm2d(width) if mid_norm else None
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.attn = make_block(attn, channels=planes * self.expansion, **(attn_args or {})) if attn else None
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.conv2(out)
        if self.bn2 is not None:
            out = self.relu(self.bn2(out))
        out = self.bn3(self.conv3(out))
        if self.attn is not None:
            out = self.attn(out)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet / ResNeXt with an optional attention block per residual branch and a pluggable middle conv."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        groups: int = 1,
        width_per_group: int = 64,
        attn: str | None = None,
        attn_args: dict[str, Any] | None = None,
        mid_block: str | None = None,
        mid_args: dict[str, Any] | None = None,
        mid_norm: bool = True,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        check_backbone_args(num_classes, attn, attn_args)
        stage_attn = stage_block_args(attn, attn_args, len(layers)) if attn else [{}] * len(layers)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        common = dict(
            groups=groups, base_width=width_per_group, mid_block=mid_block, mid_args=mid_args, mid_norm=mid_norm
        )
        for i, (num_blocks, planes) in enumerate(zip(layers, (64, 128, 256, 512))):
            stage = self._make_stage(block, planes, num_blocks, 1 if i == 0 else 2, attn, stage_attn[i], common)
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
        if attn:
            check_insertable(attn, self.layer1[0].attn, 64 * block.expansion)

    def _make_stage(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        num_blocks: int,
        stride: int,
        attn: str | None,
        attn_args: dict[str, Any],
        common: dict[str, Any],
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        blocks = [block(self.inplanes, planes, stride, downsample, attn=attn, attn_args=attn_args, **common)]
        self.inplanes = planes * block.expansion
        for _ in range(1, num_blocks):
            blocks.append(block(self.inplanes, planes, attn=attn, attn_args=attn_args, **common))
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet(depth: int, num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """The ResNet of a given depth (18, 34, 50, 101, 152); ``kwargs`` go to :class:`ResNet`."""
    if depth in _BASIC_LAYERS:
        return ResNet(BasicBlock, _BASIC_LAYERS[depth], num_classes, **kwargs)
    if depth in _BOTTLENECK_LAYERS:
        return ResNet(Bottleneck, _BOTTLENECK_LAYERS[depth], num_classes, **kwargs)
    raise ValueError(f"ResNet depth must be one of 18, 34, 50, 101, 152, not {depth}")


# ---- plain ResNets: any registry block goes in with --attn ----


@register(
    "resnet18",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000},
    takes_attn=True,
    reference={
        "source": "torchvision model documentation (its GFLOPS are multiply-adds)",
        "units": "decimal",
        "params_m": 11.69,
        "macs_g": 1.81,
        "exact_params": 11689512,
    },
)
def resnet18(num_classes: int = 1000, attn: str | None = None, attn_args: dict[str, Any] | None = None) -> ResNet:
    """ResNet-18 (basic blocks 2-2-2-2); --attn NAME inserts a block after bn2 of every block."""
    return resnet(18, num_classes, attn=attn, attn_args=attn_args)


@register(
    "resnet34",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000},
    takes_attn=True,
    reference={
        "source": "torchvision model documentation (its GFLOPS are multiply-adds)",
        "units": "decimal",
        "params_m": 21.8,
        "macs_g": 3.66,
        "exact_params": 21797672,
    },
)
def resnet34(num_classes: int = 1000, attn: str | None = None, attn_args: dict[str, Any] | None = None) -> ResNet:
    """ResNet-34 (basic blocks 3-4-6-3); --attn NAME inserts a block after bn2 of every block."""
    return resnet(34, num_classes, attn=attn, attn_args=attn_args)


@register(
    "resnet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000},
    takes_attn=True,
    reference={
        "source": "ECA-Net (arXiv 1910.03151), ImageNet results, counted with thop; exact count from torchvision",
        "units": "binary",
        "params_m": 24.37,
        "macs_g": 3.86,
        "exact_params": 25557032,
    },
)
def resnet50(num_classes: int = 1000, attn: str | None = None, attn_args: dict[str, Any] | None = None) -> ResNet:
    """ResNet-50 (bottlenecks 3-4-6-3); --attn NAME inserts a block after bn3 of every bottleneck."""
    return resnet(50, num_classes, attn=attn, attn_args=attn_args)


@register(
    "resnet101",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000},
    takes_attn=True,
    reference={
        "source": "torchvision model documentation (its GFLOPS are multiply-adds)",
        "units": "decimal",
        "params_m": 44.55,
        "macs_g": 7.8,
        "exact_params": 44549160,
    },
)
def resnet101(num_classes: int = 1000, attn: str | None = None, attn_args: dict[str, Any] | None = None) -> ResNet:
    """ResNet-101 (bottlenecks 3-4-23-3); --attn NAME inserts a block after bn3 of every bottleneck."""
    return resnet(101, num_classes, attn=attn, attn_args=attn_args)


@register(
    "resnet152",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000},
    takes_attn=True,
    reference={
        "source": "torchvision model documentation (its GFLOPS are multiply-adds)",
        "units": "decimal",
        "params_m": 60.19,
        "macs_g": 11.51,
        "exact_params": 60192808,
    },
)
def resnet152(num_classes: int = 1000, attn: str | None = None, attn_args: dict[str, Any] | None = None) -> ResNet:
    """ResNet-152 (bottlenecks 3-8-36-3); --attn NAME inserts a block after bn3 of every bottleneck."""
    return resnet(152, num_classes, attn=attn, attn_args=attn_args)


# ---- ECA-Net: the released models' kernel sizes per stage ----
# The official code's default is k = 3 everywhere, and the paper's adaptive rule psi(C) would give
# (5, 5, 5, 7) for the bottleneck widths 256..2048; the released weights are named by their sizes
# (ECANet README: eca_resnet50_k3557, eca_resnet101_k3357, eca_resnet152_k3357), and those are the
# defaults here. ResNet-18/34 use (3, 5, 7, 7) and (3, 3, 5, 7).


@register(
    "eca_resnet18",
    kind="backbone",
    input_shape=_INPUT,
    paper=_ECA_PAPER,
    defaults={"num_classes": 1000, "k_size": (3, 5, 7, 7)},
    baseline="resnet18",
    reference={
        "source": "ECA-Net (arXiv 1910.03151), ImageNet results, counted with thop",
        "units": "binary",
        "params_m": 11.15,
        "macs_g": 1.7,
    },
)
def eca_resnet18(num_classes: int = 1000, k_size: int | Sequence[int] = (3, 5, 7, 7)) -> ResNet:
    """ECA-ResNet-18: ECA after bn2 of every basic block, k = 3, 5, 7, 7 by stage (released model).

    The official factory defaults to k = 3 in every stage; the released weights use (3, 5, 7, 7),
    which we follow.
    """
    return resnet(18, num_classes, attn="eca", attn_args={"k_size": k_size})


@register(
    "eca_resnet34",
    kind="backbone",
    input_shape=_INPUT,
    paper=_ECA_PAPER,
    defaults={"num_classes": 1000, "k_size": (3, 3, 5, 7)},
    baseline="resnet34",
    reference={
        "source": "ECA-Net (arXiv 1910.03151), ImageNet results, counted with thop",
        "units": "binary",
        "params_m": 20.79,
        "macs_g": 3.43,
    },
)
def eca_resnet34(num_classes: int = 1000, k_size: int | Sequence[int] = (3, 3, 5, 7)) -> ResNet:
    """ECA-ResNet-34: ECA after bn2 of every basic block, k = 3, 3, 5, 7 by stage (released model)."""
    return resnet(34, num_classes, attn="eca", attn_args={"k_size": k_size})


@register(
    "eca_resnet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_ECA_PAPER,
    defaults={"num_classes": 1000, "k_size": (3, 5, 5, 7)},
    baseline="resnet50",
    reference={
        "source": "ECA-Net (arXiv 1910.03151), thop; exact count: official code with the released kernel sizes",
        "units": "binary",
        "params_m": 24.37,
        "macs_g": 3.86,
        "exact_params": 25557112,
    },
)
def eca_resnet50(num_classes: int = 1000, k_size: int | Sequence[int] = (3, 5, 5, 7)) -> ResNet:
    """ECA-ResNet-50: ECA after bn3 of every bottleneck, k = 3, 5, 5, 7 by stage (released model)."""
    return resnet(50, num_classes, attn="eca", attn_args={"k_size": k_size})


@register(
    "eca_resnet101",
    kind="backbone",
    input_shape=_INPUT,
    paper=_ECA_PAPER,
    defaults={"num_classes": 1000, "k_size": (3, 3, 5, 7)},
    baseline="resnet101",
    reference={
        "source": "ECA-Net (arXiv 1910.03151), thop; exact count: official code with the released kernel sizes",
        "units": "binary",
        "params_m": 42.49,
        "macs_g": 7.35,
        "exact_params": 44549317,
    },
)
def eca_resnet101(num_classes: int = 1000, k_size: int | Sequence[int] = (3, 3, 5, 7)) -> ResNet:
    """ECA-ResNet-101: ECA after bn3 of every bottleneck, k = 3, 3, 5, 7 by stage (released model)."""
    return resnet(101, num_classes, attn="eca", attn_args={"k_size": k_size})


@register(
    "eca_resnet152",
    kind="backbone",
    input_shape=_INPUT,
    paper=_ECA_PAPER,
    defaults={"num_classes": 1000, "k_size": (3, 3, 5, 7)},
    baseline="resnet152",
    reference={
        "source": "ECA-Net (arXiv 1910.03151), thop; exact count: official code with the released kernel sizes",
        "units": "binary",
        "params_m": 57.4,
        "macs_g": 10.83,
        "exact_params": 60193042,
    },
)
def eca_resnet152(num_classes: int = 1000, k_size: int | Sequence[int] = (3, 3, 5, 7)) -> ResNet:
    """ECA-ResNet-152: ECA after bn3 of every bottleneck, k = 3, 3, 5, 7 by stage (released model)."""
    return resnet(152, num_classes, attn="eca", attn_args={"k_size": k_size})


# ---- SE, CBAM, GAM, SimAM, coordinate attention ----


@register(
    "se_resnet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_SE_PAPER,
    defaults={"num_classes": 1000, "reduction": 16},
    baseline="resnet50",
    reference={
        "source": "ECA-Net (arXiv 1910.03151), ImageNet results, counted with thop",
        "units": "binary",
        "params_m": 26.77,
        "macs_g": 3.87,
    },
)
def se_resnet50(num_classes: int = 1000, reduction: int = 16) -> ResNet:
    """SE-ResNet-50: squeeze-excitation (r=16, bias-free fcs) after bn3 of every bottleneck."""
    return resnet(50, num_classes, attn="se", attn_args={"reduction": reduction})


@register(
    "se_resnet101",
    kind="backbone",
    input_shape=_INPUT,
    paper=_SE_PAPER,
    defaults={"num_classes": 1000, "reduction": 16},
    baseline="resnet101",
)
def se_resnet101(num_classes: int = 1000, reduction: int = 16) -> ResNet:
    """SE-ResNet-101: squeeze-excitation (r=16, bias-free fcs) after bn3 of every bottleneck."""
    return resnet(101, num_classes, attn="se", attn_args={"reduction": reduction})


@register(
    "se_resnet152",
    kind="backbone",
    input_shape=_INPUT,
    paper=_SE_PAPER,
    defaults={"num_classes": 1000, "reduction": 16},
    baseline="resnet152",
)
def se_resnet152(num_classes: int = 1000, reduction: int = 16) -> ResNet:
    """SE-ResNet-152: squeeze-excitation (r=16, bias-free fcs) after bn3 of every bottleneck."""
    return resnet(152, num_classes, attn="se", attn_args={"reduction": reduction})


@register(
    "cbam_resnet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_CBAM_PAPER,
    defaults={"num_classes": 1000, "reduction": 16, "kernel_size": 7},
    baseline="resnet50",
    reference={
        "source": "ECA-Net (arXiv 1910.03151), ImageNet results, counted with thop",
        "units": "binary",
        "params_m": 26.77,
        "macs_g": 3.87,
    },
)
def cbam_resnet50(num_classes: int = 1000, reduction: int = 16, kernel_size: int = 7) -> ResNet:
    """CBAM-ResNet-50: channel then 7x7 spatial attention after bn3 of every bottleneck."""
    return resnet(50, num_classes, attn="cbam", attn_args={"reduction": reduction, "kernel_size": kernel_size})


@register(
    "cbam_resnet101",
    kind="backbone",
    input_shape=_INPUT,
    paper=_CBAM_PAPER,
    defaults={"num_classes": 1000, "reduction": 16, "kernel_size": 7},
    baseline="resnet101",
)
def cbam_resnet101(num_classes: int = 1000, reduction: int = 16, kernel_size: int = 7) -> ResNet:
    """CBAM-ResNet-101: channel then 7x7 spatial attention after bn3 of every bottleneck."""
    return resnet(101, num_classes, attn="cbam", attn_args={"reduction": reduction, "kernel_size": kernel_size})


@register(
    "gam_resnet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_GAM_PAPER,
    defaults={"num_classes": 1000, "rate": 4, "groups": 4},
    baseline="resnet50",
)
def gam_resnet50(num_classes: int = 1000, rate: int = 4, groups: int = 4) -> ResNet:
    """GAM-ResNet-50: GAM after bn3 of every bottleneck, its 7x7 convs grouped (4) with channel shuffle.

    The paper uses group convolution with channel shuffle in the spatial submodule of ResNet-50 to
    keep the parameters in check, without giving the group count; we take groups = rate = 4, as the
    ``gam`` block's docstring does. Even so GAM is heavy: a pair of 7x7 convs on up to 2048
    channels in every block makes 158.9M parameters, 6.2 times the plain ResNet-50.
    """
    return resnet(50, num_classes, attn="gam", attn_args={"rate": rate, "groups": groups})


@register(
    "simam_resnet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_SIMAM_PAPER,
    defaults={"num_classes": 1000, "e_lambda": 1e-4},
    baseline="resnet50",
)
def simam_resnet50(num_classes: int = 1000, e_lambda: float = 1e-4) -> ResNet:
    """SimAM-ResNet-50: parameter-free SimAM after bn3 of every bottleneck (lambda 1e-4)."""
    return resnet(50, num_classes, attn="simam", attn_args={"e_lambda": e_lambda})


@register(
    "coordatt_resnet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_COORDATT_PAPER,
    defaults={"num_classes": 1000, "reduction": 32},
    baseline="resnet50",
)
def coordatt_resnet50(num_classes: int = 1000, reduction: int = 32) -> ResNet:
    """CoordAtt-ResNet-50: coordinate attention (mip = max(8, C/32)) after bn3 of every bottleneck."""
    return resnet(50, num_classes, attn="coordatt", attn_args={"reduction": reduction})
