"""Latency of eager PyTorch against the exported model in onnxruntime (and torch.compile on request).

The runtimes see the same input and are timed by the rule of ``attncli.timing``: each gets its own
block size (a block lasts at least 1 ms), then their samples are interleaved over one run so that a
slow spell of a noisy machine lands on all of them alike, until each has ``min_time`` seconds of
timed blocks (or, with ``iters``, that many single calls each, A B, B A, ...). Every statistic of a
runtime comes from the same per-iteration samples. The ratio is onnxruntime's p50 over eager
PyTorch's p50: below 1, onnxruntime is faster; when the two medians' 95% intervals overlap the
difference is within noise. On CUDA, PyTorch blocks are timed with CUDA event pairs; onnxruntime's
``run`` returns host arrays, so it is timed on the host clock and includes the copy back.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

from attncli.environment import describe as describe_environment
from attncli.errors import UsageError
from attncli.modelspec import ModelRequest, build, forward_errors
from attncli.onnx_export import DEFAULT_OPSET
from attncli.timing import DEFAULT_MIN_TIME, DEFAULT_WARMUP, check_settings, resolve_device, summarize, time_calls

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
    samples: int = 0
    block_size: int = 1  # calls per timed sample
    ci_low_ms: float = 0.0  # 95% confidence interval of the median (order statistics)
    ci_high_ms: float = 0.0


def _overlap(a: RuntimeLatency, b: RuntimeLatency) -> bool:
    return a.ci_low_ms <= b.ci_high_ms and b.ci_low_ms <= a.ci_high_ms


@dataclass
class BenchRow:
    batch_size: int
    runtimes: list[RuntimeLatency]
    ratio: float  # onnxruntime p50 / eager p50
    compile_ratio: float | None = None  # torch.compile p50 / eager p50
    within_noise: bool = False  # onnxruntime's and eager's medians have overlapping 95% intervals
    compile_within_noise: bool | None = None  # the same for torch.compile; None without it


@dataclass
class BenchResult:
    model: str
    input_shape: list[int]
    device: str
    provider: str
    threads: int | None
    opset: int
    warmup: int
    iters: int | None  # the fixed count of timed calls per runtime; None when min_time decides
    rows: list[BenchRow] = field(default_factory=list)
    # versions, platform, CPU, threads (as set for the run), GPU, seed and device (attncli.environment.describe)
    environment: dict[str, Any] = field(default_factory=dict)
    min_time_s: float | None = None  # seconds of timed blocks per runtime; None with a fixed iters

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ort_session(path: Path, device: str, threads: int | None, provider: str | None = None) -> tuple[Any, str]:
    """A session on ``provider`` (a short name or onnxruntime's; see ``attncli.providers``), else on
    ``device``'s provider."""
    import onnxruntime as ort

    from attncli.providers import resolve_provider

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if provider is not None:
        wanted = resolve_provider(provider)
    else:
        wanted = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
        if wanted not in ort.get_available_providers():
            raise UsageError(f"onnxruntime here has no {wanted}; install onnxruntime-gpu or use the cpu device.", option="device")
    session = ort.InferenceSession(str(path), opts, providers=[wanted])
    return session, wanted


def _latency(runtime: str, batch: int, times: list[float], block_size: int) -> RuntimeLatency:
    s = summarize(times)
    return RuntimeLatency(
        runtime, batch, s["mean_ms"], s["std_ms"], s["min_ms"], s["p50_ms"], s["p90_ms"], batch * 1000.0 / s["mean_ms"],
        samples=len(times), block_size=block_size, ci_low_ms=s["ci_low_ms"], ci_high_ms=s["ci_high_ms"],
    )


def bench(
    request: ModelRequest,
    *,
    batch_sizes: Iterable[int] = (1,),
    warmup: int | None = None,
    iters: int | None = None,
    device: str | None = "cpu",
    threads: int | None = None,
    opset: int = DEFAULT_OPSET,
    compile: bool = False,
    min_time: float | None = None,
    provider: str | None = None,
) -> BenchResult:
    """Time eager PyTorch and onnxruntime (and torch.compile) on the same inputs, interleaved.
    ``provider``: onnxruntime's execution provider (default: ``device``'s).
    ``iters`` None: adaptive, ``min_time`` seconds of timed blocks per runtime and batch size
    (default ``timing.DEFAULT_MIN_TIME``); ``iters`` given: that many single calls each."""
    import torch

    from attncli.onnx_export import export_onnx

    device = resolve_device(device)
    batch_sizes = list(batch_sizes) or [1]
    if any(b < 1 for b in batch_sizes):
        raise UsageError(f"batch sizes must be positive, not {batch_sizes}.", option="batch_sizes")
    if iters is not None and iters < 1:
        raise UsageError(f"iters must be 1 or more, not {iters}.", option="iters")
    warmup = DEFAULT_WARMUP[device] if warmup is None else warmup
    if warmup < 0:
        raise UsageError(f"warmup must be 0 or more, not {warmup}.", option="warmup")
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be a positive integer, not {threads}.", option="threads")
    if iters is None and min_time is None:
        min_time = DEFAULT_MIN_TIME[device]
    check_settings(device, "float32", batch_sizes, warmup, iters, None, min_time)
    built = build(request)
    previous_threads = torch.get_num_threads()
    if device == "cpu":  # explicit, so both runtimes get the count the report gives
        torch.set_num_threads(threads or previous_threads)
    try:
        with tempfile.TemporaryDirectory(prefix="attncli-bench-") as tmp:
            path = Path(tmp) / "model.onnx"
            export_onnx(built, path, opset=opset, dynamic="batch")
            session, provider = _ort_session(path, device, threads or torch.get_num_threads(), provider)
            input_name = session.get_inputs()[0].name
            module = built.module.to(device) if device == "cuda" else built.module
            runners: dict[str, Callable[[Any, Any], Any]] = {
                EAGER: lambda x, xn: module(x),
                ORT: lambda x, xn: session.run(None, {input_name: xn}),
            }
            if compile:
                compiled = torch.compile(module)
                runners[COMPILED] = lambda x, xn: compiled(x)
            # PyTorch on CUDA is timed with events; onnxruntime returns host arrays, so the host clock
            on_cuda = [device == "cuda" and name != ORT for name in runners]
            result = BenchResult(
                built.name, list(built.input_shape), device, provider,
                torch.get_num_threads() if device == "cpu" else None, opset, warmup, iters,
                environment=describe_environment(seed=request.seed, device=device),
                min_time_s=min_time if iters is None else None,
            )
            gen = torch.Generator().manual_seed(request.seed)
            with torch.inference_mode(), forward_errors(built, action="forward (timed)", changed=batch_sizes != [built.input_shape[0]]):
                for batch in batch_sizes:
                    x = torch.randn((batch, *built.input_shape[1:]), generator=gen)
                    xn = x.numpy()
                    xd = x.to(device)
                    calls = [(lambda run=run, xd=xd, xn=xn: run(xd, xn)) for run in runners.values()]
                    timed = time_calls(calls, cuda=on_cuda, min_time=min_time, iters=iters, warmup=warmup)
                    lat = {name: _latency(name, batch, t.times_ms, t.block_size) for name, t in zip(runners, timed)}
                    for entry in lat.values():
                        entry.vs_eager = entry.p50_ms / lat[EAGER].p50_ms
                    result.rows.append(
                        BenchRow(
                            batch,
                            list(lat.values()),
                            lat[ORT].vs_eager,
                            lat[COMPILED].vs_eager if compile else None,
                            within_noise=_overlap(lat[ORT], lat[EAGER]),
                            compile_within_noise=_overlap(lat[COMPILED], lat[EAGER]) if compile else None,
                        )
                    )
    finally:
        torch.set_num_threads(previous_threads)
    return result


__all__ = ["bench", "BenchResult", "BenchRow", "RuntimeLatency"]
