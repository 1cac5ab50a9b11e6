from functools import partial
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import DYNAMIC_DEFAULT, AllowTraceWarningsOpt, DynamicOpt, KindOpt, OutputOpt, choice_value, choices
from attncli.gate import DEFAULT_CHECK_OPSETS, DEFAULT_TIMEOUT_S

ReportFormat = choices("ReportFormat", ("table", "json", "junit", "markdown"))


@command("check")
def check_registry(
    patterns: Annotated[list[str] | None, typer.Argument(help="Registry wildcards (default: every model).", show_default=False)] = None,
    opset: Annotated[
        list[int] | None,
        typer.Option("--opset", help=f"Target opset, repeatable (default: {' and '.join(map(str, DEFAULT_CHECK_OPSETS))}).", show_default=False),
    ] = None,
    dynamic: DynamicOpt = DYNAMIC_DEFAULT,
    kind: KindOpt = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes.")] = 1,
    shard: Annotated[str | None, typer.Option("--shard", metavar="I/N", help="Run shard I of N (deterministic; for CI matrices).", show_default=False)] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per case before its process (and all it started) is killed.")] = DEFAULT_TIMEOUT_S,
    format: Annotated[ReportFormat, typer.Option("--format", "-f", help="Report format.")] = ReportFormat.table,
    output: OutputOpt = None,
    keep_going: Annotated[bool, typer.Option("--keep-going/--fail-fast", help="Run every case, or stop at the first failure.")] = True,
    allow_trace_warnings: AllowTraceWarningsOpt = False,
) -> None:
    """The CI gate: build, count, export and verify every selected model at each opset.

    Exit 0 when every case passed, 1 when any failed, 2 on usage errors; 130 on Ctrl-C, 143 on
    SIGTERM and 129 on SIGHUP, after the report of what finished is written (marked interrupted).
    """
    from attncli import api, gate

    gate.check_timeout(timeout)
    gate.check_jobs(jobs)
    render.check_target(output)
    with render.CheckProgress() as progress:
        report = api.check(
            patterns or (), opsets=opset, dynamic=dynamic.value, kind=choice_value(kind), jobs=jobs,
            shard=shard, timeout=timeout, fail_fast=not keep_going, allow_trace_warnings=allow_trace_warnings,
            on_plan=progress.planned, on_start=progress.started, on_result=progress.finished,
        )

    # The summary table always reaches the terminal: on stderr when the report itself takes stdout.
    summary = partial(render.check_summary, report)
    if format is ReportFormat.table:
        summary(render.out)
        text = render.plain_text(summary)
    else:
        text = gate.report_text(report, format.value)
        summary(render.out if output is not None else render.err)
    if output is not None:
        render.write_report(output, text)
    elif format is not ReportFormat.table:
        print(text, end="")
    if report.exit_code:
        raise typer.Exit(report.exit_code)
