from functools import partial
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import (
    AtolOpt,
    RtolOpt,
    DEVICE_DEFAULT,
    AttnOpt,
    AttnPositionOpt,
    ChannelsAxisOpt,
    DeviceOpt,
    Format,
    FormatOpt,
    InputShapeOpt,
    OutputOpt,
    ParamOpt,
    ProviderOpt,
    ShapeMultipleOpt,
    ShapeOpt,
    ShapesOnlyOpt,
    WeightsOpt,
    choice_value,
)


@command(
    "verify",
    examples=[
        ('attncli verify eca_resnet50_opset17.onnx', 'rebuild the model the file records and compare'),
        ('attncli verify sk sk_opset11.onnx --seeds 3 --shape 2,64,32,32', 'more inputs, one more shape'),
        ('attncli verify model.onnx --provider cuda -f json', "on onnxruntime's CUDA provider, as JSON"),
    ],
)
def verify(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[MODEL] FILE.onnx",
            help="The ONNX file to compare, alone (the model is rebuilt from the spec the file records)"
            " or after the model to compare it with: a registry name, path/to/file.py:Name or package.module:Name.",
            show_default=False,
        ),
    ],
    atol: AtolOpt = None,
    rtol: RtolOpt = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Random inputs per shape (seeds --seed, --seed+1, ...).")] = 1,
    shape: ShapeOpt = None,
    shapes_only: ShapesOnlyOpt = False,
    shape_multiple: ShapeMultipleOpt = 1,
    channels_axis: ChannelsAxisOpt = None,
    device: DeviceOpt = DEVICE_DEFAULT,
    provider: ProviderOpt = None,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Seed for the weights and the example input (default 0; with FILE.onnx alone, the seed the file records).", show_default=False),
    ] = None,
    weights: WeightsOpt = None,
    localize: Annotated[
        bool,
        typer.Option(
            "--localize",
            help="Also find where PyTorch and onnxruntime first diverge: every module's output against the ONNX"
            " tensor that implements it, in execution order, at the first failed input (slower: one more run of each).",
        ),
    ] = False,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """Compare an ONNX file in onnxruntime with the PyTorch model rebuilt from the same options.

    With FILE.onnx alone, the model is rebuilt from the spec that `attncli export` recorded in the file (model, -p, --input-shape, --attn, --attn-position, --seed, --weights and the weights' sha256); a weights file that is gone or changed is refused. With MODEL FILE.onnx, the model is built as given and compared as asked; each field that differs from the recorded spec is a note on stderr before the report (and part of a usage error's line).

    PyTorch runs on the CPU; --provider (or --device) picks onnxruntime's execution provider (see `attncli providers`); each gets its own copy of every input. Shapes: the model's example shape, plus two more that change every dynamic axis of the file (batch 3 and 2; spatial axes halved, then smaller still, uneven and non-square), plus each --shape (only those with --shapes-only). Inputs: a seeded N(0, 1) draw at every shape, and at one small shape (each axis at its smallest size) the same draw shifted to mean +2 and -2 and scaled by 4, so that a Python branch on a tensor's value frozen by the export shows. Defaults atol 1e-5, rtol 1e-4 (float32); a float16 file (or bfloat16: its narrowest floating-point type among inputs, outputs and weights) gets looser ones, is fed the inputs cast to its input's type, and is also judged in its own terms (max relative error, max ULPs of its format at PyTorch's value).

    --localize names the first module (in the order the modules finish) whose output exceeds the tolerance, with its error figures and the ONNX nodes that implement it; it runs when verify passes too, and then says there is no divergence.

    Exit 0 when every element of every output is within tolerance at every shape, 1 when not, 2 on usage errors (a missing or invalid file, an input name or rank the file does not have, a file without a recorded spec and no MODEL).
    """
    from attncli import api
    from attncli.errors import UsageError

    if len(args) > 2:
        raise UsageError(f"verify takes FILE.onnx or MODEL FILE.onnx, not {len(args)} arguments; see attncli verify -h.")
    model, file = (None, args[0]) if len(args) == 1 else args
    render.check_target(output)
    report = api.verify(
        model, file, params=param, input_shape=input_shape, attn=attn, attn_position=choice_value(attn_position), seed=seed,
        weights=weights, on_differences=render.notes, atol=atol, rtol=rtol, seeds=seeds, shapes=shape or (), shapes_only=shapes_only,
        device=choice_value(device), provider=provider, shape_multiple=shape_multiple, channels_axis=channels_axis, localize=localize,
    )
    data = report.as_dict()
    render.emit(format.value, data, partial(render.parity_report, report), output, data["environment"])
    if not report:
        raise typer.Exit(1)
