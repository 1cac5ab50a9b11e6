"""Everything the terminal shows is built here, with rich. Data goes to stdout, diagnostics to stderr."""

import json
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """JSON alone on stdout (no rich markup, no wrapping)."""
    print(json.dumps(data, indent=2, default=str))


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_shape(shape: Iterable[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def spec_table(specs: list) -> Table:
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


def info_report(info: Any) -> None:
    out.print(f"[bold cyan]{info.name}[/]  [dim]{info.kind}[/]  {info.summary}")
    if info.paper:
        arxiv = f" (arXiv {info.paper['arxiv']})" if info.paper.get("arxiv") else ""
        out.print(f"paper       {info.paper['title']}{arxiv}")
    if info.aliases:
        out.print(f"aliases     {', '.join(info.aliases)}")
    args = ", ".join(f"{k}={v}" for k, v in info.kwargs.items()) or "none"
    out.print(f"arguments   {args}")
    out.print(f"input       {fmt_shape(info.input_shape)}  ->  output {fmt_shape(info.output_shape)}")
    out.print(f"parameters  {fmt_int(info.params)}  (trainable {fmt_int(info.trainable_params)})")
    ref = info.reference
    if ref is not None:
        unit = "2^20" if ref.units == "binary" else "10^6"
        line = f"published   {ref.published_params_m}M params (÷{unit})" if ref.published_params_m else "published  "
        if ref.published_macs_g:
            line += f", {ref.published_macs_g}G MACs (÷{'2^30' if ref.units == 'binary' else '10^9'})"
        out.print(f"{line}  [dim]{ref.source}[/]")
        if ref.params_rel_diff is not None:
            out.print(f"measured    {ref.measured_params_m:.2f}M params in the same units ({ref.params_rel_diff:+.2%})")
        if ref.exact_params is not None:
            same = "matches" if ref.exact_params == info.params else "differs from"
            out.print(f"            {same} the official code's exact count {fmt_int(ref.exact_params)}")
    tree = Tree(f"[bold]{info.modules[0].type}[/] {fmt_int(info.modules[0].params)}")
    nodes = {0: tree}
    for row in info.modules[1:]:
        parent = nodes[row.depth - 1]
        nodes[row.depth] = parent.add(f"{row.path.rsplit('.', 1)[-1]} [dim]{row.type}[/] {fmt_int(row.params)}")
    out.print(tree)
