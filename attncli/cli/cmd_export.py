from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import (
    AtolOpt,
    RtolOpt,
    AllowTraceWarningsOpt,
    DEVICE_DEFAULT,
    DYNAMIC_DEFAULT,
    OPSET_DEFAULT,
    AttnOpt,
    AttnPositionOpt,
    CalibrationDataOpt,
    CalibrationSamplesOpt,
    ChannelsAxisOpt,
    DeviceOpt,
    DynamicOpt,
    EvalSamplesOpt,
    Format,
    FormatOpt,
    InputShapeOpt,
    MinCosineOpt,
    MinTop1Opt,
    ModelArg,
    OpsetOpt,
    ParamOpt,
    ProviderOpt,
    QuantizeOpt,
    ReportFileOpt,
    SeedOpt,
    ShapeMultipleOpt,
    ShapeOpt,
    ShapesOnlyOpt,
    WeightsOpt,
    choice_value,
    choices,
)
from attncli.onnx_export import DTYPES, DYNAMO_MIN_OPSET, EXPORTERS

Exporter = choices("Exporter", EXPORTERS)
Dtype = choices("Dtype", DTYPES)


@command(
    "export",
    examples=[
        ('attncli export eca_resnet50 --opset 17', 'write eca_resnet50_opset17.onnx and verify it'),
        ('attncli export cbam --opset min -o cbam.onnx', 'the lowest opset that exports and verifies'),
        ('attncli export eca_resnet18 --dtype float16 -o eca18_fp16.onnx', 'half precision, verified against float32 PyTorch'),
    ],
)
def export(
    model: ModelArg,
    opset: OpsetOpt = OPSET_DEFAULT,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="PATH", help="Where to write the ONNX file (default: ./<name>_opset<N>.onnx).", show_default=False),
    ] = None,
    dynamic: DynamicOpt = DYNAMIC_DEFAULT,
    exporter: Annotated[
        Exporter,
        typer.Option(
            "--exporter",
            help=f"auto: TorchScript below opset {DYNAMO_MIN_OPSET}, then the dynamo exporter at {DYNAMO_MIN_OPSET} converted down by"
            f" onnx's version converter; dynamo from {DYNAMO_MIN_OPSET} on, then TorchScript. A route is taken only when its file"
            " is at the asked opset and verifies.",
        ),
    ] = Exporter.auto,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    allow_trace_warnings: AllowTraceWarningsOpt = False,
    verify: Annotated[
        bool,
        typer.Option("--verify/--no-verify", help="Compare with PyTorch in onnxruntime at every shape the file accepts (as `attncli verify`)."),
    ] = True,
    shape: ShapeOpt = None,
    shapes_only: ShapesOnlyOpt = False,
    shape_multiple: ShapeMultipleOpt = 1,
    channels_axis: ChannelsAxisOpt = None,
    device: DeviceOpt = DEVICE_DEFAULT,
    provider: ProviderOpt = None,
    dtype: Annotated[
        Dtype,
        typer.Option(
            "--dtype",
            help="The file's precision: float16 converts weights, activations, inputs and outputs to half (onnxruntime's"
            " converter, same opset), verified against float32 PyTorch at atol 1e-3, rtol 1e-2 unless --atol/--rtol.",
        ),
    ] = Dtype.float32,
    keep_io_types: Annotated[
        bool, typer.Option("--keep-io-types", help="With --dtype float16: keep the file's inputs and outputs float32 (Casts at its edges).")
    ] = False,
    atol: AtolOpt = None,
    rtol: RtolOpt = None,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    attn_position: AttnPositionOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    format: FormatOpt = Format.table,
    report: ReportFileOpt = None,
    quantize: QuantizeOpt = None,
    calibration_samples: CalibrationSamplesOpt = None,
    calibration_data: CalibrationDataOpt = None,
    eval_samples: EvalSamplesOpt = None,
    min_cosine: MinCosineOpt = None,
    min_top1: MinTop1Opt = None,
    simplify: Annotated[
        bool,
        typer.Option(
            "--simplify",
            help="Simplify the verified model with onnxscript's optimizer (constant folding, the exporter's shape arithmetic"
            " folded; same opset, same dynamic axes), verify it again at every shape, and write it only if it passes"
            " (else the unsimplified file, and a note). Needs verification.",
        ),
    ] = False,
) -> None:
    """Export a model to ONNX at exactly the opset asked for, then verify it against PyTorch.

    The file is written under a temporary name (.attncli-*.part) and moved into place once the ONNX checker, shape inference and the opset read back from the file agree: a failure, Ctrl-C or SIGTERM leaves no file, and without --force an existing file is never replaced, even one created during the export. Temporary files left by a killed export in the folder are removed.

    The exporter's TracerWarnings (file:line in your model's code) fail the export unless --allow-trace-warnings: each means the file froze one value of a Python expression on a tensor.

    With --quantize the verified file is also quantized to int8, written next to it as <name>_int8.onnx (e.g. eca_resnet50_opset17_int8.onnx) at the same opset, and judged against PyTorch over --eval-samples seeded inputs: cosine similarity (the smallest, >= --min-cosine), error relative to the output's range, and for classifiers top-1 agreement (>= --min-top1).

    Exit 1 when the export or the verification fails, the int8 file falls short, or the trace warned (the file is kept for inspection), 2 on usage errors.
    """
    from attncli import api
    from attncli.errors import CheckFailed

    render.check_target(report)
    result = api.export(
        model, output, opset=opset, dynamic=dynamic.value, exporter=exporter.value, force=force, verify=verify,
        params=param, input_shape=input_shape, attn=attn, attn_position=choice_value(attn_position), seed=seed,
        weights=weights, device=choice_value(device), provider=provider, allow_trace_warnings=allow_trace_warnings,
        shapes=shape or (), shapes_only=shapes_only, shape_multiple=shape_multiple,
        channels_axis=1 if channels_axis is None else channels_axis, dtype=dtype.value, keep_io_types=keep_io_types,
        atol=atol, rtol=rtol,
        quantize=choice_value(quantize), calibration_samples=calibration_samples, calibration_data=calibration_data,
        eval_samples=eval_samples, min_cosine=min_cosine, min_top1=min_top1, simplify=simplify,
    )
    for stale in result.removed_stale:
        render.note(f"removed {stale}, a temporary file left by an export that was killed.")
    if result.dynamic != dynamic.value:
        render.note(f"{result.model} runs at one spatial size only (its own forward fixes it): exported with --dynamic {result.dynamic}.")
    for rejected in result.rejected_routes:
        render.note(f"route not taken: {rejected}")
    if result.route != result.exporter:
        render.note(f"{result.path} was made by the {result.route} route.")
    for warning in result.trace_warnings:
        render.note(f"trace warning at {warning}")
    if result.simplify is not None and not result.simplify["applied"]:
        render.note(f"not simplified ({result.simplify['problem']}): {result.path} is the unsimplified file.")
    data = result.as_dict()
    render.emit(format.value, data, partial(render.export_report, result), report, data["environment"])
    if result.trace_problem:
        raise CheckFailed(
            f"{result.trace_problem}; {result.path} is kept for inspection."
            " Pass --allow-trace-warnings if the frozen value cannot change between inputs."
        )
    if result.parity is not None and not result.parity:
        raise CheckFailed(
            f"verification failed; {result.path} is kept for inspection ({result.parity.message})."
        )
    if result.quantization is not None and not result.quantization:
        raise CheckFailed(
            f"the int8 file falls short; {result.quantization.file} is kept for inspection ({result.quantization.message})."
        )
