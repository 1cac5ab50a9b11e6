"""What ``attncli info`` reports: paper, defaults, shapes, parameter count, module tree and the
published figures next to the built model's own, in the publication's units and counting convention."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from attncli.blocks import POSITIONS
from attncli.errors import UsageError
from attncli.modelspec import ATTN_PREFIX, BuiltModel, ModelRequest, build, is_user_model, output_shapes, run_example

if TYPE_CHECKING:
    from attncli.counting import CostCount

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
    """Published figures next to the measured ones, in the publication's units and counting
    convention (MACs as the paper adds them up, not FLOPs)."""

    source: str
    units: str  # "binary": params / 2^20, MACs / 2^30 (2^20 for a figure in M); "decimal": 10^6, 10^9
    published_params_m: float | None
    measured_params_m: float
    params_rel_diff: float | None  # (measured - published) / published
    published_macs_g: float | None  # the published figure in G of ``units`` (319.9 binary M -> 0.3124)
    measured_macs_g: float | None  # None when MACs were not counted (info)
    macs_rel_diff: float | None
    exact_params: int | None
    exact_params_match: bool | None
    note: str | None = None  # set when the measured model differs from the published configuration
    convention: str = "attncli"  # how the published figure counts (attncli.conventions)
    convention_rule: str = ""  # that convention's rule, in words
    macs_scale: str = "G"  # "M" or "G": the prefix the source prints its MACs figure with
    published_macs: float | None = None  # the figure as printed, in macs_scale of units
    measured_macs: float | None = None  # ours, counted in the convention, in the same scale and units


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
    output_shape: list[int] | None  # the output's shape; None when the forward returns several tensors
    output_shapes: dict[str, list[int]]  # every output tensor by its path: output, output[0], output['logits']
    params: int
    trainable_params: int
    modules: list[ModuleRow] = field(default_factory=list)
    reference: ReferenceComparison | None = None
    attn: dict[str, Any] | None = None  # the inserted block: name and position
    notes: list[str] = field(default_factory=list)  # where the official code and the paper differ, and such

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_depth(depth: int) -> int:
    """The depth of a module tree: 0 (the model alone) or more."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise UsageError(f"depth must be 0 or more, not {depth!r}.", option="depth")
    return depth


def module_rows(module: Any, depth: int) -> list[ModuleRow]:
    """Named submodules down to ``depth`` (the root is depth 0), with their parameter counts."""
    rows = []
    for path, sub in module.named_modules():
        level = 0 if not path else path.count(".") + 1
        if level <= depth:
            rows.append(ModuleRow(path or "(root)", type(sub).__name__, level, sum(p.numel() for p in sub.parameters())))
    return rows


def relative_diff(diff: float, base: float | None) -> float | None:
    """``diff / base``, or None when there is no base to compare with."""
    return diff / base if base else None


def compare_reference(built: BuiltModel, params: int | None = None, costs: CostCount | None = None) -> ReferenceComparison | None:
    """The spec's published figures against ``params`` (default: the built model's) and the MACs
    of ``costs`` counted in the reference's own convention (none when ``costs`` is None)."""
    from attncli.conventions import convention_macs, get_convention

    spec = built.spec
    ref = spec.reference if spec is not None and not built.request.attn else None
    if ref is None:
        return None
    params = built.num_params if params is None else params
    params_div, giga = unit_divisors(ref.units)
    mega = params_div  # MACs printed in M use the same divisor as parameters: 2^20 or 10^6
    macs_div = mega if ref.macs_scale == "M" else giga
    convention = get_convention(ref.convention)
    measured_params = params / params_div
    measured_macs = convention_macs(costs, convention) / macs_div if costs is not None else None
    to_g = macs_div / giga  # the printed scale in G of the same units
    notes = []
    if built.request.params:
        notes.append("built with -p arguments")
    if tuple(built.input_shape) != tuple(spec.input_shape):
        notes.append(f"input {','.join(map(str, built.input_shape))} instead of {','.join(map(str, spec.input_shape))}")
    return ReferenceComparison(
        source=ref.source,
        units=ref.units,
        published_params_m=ref.params_m,
        measured_params_m=measured_params,
        params_rel_diff=relative_diff(measured_params - (ref.params_m or 0), ref.params_m),
        published_macs_g=ref.macs * to_g if ref.macs is not None else None,
        measured_macs_g=measured_macs * to_g if measured_macs is not None else None,
        macs_rel_diff=relative_diff(measured_macs - (ref.macs or 0), ref.macs) if measured_macs is not None else None,
        exact_params=ref.exact_params,
        exact_params_match=(ref.exact_params == params) if ref.exact_params is not None else None,
        note=("the published figures are for the registry defaults; measured " + "; ".join(notes)) if notes else None,
        convention=convention.name,
        convention_rule=convention.rule,
        macs_scale=ref.macs_scale,
        published_macs=ref.macs,
        measured_macs=measured_macs,
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def model_notes(built: BuiltModel) -> list[str]:
    """What a reader should know about this model: the row's notes, and the inserted block's."""
    from attncli import registry

    spec = built.spec
    notes = list(spec.notes) if spec is not None else []
    attn = built.request.attn
    if attn and not is_user_model(attn):  # a block from the user's file has no registry notes
        block = registry.get(attn)
        if block.attn_note and not any(k.startswith(ATTN_PREFIX) for k in built.request.params):
            notes.append(f"{block.name}: {block.attn_note}")
    return notes


def inserted_block(built: BuiltModel) -> dict[str, Any] | None:
    """The attention block the model's backbone inserted, and where, or None."""
    name = built.kwargs.get("attn")
    if not name:
        return None
    positions = {getattr(m, "attn_position", None) for m in built.module.modules()} - {None}
    if not positions:
        from attncli import registry
        from attncli.blocks import block_position

        positions = {block_position(registry.get(name).load_factory(), built.kwargs.get("attn_position"))}
    position = positions.pop() if len(positions) == 1 else None
    return {"name": name, "position": position, "where": POSITIONS.get(position or "", "")}


def describe(request: ModelRequest, depth: int = 2) -> ModelInfo:
    check_depth(depth)
    built = build(request)
    shapes = output_shapes(run_example(built))
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
        output_shape=shapes["output"] if list(shapes) == ["output"] else None,
        output_shapes=shapes,
        params=built.num_params,
        trainable_params=sum(p.numel() for p in built.module.parameters() if p.requires_grad),
        modules=module_rows(built.module, depth),
        reference=compare_reference(built),
        attn=inserted_block(built),
        notes=model_notes(built),
    )
