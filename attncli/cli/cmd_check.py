from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.cmd_report import emit_check_report
from attncli.cli.options import (
    AtolOpt,
    RtolOpt,
    AllowTraceWarningsOpt,
    AttnOpt,
    AttnPositionOpt,
    Dynamic,
    InputShapeOpt,
    JsonOpt,
    JunitOpt,
    KindOpt,
    MarkdownOpt,
    OutputOpt,
    ParamOpt,
    ProviderOpt,
    QuantizeOpt,
    ReportFormat,
    ReportFormatOpt,
    ShapeOpt,
    ShapesOnlyOpt,
    WeightsOpt,
    choice_value,
)
from attncli.onnx_export import DEFAULT_DYNAMIC
from attncli.gate import DEFAULT_CHECK_OPSETS, DEFAULT_TIMEOUT_S


@command(
    "check",
    examples=[
        ('attncli check', "the project's configuration, else every registered model"),
        ("attncli check 'eca*' models.py:MyNet --opset 13 -j 2", 'some models at one opset, two at a time'),
        ('attncli check --shard 1/4 --junit check.xml --json shard1.json', 'one shard of a CI matrix'),
    ],
)
def check_registry(
    patterns: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[MODELS]...",
            help="Registry wildcards and model targets (path/to/file.py:Name, package.module:Name). Default: the project's"
            " configuration ([tool.attncli] in pyproject.toml, or attncli.toml, here or in a folder above), else every registered model.",
            show_default=False,
        ),
    ] = None,
    opset: Annotated[
        list[int] | None,
        typer.Option("--opset", help=f"Target opset, repeatable (default: {' and '.join(map(str, DEFAULT_CHECK_OPSETS))}).", show_default=False),
    ] = None,
    dynamic: Annotated[
        Dynamic | None,
        typer.Option("--dynamic", help=f"Dynamic input axes (default: {DEFAULT_DYNAMIC}, or the configuration's); see `attncli export -h`.", show_default=False),
    ] = None,
    kind: KindOpt = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes (default: 1, or the configuration's).", show_default=False)] = None,
    shard: Annotated[str | None, typer.Option("--shard", metavar="I/N", help="Run shard I of N (deterministic; for CI matrices).", show_default=False)] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help=f"Seconds per case before its process (and all it started) is killed (default: {DEFAULT_TIMEOUT_S:g}, or the configuration's).", show_default=False),
    ] = None,
    format: ReportFormatOpt = ReportFormat.table,
    output: OutputOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    json_file: JsonOpt = None,
    keep_going: Annotated[bool, typer.Option("--keep-going/--fail-fast", help="Run every case, or stop at the first failure.")] = True,
    allow_trace_warnings: AllowTraceWarningsOpt = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="The project configuration to run (pyproject.toml or attncli.toml); see docs/config.md.", show_default=False),
    ] = None,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for the weights and the inputs (default 0).", show_default=False)] = None,
    weights: WeightsOpt = None,
    shape: ShapeOpt = None,
    shapes_only: ShapesOnlyOpt = False,
    atol: AtolOpt = None,
    rtol: RtolOpt = None,
    quantize: QuantizeOpt = None,
    provider: ProviderOpt = None,
) -> None:
    """The CI gate: build, count, export and verify every selected model at each opset.

    Exit 0 when every case passed, 1 when any failed, 2 on usage errors; 130 on Ctrl-C, 143 on
    SIGTERM and 129 on SIGHUP, after the report of what finished is written (marked interrupted).
    Under GitHub Actions each failed case is also an error annotation, and the Markdown report goes
    to the step summary (ATTNCLI_GITHUB=0: neither); see docs/ci.md.
    """
    from attncli import api, ci_reports, gate

    if timeout is not None:
        gate.check_timeout(timeout)
    if jobs is not None:
        gate.check_jobs(jobs)
    targets = ci_reports.check_report_targets({"output": output, "junit": junit, "markdown": markdown, "json": json_file})
    with render.CheckProgress() as progress:
        report = api.check(
            patterns or (), opsets=opset, dynamic=dynamic.value if dynamic else None, kind=choice_value(kind), jobs=jobs,
            config=config, params=param, input_shape=input_shape, attn=attn, attn_position=choice_value(attn_position),
            seed=seed, weights=weights, shapes=shape or (), shapes_only=shapes_only, atol=atol, rtol=rtol,
            shard=shard, timeout=timeout, fail_fast=not keep_going, allow_trace_warnings=allow_trace_warnings,
            quantize=choice_value(quantize), provider=provider,
            on_plan=progress.planned, on_start=progress.started, on_result=progress.finished,
        )

    emit_check_report(report, format, targets.pop("output", None), targets)
    if report.exit_code:
        raise typer.Exit(report.exit_code)
