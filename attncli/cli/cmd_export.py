from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from attncli.cli import render
from attncli.cli.main import command
from attncli.cli.options import (
    AttnOpt, Format, FormatOpt, InputShapeOpt, ModelArg, ParamOpt, SeedOpt, WeightsOpt,
)
from attncli.onnx_export import DEFAULT_OPSET, DYNAMO_MIN_OPSET, MIN_OPSET, TORCHSCRIPT_MAX_OPSET


class DynamicAxes(str, Enum):
    batch = "batch"
    spatial = "spatial"
    all = "all"
    none = "none"


class Exporter(str, Enum):
    auto = "auto"
    torchscript = "torchscript"
    dynamo = "dynamo"


OpsetOpt = Annotated[
    int,
    typer.Option(
        "--opset",
        help=f"ONNX opset, written exactly or not at all. Default {DEFAULT_OPSET}: every common runtime"
        f" (onnxruntime, TensorRT, OpenVINO) takes it and the TorchScript exporter covers it fully."
        f" Supported: {MIN_OPSET}-{TORCHSCRIPT_MAX_OPSET} (TorchScript exporter) and {DYNAMO_MIN_OPSET} up to the"
        f" newest opset the installed onnxscript and onnxruntime both know (dynamo exporter); below"
        f" {MIN_OPSET} dynamic spatial sizes cannot be expressed.",
    ),
]


@command("export")
def export(
    model: ModelArg,
    opset: OpsetOpt = DEFAULT_OPSET,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", metavar="PATH", help="Where to write (default: ./<name>_opset<N>.onnx).", show_default=False),
    ] = None,
    dynamic: Annotated[
        DynamicAxes,
        typer.Option("--dynamic", help="Dynamic input axes, named batch / height, width (or length): batch, spatial, all (both) or none."),
    ] = DynamicAxes.batch,
    exporter: Annotated[
        Exporter,
        typer.Option("--exporter", help=f"auto: TorchScript below opset {DYNAMO_MIN_OPSET}, dynamo from {DYNAMO_MIN_OPSET} on."),
    ] = Exporter.auto,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Compare with PyTorch in onnxruntime at every shape the file accepts (as `attncli verify`)."),
    ] = True,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    format: FormatOpt = Format.table,
) -> None:
    """Export a model to ONNX at exactly the opset asked for, then verify it against PyTorch.

    The file is written under a temporary name and renamed once the ONNX checker, shape inference and the opset read back from the file agree: a failure or Ctrl-C leaves no file.

    Exit 1 when the export or the verification fails (a file that fails verification is kept for inspection), 2 on usage errors.
    """
    from attncli import api
    from attncli.errors import CheckFailed

    result = api.export(
        model, output, opset=opset, dynamic=dynamic.value, exporter=exporter.value, force=force, verify=verify,
        params=param, input_shape=input_shape, attn=attn, seed=seed, weights=weights,
    )
    if format is Format.json:
        render.print_json(result.as_dict())
    else:
        render.export_report(result)
    if result.parity is not None and not result.parity:
        raise CheckFailed(
            f"verification failed; {result.path} is kept for inspection ({result.parity.message})."
        )
