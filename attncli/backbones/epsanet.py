"""EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural Network (arXiv 2105.14447).

EPSANet-50/101 as configurations of the one ResNet: the PSA module (kernels 3, 5, 7, 9; groups
1, 4, 8, 16) replaces the bottleneck's 3x3 conv and carries its stride. We follow the official code
(github.com/murufeng/EPSANet, models/epsanet.py): it keeps ``bn2`` + ReLU after PSA, as a plain
bottleneck has after its 3x3 conv, and that is what gives its exact counts (22,561,715 and
38,900,279); the rest is the torchvision layout, and its Gaussian init is the same Kaiming
(fan_out) init. The official code defines only these "small" networks. The paper's "large"
variants (group size 32 in every branch, 27.90M and 49.59M published) are not registered: with the
ResNet widths a 32-group conv cannot produce the 16-channel branches of the first stage, and no
width we tried (ResNet or ResNeXt 32x4d) reproduces the published counts.
"""

from __future__ import annotations

from typing import Sequence

from attncli.backbones.resnet import ResNet, resnet
from attncli.registry import register

_PAPER = ("EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural Network", "2105.14447")
_INPUT = (1, 3, 224, 224)


def epsanet(
    depth: int,
    num_classes: int = 1000,
    kernels: Sequence[int] = (3, 5, 7, 9),
    groups: Sequence[int] = (1, 4, 8, 16),
) -> ResNet:
    """ResNet-{depth} with a PSA module (kernels, groups per branch) in place of each 3x3 conv."""
    psa_args = {"kernels": tuple(kernels), "groups": tuple(groups)}
    return resnet(depth, num_classes, mid_block="psa", mid_args=psa_args, mid_norm=True)


@register(
    "epsanet50",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000, "kernels": (3, 5, 7, 9), "groups": (1, 4, 8, 16)},
    aliases=("epsanet50_small",),
    baseline="resnet50",
    reference={
        "source": "EPSANet (arXiv 2105.14447), ImageNet results; exact count from the official code",
        "units": "decimal",
        "params_m": 22.56,
        "macs_g": 3.62,
        "exact_params": 22561715,
    },
)
def epsanet50(
    num_classes: int = 1000, kernels: Sequence[int] = (3, 5, 7, 9), groups: Sequence[int] = (1, 4, 8, 16)
) -> ResNet:
    """EPSANet-50 (small): PSA with kernels 3, 5, 7, 9 and groups 1, 4, 8, 16 in every bottleneck."""
    return epsanet(50, num_classes, kernels, groups)


@register(
    "epsanet101",
    kind="backbone",
    input_shape=_INPUT,
    paper=_PAPER,
    defaults={"num_classes": 1000, "kernels": (3, 5, 7, 9), "groups": (1, 4, 8, 16)},
    baseline="resnet101",
    reference={
        "source": "EPSANet (arXiv 2105.14447), ImageNet results; exact count from the official code",
        "units": "decimal",
        "params_m": 38.9,
        "macs_g": 6.82,
        "exact_params": 38900279,
    },
)
def epsanet101(
    num_classes: int = 1000, kernels: Sequence[int] = (3, 5, 7, 9), groups: Sequence[int] = (1, 4, 8, 16)
) -> ResNet:
    """EPSANet-101 (small): PSA with kernels 3, 5, 7, 9 and groups 1, 4, 8, 16 in every bottleneck."""
    return epsanet(101, num_classes, kernels, groups)
