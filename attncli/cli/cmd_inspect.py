from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import Format, FormatOpt, OutputOpt


@command(
    "inspect",
    examples=[
        ("attncli inspect eca_resnet50_opset17.onnx", "opsets, inputs and outputs, node count, operators, weights"),
        ("attncli inspect model.onnx -f json --top 20", "the same as JSON (every operator), for a script"),
    ],
)
def inspect(
    file: Annotated[Path, typer.Argument(metavar="FILE.onnx", help="The ONNX file to describe.", show_default=False)],
    top: Annotated[int, typer.Option("--top", min=1, help="Operators shown in the table, most used first (JSON lists them all).")] = 10,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Describe an ONNX file without running it: opset imports, IR version, producer, inputs and outputs (element types in words, dynamic axes by name), node count and operator histogram, initializers and their bytes, external data, and the model spec an `attncli export` recorded.

    The file is read without its external data; an external tensor's size is the length its entry records. Nodes inside If/Loop/Scan bodies are counted apart from the main graph's and included in the operator histogram.

    Exit 0, or 2 when the file is missing or is not an ONNX model.
    """
    from attncli import api

    render.check_target(output)
    summary = api.inspect(file)
    render.emit(format.value, summary.as_dict(), partial(render.inspect_report, summary, top), output)
