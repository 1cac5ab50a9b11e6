from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import (
    DEVICE_DEFAULT,
    AttnOpt,
    AttnPositionOpt,
    Device,
    DeviceOpt,
    Format,
    FormatOpt,
    InputShapeOpt,
    ModelArg,
    OutputOpt,
    ParamOpt,
    SeedOpt,
    ShapeOpt,
    ShapesOnlyOpt,
    WeightsOpt,
    choice_value,
)
from attncli.parity import DEFAULT_ATOL, DEFAULT_RTOL


@command("verify")
def verify(
    model: ModelArg,
    file: Annotated[Path, typer.Argument(metavar="FILE.onnx", help="The ONNX file to compare with the model.", show_default=False)],
    atol: Annotated[float, typer.Option("--atol", help="Absolute tolerance (float32 default).")] = DEFAULT_ATOL,
    rtol: Annotated[float, typer.Option("--rtol", help="Relative tolerance: an element fails only when |onnx - torch| > atol and > rtol*|torch| (Polygraphy's rule).")] = DEFAULT_RTOL,
    seeds: Annotated[int, typer.Option("--seeds", help="Random inputs per shape (seeds --seed, --seed+1, ...).")] = 1,
    shape: ShapeOpt = None,
    shapes_only: ShapesOnlyOpt = False,
    device: DeviceOpt = DEVICE_DEFAULT,
    provider: Annotated[Device | None, typer.Option("--provider", hidden=True, help="Deprecated: use --device.")] = None,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Compare an ONNX file in onnxruntime with the PyTorch model rebuilt from the same options.

    PyTorch runs on the CPU; --device picks onnxruntime's execution provider; each gets its own copy of every input. Shapes: the model's example shape, plus two more that change every dynamic axis of the file (batch 3 and 2; spatial axes halved, then smaller still, uneven and non-square), plus each --shape (only those with --shapes-only). Inputs: a seeded N(0, 1) draw at every shape, and at one small shape (each axis at its smallest size) the same draw shifted to mean +2 and -2 and scaled by 4, so that a Python branch on a tensor's value frozen by the export shows. Defaults atol 1e-5, rtol 1e-4 (float32).

    Exit 0 when every element of every output is within tolerance at every shape, 1 when not, 2 on usage errors (a missing or invalid file, an input name or rank the file does not have).
    """
    from attncli import api

    render.check_target(output)
    if provider is not None:
        render.note("--provider is deprecated: use --device.")
        device = provider
    report = api.verify(
        model, file, params=param, input_shape=input_shape, attn=attn, attn_position=choice_value(attn_position), seed=seed,
        weights=weights, atol=atol, rtol=rtol, seeds=seeds, shapes=shape or (), shapes_only=shapes_only,
        device=choice_value(device),
    )
    render.emit(format.value, report.as_dict(), partial(render.parity_report, report), output)
    if not report:
        raise typer.Exit(1)
