from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import (
    DEVICE_DEFAULT,
    AttnPositionOpt,
    DeviceOpt,
    InputShapeOpt,
    MinTimeOpt,
    OutputOpt,
    SeedOpt,
    ThreadsOpt,
    choice_value,
    choices,
)
from attncli.compare import SORT_COLUMNS

CompareFormat = choices("CompareFormat", ("table", "markdown", "latex", "csv", "json"))
SortColumn = choices("SortColumn", SORT_COLUMNS)
PlotAxis = choices("PlotAxis", ("params", "macs"))


@command(
    "compare",
    examples=[
        ("attncli compare --attn eca,se,cbam,sk --on resnet50,mobilenetv2", "four blocks in two backbones, each over its plain backbone"),
        ("attncli compare eca_resnet50 sknet50 epsanet50 --sort params -f markdown", "named models over their registry baselines"),
        ("attncli compare --attn eca,my.py:Block --on resnet18 -f latex", "your own block beside ECA, as LaTeX"),
    ],
)
def compare(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[MODEL]...",
            help="Registry names or path/to/file.py:Name, each compared with its registry baseline (or --baseline).",
            show_default=False,
        ),
    ] = None,
    attn: Annotated[
        str | None,
        typer.Option(
            "--attn", metavar="BLOCK,...",
            help="Attention blocks to put into each --on backbone, comma-separated: registered blocks,"
            " path/to/file.py:Name or package.module:Name.",
            show_default=False,
        ),
    ] = None,
    on: Annotated[
        str | None,
        typer.Option(
            "--on", metavar="BACKBONE,...",
            help="Plain backbones for the --attn blocks, comma-separated; each is the baseline row of its blocks.",
            show_default=False,
        ),
    ] = None,
    input_shape: InputShapeOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: SeedOpt = 0,
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", metavar="MODEL", help="Compare every model with MODEL (default: each one's own; 'none': no overheads).", show_default=False),
    ] = None,
    sort: Annotated[
        SortColumn,
        typer.Option("--sort", help="Sort the rows of each baseline's group by this column (order: as given); the baseline stays first."),
    ] = SortColumn("order"),
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="Time the models (interleaved, in one run), or skip timing.")] = True,
    min_time: MinTimeOpt = None,
    device: DeviceOpt = DEVICE_DEFAULT,
    threads: ThreadsOpt = None,
    export_opset: Annotated[
        int | None,
        typer.Option("--export-opset", metavar="N", help="Also export each model to ONNX at opset N, verify it, and report the max error.", show_default=False),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", metavar="FILE.{png,pdf,svg}", help="Draw parameters (or MACs, --plot-x) against latency overhead (needs matplotlib).", show_default=False),
    ] = None,
    plot_x: Annotated[PlotAxis, typer.Option("--plot-x", help="The plot's x axis.")] = PlotAxis("params"),
    format: Annotated[
        CompareFormat,
        typer.Option("--format", "-f", help="table for people, markdown or latex (booktabs) for papers, csv or json for programs."),
    ] = CompareFormat("table"),
    output: OutputOpt = None,
) -> None:
    """The comparison table of an attention paper: params, MACs, FLOPs and latency of each model, with the overhead over its plain baseline.

    Each model is built and counted once; all models are timed interleaved in one run, so host noise hits every row alike, and a latency overhead whose confidence intervals overlap is shown as "within noise".
    """
    from attncli import api

    render.check_target(output)
    if plot is not None:
        from attncli import plots
        from attncli.compare import check_plot

        check_plot(latency)
        plots.check_plot_target(plot)
    report = api.compare(
        models or (), attn=attn, on=on, input_shape=input_shape, seed=seed, attn_position=choice_value(attn_position),
        baseline=baseline, sort=sort.value, latency=latency, device=choice_value(device), threads=threads,
        min_time=min_time, export_opset=export_opset,
    )
    if plot is not None:
        plots.plot_compare(report.plot_rows(), plot, x=plot_x.value, environment=report.environment)
        render.note(f"plot written to {plot}")
    texts = {"markdown": report.to_markdown, "latex": report.to_latex, "csv": report.to_csv}
    if format.value in texts:
        render.emit_text(texts[format.value](), output)
    else:
        render.emit(format.value, report.as_dict(), partial(render.compare_report, report), output, report.environment)
