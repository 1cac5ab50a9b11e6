"""Selective Kernel Networks (arXiv 1903.06586): SKNet-50/101 as configurations of the one ResNet.

Paper, Table 1: ResNeXt (32x4d widths, 128..1024 in the middle of each bottleneck) whose grouped
3x3 conv is replaced by an SK unit with M=2 branches, G=32 groups, r=16 and L=32. The paper says
little more; we follow the official Caffe model (github.com/implus/SKNet, sknet50.prototxt): the SK
unit carries the stride (in both branches), the second branch is a 3x3 conv with dilation 2 for the
paper's 5x5, the fuse fc has no bias and is followed by BN + ReLU, the branch fcs have no bias, and
the weighted sum goes straight into the last 1x1 conv, so the bottleneck has no ``bn2``.
ResNeXt-50/101 (32x4d) are registered as the plain counterparts.
"""

from __future__ import annotations

from attncli.backbones.resnet import ResNet, resnet
from attncli.registry import register

_SK_PAPER = ("Selective Kernel Networks", "1903.06586")
_RESNEXT_PAPER = ("Aggregated Residual Transformations for Deep Neural Networks", "1611.05431")
_INPUT = (1, 3, 224, 224)


def sknet(depth: int, num_classes: int = 1000, M: int = 2, G: int = 32, r: int = 16, L: int = 32) -> ResNet:
    """ResNeXt-{depth} 32x4d with SK units in place of the grouped 3x3 convs."""
    return resnet(
        depth,
        num_classes,
        groups=32,
        width_per_group=4,
        mid_block="sk",
        mid_args={"M": M, "G": G, "r": r, "L": L, "fc_bias": False},
        mid_norm=False,
    )


@register(
    "sknet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_SK_PAPER,
    defaults={"num_classes": 1000, "M": 2, "G": 32, "r": 16, "L": 32},
    aliases=("sknet",),
    baseline="resnext50_32x4d",
    reference={
        "source": "SKNet (arXiv 1903.06586), ImageNet results",
        "units": "decimal",
        "params_m": 27.5,
        "macs_g": 4.47,
    },
)
def sknet50(num_classes: int = 1000, M: int = 2, G: int = 32, r: int = 16, L: int = 32) -> ResNet:
    """SKNet-50: ResNeXt-50 (32x4d) with SK[M=2, G=32, r=16, L=32] units."""
    return sknet(50, num_classes, M, G, r, L)


@register(
    "sknet101",
    kind="backbone",
    input_shape=_INPUT,
    paper=_SK_PAPER,
    defaults={"num_classes": 1000, "M": 2, "G": 32, "r": 16, "L": 32},
    baseline="resnext101_32x4d",
    reference={
        "source": "SKNet (arXiv 1903.06586), ImageNet results",
        "units": "decimal",
        "params_m": 48.9,
        "macs_g": 8.46,
    },
)
def sknet101(num_classes: int = 1000, M: int = 2, G: int = 32, r: int = 16, L: int = 32) -> ResNet:
    """SKNet-101: ResNeXt-101 (32x4d) with SK[M=2, G=32, r=16, L=32] units."""
    return sknet(101, num_classes, M, G, r, L)


@register(
    "resnext50_32x4d",
    kind="backbone",
    input_shape=_INPUT,
    paper=_RESNEXT_PAPER,
    defaults={"num_classes": 1000},
    reference={
        "source": "torchvision model documentation (its GFLOPS are multiply-adds)",
        "units": "decimal",
        "params_m": 25.03,
        "macs_g": 4.23,
        "exact_params": 25028904,
    },
)
def resnext50_32x4d(num_classes: int = 1000) -> ResNet:
    """ResNeXt-50 (32x4d): 32 groups of width 4 in the 3x3 conv; the plain counterpart of SKNet-50."""
    return resnet(50, num_classes, groups=32, width_per_group=4)


@register(
    "resnext101_32x4d",
    kind="backbone",
    input_shape=_INPUT,
    paper=_RESNEXT_PAPER,
    defaults={"num_classes": 1000},
)
def resnext101_32x4d(num_classes: int = 1000) -> ResNet:
    """ResNeXt-101 (32x4d): 32 groups of width 4 in the 3x3 conv; the plain counterpart of SKNet-101."""
    return resnet(101, num_classes, groups=32, width_per_group=4)
