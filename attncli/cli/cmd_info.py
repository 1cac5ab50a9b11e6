import typer
from typing_extensions import Annotated

from attncli.cli import render
from attncli.cli.main import command
from attncli.cli.options import (
    AttnOpt, Format, FormatOpt, InputShapeOpt, ModelArg, ParamOpt, SeedOpt, WeightsOpt, model_request,
)


@command("info")
def info(
    model: ModelArg,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    depth: Annotated[int, typer.Option("--depth", help="Depth of the module tree.")] = 2,
    format: FormatOpt = Format.table,
) -> None:
    """Paper, arguments, input and output shapes, parameter count and module tree of one model."""
    from attncli.describe import describe

    result = describe(model_request(model, param, input_shape, attn, seed, weights), depth=depth)
    if format is Format.json:
        render.print_json(result.as_dict())
    else:
        render.info_report(result)
