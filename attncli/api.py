"""The Python API: the same operations as the CLI, returning plain objects.

Each function imports torch (and onnx, fvcore...) only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from attncli.errors import UsageError
from attncli.modelspec import BuiltModel, ModelRequest
from attncli.modelspec import build as _build


def build(
    model: str,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
) -> BuiltModel:
    """Build a registry name or ``file.py:Name`` with its example input (eval mode, seeded)."""
    return _build(ModelRequest.make(model, params, input_shape, attn, seed, weights))


def profile(
    model: Any,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    *,
    depth: int = 2,
    latency: bool = True,
    device: str | None = None,
    dtype: str = "float32",
    batch_sizes: Iterable[int] | None = None,
    warmup: int | None = None,
    iters: int | None = None,
    threads: int | None = None,
    baseline: str | None = None,
) -> Any:
    """Parameters, MACs, FLOPs, per-module costs, attention share, baseline overhead, published
    figures and latency of a model: a registry name, ``file.py:Name``, or an ``nn.Module`` you built
    (then give ``input_shape``; it is profiled as it is and left unchanged). Returns a
    ``attncli.profiling.ProfileReport``; ``latency=False`` skips timing, ``baseline="none"`` the
    baseline comparison."""
    from attncli import profiling
    from attncli.errors import UsageError

    settings = (
        profiling.LatencySettings(device, dtype, list(batch_sizes) if batch_sizes else None, warmup, iters, threads)
        if latency
        else None
    )
    if isinstance(model, str):
        request = ModelRequest.make(model, params, input_shape, attn, seed, weights)
        return profiling.profile(request, depth=depth, latency=settings, baseline=baseline)
    if params or attn or weights:
        raise UsageError("params, attn and weights apply to a model name; pass your module as built.")
    built = profiling.built_from_module(model, input_shape, seed)
    return profiling.profile_built(built, depth=depth, latency=settings, baseline=baseline)


def export(
    model: str,
    output: str | Path | None = None,
    *,
    opset: int | None = None,
    dynamic: str = "batch",
    exporter: str = "auto",
    force: bool = False,
    verify: bool = True,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    provider: str = "cpu",
) -> Any:
    """Export a model to ONNX at exactly ``opset`` (default ``onnx_export.DEFAULT_OPSET``), then
    unless ``verify=False`` compare it with PyTorch in onnxruntime at every shape the file accepts.

    Returns an ``attncli.onnx_export.ExportResult``; its ``parity`` (a ``ParityReport``, truthy when
    it passed) is None without verification. A failed verification does not raise: the file stays.
    """
    from attncli import onnx_export, parity

    request = ModelRequest.make(model, params, input_shape, attn, seed, weights)
    opset = onnx_export.DEFAULT_OPSET if opset is None else int(opset)
    # a bad opset, exporter or destination fails before the (possibly slow) build
    onnx_export.choose_exporter(opset, exporter)
    onnx_export.check_destination(output, request.display_name, opset, force)
    built = _build(request)
    result = onnx_export.export_onnx(built, output, opset=opset, dynamic=dynamic, exporter=exporter, force=force)
    if verify:
        result.parity = parity.verify_onnx(
            built, result.path,
            atol=parity.DEFAULT_ATOL if atol is None else atol,
            rtol=parity.DEFAULT_RTOL if rtol is None else rtol,
            provider=provider, example_outputs=result.example_outputs,
        )
    return result


def verify(
    model: str,
    file: str | Path,
    *,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seeds: int = 1,
    shapes: Iterable[str | Iterable[int]] = (),
    provider: str = "cpu",
) -> Any:
    """Rebuild the model from the same spec (same seed, same weights) and compare it with the ONNX
    file in onnxruntime. Returns an ``attncli.parity.ParityReport``, truthy when every case passed."""
    from attncli import parity

    built = _build(ModelRequest.make(model, params, input_shape, attn, seed, weights))
    return parity.verify_onnx(
        built, file,
        atol=parity.DEFAULT_ATOL if atol is None else atol,
        rtol=parity.DEFAULT_RTOL if rtol is None else rtol,
        seeds=seeds, shapes=list(shapes), provider=provider,
    )


def check(
    patterns: Iterable[str] = (),
    *,
    opsets: Iterable[int] | None = None,
    dynamic: str = "all",
    kind: str | None = None,
    jobs: int = 1,
    shard: str | tuple[int, int] | None = None,
    timeout: float | None = None,
    fail_fast: bool = False,
    on_plan: Any = None,
    on_start: Any = None,
    on_result: Any = None,
) -> Any:
    """The CI gate as a function: build, count, export and verify every selected model at each opset
    (default 11 and 17), each case in a worker process. Returns an ``attncli.check.CheckReport``,
    whose ``passed`` is True only when every planned case passed::

        def test_my_blocks_export():
            report = attncli.check(["my_block*"], opsets=[13, 17])
            assert report.passed, [c.message for c in report.cases if not c.passed]
    """
    from attncli import gate
    from attncli.onnx_export import validate_opset

    opset_list = sorted(set(opsets or gate.DEFAULT_CHECK_OPSETS))
    for opset in opset_list:
        validate_opset(opset)
    if dynamic not in ("batch", "spatial", "all", "none"):
        raise UsageError(f"dynamic must be batch, spatial, all or none, not {dynamic!r}.")
    shard_spec = gate.parse_shard(shard) if isinstance(shard, str) or shard is None else tuple(shard)
    cases = gate.select_shard(gate.plan_cases(patterns, opset_list, kind, dynamic), shard_spec)
    if on_plan:
        on_plan(cases)
    return gate.run_check(
        cases, jobs=jobs, timeout=timeout or gate.DEFAULT_TIMEOUT_S, fail_fast=fail_fast,
        on_start=on_start, on_result=on_result, opsets=opset_list, shard=shard_spec,
    )
