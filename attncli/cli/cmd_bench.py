from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import (
    DEVICE_DEFAULT,
    OPSET_DEFAULT,
    AttnOpt,
    AttnPositionOpt,
    BatchSizeOpt,
    DeviceOpt,
    Format,
    FormatOpt,
    InputShapeOpt,
    ItersOpt,
    MinTimeOpt,
    ModelArg,
    OpsetOpt,
    OutputOpt,
    ParamOpt,
    ProviderOpt,
    SeedOpt,
    ThreadsOpt,
    WarmupOpt,
    WeightsOpt,
    choice_value,
)


@command(
    "bench",
    examples=[
        ('attncli bench eca_resnet18', 'eager PyTorch vs onnxruntime at the example batch size'),
        ('attncli bench se -b 1 -b 8 -b 32 --plot latency.png', 'three batch sizes, drawn log-log (needs attncli[plot])'),
        ('attncli bench resnet50 --device cuda --compile', 'on the GPU, torch.compile too'),
    ],
)
def bench_model(
    model: ModelArg,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    batch_size: BatchSizeOpt = None,
    warmup: WarmupOpt = None,
    iters: ItersOpt = None,
    min_time: MinTimeOpt = None,
    device: DeviceOpt = DEVICE_DEFAULT,
    provider: ProviderOpt = None,
    threads: ThreadsOpt = None,
    opset: OpsetOpt = OPSET_DEFAULT,
    compile: Annotated[bool, typer.Option("--compile", help="Also time torch.compile.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE.png", help="Draw latency against batch size, log-log, to FILE (.png, .pdf or .svg; needs attncli[plot]).", show_default=False)] = None,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Eager PyTorch vs the exported model in onnxruntime: p50/p90 latency and their ratio.

    The runtimes' iterations are interleaved on the same inputs."""
    from attncli import api
    from attncli.plots import check_plot_target, plot_latency

    render.check_target(output)
    if plot is not None:
        check_plot_target(plot)
    result = api.bench(
        model, param, input_shape, attn, seed, weights, attn_position=choice_value(attn_position), batch_sizes=batch_size,
        warmup=warmup, iters=iters, min_time=min_time, device=choice_value(device), threads=threads, opset=opset, compile=compile,
        provider=provider,
    )
    if plot is not None:
        plot_latency(result, plot)
    render.emit(format.value, result.as_dict(), partial(render.bench_report, result, plot), output, result.environment)
