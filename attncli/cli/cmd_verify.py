from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from attncli.cli import render
from attncli.cli.main import command
from attncli.cli.options import (
    AttnOpt, Format, FormatOpt, InputShapeOpt, ModelArg, ParamOpt, SeedOpt, WeightsOpt,
)
from attncli.parity import DEFAULT_ATOL, DEFAULT_RTOL


class Provider(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


@command("verify")
def verify(
    model: ModelArg,
    file: Annotated[Path, typer.Argument(metavar="FILE.onnx", help="The ONNX file to compare with the model.", show_default=False)],
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance (float32 default).")] = DEFAULT_ATOL,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance: an element fails when |onnx - torch| > atol + rtol*|torch|.")] = DEFAULT_RTOL,
    seeds: Annotated[int, typer.Option("--seeds", help="Random inputs per shape (seeds --seed, --seed+1, ...).")] = 1,
    shape: Annotated[
        Optional[List[str]],
        typer.Option("--shape", metavar="N,C,H,W", help="Another input shape to check, repeatable (NAME=N,C,H,W also works).", show_default=False),
    ] = None,
    provider: Annotated[Provider, typer.Option("--provider", help="onnxruntime execution provider; PyTorch always runs on the CPU.")] = Provider.cpu,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    format: FormatOpt = Format.table,
) -> None:
    """Compare an ONNX file in onnxruntime with the PyTorch model rebuilt from the same options.

    Shapes: the model's example shape, plus two more that change every dynamic axis of the file (batch 3 and 2; spatial axes halved, then odd and non-square), plus each --shape. Defaults atol 1e-5, rtol 1e-4 (float32).

    Exit 0 when every element of every output is within tolerance at every shape, 1 when not, 2 on usage errors (a missing or invalid file, an input name or rank the file does not have).
    """
    from attncli import api

    report = api.verify(
        model, file, params=param, input_shape=input_shape, attn=attn, seed=seed, weights=weights,
        atol=atol, rtol=rtol, seeds=seeds, shapes=shape or (), provider=provider.value,
    )
    if format is Format.json:
        render.print_json(report.as_dict())
    else:
        render.parity_report(report)
    if not report:
        raise typer.Exit(1)
