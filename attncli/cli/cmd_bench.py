from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from attncli.cli import render
from attncli.cli.main import command
from attncli.cli.options import (
    AttnOpt, Format, FormatOpt, InputShapeOpt, ModelArg, ParamOpt, SeedOpt, WeightsOpt, model_request,
)


@command("bench")
def bench_model(
    model: ModelArg,
    param: ParamOpt = None,
    input_shape: InputShapeOpt = None,
    attn: AttnOpt = None,
    seed: SeedOpt = 0,
    weights: WeightsOpt = None,
    batch_size: Annotated[Optional[List[int]], typer.Option("--batch-size", "-b", help="Batch size, repeatable for a sweep (default 1).", show_default=False)] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed iterations per runtime.")] = 5,
    iters: Annotated[int, typer.Option("--iters", help="Timed iterations per runtime, interleaved.")] = 30,
    device: Annotated[str, typer.Option("--device", help="cpu, or cuda (CUDA events and the CUDA execution provider).")] = "cpu",
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for both runtimes (default: torch's).", show_default=False)] = None,
    opset: Annotated[int, typer.Option("--opset", help="Opset of the exported model.")] = 17,
    compile: Annotated[bool, typer.Option("--compile", help="Also time torch.compile.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", metavar="FILE.png", help="Draw latency vs batch size (needs matplotlib).", show_default=False)] = None,
    format: FormatOpt = Format.table,
) -> None:
    """Eager PyTorch vs the exported model in onnxruntime: p50/p90 latency and their ratio."""
    from attncli.bench import bench, check_plot_target, plot_latency
    from attncli.onnx_export import validate_opset

    validate_opset(opset)
    if plot is not None:
        check_plot_target(plot)
    result = bench(
        model_request(model, param, input_shape, attn, seed, weights),
        batch_sizes=batch_size or [1], warmup=warmup, iters=iters, device=device, threads=threads,
        opset=opset, compile=compile,
    )
    if plot is not None:
        plot_latency(result, plot)
    if format is Format.json:
        render.print_json(result.as_dict())
    else:
        render.bench_report(result, plot)
