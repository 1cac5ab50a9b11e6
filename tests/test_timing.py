"""Latency: percentiles by hand and against NumPy, CPU timing fields, settings errors, CUDA paths."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from attncli.errors import UsageError
from attncli.timing import measure_latency, percentile, resolve_device, summarize


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
    # a batch of 8 needs more activation memory than a batch of 1
    assert runs[1].peak_memory_mb > runs[0].peak_memory_mb
    # the caller's module was copied, not moved or cast
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in net.parameters())
