"""Latency of eager PyTorch against the exported model in onnxruntime (and torch.compile on request).

The runtimes see the same input, and their iterations are interleaved (A B, B A, A B, ...) so that
a slow spell of a noisy machine lands on all of them alike. The ratio is onnxruntime's p50 over
eager PyTorch's p50: below 1, onnxruntime is faster. On CUDA, PyTorch iterations are timed with
CUDA event pairs; onnxruntime's ``run`` returns host arrays, so it is timed on the host clock and
includes the copy back.
"""

from __future__ import annotations

import functools
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

from attncli.environment import describe as describe_environment
from attncli.errors import UsageError
from attncli.modelspec import ModelRequest, build, forward_errors
from attncli.onnx_export import DEFAULT_OPSET
from attncli.timing import resolve_device, summarize

EAGER, ORT, COMPILED = "pytorch", "onnxruntime", "torch.compile"


@dataclass
class RuntimeLatency:
    runtime: str
    batch_size: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    throughput: float
    vs_eager: float = 1.0  # this runtime's p50 / eager PyTorch's p50


@dataclass
class BenchRow:
    batch_size: int
    runtimes: list[RuntimeLatency]
    ratio: float  # onnxruntime p50 / eager p50
    compile_ratio: float | None = None  # torch.compile p50 / eager p50


@dataclass
class BenchResult:
    model: str
    input_shape: list[int]
    device: str
    provider: str
    threads: int | None
    opset: int
    warmup: int
    iters: int
    rows: list[BenchRow] = field(default_factory=list)
    # versions, platform, CPU, threads (as set for the run), GPU, seed and device (attncli.environment.describe)
    environment: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ort_session(path: Path, device: str, threads: int | None) -> tuple[Any, str]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    wanted = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    if wanted not in ort.get_available_providers():
        raise UsageError(f"onnxruntime here has no {wanted}; install onnxruntime-gpu or use the cpu device.", option="device")
    session = ort.InferenceSession(str(path), opts, providers=[wanted])
    return session, wanted


def _host_ms(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def _cuda_ms(fn: Callable[[], Any]) -> float:
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def _latency(runtime: str, batch: int, times: list[float]) -> RuntimeLatency:
    s = summarize(times)
    return RuntimeLatency(runtime, batch, s["mean_ms"], s["std_ms"], s["min_ms"], s["p50_ms"], s["p90_ms"], batch * 1000.0 / s["mean_ms"])


def bench(
    request: ModelRequest,
    *,
    batch_sizes: Iterable[int] = (1,),
    warmup: int = 5,
    iters: int = 30,
    device: str | None = "cpu",
    threads: int | None = None,
    opset: int = DEFAULT_OPSET,
    compile: bool = False,
) -> BenchResult:
    import torch

    from attncli.onnx_export import export_onnx

    device = resolve_device(device)
    batch_sizes = list(batch_sizes) or [1]
    if any(b < 1 for b in batch_sizes):
        raise UsageError(f"batch sizes must be positive, not {batch_sizes}.", option="batch_sizes")
    if iters < 1:
        raise UsageError(f"iters must be 1 or more, not {iters}.", option="iters")
    if warmup < 0:
        raise UsageError(f"warmup must be 0 or more, not {warmup}.", option="warmup")
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be a positive integer, not {threads}.", option="threads")
    built = build(request)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory(prefix="attncli-bench-") as tmp:
            path = Path(tmp) / "model.onnx"
            export_onnx(built, path, opset=opset, dynamic="batch")
            session, provider = _ort_session(path, device, threads or torch.get_num_threads())
            input_name = session.get_inputs()[0].name
            module = built.module.to(device) if device == "cuda" else built.module
            runners: dict[str, Callable[[Any, Any], Any]] = {
                EAGER: lambda x, xn: module(x),
                ORT: lambda x, xn: session.run(None, {input_name: xn}),
            }
            if compile:
                compiled = torch.compile(module)
                runners[COMPILED] = lambda x, xn: compiled(x)
            torch_ms = _cuda_ms if device == "cuda" else _host_ms
            timers = {EAGER: torch_ms, ORT: _host_ms, COMPILED: torch_ms}
            result = BenchResult(
                built.name, list(built.input_shape), device, provider,
                torch.get_num_threads() if device == "cpu" else None, opset, warmup, iters,
                environment=describe_environment(seed=request.seed, device=device),
            )
            gen = torch.Generator().manual_seed(request.seed)
            with torch.inference_mode(), forward_errors(built, action="forward (timed)", changed=batch_sizes != [built.input_shape[0]]):
                for batch in batch_sizes:
                    x = torch.randn((batch, *built.input_shape[1:]), generator=gen)
                    xn = x.numpy()
                    xd = x.to(device)
                    for _ in range(warmup):
                        for run in runners.values():
                            run(xd, xn)
                    times: dict[str, list[float]] = {name: [] for name in runners}
                    order = list(runners)
                    for i in range(iters):
                        for name in order if i % 2 == 0 else order[::-1]:
                            times[name].append(timers[name](functools.partial(runners[name], xd, xn)))
                    lat = {name: _latency(name, batch, t) for name, t in times.items()}
                    for entry in lat.values():
                        entry.vs_eager = entry.p50_ms / lat[EAGER].p50_ms
                    result.rows.append(
                        BenchRow(
                            batch,
                            list(lat.values()),
                            lat[ORT].vs_eager,
                            lat[COMPILED].vs_eager if compile else None,
                        )
                    )
    finally:
        torch.set_num_threads(previous_threads)
    return result


def check_plot_target(path: str | Path) -> None:
    """Fail before any timing when the plot cannot be drawn or written."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("plotting needs matplotlib: pip install 'attncli[plot]'.", option="plot")
    if Path(path).is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; give a file name.", option="plot")
    if not Path(path).parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {Path(path).parent} does not exist.", option="plot")


def plot_latency(result: BenchResult, path: str | Path) -> None:
    """Latency (p50, with p90 as the upper whisker) against batch size, one line per runtime."""
    check_plot_target(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4))
    runtimes = [r.runtime for r in result.rows[0].runtimes]
    for name in runtimes:
        xs = [row.batch_size for row in result.rows]
        p50 = [next(r for r in row.runtimes if r.runtime == name).p50_ms for row in result.rows]
        p90 = [next(r for r in row.runtimes if r.runtime == name).p90_ms for row in result.rows]
        ax.errorbar(xs, p50, yerr=[[0] * len(p50), [b - a for a, b in zip(p50, p90)]], marker="o", capsize=3, label=name)
    ax.set_xlabel("batch size")
    ax.set_ylabel("latency p50 (ms), whisker to p90")
    ax.set_title(f"{result.model} on {result.device}")
    ax.set_xscale("log", base=2)
    ax.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=120)
    plt.close(fig)


__all__ = ["bench", "plot_latency", "BenchResult", "BenchRow", "RuntimeLatency"]
