"""Everything the terminal shows is built here, with rich. Data goes to stdout, diagnostics to stderr.

Each report is drawn on a console given to it: the terminal's, or a plain one whose text (the same
table, without colour codes) `emit` writes to the file of -o.
"""

from __future__ import annotations

import io
from functools import partial
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from attncli.reports import check_report_target, json_text, write_atomic

if TYPE_CHECKING:
    from attncli.bench import BenchResult
    from attncli.describe import ModelInfo
    from attncli.gate import Case, CaseResult, CheckReport
    from attncli.onnx_export import ExportResult
    from attncli.parity import ParityReport
    from attncli.profiling import ProfileReport
    from attncli.registry import Spec

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """JSON alone on stdout (no rich markup, no wrapping)."""
    print(json_text(data), end="")


def plain_text(draw: Callable[[Console], None]) -> str:
    """What ``draw`` shows on the terminal, as plain text: same width, no colour codes."""
    buffer = io.StringIO()
    draw(Console(file=buffer, width=out.width, color_system=None, force_terminal=False, highlight=False, soft_wrap=False))
    return buffer.getvalue()


def check_target(output: Path | None) -> None:
    """Refuse a report file that cannot be written, before any slow work."""
    if output is not None:
        check_report_target(output)


def write_report(output: Path, text: str) -> None:
    """``text`` to ``output`` atomically (a temporary file in the same folder, then renamed), and a note."""
    write_atomic(output, text)
    note(f"report written to {output}")


def emit(
    fmt: str, data: Any, draw: Callable[[Console], None], output: Path | None = None, environment: dict[str, Any] | None = None
) -> None:
    """A report as JSON (``data``) or as the table ``draw`` builds: on stdout, or written to ``output``.

    ``environment`` (``attncli.environment.describe``) is the JSON's ``environment`` object, and
    the table's last line, dim."""
    if environment is not None:
        if isinstance(data, dict) and "environment" not in data:
            data = {**data, "environment": environment}
        draw = partial(_with_footer, draw, environment)
    if output is not None:
        write_report(output, json_text(data) if fmt == "json" else plain_text(draw))
    elif fmt == "json":
        print_json(data)
    else:
        draw(out)


def _with_footer(draw: Callable[[Console], None], environment: dict[str, Any], console: Console) -> None:
    draw(console)
    environment_footer(environment, console)


def environment_footer(environment: dict[str, Any], console: Console) -> None:
    """The environment in one dim line under a table."""
    from rich.markup import escape

    from attncli.environment import one_line

    console.print(f"[dim]{escape(one_line(environment))}[/]", markup=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)


def note(message: str) -> None:
    from rich.markup import escape

    err.print(f"[yellow]note:[/] {escape(message)}", markup=True, highlight=False)


def notes(messages: Iterable[str]) -> None:
    for message in messages:
        note(message)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_shape(shape: Iterable[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def spec_table(specs: Sequence[Spec]) -> Table:
    table = Table(title=f"{len(specs)} models", title_justify="left")
    # Names and shapes never shrink; the paper title is the column that gives way on a narrow terminal.
    table.add_column("name", style="bold cyan", no_wrap=True, min_width=max((len(s.name) for s in specs), default=4))
    table.add_column("kind", no_wrap=True, min_width=8)
    table.add_column("input", no_wrap=True, min_width=max((len(fmt_shape(s.input_shape)) for s in specs), default=5))
    table.add_column("arXiv", no_wrap=True, min_width=10)
    table.add_column("paper", overflow="ellipsis", no_wrap=True, max_width=40)
    table.add_column("aliases", overflow="fold")
    for spec in specs:
        table.add_row(
            spec.name, spec.kind, fmt_shape(spec.input_shape), spec.paper.arxiv or "-", spec.paper.title, ", ".join(spec.aliases)
        )
    return table


def list_report(specs: Sequence[Spec], console: Console = out) -> None:
    console.print(spec_table(specs))


def info_report(info: ModelInfo, console: Console = out) -> None:
    console.print(f"[bold cyan]{info.name}[/]  [dim]{info.kind}[/]  {info.summary}")
    if info.paper:
        arxiv = f" (arXiv {info.paper['arxiv']})" if info.paper.get("arxiv") else ""
        console.print(f"paper       {info.paper['title']}{arxiv}")
    if info.aliases:
        console.print(f"aliases     {', '.join(info.aliases)}")
    args = ", ".join(f"{k}={v}" for k, v in info.kwargs.items()) or "none"
    console.print(f"arguments   {args}")
    if info.output_shape is not None:
        console.print(f"input       {fmt_shape(info.input_shape)}  ->  output {fmt_shape(info.output_shape)}")
    else:
        outputs = ", ".join(f"{path} {fmt_shape(shape)}" for path, shape in info.output_shapes.items())
        console.print(f"input       {fmt_shape(info.input_shape)}  ->  {outputs}")
    console.print(f"parameters  {fmt_int(info.params)}  (trainable {fmt_int(info.trainable_params)})")
    if info.attn:
        where = f"{info.attn['position']} ({info.attn['where']})" if info.attn.get("position") else "several positions"
        console.print(f"attention   {info.attn['name']} at {where}")
    for note in info.notes:
        console.print(f"note        {note}", soft_wrap=True)
    ref = info.reference
    if ref is not None:
        unit = "2^20" if ref.units == "binary" else "10^6"
        line = f"published   {ref.published_params_m}M params (÷{unit})" if ref.published_params_m else "published  "
        if ref.published_macs_g:
            line += f", {ref.published_macs_g}G MACs (÷{'2^30' if ref.units == 'binary' else '10^9'})"
        console.print(f"{line}  [dim]{ref.source}[/]")
        if ref.params_rel_diff is not None:
            console.print(f"measured    {ref.measured_params_m:.2f}M params in the same units ({ref.params_rel_diff:+.2%})")
        if ref.exact_params is not None:
            same = "matches" if ref.exact_params_match else "differs from"
            console.print(f"            {same} the official code's exact count {fmt_int(ref.exact_params)}")
    tree = Tree(f"[bold]{info.modules[0].type}[/] {fmt_int(info.modules[0].params)}")
    nodes = {0: tree}
    for row in info.modules[1:]:
        parent = nodes[row.depth - 1]
        nodes[row.depth] = parent.add(f"{row.path.rsplit('.', 1)[-1]} [dim]{row.type}[/] {fmt_int(row.params)}")
    console.print(tree)


# ----------------------------------------------------------------------------- check

_STATUS_STYLE = {"passed": "green", "failed": "red", "error": "magenta", "timeout": "yellow", "xfailed": "green", "xpassed": "red"}


class CheckProgress:
    """A progress bar on a terminal; plain lines (one per finished case) in CI logs."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self._progress = None

    def __enter__(self) -> CheckProgress:
        return self

    def planned(self, cases: Sequence[Case]) -> None:
        self.total = len(cases)
        if err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]check[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.description}"), console=err, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def started(self, case: Case) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=case.id)

    def finished(self, result: CaseResult) -> None:
        self.done += 1
        err_txt = f"max abs {result.max_abs:.2e}" if result.max_abs is not None else ""
        line = f"[{self.done}/{self.total}] {result.id} [{_STATUS_STYLE[result.status]}]{result.status}[/] {result.seconds:.1f}s {err_txt}"
        if result.status != "passed":
            line += f" - {result.message}"
        if self._progress is not None:
            self._progress.advance(self._task)
            self._progress.console.print(line, markup=True, highlight=False, soft_wrap=True)
        else:
            err.print(line, markup=True, highlight=False, soft_wrap=True)


def check_summary(report: CheckReport, console: Console = out) -> None:
    table = Table(title="attncli check", title_justify="left")
    table.add_column("case", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("opset", justify="right")
    table.add_column("max abs error", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right")
    table.add_column("message", overflow="fold")
    for c in report.cases:
        table.add_row(
            c.model, f"[{_STATUS_STYLE[c.status]}]{c.status}[/]", str(c.opset),
            f"{c.max_abs:.2e}" if c.max_abs is not None else "-", f"{c.seconds:.1f}",
            "" if c.status == "passed" else c.message,
        )
    console.print(table)
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n) or "nothing run"
    verdict = "PASSED" if report.passed else ("INTERRUPTED" if report.interrupted else "FAILED")
    style = "bold green" if report.passed else "bold red"
    console.print(f"[{style}]{verdict}[/]: {len(report.cases)}/{report.planned} cases, {counts}, {report.seconds:.1f} s", highlight=False)
    if report.environment:
        environment_footer(report.environment, console)


# ----------------------------------------------------------------------------- bench


def bench_report(result: BenchResult, plot: Path | None = None, console: Console = out) -> None:
    threads = f", {result.threads} threads" if result.threads else ""
    console.print(f"[bold cyan]{result.model}[/] {fmt_shape(result.input_shape)} on {result.device}{threads}, "
              f"onnxruntime {result.provider} at opset {result.opset}; {result.iters} interleaved iterations")
    table = Table(title_justify="left")
    for col in ("batch", "runtime", "p50 ms", "p90 ms", "mean ms", "samples/s", "vs eager"):
        table.add_column(col, justify="right" if col != "runtime" else "left")
    for row in result.rows:
        for lat in row.runtimes:
            table.add_row(
                str(row.batch_size), lat.runtime, f"{lat.p50_ms:.3f}", f"{lat.p90_ms:.3f}", f"{lat.mean_ms:.3f}",
                f"{lat.throughput:,.1f}", f"{lat.vs_eager:.2f}x",
            )
    console.print(table)
    for row in result.rows:
        faster = "faster" if row.ratio < 1 else "slower"
        console.print(f"batch {row.batch_size}: onnxruntime/pytorch p50 ratio [bold]{row.ratio:.2f}[/] (onnxruntime {faster})")
    if plot is not None:
        console.print(f"plot written to {plot}")


# ----------------------------------------------------------------------------- profile


def fmt_count(n: float) -> str:
    """Decimal prefixes (10^3, 10^6, 10^9), three significant digits: 9.00G, 118M, 86.3k."""
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.2f}{unit}" if abs(v) < 10 else f"{v:.1f}{unit}" if abs(v) < 100 else f"{v:,.0f}{unit}"
    return f"{n:g}"


def fmt_pct(share: float | None) -> str:
    """Percent with two decimals; a share below 0.01% shows as <0.01% (the JSON keeps the number)."""
    if share is None:
        return "-"
    return "<0.01%" if 0 < share < 0.0001 else f"{share:.2%}"


def fmt_rel(rel: float | None) -> str:
    if rel is None:
        return ""
    return f" ({'+' if rel > 0 else '-'}<0.01%)" if 0 < abs(rel) < 0.0001 else f" ({rel:+.2%})"


def fmt_signed(n: float, rel: float | None) -> str:
    rel_txt = fmt_rel(rel)
    return f"{'+' if n >= 0 else '-'}{fmt_count(abs(n))}{rel_txt}"


def profile_report(report: ProfileReport, console: Console = out) -> None:
    from rich import box

    console.print(f"[bold cyan]{report.model}[/]  [dim]{report.kind}[/]  input {fmt_shape(report.input_shape)}")
    p = report.params
    attn = f"; attention {fmt_int(p.attention)} ({fmt_pct(p.attention_share)})" if p.attention is not None else "; attention: none"
    console.print(f"parameters  {fmt_int(p.total)} total, {fmt_int(p.trainable)} trainable{attn}")
    console.print(f"MACs        {fmt_count(report.macs)}  ({fmt_int(report.macs)})  [dim]multiply-accumulates: conv, linear, matmul[/]")
    console.print(f"FLOPs       {fmt_count(report.flops)}  ({fmt_int(report.flops)})  [dim]2 x MACs + every other arithmetic op[/]")
    conv = report.convention
    if conv is not None and conv.name != "attncli":
        console.print(f"MACs ({conv.name})  {fmt_count(conv.macs)}  ({fmt_int(conv.macs)})  [dim]{conv.rule}[/]")
    if report.attention is not None:
        a = report.attention
        console.print(
            f"attention   {len(a.modules)} block(s): MACs {fmt_count(a.macs)} ({fmt_pct(a.macs_share)}), "
            f"FLOPs {fmt_count(a.flops)} ({fmt_pct(a.flops_share)})"
        )
    top = report.top_flops_shares(6)
    if top:
        console.print("FLOPs by op " + ", ".join(f"{op} {share:.1%}" for op, share in top), style="dim")
    if report.uncounted_ops:
        ops = ", ".join(f"{op} x{n}" for op, n in report.uncounted_ops.items())
        console.print(f"[bold red]uncounted[/]   {ops}  [dim](no rule in attncli.counting: MACs/FLOPs are a lower bound)[/]")
    else:
        console.print("uncounted   none [dim](every operator counted or declared free)[/]")

    ref = report.reference
    if ref is not None:
        units = {"binary": ("2^20", {"M": "2^20", "G": "2^30"}), "decimal": ("10^6", {"M": "10^6", "G": "10^9"})}
        pdiv, mdiv = units.get(ref.units, units["decimal"])[0], units.get(ref.units, units["decimal"])[1][ref.macs_scale]
        parts = []
        if ref.published_params_m is not None:
            rel = f" ({ref.params_rel_diff:+.2%})" if ref.params_rel_diff is not None else ""
            parts.append(f"params {ref.published_params_m} M published vs {ref.measured_params_m:.3f} M measured{rel} [dim](/{pdiv})[/]")
        if ref.published_macs is not None and ref.measured_macs is not None:
            rel = f" ({ref.macs_rel_diff:+.2%})" if ref.macs_rel_diff is not None else ""
            parts.append(
                f"MACs {ref.published_macs} {ref.macs_scale} published vs {ref.measured_macs:.{1 if ref.macs_scale == 'M' else 3}f}"
                f" {ref.macs_scale} measured{rel} [dim](/{mdiv}, counted as {ref.convention})[/]"
            )
        console.print(f"published   [dim]{ref.source}[/]")
        for part in parts:
            console.print(f"            {part}")
        if ref.exact_params is not None:
            same = "matches" if ref.exact_params_match else "differs from"
            console.print(f"            parameter count {same} the official code's exact {fmt_int(ref.exact_params)}")
        if ref.published_macs is not None and ref.convention_rule and (conv is None or conv.name != ref.convention):
            console.print(f"            [dim]{ref.convention}: {ref.convention_rule}[/]")
        if ref.note:
            console.print(f"            [yellow]{ref.note}[/]")

    base = report.baseline
    if base is not None:
        line = (
            f"vs {base.model}: params {fmt_signed(base.params_diff, base.params_rel_diff)}, "
            f"MACs {fmt_signed(base.macs_diff, base.macs_rel_diff)}, FLOPs {fmt_signed(base.flops_diff, base.flops_rel_diff)}"
        )
        if base.latency_diff_ms is not None:
            line += f", p50 latency {base.latency_diff_ms:+.2f} ms{fmt_rel(base.latency_rel_diff)}"
        console.print(f"overhead    {line}")

    if report.latency_sweep:
        first = report.latency_sweep[0]
        threads = f", {first.threads} threads" if first.threads else ""
        console.print(
            f"latency     {first.device} ({first.device_name}{threads}), {first.dtype}, "
            f"{first.warmup} warm-up + {first.iters} timed iterations, torch.inference_mode()"
        )
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
        cols = ["batch", "mean ms", "std", "min", "p50", "p90", "p99", "samples/s"]
        if first.peak_memory_mb is not None:
            cols.append("peak MiB")
        for col in cols:
            table.add_column(col, justify="right", no_wrap=True)
        for lat in report.latency_sweep:
            row = [str(lat.batch_size)] + [f"{v:.3f}" for v in (lat.mean_ms, lat.std_ms, lat.min_ms, lat.p50_ms, lat.p90_ms, lat.p99_ms)]
            row.append(f"{lat.throughput:,.1f}")
            if lat.peak_memory_mb is not None:
                row.append(f"{lat.peak_memory_mb:,.1f}")
            table.add_row(*row)
        console.print(table)

    console.print(f"modules     to depth {report.depth}; attn P/M: share of params/MACs inside attention blocks")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    table.add_column("module", no_wrap=True, overflow="ellipsis", max_width=28)
    table.add_column("type", no_wrap=True, overflow="ellipsis", max_width=14)
    for col in ("params", "MACs", "FLOPs", "attn P", "attn M"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in report.modules:
        name = row.path if row.depth == 0 else "  " * (row.depth - 1) + row.path.rsplit(".", 1)[-1]
        style = "magenta" if row.is_attention else None
        table.add_row(
            name, row.type, fmt_int(row.params), fmt_count(row.macs), fmt_count(row.flops),
            fmt_pct(row.attention_params_share), fmt_pct(row.attention_macs_share), style=style,
        )
    console.print(table)
    for note in report.notes:
        err.print(f"[yellow]note:[/] {note}", markup=True, highlight=False)


# ----------------------------------------------------------------------------- export / verify


def _fmt_err(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.1e}"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def export_report(result: ExportResult, console: Console = out) -> None:
    """The written file and its settings, then the parity report when it was verified."""
    axes = ", ".join(result.dynamic_axes.values()) or "none"
    console.print(f"[bold]wrote[/]       {result.path}  ({_fmt_bytes(result.file_bytes)})")
    console.print(f"onnx        opset {result.opset}, {result.exporter} exporter, {result.export_seconds:.1f} s; dynamic axes: {axes}")
    console.print(f"model       {result.model}, {fmt_int(result.num_params)} parameters, example input {fmt_shape(result.input_shape)}")
    if result.parity is None:
        console.print("[dim]not verified (--no-verify): run `attncli verify` on it[/]")
    else:
        parity_report(result.parity, console)


def parity_report(report: ParityReport, console: Console = out) -> None:
    """One row per case (per output when there are several), then the verdict line."""
    from rich import box

    dims = ", ".join(str(d) for d in report.file_input_shape)
    console.print(f"verify      {report.file} (opset {report.opset}), input {report.input_name} ({dims})")
    console.print(f"            onnxruntime {report.provider} vs PyTorch {report.model} on the CPU")
    console.print(f"tolerance   {report.rule}")
    several = any(len(c.outputs) > 1 for c in report.cases)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    seeds = len({c.seed for c in report.cases}) > 1  # the seed column only when it varies (keeps 80 columns)
    cols = ["shape", "input"] + (["seed"] if seeds else []) + (["output"] if several else [])
    cols += ["max abs", "mean abs", "max rel", "over tol", "min atol", ""]
    for col in cols:
        justify = "left" if col in ("shape", "output", "") else "right"
        table.add_column(col, justify=justify, no_wrap=True, min_width=4 if col == "" else None)
    for case in report.cases:
        shape = ",".join(str(d) for d in case.shape)
        if case.problem:
            lead = [shape, case.distribution] + ([str(case.seed)] if seeds else [])
            table.add_row(*lead, *(["-"] * (len(cols) - len(lead) - 1)), "[red]FAIL[/]")
            continue
        for o in case.outputs:
            row = [shape, case.distribution] + ([str(case.seed)] if seeds else []) + ([o.name] if several else [])
            row += [_fmt_err(o.max_abs), _fmt_err(o.mean_abs), _fmt_err(o.max_rel), f"{o.mismatch_ratio:.2%}", _fmt_err(o.min_atol)]
            table.add_row(*row, "[green]ok[/]" if o.passed else "[red]FAIL[/]")
    console.print(table)
    for case in report.cases:
        problems = [case.problem] if case.problem else [f"{o.name}: {o.problem}" for o in case.outputs if o.problem]
        for problem in problems:
            console.print(f"[red]{','.join(map(str, case.shape))} {case.distribution} seed {case.seed}:[/] {problem}", soft_wrap=True)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    verdict, _, rest = report.message.partition(" ")
    console.print(f"[{'bold green' if report.passed else 'bold red'}]{verdict}[/] {rest}", soft_wrap=True)
