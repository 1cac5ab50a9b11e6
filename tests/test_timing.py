"""Latency: percentiles and the median's interval by hand, the adaptive block size, interleaved
runs and "within noise", CPU timing fields, settings errors, CUDA paths."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from attncli.errors import UsageError
from attncli.timing import (
    MIN_SAMPLES,
    LatencyStats,
    latency_overhead,
    measure_interleaved,
    measure_latency,
    median_ci,
    median_ci_ranks,
    percentile,
    resolve_device,
    summarize,
)


def test_percentile_by_hand():
    data = [4.0, 1.0, 3.0, 2.0]  # sorted 1, 2, 3, 4; rank = 3 * q / 100
    assert percentile(data, 0) == 1.0
    assert percentile(data, 50) == 2.5  # halfway between 2 and 3
    assert percentile(data, 90) == pytest.approx(3.7)  # rank 2.7: 3 + 0.7
    assert percentile(data, 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_percentile_agrees_with_numpy():
    rng = np.random.default_rng(0)
    data = rng.exponential(size=37).tolist()
    for q in (1, 50, 90, 99):
        assert percentile(data, q) == pytest.approx(float(np.percentile(data, q)))


def test_summary_statistics_by_hand():
    stats = summarize([1.0, 2.0, 3.0, 4.0])
    assert stats["mean_ms"] == 2.5
    assert stats["std_ms"] == pytest.approx(math.sqrt(5 / 3))  # sample std: sum of squares 5, n - 1 = 3
    assert stats["min_ms"] == 1.0 and stats["max_ms"] == 4.0
    assert summarize([2.0])["std_ms"] == 0.0


def binomial_tail(n, k):
    """P(Binomial(n, 1/2) <= k), summed term by term."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


@pytest.mark.parametrize(
    "n, ranks",
    [
        # n = 10: P(B <= 1) = 11/1024 = 0.011 <= 0.025 < P(B <= 2) = 56/1024 = 0.055, so k = 2
        (10, (2, 9)),
        # n = 20: sum of C(20, i) for i <= 5 is 21700 (0.0207); with i = 6, 60460 (0.0577): k = 6
        (20, (6, 15)),
        # n = 6: P(B <= 0) = 1/64 = 0.016, P(B <= 1) = 7/64 = 0.11: k = 1, [min, max] covers 96.9%
        (6, (1, 6)),
        # n = 5: even [min, max] covers only 1 - 2/32 = 93.75%; it is the widest there is
        (5, (1, 5)),
        (1, (1, 1)),
    ],
)
def test_median_interval_ranks_by_hand(n, ranks):
    assert median_ci_ranks(n) == ranks
    low, _ = ranks
    if n >= 6:  # the coverage is at least 95%, and one rank further in it would not be
        assert 1 - 2 * binomial_tail(n, low - 1) >= 0.95
        assert 1 - 2 * binomial_tail(n, low) < 0.95


def test_median_interval_of_a_sample_list():
    data = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0, 10.0]  # sorted 1..10: ranks 2 and 9
    assert median_ci(data) == (2.0, 9.0)
    assert median_ci([3.0, 1.0, 2.0]) == (1.0, 3.0)  # tiny n: [min, max]
    stats = summarize(data)
    assert stats["p50_ms"] == 5.5 and (stats["ci_low_ms"], stats["ci_high_ms"]) == (2.0, 9.0)
    # large n: the normal approximation, 1.96 standard deviations of the binomial below n / 2
    low, high = median_ci_ranks(10_000)
    assert low == math.floor(5000 - 1.959964 * 50) and high == 10_001 - low


def stats_with(p50, low, high):
    return LatencyStats(
        "cpu", "cpu", "float32", 1, [1], 0, 10, 1, p50, 0.0, low, high, p50, p50, p50, 1.0, None,
        samples=10, block_size=1, min_time_s=None, ci_low_ms=low, ci_high_ms=high,
    )


def test_overhead_is_within_noise_when_the_intervals_overlap():
    base = stats_with(10.0, 9.0, 11.0)
    near = latency_overhead(stats_with(10.5, 10.8, 12.0), base)  # 10.8 <= 11: overlap
    assert near.within_noise and near.delta_ms == pytest.approx(0.5) and near.rel == pytest.approx(0.05)
    far = latency_overhead(stats_with(20.0, 19.0, 21.0), base)
    assert not far.within_noise and far.delta_ms == pytest.approx(10.0) and far.rel == pytest.approx(1.0)


def conv_stack(channels=32, layers=4):
    return nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1) for _ in range(layers)]).eval()


def test_adaptive_blocks_grow_when_the_model_is_faster():
    # a bare flatten takes about a microsecond, four 32-channel 3x3 convolutions on 32 x 32 about a
    # millisecond: the fast module needs far longer blocks to reach the same block time
    fast, slow = measure_interleaved(
        [(nn.Flatten(), (1, 3, 8, 8)), (conv_stack(), (1, 32, 32, 32))], device="cpu", threads=1, min_time=0.1
    )
    assert fast.block_size >= 20 * slow.block_size
    assert fast.iters > 20 * slow.iters  # timed calls in the same budget
    for s in (fast, slow):
        assert s.min_time_s == 0.1 and s.samples >= MIN_SAMPLES and s.iters == s.samples * s.block_size
        assert s.min_ms <= s.ci_low_ms <= s.p50_ms <= s.ci_high_ms <= s.max_ms


def test_interleaved_gives_one_result_per_item_in_order():
    items = [(conv_stack(8, 1), (1, 8, 16, 16)), (nn.Flatten(), (2, 3, 4, 4)), (conv_stack(16, 2), (3, 16, 8, 8))]
    runs = measure_interleaved(items, device="cpu", threads=1, min_time=0.05)
    assert [r.input_shape for r in runs] == [[1, 8, 16, 16], [2, 3, 4, 4], [3, 16, 8, 8]]
    assert [r.batch_size for r in runs] == [1, 2, 3]
    for r in runs:
        assert r.samples >= MIN_SAMPLES and r.threads == 1 and r.min_time_s == 0.05
        assert r.throughput == pytest.approx(r.batch_size * 1000 / r.mean_ms)


def test_a_model_against_itself_is_within_noise_and_against_20x_the_work_is_not():
    net, heavy = conv_stack(16, 1), conv_stack(16, 20)  # twenty times the same convolution
    shape = (1, 16, 32, 32)
    a, b, h = measure_interleaved([(net, shape), (net, shape), (heavy, shape)], device="cpu", threads=1, min_time=0.2)
    assert latency_overhead(a, b).within_noise
    over = latency_overhead(h, a)
    assert not over.within_noise and over.delta_ms > 0 and over.rel > 5


def test_adaptive_measure_latency_runs_for_its_budget():
    import time

    start = time.perf_counter()
    (run,) = measure_latency(conv_stack(8, 1), (1, 8, 16, 16), device="cpu", threads=1, min_time=0.1)
    elapsed = time.perf_counter() - start
    assert run.min_time_s == 0.1 and run.samples >= MIN_SAMPLES
    assert run.samples * run.block_size * run.mean_ms >= 0.1 * 1000  # timed blocks add up to the budget
    assert elapsed < 2.0  # and not much more: warm-up and the block-size search are short


def small_net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)).eval()


def test_cpu_latency_fields_and_sweep():
    net = small_net()
    before = torch.get_num_threads()
    runs = measure_latency(net, (1, 3, 16, 16), device="cpu", batch_sizes=[1, 4], warmup=1, iters=7, threads=1)
    assert [r.batch_size for r in runs] == [1, 4]
    assert runs[1].input_shape == [4, 3, 16, 16]
    for r in runs:
        assert r.device == "cpu" and r.dtype == "float32" and r.iters == 7 and r.warmup == 1
        assert r.samples == 7 and r.block_size == 1 and r.min_time_s is None  # a fixed count: one call a sample
        assert r.threads == 1
        assert 0 < r.min_ms <= r.p50_ms <= r.p90_ms <= r.p99_ms <= r.max_ms
        assert r.mean_ms > 0 and r.std_ms >= 0
        assert r.throughput == pytest.approx(r.batch_size * 1000 / r.mean_ms)
        assert r.peak_memory_mb is None
    assert torch.get_num_threads() == before  # the caller's thread setting comes back


def test_timing_leaves_the_module_alone():
    net = small_net().train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    measure_latency(net, (2, 3, 8, 8), device="cpu", warmup=1, iters=2)
    assert net.training  # timed in eval mode, flag restored
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())  # BN stats untouched


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "cpu", "dtype": "float16"}, "CUDA only"),
        ({"device": "cpu", "dtype": "bfloat16"}, "CUDA only"),
        ({"device": "cpu", "dtype": "float64"}, "--dtype must be"),
        ({"device": "tpu"}, "--device must be"),
        ({"device": "cpu", "iters": 0}, "--iters"),
        ({"device": "cpu", "batch_sizes": [0]}, "--batch-size"),
        ({"device": "cpu", "threads": 0}, "--threads"),
        ({"device": "cpu", "min_time": 0}, "--min-time"),
        ({"device": "cpu", "min_time": float("nan")}, "--min-time"),
    ],
)
def test_bad_settings_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        measure_latency(small_net(), (1, 3, 8, 8), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_device_is_a_usage_error():
    with pytest.raises(UsageError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device(None) == "cpu"


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_cuda_timing_with_events_and_peak_memory(dtype):
    net = small_net()
    runs = measure_latency(net, (1, 3, 64, 64), device="cuda", dtype=dtype, batch_sizes=[1, 8], warmup=2, iters=20)
    assert resolve_device(None) == "cuda"
    for r in runs:
        assert r.device == "cuda" and r.dtype == dtype and r.threads is None
        assert 0 < r.min_ms <= r.p50_ms <= r.p90_ms <= r.p99_ms <= r.max_ms
        assert r.peak_memory_mb is not None and r.peak_memory_mb > 0
        assert r.device_name == torch.cuda.get_device_name()
        assert r.samples == 20 and r.block_size == 1
    # a batch of 8 needs more activation memory than a batch of 1
    assert runs[1].peak_memory_mb > runs[0].peak_memory_mb
    # the caller's module was copied, not moved or cast
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in net.parameters())


@pytest.mark.gpu
def test_cuda_adaptive_blocks_and_interleaving():
    fast, slow = measure_interleaved(
        [(nn.Flatten(), (1, 3, 8, 8)), (conv_stack(64, 8), (8, 64, 64, 64))], device="cuda", min_time=0.1
    )
    assert fast.block_size > slow.block_size
    for s in (fast, slow):
        assert s.device == "cuda" and s.threads is None and s.samples >= MIN_SAMPLES
        assert s.peak_memory_mb is not None and s.peak_memory_mb > 0
        assert s.min_ms <= s.ci_low_ms <= s.p50_ms <= s.ci_high_ms <= s.max_ms
    assert not latency_overhead(slow, fast).within_noise


def test_profile_times_the_baseline_alongside_and_says_within_noise():
    from io import StringIO

    from rich.console import Console

    from attncli import api
    from attncli.cli.render import profile_report

    # ECA adds 8 one-weight convolutions to resnet18: on 32 x 32 their cost is lost in the noise
    # or close to it; either way the overhead is the difference of the two medians
    report = api.profile("resnet18", attn="eca", input_shape="1,3,32,32", device="cpu", threads=1, min_time=0.1)
    base, lat = report.baseline, report.latency
    assert lat.min_time_s == 0.1 and lat.samples >= MIN_SAMPLES
    assert base.latency_diff_ms == pytest.approx(lat.p50_ms - base.latency_p50_ms)
    assert isinstance(base.latency_within_noise, bool)
    buffer = StringIO()
    profile_report(report, Console(file=buffer, width=200))
    overhead = next(line for line in buffer.getvalue().splitlines() if line.startswith("overhead"))
    if base.latency_within_noise:
        assert overhead.endswith("p50 latency within noise")
    else:
        assert f"p50 latency {base.latency_diff_ms:+.2f} ms" in overhead
