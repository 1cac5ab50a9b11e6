"""Forward-pass latency on CPU and CUDA: an adaptive number of timed blocks, the median with a
confidence interval, percentiles, throughput and peak CUDA memory.

The rule is ``torch.utils.benchmark.Timer.blocked_autorange``'s (and ``timeit``'s):

* **Blocks.** A sample times a *block* of back-to-back calls, and its per-iteration time is the
  block's time / the block size. The block size is the smallest count whose block takes at least
  :data:`BLOCK_TARGET_S` (1 ms), found by timing growing blocks (which also warms the module up).
  Reading ``perf_counter_ns`` costs well under a microsecond, so against a 1 ms block the timer's
  share stays below 1e-3, while a 50 µs attention block timed one call at a time would carry the
  timer and the Python loop in every sample. 1 ms is also what ``blocked_autorange`` settles on for
  ``min_run_time=1`` (min_run_time / 1000), so the two agree on what a sample is.
* **Budget.** Blocks are timed until they add up to ``min_time`` seconds per model (default
  :data:`DEFAULT_MIN_TIME`), and never fewer than :data:`MIN_SAMPLES` of them: the budget, not a
  fixed count, decides the number of samples.
* **Fixed mode.** An explicit ``iters`` keeps the old behaviour: ``iters`` samples of one call each.

Every statistic (mean, std, min, max, percentiles, interval) is taken over the same per-iteration
sample times, so the mean sits below the median only when the samples really are skewed that way.
The median's 95% confidence interval comes from order statistics (:func:`median_ci_ranks`), which
assumes nothing about the shape of the distribution.

``measure_interleaved`` times several models in one run: block sizes are chosen for each first,
then their samples are interleaved, spread evenly over the run, so a slow spell of a busy host
lands on every model alike; :func:`latency_overhead` says whether two medians differ beyond noise.

CPU: blocks are timed with ``time.perf_counter_ns`` (CPU work is synchronous), with the thread
count set explicitly for the run (``threads``, default torch's current count) and restored after.
CUDA: each block is bracketed by a pair of ``torch.cuda.Event(enable_timing=True)`` recorded on the
current stream; the device is synchronised once after the last block and the pairs' elapsed times
read then, so the host never stalls the queue between blocks (the block size is found the same way,
synchronising after each trial block). Peak memory is ``torch.cuda.max_memory_allocated`` after
``reset_peak_memory_stats``, for the timed batch size alone.

Everything runs under ``torch.inference_mode()`` in eval mode. The caller's module is never moved
or cast: CUDA and half-precision runs time a copy.
"""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from fractions import Fraction
from dataclasses import asdict, dataclass
from typing import Any
from collections.abc import Callable, Iterable, Sequence

from attncli.errors import UsageError

DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "float16", "bfloat16")
# Untimed calls before the block size is sought (the search itself warms up too); a GPU call is
# cheap, so CUDA gets more.
DEFAULT_WARMUP = {"cpu": 3, "cuda": 10}
# Seconds of timed blocks per model: ~1000 samples for a sub-millisecond attention block, ~10 for
# a 100 ms backbone on a laptop CPU; `attncli profile eca_resnet50` stays within seconds.
DEFAULT_MIN_TIME = {"cpu": 1.0, "cuda": 1.0}
BLOCK_TARGET_S = 1e-3  # a block lasts at least this long (see the module docstring)
# The fewest samples per model. Six would do for a 95% interval of the median ([min, max] covers
# it with 1 - 2 / 2^6 = 96.9%), but one preempted sample then stretches the interval to the
# outlier, and a 20x heavier model came out "within noise" of its baseline on a busy host. With 15
# the interval is the 4th to the 12th order statistic: three outliers on either side are dropped.
MIN_SAMPLES = 15
MAX_BLOCK = 1_000_000
# A block reaching the target is confirmed by a second timing unless it took this many targets:
# a host's preemption can stretch a block by milliseconds, not by tens of them.
CONFIRM_BELOW = 20
CONFIDENCE = 0.95


@dataclass
class LatencyStats:
    """One timed configuration. Times in milliseconds per iteration; throughput in samples per second.

    Each of the ``samples`` values is one block of ``block_size`` calls divided by ``block_size``;
    mean, std, min, max and the percentiles are taken over those values."""

    device: str
    device_name: str
    dtype: str
    batch_size: int
    input_shape: list[int]
    warmup: int  # untimed calls: warm-up plus the block-size search
    iters: int  # timed calls: samples * block_size
    threads: int | None  # CPU threads used (torch.get_num_threads); None on CUDA
    mean_ms: float
    std_ms: float  # sample standard deviation (n - 1) of the samples; 0 for a single sample
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput: float  # batch_size / mean time
    peak_memory_mb: float | None  # CUDA peak allocated, MiB (2^20 bytes); None on CPU
    samples: int = 0
    block_size: int = 1
    min_time_s: float | None = None  # the time budget; None with a fixed iteration count
    ci_low_ms: float = 0.0  # 95% confidence interval of the median (order statistics)
    ci_high_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LatencyOverhead:
    """``model`` against ``baseline``: the difference of the medians, and whether it is noise."""

    delta_ms: float  # model p50 - baseline p50
    rel: float | None  # delta / baseline p50; None when the baseline's p50 is 0
    within_noise: bool  # the medians' confidence intervals overlap


def latency_overhead(model: LatencyStats, baseline: LatencyStats) -> LatencyOverhead:
    """The latency overhead of ``model`` over ``baseline``; within noise when their medians'
    confidence intervals overlap (then the sign of the difference is not to be trusted)."""
    delta = model.p50_ms - baseline.p50_ms
    rel = delta / baseline.p50_ms if baseline.p50_ms > 0 else None
    overlap = model.ci_low_ms <= baseline.ci_high_ms and baseline.ci_low_ms <= model.ci_high_ms
    return LatencyOverhead(delta, rel, overlap)


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


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int]:
    """1-based ranks (k, n + 1 - k) of the order statistics that bound the median with at least
    ``confidence``, distribution-free.

    The number of samples below the true median is Binomial(n, 1/2), so
    P(x_(k) <= median <= x_(n+1-k)) = 1 - 2 P(B <= k - 1). k is the largest rank with
    P(B <= k - 1) <= (1 - confidence) / 2. When even k = 1 falls short (n <= 5 at 95%), the
    interval is [min, max], with less than the asked confidence. E.g. n = 10: P(B <= 1) = 11/1024
    and P(B <= 2) = 56/1024 > 0.025, so k = 2 and the interval is [x_(2), x_(9)] (97.9%).
    """
    if n < 1:
        raise ValueError("a confidence interval needs at least one sample")
    if n > 2000:  # normal approximation of the binomial; exact sums get slow and agree closely
        k = math.floor(n / 2 - _normal_quantile((1 + confidence) / 2) * math.sqrt(n) / 2)
        return max(k, 1), n + 1 - max(k, 1)
    tail = (1 - Fraction(str(confidence))) / 2 * 2**n  # exact: no tie is lost to rounding
    k, cumulative, term = 0, 0, 1  # term = C(n, k); cumulative = 2^n P(B <= k - 1)
    while k < n // 2 and cumulative + term <= tail:
        cumulative += term
        term = term * (n - k) // (k + 1)
        k += 1
    k = max(k, 1)
    return k, n + 1 - k


def _normal_quantile(p: float) -> float:
    return statistics.NormalDist().inv_cdf(p)


def median_ci(samples: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The confidence interval of the median from order statistics (:func:`median_ci_ranks`)."""
    data = sorted(samples)
    low, high = median_ci_ranks(len(data), confidence)
    return data[low - 1], data[high - 1]


def summarize(times_ms: list[float]) -> dict[str, float]:
    """mean, std, min, max, p50, p90, p99 and the median's 95% interval of per-iteration times."""
    ci_low, ci_high = median_ci(times_ms)
    return {
        "mean_ms": statistics.fmean(times_ms),
        "std_ms": statistics.stdev(times_ms) if len(times_ms) > 1 else 0.0,
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "p50_ms": percentile(times_ms, 50),
        "p90_ms": percentile(times_ms, 90),
        "p99_ms": percentile(times_ms, 99),
        "ci_low_ms": ci_low,
        "ci_high_ms": ci_high,
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


def check_settings(
    device: str,
    dtype: str,
    batch_sizes: Iterable[int],
    warmup: int,
    iters: int | None,
    threads: int | None,
    min_time: float | None = None,
) -> None:
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
    if dtype != "float32" and device != "cuda":
        raise UsageError(f"--dtype {dtype} is timed on CUDA only; use --dtype float32 on the CPU.")
    if any(b < 1 for b in batch_sizes):
        raise UsageError("--batch-size must be a positive integer.")
    if iters is not None and iters < 1:
        raise UsageError("--iters must be at least 1.")
    if min_time is not None and not (min_time > 0 and math.isfinite(min_time)):
        raise UsageError(f"--min-time must be a positive number of seconds, not {min_time}.")
    if warmup < 0:
        raise UsageError("--warmup must be 0 or more.")
    if threads is not None and threads < 1:
        raise UsageError("--threads must be a positive integer.")
    if threads is not None and device != "cpu":
        raise UsageError("--threads sets CPU threads; it has no effect with --device cuda.")


# ----------------------------------------------------------------------------- the timing engine


@dataclass
class Timed:
    """What :func:`time_calls` measured for one callable."""

    times_ms: list[float]  # per-iteration time of each sample: block time / block_size
    block_size: int
    warmup: int  # untimed calls, the block-size search included


def _host_block_ms(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - start) / 1e6


def _cuda_block(fn: Callable[[], Any], n: int) -> tuple[Any, Any]:
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(n):
        fn()
    end.record()
    return start, end


def _block_ms(fn: Callable[[], Any], n: int, on_cuda: bool) -> float:
    if not on_cuda:
        return _host_block_ms(fn, n)
    start, end = _cuda_block(fn, n)
    end.synchronize()
    return start.elapsed_time(end)


def find_block_size(fn: Callable[[], Any], on_cuda: bool = False, target_s: float = BLOCK_TARGET_S) -> tuple[int, float, int]:
    """The smallest block of calls to ``fn`` found to take at least ``target_s``: returns the block
    size, that block's time in ms and the calls spent finding it. Each trial scales the block by
    target / measured time (at most tenfold, at least one more call), so it lands near the target
    in two or three trials. A block that reaches the target is timed once more and the faster time
    kept: one preemption of a busy host (milliseconds) would otherwise end the search early, and
    two timings of one model would get different block sizes."""
    n, calls = 1, 0
    target_ms = target_s * 1e3
    while True:
        ms = _block_ms(fn, n, on_cuda)
        calls += n
        if target_ms <= ms < CONFIRM_BELOW * target_ms:
            ms = min(ms, _block_ms(fn, n, on_cuda))
            calls += n
        if ms >= target_ms or n >= MAX_BLOCK:
            return n, ms, calls
        wanted = math.ceil(n * target_ms / ms) if ms > 0 else 10 * n
        n = min(MAX_BLOCK, max(n + 1, min(10 * n, wanted)))


def time_calls(
    calls: Sequence[Callable[[], Any]],
    *,
    cuda: Sequence[bool] | None = None,
    min_time: float | None = None,
    iters: int | None = None,
    warmup: int = 0,
    before: Callable[[int], None] | None = None,
    after: Callable[[int], None] | None = None,
) -> list[Timed]:
    """Time each zero-argument callable, samples interleaved. ``cuda[i]`` times callable i with CUDA
    events (else the host clock). ``iters`` given: that many one-call samples each; otherwise each
    callable gets its block size, then blocks until ``min_time`` seconds of them are timed (and at
    least MIN_SAMPLES); CUDA events are read only at the end, so until then a CUDA block counts
    as long as the block-size search measured it.
    ``before(i)``/``after(i)`` run around callable i's warm-up and block-size search (e.g. to
    read peak memory), which happen one callable at a time before any sample is taken."""
    on_cuda = list(cuda) if cuda is not None else [False] * len(calls)
    if iters is None and min_time is None:
        raise ValueError("give min_time (seconds) or iters")
    sizes, estimates, untimed = [], [], []
    for i, fn in enumerate(calls):
        if before is not None:
            before(i)
        for _ in range(warmup):
            fn()
        if iters is None:
            size, block_ms, search = find_block_size(fn, on_cuda[i])
            sizes.append(size)
            estimates.append(block_ms)
            untimed.append(warmup + search)
        else:
            sizes.append(1)
            estimates.append(1.0)
            untimed.append(warmup)
        if on_cuda[i]:
            import torch

            torch.cuda.synchronize()
        if after is not None:
            after(i)

    # Progress of each callable: timed ms so far (a CUDA block counts its estimate until the one
    # synchronisation at the end), or samples taken in fixed mode. The next sample goes to the one
    # furthest behind, so samples are spread evenly over the run whatever the models' speeds, and a
    # block-size search slowed by a cold start does not cut a model's budget short.
    goal = min_time * 1e3 if iters is None else float(iters)
    fewest = MIN_SAMPLES if iters is None else iters
    progress = [0.0] * len(calls)
    taken = [0] * len(calls)
    host: list[list[float]] = [[] for _ in calls]
    events: list[list[tuple[Any, Any]]] = [[] for _ in calls]
    queued = False  # CUDA work not yet waited for
    while True:
        left = [j for j in range(len(calls)) if taken[j] < fewest or progress[j] < goal]
        if not left:
            break
        rounds = min(taken)  # ties go A B, then B A, so neither always runs right after the other
        i = min(left, key=lambda j: (progress[j], (j + rounds) % len(calls)))
        if on_cuda[i]:
            events[i].append(_cuda_block(calls[i], sizes[i]))
            progress[i] += estimates[i] if iters is None else 1.0
            queued = True
        else:
            if queued:  # a host-timed call must not overlap queued device work
                import torch

                torch.cuda.synchronize()
                queued = False
            ms = _host_block_ms(calls[i], sizes[i])
            host[i].append(ms / sizes[i])
            progress[i] += ms if iters is None else 1.0
        taken[i] += 1
    if any(on_cuda):
        import torch

        torch.cuda.synchronize()
    results = []
    for i in range(len(calls)):
        times = [s.elapsed_time(e) / sizes[i] for s, e in events[i]] if on_cuda[i] else host[i]
        results.append(Timed(times, sizes[i], untimed[i]))
    return results


# ----------------------------------------------------------------------------- modules


def _timed_input(input_shape: tuple[int, ...], batch_size: int, seed: int) -> Any:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *input_shape[1:]), generator=gen)


@contextlib.contextmanager
def _threads(device: str, threads: int | None):
    """CPU: the thread count set explicitly for the run (default: torch's current), then restored."""
    import torch

    previous = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(threads or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _measure(
    items: Sequence[tuple[Any, tuple[int, ...]]],
    *,
    device: str,
    dtype: str,
    threads: int | None,
    seed: int,
    warmup: int,
    iters: int | None,
    min_time: float | None,
) -> list[LatencyStats]:
    """Time ``items`` (module, input shape) interleaved in one run."""
    import torch

    from attncli.counting import eval_mode

    torch_dtype = getattr(torch, dtype)
    on_cuda = device == "cuda"
    copied = on_cuda or torch_dtype != torch.float32
    runners = [copy.deepcopy(module).to(device=device, dtype=torch_dtype) if copied else module for module, _ in items]
    inputs = [_timed_input(shape, int(shape[0]), seed).to(device=device, dtype=torch_dtype) for _, shape in items]
    device_name = torch.cuda.get_device_name() if on_cuda else _cpu_name()
    peaks: list[float | None] = [None] * len(items)

    def before(i: int) -> None:
        if on_cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def after(i: int) -> None:
        if on_cuda:
            peaks[i] = torch.cuda.max_memory_allocated() / 2**20

    calls = [(lambda m=m, x=x: m(x)) for m, x in zip(runners, inputs)]
    with _threads(device, threads), contextlib.ExitStack() as stack:
        for runner in runners:
            stack.enter_context(eval_mode(runner))
        stack.enter_context(torch.inference_mode())
        try:
            timed = time_calls(calls, cuda=[on_cuda] * len(calls), min_time=min_time, iters=iters, warmup=warmup, before=before, after=after)
        except torch.cuda.OutOfMemoryError:
            batches = sorted({int(shape[0]) for _, shape in items})
            raise UsageError(
                f"batch size {', '.join(map(str, batches))} does not fit in CUDA memory ({device_name}); give a smaller --batch-size."
            ) from None
        used_threads = torch.get_num_threads() if device == "cpu" else None
        if on_cuda and len(items) == 1:  # nothing else ran since the reset: the peak covers the timed blocks too
            peaks[0] = torch.cuda.max_memory_allocated() / 2**20
    if copied and on_cuda:
        del runners, inputs, calls
        torch.cuda.empty_cache()
    results = []
    for (_, shape), t, peak in zip(items, timed, peaks):
        stats = summarize(t.times_ms)
        batch = int(shape[0])
        results.append(
            LatencyStats(
                device=device,
                device_name=device_name,
                dtype=dtype,
                batch_size=batch,
                input_shape=[batch, *shape[1:]],
                warmup=t.warmup,
                iters=len(t.times_ms) * t.block_size,
                threads=used_threads,
                throughput=batch * 1000.0 / stats["mean_ms"] if stats["mean_ms"] > 0 else math.inf,
                peak_memory_mb=peak,
                samples=len(t.times_ms),
                block_size=t.block_size,
                min_time_s=min_time if iters is None else None,
                **stats,
            )
        )
    return results


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
    min_time: float | None = None,
) -> list[LatencyStats]:
    """Time ``module`` at each batch size (default: the batch of ``input_shape``), one entry each,
    one batch size after the other. ``iters`` None: adaptive, ``min_time`` seconds of timed blocks
    per batch size (default :data:`DEFAULT_MIN_TIME`); ``iters`` given: that many single calls."""
    device = resolve_device(device)
    sizes = list(batch_sizes) if batch_sizes else [int(input_shape[0])]
    warmup = DEFAULT_WARMUP[device] if warmup is None else warmup
    if iters is None and min_time is None:
        min_time = DEFAULT_MIN_TIME[device]
    check_settings(device, dtype, sizes, warmup, iters, threads, min_time)
    results = []
    for batch in sizes:
        results += _measure(
            [(module, (batch, *input_shape[1:]))],
            device=device, dtype=dtype, threads=threads, seed=seed, warmup=warmup, iters=iters, min_time=min_time,
        )
    return results


def measure_interleaved(
    items: Sequence[tuple[Any, tuple[int, ...]]],
    *,
    device: str | None = None,
    dtype: str = "float32",
    threads: int | None = None,
    min_time: float | None = None,
    seed: int = 0,
    warmup: int | None = None,
) -> list[LatencyStats]:
    """Time several ``(module, input_shape)`` pairs in one run, one :class:`LatencyStats` each, in
    order: each gets its block size first, then all samples are interleaved evenly over the run so
    host noise hits every item alike. ``min_time`` seconds of timed blocks per item (default
    :data:`DEFAULT_MIN_TIME`); the same module may appear twice (e.g. to check the noise floor)."""
    device = resolve_device(device)
    warmup = DEFAULT_WARMUP[device] if warmup is None else warmup
    min_time = DEFAULT_MIN_TIME[device] if min_time is None else min_time
    check_settings(device, dtype, [int(shape[0]) for _, shape in items], warmup, None, threads, min_time)
    if not items:
        return []
    return _measure(
        [(module, tuple(shape)) for module, shape in items],
        device=device, dtype=dtype, threads=threads, seed=seed, warmup=warmup, iters=None, min_time=min_time,
    )


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
