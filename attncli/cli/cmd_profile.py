from enum import Enum
from typing import List, Optional

import typer
from typing_extensions import Annotated

from attncli.cli import render
from attncli.cli.main import command
from attncli.cli.options import (
    AttnOpt, Format, FormatOpt, InputShapeOpt, ModelArg, ParamOpt, SeedOpt, WeightsOpt, model_request,
)


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class DType(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


@command("profile")
def profile(
    model: ModelArg,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    depth: Annotated[int, typer.Option("--depth", help="Depth of the per-module breakdown (0 = the model only).")] = 2,
    device: Annotated[Optional[Device], typer.Option("--device", help="Where to time it (default: cuda when available, else cpu).", show_default=False)] = None,
    dtype: Annotated[DType, typer.Option("--dtype", help="Timing dtype; float16/bfloat16 on CUDA only.")] = DType.float32,
    batch_size: Annotated[
        Optional[List[int]],
        typer.Option("--batch-size", "-b", help="Batch size to time, repeatable for a sweep (default: the input shape's).", show_default=False),
    ] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help="Untimed iterations first (default: 3 on CPU, 10 on CUDA).", show_default=False)] = None,
    iters: Annotated[Optional[int], typer.Option("--iters", help="Timed iterations (default: 10 on CPU, 100 on CUDA).", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for timing (default: torch's).", show_default=False)] = None,
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="Time the forward pass, or skip timing.")] = True,
    baseline: Annotated[
        Optional[str],
        typer.Option("--baseline", metavar="MODEL", help="Plain model to compare with (default: the registry's; 'none' to skip).", show_default=False),
    ] = None,
    format: FormatOpt = Format.table,
) -> None:
    """Parameters, MACs and FLOPs (per module, attention share), overhead over the plain baseline,
    published figures and latency of one model."""
    from attncli.profiling import LatencySettings, profile as run_profile

    settings = (
        LatencySettings(device.value if device else None, dtype.value, batch_size, warmup, iters, threads)
        if latency
        else None
    )
    request = model_request(model, param, input_shape, attn, seed, weights)
    report = run_profile(request, depth=depth, latency=settings, baseline=baseline)
    if format is Format.json:
        render.print_json(report.as_dict())
    else:
        render.profile_report(report)
