from functools import partial
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import (
    AttnOpt,
    AttnPositionOpt,
    Format,
    FormatOpt,
    InputShapeOpt,
    ModelArg,
    OutputOpt,
    ParamOpt,
    SeedOpt,
    WeightsOpt,
    choice_value,
)


@command(
    "info",
    examples=[
        ('attncli info eca_resnet50', 'paper, arguments, shapes, parameters and module tree'),
        ('attncli info cbam -p channels=128 --depth 1', 'a block built with other arguments'),
        ('attncli info models.py:MyNet -s 1,3,64,64 -f json', 'your own module, as JSON'),
    ],
)
def info(
    model: ModelArg,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    depth: Annotated[int, typer.Option("--depth", help="Depth of the module tree.")] = 2,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Paper, arguments, input and output shapes, parameter count and module tree of one model."""
    from attncli import api

    render.check_target(output)
    result = api.describe(
        model, param, input_shape, attn, seed, weights, attn_position=choice_value(attn_position), depth=depth,
    )
    render.emit(format.value, result.as_dict(), partial(render.info_report, result), output)
