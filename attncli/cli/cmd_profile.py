from functools import partial
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import (
    DEVICE_DEFAULT,
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
    OutputOpt,
    ParamOpt,
    SeedOpt,
    ThreadsOpt,
    WarmupOpt,
    WeightsOpt,
    choice_value,
    choices,
)
from attncli.timing import DTYPES
from attncli.zoo import CONVENTIONS

DType = choices("DType", DTYPES)
Convention = choices("Convention", CONVENTIONS)


@command(
    "profile",
    examples=[
        ('attncli profile eca_resnet50', 'params, MACs, FLOPs, overhead over resnet50, latency'),
        ('attncli profile se --no-latency --depth 0', 'the counts alone, at once'),
        ('attncli profile resnet50 --attn my_block.py:Block -f json -o profile.json', 'your own block in a backbone, to a file'),
    ],
)
def profile(
    model: ModelArg,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    depth: Annotated[int, typer.Option("--depth", help="Depth of the per-module breakdown (0 = the model only).")] = 2,
    device: DeviceOpt = DEVICE_DEFAULT,
    dtype: Annotated[DType, typer.Option("--dtype", help="Timing dtype; float16/bfloat16 on CUDA only.")] = DType.float32,
    batch_size: BatchSizeOpt = None,
    warmup: WarmupOpt = None,
    iters: ItersOpt = None,
    min_time: MinTimeOpt = None,
    threads: ThreadsOpt = None,
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="Time the forward pass, or skip timing.")] = True,
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", metavar="MODEL", help="Plain model to compare with (default: the registry's; 'none' to skip).", show_default=False),
    ] = None,
    convention: Annotated[
        Convention,
        typer.Option(
            "--convention",
            help="How to count MACs for the report: attncli (every contraction), thop-2019 (ECA-Net's thop:"
            " + BN, ReLU, pooling), conv-linear (convolutions and linears only). Published figures are"
            " always compared in their own convention.",
        ),
    ] = Convention.attncli,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Parameters, MACs and FLOPs (per module, attention share), baseline overhead, published figures and latency of one model."""
    from attncli import api

    render.check_target(output)
    report = api.profile(
        model, param, input_shape, attn, seed, weights, attn_position=choice_value(attn_position), depth=depth,
        latency=latency, device=choice_value(device), dtype=dtype.value, batch_sizes=batch_size, warmup=warmup,
        iters=iters, min_time=min_time, threads=threads, baseline=baseline,
        convention=convention.value,
    )
    render.emit(format.value, report.as_dict(), partial(render.profile_report, report), output, report.environment)
