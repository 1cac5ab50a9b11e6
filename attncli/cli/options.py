"""Option types shared by every command, declared once: one name, one default, one help text.

Choices and defaults come from the library's constants, so the CLI cannot drift from what the
library accepts. Nothing here imports torch: `attncli --help` and `attncli list` stay instant.
"""

from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from attncli.blocks import POSITIONS
from attncli.onnx_export import DEFAULT_DYNAMIC, DEFAULT_OPSET, DYNAMIC_CHOICES, DYNAMO_MIN_OPSET, LOWEST_OPSET, MIN_OPSET, TORCHSCRIPT_MAX_OPSET
from attncli.quantize import DEFAULT_CALIBRATION_SAMPLES, DEFAULT_EVAL_SAMPLES, DEFAULT_MIN_COSINE, DEFAULT_MIN_TOP1, QDQ_MIN_OPSET, QUANTIZE_MODES
from attncli.parity import DEFAULT_ATOL, DEFAULT_RTOL, default_tolerances
from attncli.registry import KINDS
from attncli.timing import DEFAULT_MIN_TIME, DEFAULT_WARMUP, DEVICES


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """A str Enum whose members are ``values`` (Typer shows and checks them as choices)."""
    return Enum(name, [(v, v) for v in values], type=str)  # type: ignore[return-value]


AUTO = "auto"
Format = choices("Format", ("table", "json"))
Kind = choices("Kind", KINDS)
Device = choices("Device", (AUTO, *DEVICES))
Dynamic = choices("Dynamic", DYNAMIC_CHOICES)
AttnPosition = choices("AttnPosition", POSITIONS)

# The defaults, once; a command writes `device: DeviceOpt = DEVICE_DEFAULT` (Typer wants the default
# on the parameter itself).
DEVICE_DEFAULT = Device(AUTO)  # the library's None: cuda when available
DYNAMIC_DEFAULT = Dynamic(DEFAULT_DYNAMIC)
OPSET_DEFAULT = DEFAULT_OPSET


def _per_device(defaults: dict[str, int]) -> str:
    return ", ".join(f"{n} on {d.upper()}" for d, n in defaults.items())


# ----------------------------------------------------------------------------- the model

ModelArg = Annotated[
    str,
    typer.Argument(help="A registry name (see `attncli list`), path/to/file.py:Name or package.module:Name.", show_default=False),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param", "-p", metavar="KEY=VALUE",
        help="Constructor argument, repeatable: -p channels=64 -p k_size=3,5,5,7. "
        "Values parse as int, float, bool, none or comma tuples; attn.KEY goes to the --attn block.",
        show_default=False,
    ),
]
InputShapeOpt = Annotated[
    str | None,
    typer.Option("--input-shape", "-s", metavar="N,C,H,W", help="Example input shape, e.g. 1,64,56,56 (default: the model's).", show_default=False),
]
AttnOpt = Annotated[
    str | None,
    typer.Option(
        "--attn", metavar="BLOCK",
        help="Put this attention block into a resnet*/resnext*/mobilenetv2/cnn1d backbone: a registered block,"
        " path/to/file.py:Name or package.module:Name (its constructor takes channels; -p attn.KEY=VALUE for the rest).",
        show_default=False,
    ),
]
AttnPositionOpt = Annotated[
    AttnPosition | None,
    typer.Option(
        "--attn-position",
        help="Where the --attn block goes in each residual unit (default: where its paper puts it):"
        " branch_end is before the addition, the others at the 3x3 convolution.",
        show_default=False,
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for the weights and the example input.")]
WeightsOpt = Annotated[
    str | None,
    typer.Option("--weights", metavar="FILE.pt", help="Load a saved state_dict (torch.load weights_only=True).", show_default=False),
]
KindOpt = Annotated[Kind | None, typer.Option("--kind", "-k", help="Only blocks or only backbones.", show_default=False)]

# ----------------------------------------------------------------------------- running it

DeviceOpt = Annotated[
    Device,
    typer.Option(
        "--device",
        help="auto: cuda when available (to torch, and to onnxruntime where it runs), else cpu."
        " For onnxruntime, cpu and cuda pick the CPU and CUDA execution providers.",
    ),
]
# any provider the installed onnxruntime has, by short name or onnxruntime's; checked by the library
# (attncli.providers), so that the list in the help is the one of the installation that runs
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider", metavar="NAME",
        help="onnxruntime's execution provider: cpu, cuda, tensorrt, openvino, dml (directml), coreml or onnxruntime's own"
        " name (CUDAExecutionProvider); see `attncli providers` for the installed ones (default: --device's).",
        show_default=False,
    ),
]
WarmupOpt = Annotated[
    int | None,
    typer.Option("--warmup", help=f"Untimed iterations first (default: {_per_device(DEFAULT_WARMUP)}).", show_default=False),
]
ItersOpt = Annotated[
    int | None,
    typer.Option("--iters", help="Timed iterations, a fixed count (default: as many as --min-time allows).", show_default=False),
]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for timing (default: torch's).", show_default=False)]
BatchSizeOpt = Annotated[
    list[int] | None,
    typer.Option("--batch-size", "-b", help="Batch size to time, repeatable for a sweep (default: the input shape's).", show_default=False),
]

# ----------------------------------------------------------------------------- ONNX

OPSET_HELP = (
    f"ONNX opset, written exactly or not at all. Default {DEFAULT_OPSET}: every common runtime"
    f" (onnxruntime, TensorRT, OpenVINO) takes it and the TorchScript exporter covers it fully."
    f" Supported: {MIN_OPSET}-{TORCHSCRIPT_MAX_OPSET} (TorchScript exporter) and {DYNAMO_MIN_OPSET} up to the"
    f" newest opset the installed onnxscript and onnxruntime both know (dynamo exporter); below"
    f" {MIN_OPSET} dynamic spatial sizes cannot be expressed. export also takes {LOWEST_OPSET!r}: the lowest opset that"
    " exports and verifies, found by trying."
)


def _opset(text: str) -> int | str:
    """A whole number, or ``min`` (export: the lowest opset that exports and verifies)."""
    if isinstance(text, int):
        return text
    word = text.strip().lower()
    if word == LOWEST_OPSET:
        return word
    try:
        return int(word)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a whole number or {LOWEST_OPSET!r}.") from None


OpsetOpt = Annotated[int, typer.Option("--opset", metavar="N|min", parser=_opset, help=OPSET_HELP)]
DynamicOpt = Annotated[
    Dynamic,
    typer.Option(
        "--dynamic",
        help="Dynamic input axes, named batch / height, width (or length): batch, spatial, all (both) or none."
        " With all, a model whose own forward takes one spatial size only falls back to batch, and says so.",
    ),
]

AllowTraceWarningsOpt = Annotated[
    bool,
    typer.Option(
        "--allow-trace-warnings",
        help="Pass an export whose trace warned that a Python value computed from a tensor (a branch, a loop count) was frozen into the file.",
    ),
]
ShapeOpt = Annotated[
    list[str] | None,
    typer.Option("--shape", metavar="N,C,H,W", help="Another input shape to verify, repeatable (NAME=N,C,H,W also works).", show_default=False),
]
ShapesOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--shapes-only",
        help="Verify at the --shape shapes only, not the model's example shape and the two planned from it (for a model valid at some sizes only).",
    ),
]

# verify, export and check: one pair of tolerances, defaults by the file's precision (parity's)
AtolOpt = Annotated[
    float | None,
    typer.Option(
        "--atol",
        help=f"Absolute tolerance (default {DEFAULT_ATOL:g}; for a float16 file {default_tolerances('float16')[0]:g},"
        f" bfloat16 {default_tolerances('bfloat16')[0]:g}).",
        show_default=False,
    ),
]
RtolOpt = Annotated[
    float | None,
    typer.Option(
        "--rtol",
        help="Relative tolerance: an element fails only when |onnx - torch| > atol and > rtol*|torch| (Polygraphy's rule)"
        f" (default {DEFAULT_RTOL:g}; for a float16 file {default_tolerances('float16')[1]:g}, bfloat16 {default_tolerances('bfloat16')[1]:g}).",
        show_default=False,
    ),
]

# ----------------------------------------------------------------------------- the report

FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table for people, json for programs.")]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", metavar="FILE", help="Write the report to FILE (atomically) instead of stdout.", show_default=False),
]
# export's -o is the ONNX file it writes, so its report file takes another flag
ReportFileOpt = Annotated[
    Path | None,
    typer.Option("--report", metavar="FILE", help="Write the report to FILE (atomically) instead of stdout.", show_default=False),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")]


# The flag of each library parameter an error can be about (``AttncliError.option``): the library
# says what is wrong in its own words, the CLI says which flag to change.
FLAGS = {
    "params": "-p",
    "input_shape": "--input-shape",
    "attn": "--attn",
    "attn_position": "--attn-position",
    "seed": "--seed",
    "weights": "--weights",
    "depth": "--depth",
    "kind": "--kind",
    "device": "--device",
    "batch_sizes": "--batch-size",
    "warmup": "--warmup",
    "iters": "--iters",
    "threads": "--threads",
    "plot": "--plot",
    "opset": "--opset",
    "dynamic": "--dynamic",
    "output": "-o",
    "timeout": "--timeout",
    "jobs": "-j",
    "shard": "--shard",
    "config": "--config",
    "atol": "--atol",
    "rtol": "--rtol",
    "shapes": "--shape",
    "shapes_only": "--shapes-only",
    "provider": "--provider",
    "dtype": "--dtype",
    "keep_io_types": "--keep-io-types",
}


def choice_value(choice: Enum | None) -> str | None:
    """The library's spelling of a choice: its value, None when not given or ``auto``."""
    return None if choice is None or choice.value == AUTO else choice.value


# ----------------------------------------------------------------------------- the gate's reports

# the gate's reports (check, report merge): -f picks the one for stdout or -o; --junit, --markdown and
# --json each write one more file, so one run gives CI every format it reads
ReportFormat = choices("ReportFormat", ("table", "json", "junit", "markdown"))
ReportFormatOpt = Annotated[ReportFormat, typer.Option("--format", "-f", help="Report format.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Also write the JUnit XML report to FILE (atomically).", show_default=False)]
MarkdownOpt = Annotated[
    Path | None, typer.Option("--markdown", metavar="FILE", help="Also write the Markdown report to FILE (atomically).", show_default=False)
]
JsonOpt = Annotated[Path | None, typer.Option("--json", metavar="FILE", help="Also write the JSON report to FILE (atomically).", show_default=False)]
FLAGS.update({"junit": "--junit", "markdown": "--markdown", "json": "--json"})

# ----------------------------------------------------------------------------- export routes and planned shapes

ShapeMultipleOpt = Annotated[
    int,
    typer.Option(
        "--shape-multiple", metavar="N",
        help="Round every planned spatial size to a multiple of N (the model's stride or window); every dynamic axis still changes.",
    ),
]
ChannelsAxisOpt = Annotated[
    int | None,
    typer.Option(
        "--channels-axis", metavar="N",
        help="The input's channel axis, never dynamic nor varied (default 1; -1 for channels-last modules;"
        " verify FILE.onnx alone: the axis its export recorded).",
        show_default=False,
    ),
]
FLAGS.update({"shape_multiple": "--shape-multiple", "channels_axis": "--channels-axis"})

# ----------------------------------------------------------------------------- compare

FLAGS.update({"on": "--on", "sort": "--sort", "min_time": "--min-time", "export_opset": "--export-opset", "baseline": "--baseline"})

# ----------------------------------------------------------------------------- latency budget

MinTimeOpt = Annotated[
    float | None,
    typer.Option(
        "--min-time", metavar="S",
        help=f"Seconds of timed blocks per model; more gives a tighter interval (default: {DEFAULT_MIN_TIME['cpu']:g} s; ignored with --iters).",
        show_default=False,
    ),
]

# ----------------------------------------------------------------------------- int8 quantization

Quantize = choices("Quantize", QUANTIZE_MODES)
QuantizeOpt = Annotated[
    Quantize | None,
    typer.Option(
        "--quantize",
        help="Also quantize the verified file to int8 with onnxruntime: dynamic (weights int8, per channel; Conv runs as ConvInteger)"
        f" or static (QDQ, weights and activations int8, calibrated; opset {QDQ_MIN_OPSET} or newer). The int8 file is judged against"
        " PyTorch by cosine similarity and top-1 agreement over seeded inputs, not by elementwise tolerance.",
        show_default=False,
    ),
]
CalibrationSamplesOpt = Annotated[
    int | None,
    typer.Option(
        "--calibration-samples", metavar="N",
        help=f"--quantize static: calibrate on N seeded inputs of the example's distribution (default {DEFAULT_CALIBRATION_SAMPLES}).",
        show_default=False,
    ),
]
CalibrationDataOpt = Annotated[
    Path | None,
    typer.Option(
        "--calibration-data", metavar="DIR",
        help="--quantize static: calibrate on the .npy files in DIR instead, each one input (the example's shape, or it without the batch axis).",
        show_default=False,
    ),
]
EvalSamplesOpt = Annotated[
    int | None,
    typer.Option(
        "--eval-samples", metavar="N",
        help=f"--quantize: judge the int8 file on N seeded inputs, none of them calibration's (default {DEFAULT_EVAL_SAMPLES}).",
        show_default=False,
    ),
]
MinCosineOpt = Annotated[
    float | None,
    typer.Option(
        "--min-cosine", metavar="X",
        help=f"--quantize: the smallest cosine similarity to PyTorch's output, over the samples, that passes (default {DEFAULT_MIN_COSINE:g}).",
        show_default=False,
    ),
]
MinTop1Opt = Annotated[
    float | None,
    typer.Option(
        "--min-top1", metavar="X",
        help=f"--quantize, classifiers: the share of inputs whose top-1 class matches PyTorch's that passes (default {DEFAULT_MIN_TOP1:g}).",
        show_default=False,
    ),
]
FLAGS.update({
    "quantize": "--quantize", "calibration_samples": "--calibration-samples", "calibration_data": "--calibration-data",
    "eval_samples": "--eval-samples", "min_cosine": "--min-cosine", "min_top1": "--min-top1",
})
