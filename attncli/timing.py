"""Forward-pass latency on CPU and CUDA, with percentiles, throughput and peak CUDA memory.

CPU: each iteration is timed with ``time.perf_counter_ns`` around one forward call (CPU work is
synchronous), with the thread count set for the run and restored after. CUDA: each iteration is
bracketed by a pair of ``torch.cuda.Event(enable_timing=True)`` recorded on the current stream; the
device is synchronised once after the last iteration and the pairs' elapsed times read then, so the
host never stalls the queue between iterations. Peak memory is ``torch.cuda.max_memory_allocated``
after ``reset_peak_memory_stats``, for the timed batch size alone.

Everything runs under ``torch.inference_mode()`` in eval mode. The caller's module is never moved
or cast: CUDA and half-precision runs time a copy.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any
from collections.abc import Iterable

from attncli.errors import UsageError

DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "float16", "bfloat16")
# Defaults keep `attncli profile eca_resnet50` within seconds on a 2-core CPU; a GPU iteration
# is cheap, so CUDA gets more of both for steadier percentiles.
DEFAULT_WARMUP = {"cpu": 3, "cuda": 10}
DEFAULT_ITERS = {"cpu": 10, "cuda": 100}


@dataclass
class LatencyStats:
    """One timed configuration. Times in milliseconds; throughput in samples per second."""

    device: str
    device_name: str
    dtype: str
    batch_size: int
    input_shape: list[int]
    warmup: int
    iters: int
    threads: int | None  # CPU threads used (torch.get_num_threads); None on CUDA
    mean_ms: float
    std_ms: float  # sample standard deviation (n - 1); 0 for a single iteration
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput: float  # batch_size / mean time
    peak_memory_mb: float | None  # CUDA peak allocated, MiB (2^20 bytes); None on CPU

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between order statistics
    (NumPy's default "linear" method): rank (n - 1) * q / 100 in the sorted samples."""
    data = sorted(samples)
    if not data:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    rank = (len(data) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def summarize(times_ms: list[float]) -> dict[str, float]:
    """mean, std, min, max, p50, p90, p99 of per-iteration times."""
    return {
        "mean_ms": statistics.fmean(times_ms),
        "std_ms": statistics.stdev(times_ms) if len(times_ms) > 1 else 0.0,
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "p50_ms": percentile(times_ms, 50),
        "p90_ms": percentile(times_ms, 90),
        "p99_ms": percentile(times_ms, 99),
    }


def resolve_device(device: str | None) -> str:
    """``None`` means CUDA when there is one, else CPU; asking for CUDA without one is a usage error."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = device.lower()
    if device not in DEVICES:
        raise UsageError(f"--device must be cpu or cuda, not {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available to torch here; use --device cpu.")
    return device


def check_settings(device: str, dtype: str, batch_sizes: Iterable[int], warmup: int, iters: int, threads: int | None) -> None:
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
    if dtype != "float32" and device != "cuda":
        raise UsageError(f"--dtype {dtype} is timed on CUDA only; use --dtype float32 on the CPU.")
    if any(b < 1 for b in batch_sizes):
        raise UsageError("--batch-size must be a positive integer.")
    if iters < 1:
        raise UsageError("--iters must be at least 1.")
    if warmup < 0:
        raise UsageError("--warmup must be 0 or more.")
    if threads is not None and threads < 1:
        raise UsageError("--threads must be a positive integer.")
    if threads is not None and device != "cpu":
        raise UsageError("--threads sets CPU threads; it has no effect with --device cuda.")


def _timed_input(input_shape: tuple[int, ...], batch_size: int, seed: int) -> Any:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *input_shape[1:]), generator=gen)


def _time_cpu(module: Any, x: Any, warmup: int, iters: int) -> list[float]:
    times = []
    for _ in range(warmup):
        module(x)
    for _ in range(iters):
        start = time.perf_counter_ns()
        module(x)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def _time_cuda(module: Any, x: Any, warmup: int, iters: int) -> list[float]:
    import torch

    for _ in range(warmup):
        module(x)
    torch.cuda.synchronize()
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
    for start, end in pairs:
        start.record()
        module(x)
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in pairs]


def measure_latency(
    module: Any,
    input_shape: tuple[int, ...],
    *,
    device: str | None = None,
    dtype: str = "float32",
    batch_sizes: Iterable[int] | None = None,
    warmup: int | None = None,
    iters: int | None = None,
    threads: int | None = None,
    seed: int = 0,
) -> list[LatencyStats]:
    """Time ``module`` at each batch size (default: the batch of ``input_shape``), one entry each."""
    import torch

    from attncli.counting import eval_mode

    device = resolve_device(device)
    sizes = list(batch_sizes) if batch_sizes else [int(input_shape[0])]
    warmup = DEFAULT_WARMUP[device] if warmup is None else warmup
    iters = DEFAULT_ITERS[device] if iters is None else iters
    check_settings(device, dtype, sizes, warmup, iters, threads)
    torch_dtype = getattr(torch, dtype)

    results = []
    previous_threads = torch.get_num_threads()
    if device == "cpu" and threads is not None:
        torch.set_num_threads(threads)
    try:
        runner = module
        if device == "cuda" or torch_dtype != torch.float32:
            runner = copy.deepcopy(module).to(device=device, dtype=torch_dtype)
        device_name = torch.cuda.get_device_name() if device == "cuda" else _cpu_name()
        with eval_mode(runner), torch.inference_mode():
            for batch in sizes:
                x = _timed_input(input_shape, batch, seed).to(device=device, dtype=torch_dtype)
                if device == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    try:
                        times = _time_cuda(runner, x, warmup, iters)
                    except torch.cuda.OutOfMemoryError:
                        raise UsageError(
                            f"batch size {batch} does not fit in CUDA memory ({device_name}); give a smaller --batch-size."
                        ) from None
                    peak = torch.cuda.max_memory_allocated() / 2**20
                else:
                    times = _time_cpu(runner, x, warmup, iters)
                    peak = None
                stats = summarize(times)
                results.append(
                    LatencyStats(
                        device=device,
                        device_name=device_name,
                        dtype=dtype,
                        batch_size=batch,
                        input_shape=[batch, *input_shape[1:]],
                        warmup=warmup,
                        iters=iters,
                        threads=torch.get_num_threads() if device == "cpu" else None,
                        throughput=batch * 1000.0 / stats["mean_ms"] if stats["mean_ms"] > 0 else math.inf,
                        peak_memory_mb=peak,
                        **stats,
                    )
                )
        if runner is not module and device == "cuda":
            del runner
            torch.cuda.empty_cache()
    finally:
        torch.set_num_threads(previous_threads)
    return results


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
