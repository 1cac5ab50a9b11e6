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

from attncli.progress import IMPORTING_TORCH
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
    """The registry as a table, one row per model. Names, kinds, shapes and arXiv ids never wrap;
    the paper title and the aliases wrap at word boundaries on a narrow terminal (never cropped)."""
    table = Table(title=f"{len(specs)} model{'' if len(specs) == 1 else 's'}", title_justify="left")
    table.add_column("name", style="bold cyan", no_wrap=True, min_width=max((len(s.name) for s in specs), default=4))
    table.add_column("kind", no_wrap=True, min_width=8)
    table.add_column("input", no_wrap=True, min_width=max((len(fmt_shape(s.input_shape)) for s in specs), default=5))
    table.add_column("arXiv", no_wrap=True, min_width=10)
    table.add_column("paper", ratio=3)
    table.add_column("aliases", ratio=1)
    for spec in specs:
        table.add_row(
            spec.name, spec.kind, fmt_shape(spec.input_shape), spec.paper.arxiv or "-", spec.paper.title, ", ".join(spec.aliases)
        )
    return table


# Below this many columns for the paper title, ``list`` stacks each model's title and aliases
# under its line instead of squeezing them into a column a few words wide.
LIST_TITLE_MIN = 40


def _list_table_width(specs: Sequence[Spec]) -> int:
    """The width the table needs to give the paper title ``LIST_TITLE_MIN`` columns and the
    aliases their longest entry (up to 24): the fixed columns, plus borders and padding (3 a column, 1)."""
    fixed = (
        max((len(s.name) for s in specs), default=4) + 8 + max((len(fmt_shape(s.input_shape)) for s in specs), default=5) + 10
    )
    aliases = min(24, max((len(", ".join(s.aliases)) for s in specs), default=7))
    return fixed + LIST_TITLE_MIN + max(aliases, 7) + 6 * 3 + 1


def spec_list(specs: Sequence[Spec], width: int = 80) -> Any:
    """The registry for a narrow terminal: a line per model (name, kind, input, arXiv), its paper
    title and aliases indented under it, wrapped at word boundaries to ``width``."""
    import textwrap

    from rich.console import Group
    from rich.text import Text

    name_w = max((len(s.name) for s in specs), default=4)
    input_w = max((len(fmt_shape(s.input_shape)) for s in specs), default=5)
    parts: list[Any] = [
        Text(f"{len(specs)} model{'' if len(specs) == 1 else 's'}", style="italic"),
        Text(f"{'name':<{name_w}}  {'kind':<8}  {'input':<{input_w}}  arXiv", style="bold"),
    ]
    for spec in specs:
        line = Text(f"{spec.name:<{name_w}}", style="bold cyan")
        line.append(f"  {spec.kind:<8}  {fmt_shape(spec.input_shape):<{input_w}}  {spec.paper.arxiv or '-'}")
        parts.append(line)
        detail = [spec.paper.title] + ([f"aliases: {', '.join(spec.aliases)}"] if spec.aliases else [])
        for text in detail:
            for wrapped in textwrap.wrap(text, max(width - 2, 20), break_long_words=False, break_on_hyphens=False):
                parts.append(Text(f"  {wrapped}", style="dim"))
    return Group(*parts)


def list_report(specs: Sequence[Spec], console: Console = out) -> None:
    """The table where the terminal is wide enough for it, else the stacked list (no cropping either way)."""
    console.print(spec_table(specs) if console.width >= _list_table_width(specs) else spec_list(specs, console.width))


def list_plain(specs: Sequence[Spec]) -> str:
    """``list --format plain``: one name per line, for shell loops (`for m in $(attncli list -f plain)`)."""
    return "".join(f"{spec.name}\n" for spec in specs)


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
        if ref.published_macs is not None:
            divisor = {("binary", "M"): "2^20", ("binary", "G"): "2^30", ("decimal", "M"): "10^6"}.get((ref.units, ref.macs_scale), "10^9")
            line += f", {ref.published_macs}{ref.macs_scale} MACs (÷{divisor}, {ref.convention} convention)"
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


class Reporter:
    """Shows the library's ``attncli.progress`` steps on stderr, never on stdout.

    On a terminal: a transient line per running step (nested steps indented) with a spinner and
    its elapsed time, gone when the step ends. Elsewhere (a CI log, a pipe): one plain line per
    step that took ``PLAIN_AFTER_S`` or more, "building eca_resnet50: 3.2 s", when it ends; a step
    that raised leaves the telling to the error message, and the import of torch, which starts
    every run, is left out of logs.

    As a context manager it installs itself as the process's reporter and puts the previous one back."""

    PLAIN_AFTER_S = 1.0

    def __init__(self, console: Console | None = None) -> None:
        self.console = console if console is not None else err
        self._display: Any = None
        self._steps: list[tuple[str, Any]] = []  # (label, task id), outermost first
        self._previous: Any = None

    @property
    def terminal(self) -> bool:
        return self.console.is_terminal

    def __enter__(self) -> Reporter:
        from attncli import progress

        self._previous = progress.set_reporter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        from attncli import progress

        progress.set_reporter(self._previous)
        self._stop()

    def _live(self) -> Any:
        """The rich display, started on first use (nothing is drawn before a step starts)."""
        if self._display is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.text import Text

            # The bar and the count are drawn on a task with a total (the gate's), blank on a step's line.
            class Bar(BarColumn):
                def render(self, task: Any) -> Any:
                    return super().render(task) if task.total is not None else Text("")

            class Count(MofNCompleteColumn):
                def render(self, task: Any) -> Any:
                    return super().render(task) if task.total is not None else Text("")

            self._display = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), Bar(), Count(), TimeElapsedColumn(),
                console=self.console, transient=True,
            )
            self._display.start()
        return self._display

    def _stop(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    def _idle(self) -> bool:
        """True when nothing is on the display (then it is taken down, not left spinning)."""
        return not self._steps

    def start(self, label: str) -> None:
        if not self.terminal:
            return
        from rich.markup import escape

        indent = "  " * len(self._steps)
        self._steps.append((label, self._live().add_task(f"{indent}{escape(label)}", total=None)))

    def end(self, label: str, seconds: float) -> None:
        import sys

        if not self.terminal:
            if seconds >= self.PLAIN_AFTER_S and sys.exc_info()[0] is None and label != IMPORTING_TORCH:
                self.console.print(f"{label}: {seconds:.1f} s", markup=False, highlight=False, soft_wrap=True)
            return
        for i in range(len(self._steps) - 1, -1, -1):
            if self._steps[i][0] == label:
                _, task = self._steps.pop(i)
                if self._display is not None:
                    self._display.remove_task(task)
                break
        if self._idle():
            self._stop()


class CheckProgress(Reporter):
    """The gate's progress. On a terminal: a bar with the count of finished cases, under it one
    line per running case (with -j 2, two at once) with its elapsed time, and before the first
    case the start of the worker processes (the first one imports torch: seconds); a line per
    finished case above them. In a CI log: one plain line per finished case."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self.total = 0
        self.done = 0
        self._bar: Any = None
        self._running: dict[str, Any] = {}  # case id -> its line on the display
        self._waiting: Any = None  # the "starting" line, until the first case starts

    def _idle(self) -> bool:
        return super()._idle() and self._bar is None

    def __exit__(self, *exc: object) -> None:
        self._bar = None
        super().__exit__(*exc)

    def planned(self, cases: Sequence[Case]) -> None:
        self.total = len(cases)
        if self.terminal and cases:
            display = self._live()
            self._bar = display.add_task("[bold]check[/]", total=self.total)
            self._waiting = display.add_task("  starting the worker processes (the first imports torch)", total=None)

    def started(self, case: Case) -> None:
        if self._display is None:
            return
        from rich.markup import escape

        if self._waiting is not None:
            self._display.remove_task(self._waiting)
            self._waiting = None
        self._running[case.id] = self._display.add_task(f"  {escape(case.id)}", total=None)

    def finished(self, result: CaseResult) -> None:
        self.done += 1
        err_txt = f"max abs {result.max_abs:.2e}" if result.max_abs is not None else ""
        line = f"[{self.done}/{self.total}] {result.id} [{_STATUS_STYLE[result.status]}]{result.status}[/] {result.seconds:.1f}s {err_txt}"
        if result.status != "passed":
            line += f" - {result.message}"
        if self._display is not None:
            task = self._running.pop(result.id, None)
            if task is not None:
                self._display.remove_task(task)
            if self._bar is not None:
                self._display.advance(self._bar)
        self.console.print(line, markup=True, highlight=False, soft_wrap=True)


def _quant_cell(q: dict[str, Any] | None) -> str:
    """A case's int8 figures (QuantReport.as_dict()) in one cell: cosine, then top-1 agreement."""
    if not q:
        return "-"
    cosine = f"{q['cosine_min']:.4f}" if q.get("cosine_min") is not None else "n/a"
    top1 = f", {q['top1_agreement']:.1%}" if q.get("top1_agreement") is not None else ""
    return f"{cosine}{top1}"


def check_summary(report: CheckReport, console: Console = out) -> None:
    table = Table(title="attncli check", title_justify="left")
    table.add_column("case", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("opset", justify="right")
    table.add_column("max abs error", justify="right", no_wrap=True)
    quantized = any(getattr(c, "quantization", None) for c in report.cases)
    if quantized:  # check --quantize: the int8 file's cosine (the smallest) and top-1 agreement
        table.add_column("int8 cos, top-1", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right")
    table.add_column("message", overflow="fold")
    for c in report.cases:
        q = getattr(c, "quantization", None)
        int8 = [_quant_cell(q)] if quantized else []
        table.add_row(
            c.model, f"[{_STATUS_STYLE[c.status]}]{c.status}[/]", str(c.opset),
            f"{c.max_abs:.2e}" if c.max_abs is not None else "-", *int8, f"{c.seconds:.1f}",
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


def fmt_ratio(r: float) -> str:
    """Two decimals, or two significant digits below 0.1, so a small ratio never reads 0.00."""
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def fmt_ms_interval(low: float, high: float) -> str:
    return f"{low:.3f}-{high:.3f}" if high >= 0.01 else f"{low:.3g}-{high:.3g}"


def timing_rule(samples: int, block_size: int, min_time_s: float | None, warmup: int) -> str:
    """How a latency was measured, in words."""
    if min_time_s is None:
        return f"{warmup} warm-up + {samples * block_size} timed iterations"
    calls = "1 call" if block_size == 1 else f"{block_size} calls"
    return f"{samples} samples x {calls} ({min_time_s:g} s budget), {warmup} untimed"


def bench_report(result: BenchResult, plot: Path | None = None, console: Console = out) -> None:
    threads = f", {result.threads} threads" if result.threads else ""
    rule = (
        f"{result.iters} interleaved iterations" if result.min_time_s is None
        else f"{result.min_time_s:g} s of timed blocks per runtime, samples interleaved"
    )
    console.print(f"[bold cyan]{result.model}[/] {fmt_shape(result.input_shape)} on {result.device}{threads}, "
              f"onnxruntime {result.provider} at opset {result.opset}; {rule}")
    from rich import box

    # p90, std and throughput stay in the JSON; the median's interval is what the ratio's verdict rests on
    table = Table(title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for col in ("batch", "runtime", "p50 ms", "p50 95% CI", "mean ms", "n x block", "vs eager"):
        table.add_column(col, justify="right" if col != "runtime" else "left", no_wrap=True)
    for row in result.rows:
        for lat in row.runtimes:
            table.add_row(
                str(row.batch_size), lat.runtime, f"{lat.p50_ms:.3f}", fmt_ms_interval(lat.ci_low_ms, lat.ci_high_ms),
                f"{lat.mean_ms:.3f}", f"{lat.samples}x{lat.block_size}", f"{fmt_ratio(lat.vs_eager)}x",
            )
    console.print(table)
    for row in result.rows:
        verdict = "within noise" if row.within_noise else f"onnxruntime {'faster' if row.ratio < 1 else 'slower'}"
        console.print(f"batch {row.batch_size}: onnxruntime/pytorch p50 ratio [bold]{fmt_ratio(row.ratio)}[/] ({verdict})")
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
        if base.latency_within_noise:  # overlapping intervals: a difference, if any, below what was measurable
            line += ", p50 latency within noise"
        elif base.latency_diff_ms is not None:
            line += f", p50 latency {base.latency_diff_ms:+.2f} ms{fmt_rel(base.latency_rel_diff)}"
        console.print(f"overhead    {line}")

    if report.latency_sweep:
        first = report.latency_sweep[0]
        threads = f", {first.threads} thread{'s' if first.threads != 1 else ''}" if first.threads else ""
        console.print(
            f"latency     {first.device} ({first.device_name}{threads}), {first.dtype}, "
            f"{timing_rule(first.samples, first.block_size, first.min_time_s, first.warmup)}, torch.inference_mode()"
        )
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
        # std and p99 stay in the JSON: the interval says more about the median than they do here
        cols = ["batch", "p50 ms", "p50 95% CI", "mean", "min", "p90", "samples/s"]
        if first.peak_memory_mb is not None:
            cols.append("peak MiB")
        for col in cols:
            table.add_column(col, justify="right", no_wrap=True)
        for lat in report.latency_sweep:
            row = [str(lat.batch_size), f"{lat.p50_ms:.3f}", fmt_ms_interval(lat.ci_low_ms, lat.ci_high_ms)]
            row += [f"{v:.3f}" for v in (lat.mean_ms, lat.min_ms, lat.p90_ms)]
            row.append(f"{lat.throughput:,.1f}")
            if lat.peak_memory_mb is not None:
                row.append(f"{lat.peak_memory_mb:,.1f}")
            table.add_row(*row)
        console.print(table)

    console.print(f"modules     to depth {report.depth}; attn P/M: share of params/MACs inside attention blocks")
    if report.counts_from_cache:
        console.print("counts read from attncli's count cache, not traced [dim](ATTNCLI_NO_CACHE=1 to recount)[/]", style="dim")
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
    console.print(f"onnx        opset {result.opset}, {result.route} route, {result.export_seconds:.1f} s; dynamic axes: {axes}")
    console.print(f"model       {result.model}, {fmt_int(result.num_params)} parameters, example input {fmt_shape(result.input_shape)}")
    if result.dtype != "float32":
        edges = "inputs and outputs float32" if result.keep_io_types else f"inputs and outputs {result.dtype} too"
        console.print(f"precision   {result.dtype} weights and activations, {edges}")
    if result.node_count is not None:
        top = ", ".join(f"{op} {n}" for op, n in result.top_operators)
        console.print(f"graph       {fmt_int(result.node_count)} nodes; most used: {top}", soft_wrap=True)
    simplified = getattr(result, "simplify", None)
    if simplified is not None:
        if simplified["applied"]:
            console.print(f"simplified  {fmt_int(simplified['nodes_before'])} -> {fmt_int(simplified['nodes_after'])} nodes (onnxscript optimizer)")
        else:
            console.print(f"simplified  [yellow]no[/]: {simplified['problem']}; the unsimplified file was written", soft_wrap=True)
    if result.parity is None:
        console.print("[dim]not verified (--no-verify): run `attncli verify` on it[/]")
    else:
        parity_report(result.parity, console)
    if getattr(result, "quantization", None) is not None:
        quant_report(result.quantization, console)


def quant_report(report: Any, console: Console = out) -> None:
    """An int8 file's judgement (an ``attncli.quantize.QuantReport``): where it is, how it was
    calibrated, its figures against PyTorch, then the verdict line."""
    size = f"{_fmt_bytes(report.file_bytes)}" + (f", float {_fmt_bytes(report.float_bytes)}" if report.float_bytes else "")
    console.print(f"[bold]int8[/]        {report.file}  ({size}); {report.mode}, opset {report.opset}")
    calibration = report.calibration
    if calibration:
        where = calibration["folder"] if calibration["source"] == "folder" else f"seeded inputs from seed {calibration['first_seed']}"
        console.print(f"calibration {calibration['samples']} inputs: {where}", soft_wrap=True)
    console.print(
        f"            onnxruntime {report.provider} vs PyTorch {report.model} in float32, {report.samples} seeded inputs"
        f" {fmt_shape(report.input_shape)} from seed {report.first_seed}", soft_wrap=True,
    )
    verdict, _, rest = report.message.partition(" ")
    console.print(f"[{'bold green' if report.passed else 'bold red'}]{verdict}[/] {rest}", soft_wrap=True)


def parity_report(report: ParityReport, console: Console = out) -> None:
    """One row per case (per output when there are several), then the verdict line."""
    from rich import box

    dims = ", ".join(str(d) for d in report.file_input_shape)
    console.print(f"verify      {report.file} (opset {report.opset}), input {report.input_name} ({dims})")
    half = f", a {report.precision} file against PyTorch in float32" if report.precision != "float32" else ""
    console.print(f"            onnxruntime {report.provider} vs PyTorch {report.model} on the CPU{half}")
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
    if report.localization is not None:
        localize_report(report.localization, console)


def providers_report(providers: Sequence[Any], console: Console = out) -> None:
    """onnxruntime's execution providers: the installed ones first, then where the others come from."""
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for col in ("provider", "short name", "installed", "comes with"):
        table.add_column(col, no_wrap=col != "comes with")
    for p in providers:
        table.add_row(p.name, p.short, "[green]yes[/]" if p.installed else "[dim]no[/]", p.package)
    console.print(table)
    console.print("[dim]use one with --provider (verify, bench, check, export); installing: docs/providers.md[/]")


# ----------------------------------------------------------------------------- compare


def emit_text(text: str, output: Path | None = None) -> None:
    """A report the library wrote as text (Markdown, LaTeX, CSV): on stdout, or to ``output``."""
    if output is not None:
        write_report(output, text)
    else:
        print(text, end="")


if TYPE_CHECKING:
    from attncli.compare import CompareReport


def compare_report(report: CompareReport, console: Console = out) -> None:
    """The report's stacked cells (a figure, its overhead dim under it) as a rich table that fits
    80 columns without latency's export columns; the footnote and the notes under it."""
    from rich import box
    from rich.markup import escape

    headers, rows = report.stacked()
    table = Table(box=box.SIMPLE, pad_edge=False, padding=(0, 1), show_lines=False)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", style="bold cyan" if i == 0 else None, no_wrap=i == 0)
    for cells in rows:  # a row per section: its overheads are lines of its own
        shown = ["\n".join([escape(lines[0]), *(f"[dim]{escape(line)}[/]" for line in lines[1:])]) for lines in cells]
        table.add_row(*shown, end_section=True)
    console.print(table)
    console.print(report.footnote(), style="dim", soft_wrap=True, highlight=False)
    for line in report.notes:
        console.print(f"[yellow]note:[/] {escape(line)}", markup=True, highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------- inspect / localize

if TYPE_CHECKING:
    from attncli.inspect_onnx import OnnxSummary
    from attncli.parity import LocalizeReport


def _fmt_dims(shape: list[int | str] | None) -> str:
    return "rank unknown" if shape is None else "(" + ", ".join(str(d) for d in shape) + ")"


def inspect_report(summary: OnnxSummary, top: int = 10, console: Console = out) -> None:
    """The file's header lines, its inputs and outputs, then the ``top`` most used operators."""
    from rich import box
    from rich.markup import escape

    opsets = ", ".join(f"{domain} {version}" for domain, version in summary.opset_imports.items())
    producer = f"{summary.producer_name} {summary.producer_version}".strip() or "not recorded"
    console.print(f"[bold]file[/]        {escape(summary.file)}  ({_fmt_bytes(summary.file_bytes)})", soft_wrap=True)
    console.print(f"onnx        IR version {summary.ir_version}; opsets: {opsets}; producer: {escape(producer)}", soft_wrap=True)
    inner = f" (+ {fmt_int(summary.subgraph_node_count)} in subgraphs)" if summary.subgraph_node_count else ""
    console.print(f"graph       {fmt_int(summary.node_count)} nodes{inner}, {len(summary.operators)} operator types"
                  + (f", {summary.local_functions} local functions" if summary.local_functions else ""))
    where = ""
    if summary.external_data:
        files = "; ".join(f"{escape(f.location)} {_fmt_bytes(f.bytes)}{'' if f.exists else ' [red](missing)[/]'}" for f in summary.external_files)
        where = f"; external data: {files}"
    console.print(f"weights     {fmt_int(summary.initializer_count)} initializers, {_fmt_bytes(summary.initializer_bytes)}{where}", soft_wrap=True)
    if summary.attncli_spec is not None:
        spec = summary.attncli_spec
        shown = ", ".join(f"{k} {v}" for k, v in spec.items() if v not in (None, {}, []) and k != "model")
        console.print(f"attncli     {escape(str(spec.get('model')))}: {escape(shown)}", soft_wrap=True)
    if summary.checker_problem:
        console.print(f"[yellow]checker:[/] {escape(summary.checker_problem)}", soft_wrap=True)
    io_table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for col in ("", "name", "type", "shape"):
        io_table.add_column(col, no_wrap=True)
    for kind, tensors in (("input", summary.inputs), ("output", summary.outputs)):
        for t in tensors:
            io_table.add_row(kind, escape(t.name), t.elem_type, _fmt_dims(t.shape))
    console.print(io_table)
    ops = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    ops.add_column("operator", no_wrap=True)
    ops.add_column("count", justify="right")
    shown_ops = summary.top_operators(top)
    for op, n in shown_ops:
        ops.add_row(escape(op), fmt_int(n))
    console.print(ops)
    if len(shown_ops) < len(summary.operators):
        console.print(f"[dim]the {len(shown_ops)} most used of {len(summary.operators)} operator types (--top)[/]")


def localize_report(report: LocalizeReport, console: Console = out) -> None:
    """verify --localize: the first module that diverges, its figures and ONNX nodes, or none."""
    from rich.markup import escape

    colour = "green" if report.passed else "red"
    console.print(f"localize    [{colour}]{escape(report.message)}[/]", soft_wrap=True)
    first = report.first
    if first is not None:
        console.print(f"            onnx nodes: {escape(', '.join(first.nodes))}", soft_wrap=True)
        console.print(f"            onnx value: {escape(first.tensor)}", soft_wrap=True)
    if report.not_compared:
        console.print(f"[dim]            {len(report.not_compared)} modules not compared (see --format json: not_compared)[/]")
