"""Counting conventions: the MACs a paper reports, recomputed from attncli's per-operator counts.

Papers call different sums "FLOPs". attncli counts every operator of one trace once
(``attncli.counting.count_costs``); a convention is a table that says which of those per-operator
counts a paper's figure adds up, and with what weight, so the figure can be reproduced without
tracing again. Each entry maps an operator (as ``CostCount`` names it: ``convolution``, ``linear``,
``batch_norm``, ``relu``...) to ``(source, factor)``: ``factor`` times that operator's ``macs`` or
``flops`` in the CostCount. An operator a convention does not name counts zero in it.

- ``attncli``: attncli's own MACs (every contraction operator: conv, linear, matmul, einsum,
  attention products; ``docs/flop-rules.md``).
- ``conv-linear``: multiply-adds of convolutions and linear layers only, the figure of the SKNet,
  EPSANet, SimAM, Coordinate Attention and MobileNetV2 papers and of torchvision's documentation.
- ``thop-2019``: what thop's module hooks of 2019 add up, the counter ECA-Net's tables were made
  with (see ``THOP_2019_RULE``). Chosen by the numbers: it reproduces ECA-Net's ResNet-18 to -152,
  ECA-Net18 to 152, SE- and CBAM-ResNet-50, MobileNetV2 and ECA-MobileNetV2 rows within 0.35%
  (docs/published-figures.md); "conv + linear + 4 per BN element" alone is 0.3-2.4% low.

Nothing here imports torch: the functions read a ``CostCount``'s dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from attncli.errors import UsageError
from attncli.zoo import CONVENTIONS as CONVENTION_NAMES

if TYPE_CHECKING:
    from attncli.counting import CostCount

DEFAULT_CONVENTION = "attncli"

_CONVS = (
    "convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)
_LINEAR = ("linear", "addmm")  # nn.Linear traces as aten::linear (older torch: addmm)


@dataclass(frozen=True)
class Convention:
    """How one publication tradition counts: ``terms`` maps an operator to (``"macs"`` or
    ``"flops"``, factor) over attncli's per-operator counts; ``terms=None`` is attncli's MACs."""

    name: str
    rule: str  # the rule in words, as reports state it
    terms: dict[str, tuple[str, int]] | None

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "rule": self.rule}


THOP_2019_RULE = (
    "thop's 2019 module hooks (ECA-Net's counter): convolution multiply-adds; nn.Linear in + (in - 1) per"
    " output, counted here as 2 x its MACs; BatchNorm 4 per element ('subtract, divide, gamma, beta');"
    " nn.ReLU/ReLU6 1 per element; max pooling kernel size per output; average pooling 1 per input"
    " element; nothing else (functional calls such as sigmoid, x * y and the residual add have no hook)"
)

_TABLE = (
    Convention(
        "attncli",
        "multiply-accumulates of every contraction operator: convolution, linear, addmm, mm, matmul, bmm,"
        " baddbmm, einsum, attention products (attncli's MACs)",
        None,
    ),
    Convention(
        "thop-2019",
        THOP_2019_RULE,
        {
            **{op: ("macs", 1) for op in _CONVS},
            **{op: ("macs", 2) for op in _LINEAR},
            # count_costs traces in eval mode, where batch_norm is 2 FLOPs per element: x 2 gives thop's 4
            "batch_norm": ("flops", 2),
            "relu": ("flops", 1),
            "relu6": ("flops", 1),
            "hardtanh": ("flops", 1),  # nn.ReLU6 traces as hardtanh(0, 6)
            **{f"max_pool{n}d": ("flops", 1) for n in (1, 2, 3)},
            **{f"max_pool{n}d_with_indices": ("flops", 1) for n in (1, 2, 3)},
            # thop: (kernel + 1) per output of nn.AdaptiveAvgPool, i.e. input + output elements; the
            # output term (one value per channel) is below 10^-4 of any model here and is left out.
            # attncli's blocks pool with mean where the official ECA, SE and CoordAtt code has an
            # nn.AdaptiveAvgPool2d module, so mean counts as that pool.
            **{f"adaptive_avg_pool{n}d": ("flops", 1) for n in (1, 2, 3)},
            "mean": ("flops", 1),
        },
    ),
    Convention(
        "conv-linear",
        "multiply-adds of convolutions and linear layers only, in decimal units (SKNet, EPSANet, SimAM,"
        " Coordinate Attention, MobileNetV2, torchvision)",
        {**{op: ("macs", 1) for op in _CONVS}, **{op: ("macs", 1) for op in _LINEAR}},
    ),
)
CONVENTIONS: dict[str, Convention] = {c.name: c for c in _TABLE}
assert tuple(CONVENTIONS) == CONVENTION_NAMES, "attncli.zoo.CONVENTIONS names the conventions defined here"


def get_convention(name: str | None) -> Convention:
    """The convention called ``name`` (None: attncli's own)."""
    key = DEFAULT_CONVENTION if name is None else str(name).strip().lower()
    if key not in CONVENTIONS:
        raise UsageError(
            f"unknown counting convention {name!r}: choose one of {', '.join(CONVENTIONS)}.", option="convention"
        )
    return CONVENTIONS[key]


def macs_by_operator(costs: CostCount, convention: str | Convention | None = None) -> dict[str, int]:
    """Each operator's contribution to the MACs of ``convention``, largest first (zeros left out)."""
    conv = convention if isinstance(convention, Convention) else get_convention(convention)
    if conv.terms is None:
        return dict(costs.macs_by_operator)
    rows = {}
    for op, (source, factor) in conv.terms.items():
        counts = costs.macs_by_operator if source == "macs" else costs.flops_by_operator
        value = factor * counts.get(op, 0)
        if value:
            rows[op] = rows.get(op, 0) + value
    return dict(sorted(rows.items(), key=lambda kv: -kv[1]))


def convention_macs(costs: CostCount, convention: str | Convention | None = None) -> int:
    """The MACs (what the convention's papers call FLOPs) of one traced model in ``convention``."""
    conv = convention if isinstance(convention, Convention) else get_convention(convention)
    if conv.terms is None:
        return costs.macs
    return sum(macs_by_operator(costs, conv).values())
