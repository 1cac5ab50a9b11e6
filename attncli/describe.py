"""What ``attncli info`` reports: paper, defaults, shapes, parameter count, module tree and the
published figures next to the built model's own, in the publication's units."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from attncli.modelspec import BuiltModel, ModelRequest, build, run_example

BINARY_MEGA = 2**20  # ECA-Net's tables (thop) divide parameter counts by 2^20 ...
BINARY_GIGA = 2**30  # ... and MAC counts by 2^30.


def unit_divisors(units: str) -> tuple[float, float]:
    """(params divisor, MACs divisor) for a publication's units: 'binary' or 'decimal'."""
    return (BINARY_MEGA, BINARY_GIGA) if units == "binary" else (1e6, 1e9)


@dataclass
class ModuleRow:
    path: str
    type: str
    depth: int
    params: int


@dataclass
class ReferenceComparison:
    source: str
    units: str
    published_params_m: float | None
    measured_params_m: float
    params_rel_diff: float | None  # (measured - published) / published
    published_macs_g: float | None
    exact_params: int | None


@dataclass
class ModelInfo:
    name: str
    kind: str
    paper: dict[str, Any] | None
    summary: str
    aliases: list[str]
    defaults: dict[str, Any]
    kwargs: dict[str, Any]
    input_shape: list[int]
    output_shape: list[int]
    params: int
    trainable_params: int
    modules: list[ModuleRow] = field(default_factory=list)
    reference: ReferenceComparison | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def module_rows(module: Any, depth: int) -> list[ModuleRow]:
    """Named submodules down to ``depth`` (the root is depth 0), with their parameter counts."""
    rows = []
    for path, sub in module.named_modules():
        level = 0 if not path else path.count(".") + 1
        if level <= depth:
            rows.append(ModuleRow(path or "(root)", type(sub).__name__, level, sum(p.numel() for p in sub.parameters())))
    return rows


def compare_reference(built: BuiltModel) -> ReferenceComparison | None:
    ref = built.spec.reference if built.spec and not built.request.attn else None
    if ref is None:
        return None
    params_div, _ = unit_divisors(ref.units)
    measured = built.num_params / params_div
    rel = (measured - ref.params_m) / ref.params_m if ref.params_m else None
    return ReferenceComparison(ref.source, ref.units, ref.params_m, measured, rel, ref.macs_g, ref.exact_params)


def jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def describe(request: ModelRequest, depth: int = 2) -> ModelInfo:
    built = build(request)
    out = run_example(built)
    spec = built.spec
    return ModelInfo(
        name=built.name,
        kind=spec.kind if spec else "user",
        paper={"title": spec.paper.title, "arxiv": spec.paper.arxiv} if spec else None,
        summary=spec.summary if spec else (type(built.module).__doc__ or "").strip().split("\n")[0],
        aliases=list(spec.aliases) if spec else [],
        defaults=jsonable(spec.defaults) if spec else {},
        kwargs=jsonable(built.kwargs),
        input_shape=list(built.input_shape),
        output_shape=list(out.shape),
        params=built.num_params,
        trainable_params=sum(p.numel() for p in built.module.parameters() if p.requires_grad),
        modules=module_rows(built.module, depth),
        reference=compare_reference(built),
    )
