from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from attncli.cli import render
from attncli.cli.main import command
from attncli.cli.options import Kind


class ReportFormat(str, Enum):
    table = "table"
    json = "json"
    junit = "junit"
    markdown = "markdown"


class Dynamic(str, Enum):
    batch = "batch"
    spatial = "spatial"
    all = "all"
    none = "none"


@command("check")
def check_registry(
    patterns: Annotated[Optional[List[str]], typer.Argument(help="Registry wildcards (default: every model).", show_default=False)] = None,
    opset: Annotated[Optional[List[int]], typer.Option("--opset", help="Target opset, repeatable (default: 11 and 17).", show_default=False)] = None,
    dynamic: Annotated[Dynamic, typer.Option("--dynamic", help="Dynamic axes to export and verify; models with a fixed spatial size fall back to batch.")] = Dynamic.all,
    kind: Annotated[Optional[Kind], typer.Option("--kind", "-k", help="Only blocks or only backbones.", show_default=False)] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 1,
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="Run shard I of N (deterministic; for CI matrices).", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per case before its worker is killed.")] = 300.0,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="Report format.")] = ReportFormat.table,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report here (default: stdout).", show_default=False)] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going/--fail-fast", help="Run every case, or stop at the first failure.")] = True,
) -> None:
    """The CI gate: build, count, export and verify every selected model at each opset.

    Exit 0 when every case passed, 1 when any failed, 2 on usage errors, 130 on Ctrl-C (the report
    of what finished is still written).
    """
    from attncli import api, gate

    if output is not None:
        gate.check_report_target(output)
    with render.CheckProgress() as progress:
        report = api.check(
            patterns or (), opsets=opset, dynamic=dynamic.value, kind=kind.value if kind else None, jobs=jobs,
            shard=shard, timeout=timeout, fail_fast=not keep_going,
            on_plan=progress.planned, on_start=progress.started, on_result=progress.finished,
        )

    data_to_stdout = format is not ReportFormat.table and output is None
    text = None if format is ReportFormat.table else gate.report_text(report, format.value)
    if text is not None and output is not None:
        gate.write_atomic(output, text)
    render.check_summary(report, to_stderr=data_to_stdout)
    if text is not None and output is None:
        print(text, end="")
    if report.interrupted:
        raise typer.Exit(130)
    if not report.passed:
        raise typer.Exit(1)
