"""What ``attncli compare`` reports: the comparison table of an attention paper.

One row per model: parameters, MACs and FLOPs, each with its overhead over the plain baseline
(absolute and relative), latency p50 with its confidence interval and overhead, and optionally
whether the model exports to ONNX at an opset and the largest parity error of that file.

The rows come from blocks x backbones (``attn=["eca", "se"], on=["resnet50"]``: each backbone's
plain row first, as the baseline of its blocks) or from model names (``eca_resnet50 sknet50``: each
with its registry baseline, or one ``baseline`` for all, or ``"none"``). Every model is built once
and counted once (``counting.count_costs``, the trace ``profile`` uses); then all of them are timed
in one interleaved run (``timing.measure_interleaved``) so that host noise hits every row alike,
and an overhead whose intervals overlap is reported as within noise rather than as a number.

The text of every format (Markdown, LaTeX, CSV, JSON) is made here; the CLI only lays out the
cells of :meth:`CompareReport.table` on a terminal.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from attncli import progress, registry
from attncli.errors import CheckFailed, UsageError
from attncli.modelspec import BuiltModel, ModelRequest, is_user_model

NO_BASELINE = "none"  # baseline="none": no baseline rows, no overheads
# --sort: "order" keeps the rows as planned; a baseline row stays first in its group either way.
SORT_COLUMNS = ("order", "name", "params", "macs", "flops", "latency")
NOT_APPLICABLE = "-"  # a cell with nothing to show (a baseline's overhead, latency not timed)

CONVENTIONS = {
    "params": "exact count of parameter elements, shared tensors once",
    "macs": "multiply-accumulates of convolution, linear and matmul operators (what ResNet and ECA-Net tables call FLOPs)",
    "flops": "2 x MACs plus every other arithmetic operation (attncli profile's rules)",
    "units": "k, M, G are decimal: 10^3, 10^6, 10^9",
    "overhead": "model minus its baseline, and that difference over the baseline's figure",
    "latency": "p50 of one forward pass in ms with its confidence interval; all models timed interleaved in one run;"
    " an overhead whose intervals overlap is within noise",
}


# ----------------------------------------------------------------------------- the rows


@dataclass
class CompareRow:
    name: str
    backbone: str | None  # the plain backbone the block sits in (None: a block alone or the user's model)
    block: str | None  # the attention block (None: a plain model)
    baseline: str | None  # the row this one is compared with; None for a baseline row and with baseline="none"
    is_baseline: bool  # another row is compared with this one
    input_shape: list[int]
    params: int
    macs: int
    flops: int
    params_overhead: int | None = None
    params_overhead_rel: float | None = None
    macs_overhead: int | None = None
    macs_overhead_rel: float | None = None
    flops_overhead: int | None = None
    flops_overhead_rel: float | None = None
    latency_p50_ms: float | None = None
    latency_ci_low_ms: float | None = None
    latency_ci_high_ms: float | None = None
    latency_samples: int | None = None
    latency_overhead_ms: float | None = None
    latency_overhead_rel: float | None = None
    latency_within_noise: bool | None = None
    exports: bool | None = None  # None: not asked (export_opset None)
    export_problem: str | None = None  # why it did not export (or did not verify)
    parity_max_abs: float | None = None  # largest |ONNX - PyTorch| over the verified cases
    uncounted_ops: dict[str, int] = field(default_factory=dict)


@dataclass
class CompareReport:
    rows: list[CompareRow]
    sort: str
    baseline: str | None  # as asked: None (each model's own), a model name, or "none"
    latency: bool
    device: str | None
    min_time: float | None
    export_opset: int | None
    notes: list[str] = field(default_factory=list)
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))
    environment: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self, name: str) -> CompareRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    # ------------------------------------------------------------------ cells, shared by every format

    def headers(self) -> list[str]:
        cols = ["model", "params", "Δ params", "MACs", "Δ MACs", "FLOPs", "Δ FLOPs"]
        if self.latency:
            cols += ["p50 ms [CI]", "Δ p50"]
        if self.export_opset is not None:
            cols += [f"exports at opset {self.export_opset}", "max abs error"]
        return cols

    def table(self) -> list[list[str]]:
        """One list of cells per row, in the order of :meth:`headers` (plain text, no markup)."""
        return [self._cells(r) for r in self.rows]

    def groups(self) -> list[int]:
        """Indices of the rows that start a new group (a new baseline), after the first."""
        keys = [_group_key(r) for r in self.rows]
        return [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]

    def _cells(self, r: CompareRow) -> list[str]:
        cells = [
            r.name,
            format_count(r.params), format_overhead(r.params_overhead, r.params_overhead_rel),
            format_count(r.macs), format_overhead(r.macs_overhead, r.macs_overhead_rel),
            format_count(r.flops), format_overhead(r.flops_overhead, r.flops_overhead_rel),
        ]
        if self.latency:
            cells += [format_latency(r), format_latency_overhead(r)]
        if self.export_opset is not None:
            exported = NOT_APPLICABLE if r.exports is None else "yes" if r.exports else "no"  # why not: in the notes
            cells += [exported, f"{r.parity_max_abs:.1e}" if r.parity_max_abs is not None else NOT_APPLICABLE]
        return cells

    def stacked(self) -> tuple[list[str], list[list[list[str]]]]:
        """The terminal's narrow layout: fewer columns, each cell a figure with its overhead under it
        (absolute, then relative) and the model's baseline under its name, so that the table fits
        80 columns. Returns (headers, rows of cells, each cell a list of lines: the figure first)."""
        headers = ["model", "params", "MACs", "FLOPs"]
        if self.latency:
            headers += ["p50 ms", "Δ p50"]
        if self.export_opset is not None:
            headers += [f"ONNX {self.export_opset}", "max err"]
        rows = []
        for r in self.rows:
            cells = [[r.name, f"over {r.baseline}"] if r.baseline else [r.name]]
            for value, diff, rel in ((r.params, r.params_overhead, r.params_overhead_rel),
                                     (r.macs, r.macs_overhead, r.macs_overhead_rel),
                                     (r.flops, r.flops_overhead, r.flops_overhead_rel)):
                lines = [format_count(value)]
                if diff is not None:
                    lines.append(format_overhead(diff, None))
                    lines += [format_rel(rel)] if rel is not None else []
                cells.append(lines)
            if self.latency:
                if r.latency_p50_ms is None:
                    cells.append([NOT_APPLICABLE])
                elif r.latency_ci_low_ms is None or r.latency_ci_high_ms is None:
                    cells.append([format_ms(r.latency_p50_ms)])
                else:
                    cells.append([format_ms(r.latency_p50_ms), f"{format_ms(r.latency_ci_low_ms)}–{format_ms(r.latency_ci_high_ms)}"])
                cells.append(latency_overhead_parts(r))
            if self.export_opset is not None:
                cells += [[cell] for cell in self._cells(r)[-2:]]
            rows.append(cells)
        return headers, rows

    def footnote(self) -> str:
        """What the columns mean, in one line."""
        parts = ["Δ: overhead over the baseline (absolute, and relative to the baseline)", "k/M/G = 10^3/10^6/10^9",
                 "MACs: multiply-accumulates", "FLOPs: 2 x MACs + other arithmetic"]
        if self.latency:
            from attncli.timing import CONFIDENCE

            parts.append(f"latency: p50 of interleaved runs (ms) with its {CONFIDENCE:.0%} confidence interval;"
                         " within noise: the intervals of model and baseline overlap")
        return "; ".join(parts) + "."

    # ------------------------------------------------------------------ formats

    def to_markdown(self) -> str:
        from attncli.environment import one_line

        headers = self.headers()
        lines = [
            "| " + " | ".join(_md(h) for h in headers) + " |",
            "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|",
        ]
        lines += ["| " + " | ".join(_md(c) for c in cells) + " |" for cells in self.table()]
        lines += ["", self.footnote()]
        lines += [f"- {n}" for n in self.notes]
        if self.environment:
            lines += ["", f"_{_md(one_line(self.environment))}_"]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        """A booktabs ``tabular`` ready to paste: the model column left-aligned, numbers right-aligned,
        ``%``, ``_`` and LaTeX's other special characters escaped, a ``\\midrule`` between groups."""
        from attncli.environment import one_line

        headers = [latex_escape(h) for h in self.headers()]
        starts = set(self.groups())
        lines = []
        if self.environment:
            lines.append(f"% {one_line(self.environment)}")
        lines.append(f"% {self.footnote()}")
        lines += [
            r"\begin{tabular}{l" + "r" * (len(headers) - 1) + "}",
            r"\toprule",
            " & ".join(headers) + r" \\",
            r"\midrule",
        ]
        for i, r in enumerate(self.rows):
            if i in starts:
                lines.append(r"\midrule")
            cells = [latex_escape(c) if c != NOT_APPLICABLE else "--" for c in self._cells(r)]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """Every figure as a plain number (relative overheads as fractions), one row per model."""
        names = [f for f in CompareRow.__dataclass_fields__ if f != "uncounted_ops"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for r in self.rows:
            values = asdict(r)
            values["input_shape"] = "x".join(map(str, r.input_shape))
            writer.writerow(["" if values[n] is None else values[n] for n in names])
        return buffer.getvalue()

    def plot_rows(self) -> list[dict[str, Any]]:
        """The rows ``plots.plot_compare`` draws (those with a baseline): name, params, macs and the
        latency overhead."""
        return [
            {"name": r.name, "params": r.params, "macs": r.macs, "latency_overhead_rel": r.latency_overhead_rel,
             "latency_within_noise": r.latency_within_noise}
            for r in self.rows if r.baseline is not None
        ]


# ----------------------------------------------------------------------------- number formats


def format_count(n: float) -> str:
    """Decimal prefixes with two decimals, as paper tables print them: 25.56M, 4.09G, 8.19k, 86."""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}" if float(n).is_integer() else f"{n:.2f}"


def format_rel(rel: float | None) -> str:
    """A relative change in percent, two decimals; below 0.01% in size, ``+<0.01%``."""
    if rel is None:
        return ""
    sign = "+" if rel > 0 else "-" if rel < 0 else "+"
    if 0 < abs(rel) < 0.0001:
        return f"{sign}<0.01%"
    return f"{sign}{abs(rel):.2%}"


def format_overhead(diff: float | None, rel: float | None) -> str:
    """``+2.53M (+9.90%)``; ``-`` for a row without a baseline."""
    if diff is None:
        return NOT_APPLICABLE
    text = f"{'-' if diff < 0 else '+'}{format_count(abs(diff))}"
    return f"{text} ({format_rel(rel)})" if rel is not None else text


def format_ms(ms: float) -> str:
    """Milliseconds with fixed decimals by size, so a column lines up: 0.0512, 0.840, 93.45."""
    return f"{ms:.4f}" if abs(ms) < 0.1 else f"{ms:.3f}" if abs(ms) < 1 else f"{ms:.2f}"


def format_latency(r: CompareRow) -> str:
    if r.latency_p50_ms is None:
        return NOT_APPLICABLE
    if r.latency_ci_low_ms is None or r.latency_ci_high_ms is None:
        return format_ms(r.latency_p50_ms)
    return f"{format_ms(r.latency_p50_ms)} [{format_ms(r.latency_ci_low_ms)}, {format_ms(r.latency_ci_high_ms)}]"


def latency_overhead_parts(r: CompareRow) -> list[str]:
    """``["+0.45 ms", "+3.62%"]``, ``["within noise"]`` when the intervals overlap, ``["-"]`` without a baseline."""
    if r.latency_overhead_ms is None:
        return [NOT_APPLICABLE]
    if r.latency_within_noise:
        return ["within noise"]
    sign = "-" if r.latency_overhead_ms < 0 else "+"
    parts = [f"{sign}{format_ms(abs(r.latency_overhead_ms))} ms"]
    return parts + [format_rel(r.latency_overhead_rel)] if r.latency_overhead_rel is not None else parts


def format_latency_overhead(r: CompareRow) -> str:
    """``+0.45 ms (+3.62%)``, ``within noise`` or ``-``."""
    first, *rest = latency_overhead_parts(r)
    return f"{first} ({rest[0]})" if rest else first


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it literally; Δ and the "<" of "+<0.01%" as math."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return out.replace("Δ", r"$\Delta$").replace("<", r"$<$")


def _md(text: str) -> str:
    return text.replace("|", r"\|")


# ----------------------------------------------------------------------------- planning


def split_names(values: str | Iterable[str] | None, what: str, option: str | None = None) -> list[str]:
    """``"eca,se"`` or ``["eca", "se,cbam"]`` as a list of names; an empty item or a name given twice
    is a usage error."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    names = [part.strip() for item in items for part in str(item).split(",")]
    if any(not n for n in names):
        raise UsageError(f"an empty name in the {what} list {','.join(names)!r}: separate names with one comma.", option=option)
    seen: set[str] = set()
    for name in names:
        key = name if is_user_model(name) else name.lower()
        if key in seen:
            raise UsageError(f"{name} is listed twice in the {what}.", option=option)
        seen.add(key)
    return names


def check_sort(sort: str | None, latency: bool) -> str:
    sort = (sort or "order").strip().lower()
    if sort not in SORT_COLUMNS:
        raise UsageError(f"cannot sort by {sort!r}: give one of {', '.join(SORT_COLUMNS)}.", option="sort")
    if sort == "latency" and not latency:
        raise UsageError("cannot sort by latency without timing: drop --no-latency or sort by another column.", option="sort")
    return sort


def check_plot(latency: bool) -> None:
    """The plot draws latency overheads: refuse it, before any work, when nothing will be timed."""
    if not latency:
        raise UsageError("the plot draws latency overheads: drop --no-latency to plot.", option="plot")


def _check_block(name: str) -> str:
    """A registered block's own name (aliases resolved); the user's file.py:Name as given."""
    if is_user_model(name):
        return name
    spec = registry.get(name)
    if spec.kind != "block":
        raise UsageError(f"{spec.name} is a {spec.kind}, not an attention block: see `attncli list --kind block`.", option="attn")
    return spec.name


def _check_backbone(name: str) -> str:
    spec = registry.get(name)
    if not spec.takes_attn:
        holds = f" ({spec.name} already holds {spec.attn})" if spec.attn else ""
        raise UsageError(
            f"{spec.name} does not take an attention block{holds}: --on takes plain backbones"
            f" ({', '.join(s.name for s in registry.list_specs(kind='backbone') if s.takes_attn)}).",
            option="on",
        )
    return spec.name


def plan(
    models: Sequence[str] = (),
    *,
    attn: str | Iterable[str] | None = None,
    on: str | Iterable[str] | None = None,
    input_shape: Any = None,
    seed: int = 0,
    attn_position: str | None = None,
) -> list[tuple[ModelRequest, str | None, str | None]]:
    """The models asked for, as (request, backbone, block), before anything is built. Every name is
    checked here, so a typo fails in a second, not after minutes of building."""
    names = split_names(models, "models")
    blocks = split_names(attn, "attention blocks", option="attn")
    backbones = split_names(on, "backbones", option="on")
    if blocks and not backbones:
        raise UsageError("--attn lists blocks to compare: say which backbones they go into with --on, e.g. --on resnet50.", option="on")
    if backbones and not blocks:
        raise UsageError("--on lists backbones: give the blocks to put into them with --attn, e.g. --attn eca,se.", option="attn")
    if not names and not blocks:
        raise UsageError(
            "nothing to compare: give model names (attncli compare eca_resnet50 sknet50) or blocks and backbones"
            " (attncli compare --attn eca,se --on resnet50)."
        )
    planned: list[tuple[ModelRequest, str | None, str | None]] = []
    for name in names:
        request = ModelRequest.make(name, None, input_shape, None, seed)
        spec = request.spec()  # an unknown name fails here
        if spec is None:
            planned.append((request, None, None))
        elif spec.kind == "block":
            planned.append((request, None, spec.name))
        else:
            planned.append((request, spec.base or spec.name, spec.attn))
    blocks = [_check_block(b) for b in blocks]
    for backbone in [_check_backbone(b) for b in backbones]:
        for block in blocks:
            request = ModelRequest.make(backbone, None, input_shape, block, seed, attn_position=attn_position)
            planned.append((request, backbone, block.rpartition(":")[2] if is_user_model(block) else block))
    keys = [_request_key(r) for r, _, _ in planned]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise UsageError(f"{planned[i][0].display_name} is asked for twice.")
    return planned


def _request_key(request: ModelRequest) -> tuple:
    """Requests that build the same model have the same key (aliases and default shapes resolved)."""
    spec = request.spec()
    attn = request.attn
    if attn and not is_user_model(attn):
        attn = registry.get(attn).name
    _, shape = request.resolved()
    params = tuple(sorted((k, repr(v)) for k, v in request.params.items()))
    return (spec.name if spec else request.model, attn, params, tuple(shape), request.seed, request.attn_position, request.weights)


def _group_key(row: CompareRow) -> str | None:
    return row.baseline or (row.name if row.is_baseline else None)


def sort_rows(rows: list[CompareRow], sort: str) -> list[CompareRow]:
    """Rows grouped by baseline (groups in the order they were planned, the baseline first in its
    group), each group sorted by ``sort`` ascending; a row without the figure goes last."""
    groups: dict[str | None, list[CompareRow]] = {}
    for r in rows:
        groups.setdefault(_group_key(r), []).append(r)
    if sort == "order":
        return [r for members in groups.values() for r in members]

    def key(r: CompareRow) -> tuple:
        value = r.name.lower() if sort == "name" else r.latency_p50_ms if sort == "latency" else getattr(r, sort)
        return (not r.is_baseline, value is None, value if value is not None else 0)

    return [r for members in groups.values() for r in sorted(members, key=key)]


# ----------------------------------------------------------------------------- running it


def _count(built: BuiltModel) -> tuple[int, Any]:
    """Parameters and the traced costs, as ``profile`` counts them."""
    from attncli.counting import count_params
    from attncli.profiling import traced_costs

    return count_params(built.module)[0], traced_costs(built)


def _export(built: BuiltModel, opset: int, path: Path, device: str) -> tuple[bool, str | None, float | None]:
    """Whether ``built`` exports at ``opset`` and verifies, as ``attncli export`` does it (its default
    dynamic axes, every route, onnxruntime parity), to ``path``; why not, and the max error."""
    from attncli import onnx_export, parity

    try:
        dynamic = onnx_export.resolve_dynamic(built, onnx_export.DEFAULT_DYNAMIC)

        def verify_file(file: str, example_outputs: dict[str, Any]) -> Any:
            return parity.verify_onnx(built, file, provider=device, example_outputs=example_outputs)

        result = onnx_export.export_onnx(built, path, opset=opset, dynamic=dynamic, verify=verify_file)
    except CheckFailed as exc:  # no route exported it: that is the answer for this row
        return False, str(exc), None
    max_abs = result.parity.max_abs if result.parity is not None and result.parity.cases else None
    if result.trace_problem:
        return False, result.trace_problem, max_abs
    if result.parity is not None and not result.parity:
        return False, f"verification failed ({result.parity.message})", max_abs
    return True, None, max_abs


def compare(
    models: Sequence[str] = (),
    *,
    attn: str | Iterable[str] | None = None,
    on: str | Iterable[str] | None = None,
    input_shape: Any = None,
    seed: int = 0,
    attn_position: str | None = None,
    baseline: str | None = None,
    sort: str | None = None,
    latency: bool = True,
    device: str | None = None,
    threads: int | None = None,
    min_time: float | None = None,
    export_opset: int | None = None,
) -> CompareReport:
    """Build, count, time (interleaved) and optionally export every model planned by :func:`plan`,
    with its baseline; return the rows in ``sort`` order (see :func:`sort_rows`)."""
    from attncli import timing
    from attncli.describe import relative_diff
    from attncli.environment import describe as describe_environment
    from attncli.modelspec import build
    from attncli.profiling import baseline_request

    sort = check_sort(sort, latency)
    if min_time is not None and not min_time > 0:
        raise UsageError(f"the minimum time per model must be above 0 seconds, not {min_time:g}.", option="min_time")
    if export_opset is not None:
        from attncli import onnx_export

        onnx_export.choose_exporter(int(export_opset), "auto")  # a bad opset fails before any building
    # onnxruntime verifies on the CPU unless CUDA is asked for by name: "auto" may find a GPU for
    # torch where the installed onnxruntime has no CUDA execution provider.
    parity_device = "cuda" if device == "cuda" else "cpu"
    if latency:
        device = timing.resolve_device(device)
    if baseline is not None and baseline.strip().lower() != NO_BASELINE:
        ModelRequest.make(baseline).spec()  # an unknown baseline fails now
    planned = plan(models, attn=attn, on=on, input_shape=input_shape, seed=seed, attn_position=attn_position)

    # Build every model once, its baseline right before its first user.
    built: dict[tuple, BuiltModel] = {}
    info: dict[tuple, tuple[str | None, str | None]] = {}
    baseline_of: dict[tuple, tuple | None] = {}
    order: list[tuple] = []

    def build_once(request: ModelRequest) -> tuple:
        key = _request_key(request)
        if key not in built:  # build() announces its own progress step
            built[key] = build(request)
        return key

    for request, backbone, block in planned:
        key = build_once(request)
        info[key] = (backbone, block)
        base = baseline_request(built[key], baseline)
        base_key = None
        if base is not None:
            base_key = build_once(base)
            if base_key == key:
                base_key = None  # --baseline names the model itself
            elif base_key not in order:
                order.append(base_key)
        baseline_of[key] = base_key
        if key not in order:
            order.append(key)
    for key in order:
        if key not in info:  # a baseline only: a plain model
            spec = built[key].spec
            info[key] = (spec.base or spec.name, spec.attn) if spec is not None and spec.kind != "block" else (None, None)
            baseline_of.setdefault(key, None)

    counts: dict[tuple, tuple[int, Any]] = {}
    for key in order:
        with progress.step(f"counting {built[key].name}"):
            counts[key] = _count(built[key])

    stats: dict[tuple, Any] = {}
    if latency:
        items = [(built[k].module, tuple(built[k].input_shape)) for k in order]
        with progress.step(f"timing {len(items)} models, interleaved"):
            measured = timing.measure_interleaved(items, device=device, threads=threads, min_time=min_time, seed=seed)
        stats = dict(zip(order, measured))

    exports: dict[tuple, tuple[bool, str | None, float | None]] = {}
    if export_opset is not None:
        with tempfile.TemporaryDirectory(prefix="attncli-compare-") as folder:
            for i, key in enumerate(order):
                with progress.step(f"exporting {built[key].name} at opset {export_opset}"):
                    exports[key] = _export(built[key], int(export_opset), Path(folder) / f"{i}.onnx", parity_device)

    names = {key: built[key].name for key in order}
    is_baseline = {b for b in baseline_of.values() if b is not None}
    rows = []
    for key in order:
        params, costs = counts[key]
        backbone, block = info[key]
        row = CompareRow(
            name=names[key], backbone=backbone, block=block,
            baseline=names[baseline_of[key]] if baseline_of[key] is not None else None,
            is_baseline=key in is_baseline, input_shape=list(built[key].input_shape),
            params=params, macs=costs.macs, flops=costs.flops, uncounted_ops=dict(costs.uncounted_ops),
        )
        base = baseline_of[key]
        if base is not None:
            base_params, base_costs = counts[base]
            row.params_overhead = params - base_params
            row.params_overhead_rel = relative_diff(row.params_overhead, base_params)
            row.macs_overhead = costs.macs - base_costs.macs
            row.macs_overhead_rel = relative_diff(row.macs_overhead, base_costs.macs)
            row.flops_overhead = costs.flops - base_costs.flops
            row.flops_overhead_rel = relative_diff(row.flops_overhead, base_costs.flops)
        if key in stats:
            s = stats[key]
            row.latency_p50_ms, row.latency_ci_low_ms, row.latency_ci_high_ms = s.p50_ms, s.ci_low_ms, s.ci_high_ms
            row.latency_samples = s.samples
            if base is not None:
                overhead = timing.latency_overhead(s, stats[base])
                row.latency_overhead_ms, row.latency_overhead_rel = overhead.delta_ms, overhead.rel
                row.latency_within_noise = overhead.within_noise
        if key in exports:
            row.exports, row.export_problem, row.parity_max_abs = exports[key]
        rows.append(row)

    notes = [
        f"{r.name}: some operators have no counting rule ({', '.join(r.uncounted_ops)}): its MACs and FLOPs are lower bounds"
        for r in rows if r.uncounted_ops
    ]
    notes += [f"{r.name} does not export at opset {export_opset}: {r.export_problem}" for r in rows if r.exports is False]
    return CompareReport(
        rows=sort_rows(rows, sort), sort=sort, baseline=baseline, latency=latency, device=device if latency else None,
        min_time=min_time, export_opset=int(export_opset) if export_opset is not None else None, notes=notes,
        environment=describe_environment(seed=seed, device=device if latency else None),
    )
