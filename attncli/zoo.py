"""Every named model attncli builds, as data: one row per model over a few generic factories.

A row says which factory builds the model (``target``, a ``module:qualname`` string, imported only
when the model is built), the arguments it is built with, its default input, the paper, the figures
the paper or the official code published, its plain baseline and its aliases. Nothing here imports
torch, so ``attncli list`` reads this table in milliseconds.

The factories are the blocks (``attncli/blocks``) and four generic backbones: ``resnet``,
``resnext`` (both ``attncli/backbones/resnet.py``), ``mobilenetv2`` and ``cnn1d``. A named attention
network is its plain backbone plus a block: ``eca_resnet50`` is the row ``resnet50`` with ``attn="eca"``
and ``attn.k_size=(3, 5, 5, 7)``, and builds through the same code as
``attncli build resnet50 --attn eca -p attn.k_size=3,5,5,7`` (``twin_of`` below says how).

Argument keys: ``attn.KEY`` goes to the inserted block (a tuple with one value per stage is spread
over the stages); ``fixed`` arguments define the architecture (depth, groups) and cannot be changed
with ``-p``; ``defaults`` can.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

KINDS = ("block", "backbone")
UNITS = ("binary", "decimal")
# How a published MACs figure was counted; attncli/conventions.py holds each one's rule.
CONVENTIONS = ("attncli", "thop-2019", "conv-linear")
ATTN_PREFIX = "attn."  # -p attn.reduction=8 goes to the block that --attn inserts


@dataclass(frozen=True)
class Paper:
    title: str
    arxiv: str | None = None

    def __str__(self) -> str:
        return f"{self.title} (arXiv {self.arxiv})" if self.arxiv else self.title


@dataclass(frozen=True)
class Reference:
    """Figures a paper or official repository published for a model, as it prints them.

    ``units`` is ``"binary"`` when the source divides by 2^20 (params) and 2^30 (MACs; 2^20 for a
    figure printed in M), as ECA-Net's tables (thop) do, or ``"decimal"`` for 10^6 / 10^9.
    The MACs figure is ``macs_g`` (printed in G) or ``macs_m`` (printed in M), never both: ECA-Net
    prints MobileNetV2 figures in M, and 319.9 binary M is 319.9 x 2^20, not 0.3199 x 2^30.
    ``convention`` says what the figure adds up (attncli/conventions.py): ``"conv-linear"``,
    multiply-adds of convolutions and linears; ``"thop-2019"``, thop's 2019 module hooks (ECA-Net);
    ``"attncli"``, attncli's own MACs.
    """

    source: str
    units: str = "decimal"
    params_m: float | None = None
    macs_g: float | None = None
    exact_params: int | None = None
    convention: str = "attncli"
    macs_m: float | None = None

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise ValueError(f"{self.source}: units must be one of {UNITS}, not {self.units!r}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"{self.source}: convention must be one of {CONVENTIONS}, not {self.convention!r}")
        if self.macs_g is not None and self.macs_m is not None:
            raise ValueError(f"{self.source}: give the MACs figure once, as macs_g or macs_m")

    @property
    def macs_scale(self) -> str:
        """"M" or "G": the prefix the source prints its MACs figure with."""
        return "M" if self.macs_m is not None else "G"

    @property
    def macs(self) -> float | None:
        """The MACs figure as printed, in ``macs_scale`` of ``units``."""
        return self.macs_m if self.macs_m is not None else self.macs_g

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "units": self.units,
            "params_m": self.params_m,
            "macs_g": self.macs_g,
            "macs_m": self.macs_m,
            "exact_params": self.exact_params,
            "convention": self.convention,
        }


@dataclass(frozen=True)
class Spec:
    """One buildable thing: a name, how to build it, and what to feed it."""

    name: str
    kind: str
    target: str  # "package.module:qualname" of the factory (a class or a function)
    input_shape: tuple[int, ...]
    paper: Paper
    defaults: dict[str, Any] = field(default_factory=dict)  # arguments -p may change
    fixed: dict[str, Any] = field(default_factory=dict)  # arguments that make the architecture
    aliases: tuple[str, ...] = ()
    reference: Reference | None = None
    baseline: str | None = None  # registry name of the plain counterpart, for overhead figures
    takes_attn: bool = False  # a backbone that accepts --attn
    attn: str | None = None  # the block this named network inserts into its backbone
    base: str | None = None  # the plain row this one is built on (its generic twin is base + attn + args)
    summary: str = ""
    notes: tuple[str, ...] = ()  # what a reader should know: where the official code and the paper differ
    attn_note: str = ""  # for a block: what to know when it goes into a backbone with --attn

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.target}: kind must be one of {KINDS}, not {self.kind!r}")

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]

    def load_factory(self) -> Any:
        """Import the module that defines the factory (this imports torch) and return it."""
        import importlib

        module_name, qualname = self.target.split(":", 1)
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "paper": {"title": self.paper.title, "arxiv": self.paper.arxiv},
            "aliases": list(self.aliases),
            "defaults": {k: list(v) if isinstance(v, tuple) else v for k, v in self.defaults.items()},
            "reference": self.reference.as_dict() if self.reference else None,
            "baseline": self.baseline,
            "takes_attn": self.takes_attn,
            "attn": self.attn,
            "base": self.base,
            "summary": self.summary,
            "notes": list(self.notes),
        }


def twin_of(spec: Spec, base: Spec) -> dict[str, Any]:
    """The generic build that gives ``spec``: ``{"model", "attn", "params"}`` over its base row."""
    params = {k: v for k, v in spec.defaults.items() if base.defaults.get(k, object()) != v}
    params.update({k: v for k, v in spec.fixed.items() if base.fixed.get(k, object()) != v})
    return {"model": base.name, "attn": spec.attn, "params": params}


# ---- papers, each written once ----

PAPERS = {
    "resnet": Paper("Deep Residual Learning for Image Recognition", "1512.03385"),
    "resnext": Paper("Aggregated Residual Transformations for Deep Neural Networks", "1611.05431"),
    "mobilenetv2": Paper("MobileNetV2: Inverted Residuals and Linear Bottlenecks", "1801.04381"),
    "eca": Paper("ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks", "1910.03151"),
    "se": Paper("Squeeze-and-Excitation Networks", "1709.01507"),
    "cbam": Paper("CBAM: Convolutional Block Attention Module", "1807.06521"),
    "sk": Paper("Selective Kernel Networks", "1903.06586"),
    "epsanet": Paper(
        "EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural Network", "2105.14447"
    ),
    "gam": Paper(
        "Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions", "2112.05561"
    ),
    "simam": Paper(
        "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks (ICML 2021)"
    ),
    "coordatt": Paper("Coordinate Attention for Efficient Mobile Network Design", "2103.02907"),
}

_IMAGE = (1, 3, 224, 224)
_FEATURES = (1, 64, 56, 56)
_TORCHVISION = "torchvision model documentation (its GFLOPS are multiply-adds)"
_ECA_THOP = "ECA-Net (arXiv 1910.03151), ImageNet results, counted with thop"
_ECA_RELEASED = "ECA-Net (arXiv 1910.03151), thop; exact count: official code with the released kernel sizes"

# ---- attention blocks: the block classes are the factories ----

BLOCKS = (
    Spec(
        "eca", "block", "attncli.blocks.eca:ECA", _FEATURES, PAPERS["eca"], {"channels": 64},
        aliases=("eca_layer",),
        summary="ECA: one k-tap 1-D convolution across the pooled channel descriptor, shared by all channels.",
        attn_note="with --attn, k comes from the paper's rule psi(C) for each stage's channel count; the"
        " released ECA-ResNets use fixed sizes per stage (eca_resnet50: -p attn.k_size=3,5,5,7)",
    ),
    Spec(
        "eca1d", "block", "attncli.blocks.eca:ECA", (1, 32, 128), PAPERS["eca"], {"channels": 32},
        summary="ECA for 1-D signals (N, C, L), as in the signal-processing CNN: k from the adaptive rule.",
    ),
    Spec(
        "eca_ns", "block", "attncli.blocks.eca:ECANS", _FEATURES, PAPERS["eca"], {"channels": 64},
        summary="ECA-NS, the per-channel variant: each channel has its own k weights (k*C parameters).",
    ),
    Spec(
        "se", "block", "attncli.blocks.se:SE", _FEATURES, PAPERS["se"], {"channels": 64, "reduction": 16},
        aliases=("senet", "squeeze_excite"),
        summary="Squeeze-and-Excitation: a bottleneck MLP on the pooled descriptor gates each channel.",
    ),
    Spec(
        "se_weight", "block", "attncli.blocks.se:SEWeight", _FEATURES, PAPERS["epsanet"],
        {"channels": 64, "reduction": 16}, aliases=("seweight",),
        summary="EPSANet's SEWeightModule: returns sigmoid channel weights of shape (N, C, 1, 1).",
    ),
    Spec(
        "cbam", "block", "attncli.blocks.cbam:CBAM", _FEATURES, PAPERS["cbam"],
        {"channels": 64, "reduction": 16, "kernel_size": 7},
        summary="CBAM: channel attention, then spatial attention (7x7 by default).",
    ),
    Spec(
        "coordatt", "block", "attncli.blocks.coordatt:CoordAtt", _FEATURES, PAPERS["coordatt"],
        {"channels": 64, "reduction": 32}, aliases=("coord_att", "ca"),
        summary="Coordinate Attention: direction-aware pooling along H and W, one gate per direction.",
    ),
    Spec(
        "gam", "block", "attncli.blocks.gam:GAM", _FEATURES, PAPERS["gam"], {"channels": 64, "reduction": 4},
        aliases=("gam_attention",),
        summary="GAM: a per-position channel MLP then a 7x7 spatial attention, both as sigmoid gates.",
        attn_note="with --attn, GAM's 7x7 convs are ungrouped; the paper groups them with a channel shuffle"
        " in ResNet-50 (gam_resnet50: -p attn.groups=4)",
    ),
    Spec(
        "psa", "block", "attncli.blocks.psa:PSA", _FEATURES, PAPERS["epsanet"], {"channels": 64},
        aliases=("psa_module", "epsa"),
        summary="Pyramid Squeeze Attention: multi-scale grouped convs re-weighted by a softmax over scales.",
    ),
    Spec(
        "sk", "block", "attncli.blocks.sk:SelectiveKernel", _FEATURES, PAPERS["sk"],
        {"channels": 64, "M": 2, "G": 32, "reduction": 16, "L": 32}, aliases=("sk_unit", "selective_kernel"),
        summary="Selective Kernel convolution: branches of growing receptive field mixed by a softmax.",
    ),
    Spec(
        "simam", "block", "attncli.blocks.simam:SimAM", _FEATURES, PAPERS["simam"], {"e_lambda": 1e-4},
        summary="SimAM: parameter-free 3-D attention from an energy function (lambda 1e-4).",
    ),
)

# ---- plain backbones: any block goes in with --attn ----


def _resnet(depth: int, summary: str, reference: Reference | None = None) -> Spec:
    return Spec(
        f"resnet{depth}", "backbone", "attncli.backbones.resnet:resnet", _IMAGE, PAPERS["resnet"],
        {"num_classes": 1000}, fixed={"depth": depth}, takes_attn=True, reference=reference, summary=summary,
    )


def _resnext(depth: int, reference: Reference | None = None) -> Spec:
    return Spec(
        f"resnext{depth}_32x4d", "backbone", "attncli.backbones.resnet:resnext", _IMAGE, PAPERS["resnext"],
        {"num_classes": 1000}, fixed={"depth": depth, "groups": 32, "width_per_group": 4}, takes_attn=True,
        reference=reference,
        summary=f"ResNeXt-{depth} (32x4d): 32 groups of width 4 in the 3x3 conv; --attn sk gives SKNet-{depth}.",
    )


PLAIN = (
    _resnet(18, "ResNet-18 (basic blocks 2-2-2-2).",
            Reference(_TORCHVISION, "decimal", 11.69, 1.81, 11_689_512, "conv-linear")),
    _resnet(34, "ResNet-34 (basic blocks 3-4-6-3).",
            Reference(_TORCHVISION, "decimal", 21.8, 3.66, 21_797_672, "conv-linear")),
    _resnet(50, "ResNet-50 (bottlenecks 3-4-6-3).",
            Reference("ECA-Net (arXiv 1910.03151), ImageNet results, counted with thop; exact count from torchvision",
                      "binary", 24.37, 3.86, 25_557_032, "thop-2019")),
    _resnet(101, "ResNet-101 (bottlenecks 3-4-23-3).",
            Reference(_TORCHVISION, "decimal", 44.55, 7.8, 44_549_160, "conv-linear")),
    _resnet(152, "ResNet-152 (bottlenecks 3-8-36-3).",
            Reference(_TORCHVISION, "decimal", 60.19, 11.51, 60_192_808, "conv-linear")),
    _resnext(50, Reference(_TORCHVISION, "decimal", 25.03, 4.23, 25_028_904, "conv-linear")),
    _resnext(101),
    Spec(
        "mobilenetv2", "backbone", "attncli.backbones.mobilenetv2:MobileNetV2", _IMAGE, PAPERS["mobilenetv2"],
        {"num_classes": 1000, "width_mult": 1.0}, aliases=("mobilenet_v2",), takes_attn=True,
        # torchvision's figures, not the paper's: the paper prints 3.4M parameters for its TensorFlow
        # model, while the registered model is torchvision's (num_params 3,504,872), which is 3.5M
        reference=Reference(_TORCHVISION + "; the paper (arXiv 1801.04381) prints 3.4M and 300M for its TensorFlow model",
                            "decimal", 3.5, 0.3, 3_504_872, "conv-linear"),
        summary="MobileNetV2 (width 1.0), torchvision's layout and width rounding.",
    ),
    Spec(
        "cnn1d", "backbone", "attncli.backbones.cnn1d:CNN1D", (1, 1, 2048), PAPERS["eca"],
        {"num_classes": 10, "length": 2048}, takes_attn=True,
        summary="The seed's 1-D CNN for (N, 1, 2048) signals; --attn eca1d adds x + eca(x) after the second stage.",
    ),
)
_PLAIN = {s.name: s for s in PLAIN}


def _with(base: str, name: str, paper: str, summary: str, attn: str | None = None, **fields: Any) -> Spec:
    """A named network: the plain row ``base`` plus ``attn`` and some arguments."""
    plain = _PLAIN[base]
    defaults = {**plain.defaults, **fields.pop("defaults", {})}
    fixed = {**plain.fixed, **fields.pop("fixed", {})}
    return replace(
        plain, name=name, paper=PAPERS[paper], summary=summary, attn=attn, base=base, defaults=defaults,
        fixed=fixed, takes_attn=False, aliases=fields.pop("aliases", ()), reference=fields.pop("reference", None),
        baseline=fields.pop("baseline", base), **fields,
    )


# ECA-Net: the released models are named by their kernel sizes (ECANet README: eca_resnet50_k3557,
# eca_resnet101_k3357, eca_resnet152_k3357); the official factory's default is k = 3 everywhere and the
# paper's psi(C) would give (5, 5, 5, 7) for the bottleneck widths 256..2048.
_ECA_RESNETS = (
    (18, (3, 5, 7, 7), Reference(_ECA_THOP, "binary", 11.15, 1.70, convention="thop-2019")),
    (34, (3, 3, 5, 7), Reference(_ECA_THOP, "binary", 20.79, 3.43, convention="thop-2019")),
    (50, (3, 5, 5, 7), Reference(_ECA_RELEASED, "binary", 24.37, 3.86, 25_557_112, "thop-2019")),
    (101, (3, 3, 5, 7), Reference(_ECA_RELEASED, "binary", 42.49, 7.35, 44_549_317, "thop-2019")),
    (152, (3, 3, 5, 7), Reference(_ECA_RELEASED, "binary", 57.40, 10.83, 60_193_042, "thop-2019")),
)

NAMED = (
    *(
        _with(f"resnet{d}", f"eca_resnet{d}", "eca",
              f"ECA-ResNet-{d}: ECA at the end of every residual branch, k = {', '.join(map(str, k))} by stage"
              " (released model).",
              attn="eca", defaults={"attn.k_size": k}, reference=ref)
        for d, k, ref in _ECA_RESNETS
    ),
    _with("resnet50", "se_resnet50", "se", "SE-ResNet-50: squeeze-excitation (r=16, bias-free fcs) in every bottleneck.",
          attn="se", defaults={"attn.reduction": 16}, reference=Reference(_ECA_THOP, "binary", 26.77, 3.87, convention="thop-2019")),
    *(
        _with(f"resnet{d}", f"se_resnet{d}", "se",
              f"SE-ResNet-{d}: squeeze-excitation (r=16, bias-free fcs) in every bottleneck.",
              attn="se", defaults={"attn.reduction": 16})
        for d in (101, 152)
    ),
    _with("resnet50", "cbam_resnet50", "cbam", "CBAM-ResNet-50: channel then 7x7 spatial attention in every bottleneck.",
          attn="cbam", defaults={"attn.reduction": 16, "attn.kernel_size": 7},
          reference=Reference(_ECA_THOP, "binary", 26.77, 3.87, convention="thop-2019")),
    _with("resnet101", "cbam_resnet101", "cbam", "CBAM-ResNet-101: channel then 7x7 spatial attention in every bottleneck.",
          attn="cbam", defaults={"attn.reduction": 16, "attn.kernel_size": 7}),
    _with("resnet50", "gam_resnet50", "gam",
          "GAM-ResNet-50: GAM in every bottleneck, its 7x7 convs grouped (4) with channel shuffle.",
          attn="gam", defaults={"attn.reduction": 4, "attn.groups": 4},
          notes=("The paper groups the spatial submodule's convolutions with a channel shuffle in ResNet-50"
                 " without giving the group count; we take groups = reduction = 4. GAM stays heavy: 158.9M"
                 " parameters, 6.2 times the plain ResNet-50.",)),
    _with("resnet50", "simam_resnet50", "simam",
          "SimAM-ResNet-50: parameter-free SimAM right after every 3x3 conv, before its BN (official code).",
          attn="simam", defaults={"attn.e_lambda": 1e-4},
          notes=("As the official SimAM ResNet (networks/imagenet/resnet.py): conv2 becomes conv2 + SimAM, so"
                 " SimAM sees the 3x3 conv's output before bn2, not the end of the branch.",)),
    _with("resnet50", "coordatt_resnet50", "coordatt",
          "CoordAtt-ResNet-50: coordinate attention (mip = max(8, C/32)) at the end of every bottleneck branch.",
          attn="coordatt", defaults={"attn.reduction": 32}),
    _with("resnext50_32x4d", "sknet50", "sk",
          "SKNet-50: ResNeXt-50 (32x4d) with SK[M=2, G=32, r=16, L=32] units in place of the 3x3 convs.",
          attn="sk", aliases=("sknet",),
          reference=Reference("SKNet (arXiv 1903.06586), ImageNet results", "decimal", 27.5, 4.47, 27_479_784, "conv-linear"),
          notes=("Follows the official Caffe model (sknet50.prototxt): the SK unit carries the stride, its"
                 " second branch is a 3x3 conv with dilation 2 for the paper's 5x5, fuse and branch fcs have"
                 " no bias, and the bottleneck has no bn2 after it.",)),
    _with("resnext101_32x4d", "sknet101", "sk",
          "SKNet-101: ResNeXt-101 (32x4d) with SK units; the conv3_x units fuse to 16 channels (official release).",
          attn="sk", defaults={"attn.L": (32, 16, 32, 32)},
          reference=Reference("SKNet (arXiv 1903.06586), ImageNet results", "decimal", 48.9, 8.46, 48_686_760, "conv-linear"),
          notes=("The official release's conv3_x units have a 16-wide fuse layer (48,686,760 parameters); the"
                 " paper's rule d = max(C/r, L) with L = 32 would give 32 there and 48,736,040 parameters"
                 " (-p attn.L=32). Neither is the published 48.9M.",)),
    *(
        _with(f"resnet{d}", f"epsanet{d}", "epsanet",
              f"EPSANet-{d} (small): PSA (kernels 3, 5, 7, 9; groups 1, 4, 8, 16) in place of every 3x3 conv.",
              attn="psa", defaults={"attn.kernels": (3, 5, 7, 9), "attn.groups": (1, 4, 8, 16)},
              aliases=aliases, reference=Reference(
                  "EPSANet (arXiv 2105.14447), ImageNet results; exact count from the official code",
                  "decimal", params, macs, exact, "conv-linear"),
              notes=("Follows the official code (models/epsanet.py), which keeps bn2 + ReLU after PSA. The"
                     " paper's 'large' variants are not registered: no width reproduces their 27.90M.",))
        for d, aliases, params, macs, exact in (
            (50, ("epsanet50_small",), 22.56, 3.62, 22_561_715),
            (101, (), 38.9, 6.82, 38_900_279),
        )
    ),
    _with("mobilenetv2", "eca_mobilenetv2", "eca",
          "ECA-MobileNetV2: ECA after every projection BN, k=1 below 96 channels and k=3 from 96 on.",
          attn="eca", defaults={"width_rounding": "floor", "attn.k_size": (1, 1, 1, 1, 3, 3, 3)},
          reference=Reference("ECA-Net official README (eca_mobilenetv2_k13: 3.34M, 319.9M FLOPs), counted with thop",
                              "binary", 3.34, convention="thop-2019", macs_m=319.9),
          notes=("As the official eca_mobilenetv2.py, widths are int(c * width_mult), not torchvision's"
                 " multiples of 8 (the same at width 1.0; 1,965,479 parameters at 0.5).",)),
    _with("mobilenetv2", "coordatt_mobilenetv2", "coordatt",
          "CoordAtt-MobileNetV2: coordinate attention after the depthwise conv of every block with t > 1.",
          attn="coordatt", defaults={"attn.reduction": 32, "attn_position": "after_3x3_act"}, aliases=("mbv2_ca",),
          reference=Reference("Coordinate Attention (arXiv 2103.02907), ImageNet results (3.95M, 310M MAdds)", "decimal",
                              3.95, convention="conv-linear", macs_m=310),
          notes=("As the official mbv2_ca.py: CoordAtt(hidden, hidden) after the depthwise conv's BN + ReLU6,"
                 " only in blocks with an expansion layer.",)),
    _with("cnn1d", "eca_cnn1d", "eca",
          "1-D CNN for (N, 1, 2048) signals with x + ECA(x) after the second conv stage (k=3 for 32 channels).",
          attn="eca1d", defaults={"attn.k_size": None}),
)

SPECS: tuple[Spec, ...] = (*BLOCKS, *PLAIN, *NAMED)
