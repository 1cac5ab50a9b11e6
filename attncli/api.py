"""The Python API: the same operations as the CLI, returning plain objects.

Each function imports torch (and onnx, fvcore...) only when called. The defaults are the CLI's:
``device=None`` is ``--device auto`` (cuda when available, else cpu), ``dynamic`` is
:data:`DEFAULT_DYNAMIC`, ``opset`` None is ``onnx_export.DEFAULT_OPSET``, and ``warmup``/``iters``
None is ``timing.DEFAULT_WARMUP`` for the device, and ``iters`` None times adaptively: ``min_time``
seconds of timed blocks per model (None is ``timing.DEFAULT_MIN_TIME``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from attncli import progress
from attncli.errors import UsageError
from attncli.modelspec import BuiltModel, ModelRequest
from attncli.modelspec import build as _build
from attncli.onnx_export import DEFAULT_DYNAMIC

# Every axis that can be dynamic: batch, and the spatial ones unless the model's own forward fixes
# them (a net that flattens into a Linear), where export falls back to batch as the gate does.


def build(
    model: str,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    *,
    attn_position: str | None = None,
) -> BuiltModel:
    """Build a registry name or ``file.py:Name`` with its example input (eval mode, seeded)."""
    return _build(ModelRequest.make(model, params, input_shape, attn, seed, weights, attn_position=attn_position))


def describe(
    model: str,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    *,
    attn_position: str | None = None,
    depth: int = 2,
) -> Any:
    """Paper, arguments, shapes, parameter count and module tree: an ``attncli.describe.ModelInfo``."""
    from attncli.describe import describe as _describe

    return _describe(ModelRequest.make(model, params, input_shape, attn, seed, weights, attn_position=attn_position), depth=depth)


def profile(
    model: Any,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    *,
    attn_position: str | None = None,
    depth: int = 2,
    latency: bool = True,
    device: str | None = None,
    dtype: str = "float32",
    batch_sizes: Iterable[int] | None = None,
    warmup: int | None = None,
    iters: int | None = None,
    threads: int | None = None,
    baseline: str | None = None,
    convention: str | None = None,
    min_time: float | None = None,
) -> Any:
    """Parameters, MACs, FLOPs, per-module costs, attention share, baseline overhead, published
    figures and latency of a model: a registry name, ``file.py:Name``, or an ``nn.Module`` you built
    (then give ``input_shape``; it is profiled as it is and left unchanged). Returns a
    ``attncli.profiling.ProfileReport``; ``latency=False`` skips timing, ``baseline="none"`` the
    baseline comparison; ``convention`` ("attncli", "thop-2019", "conv-linear") is how
    ``report.convention`` counts MACs (published figures are always compared in their own)."""
    import sys

    if "torch" not in sys.modules:  # profiling imports it, which takes seconds the first time
        with progress.step(progress.IMPORTING_TORCH):
            from attncli import profiling
    from attncli import profiling

    settings = (
        profiling.LatencySettings(device, dtype, list(batch_sizes) if batch_sizes else None, warmup, iters, threads, min_time)
        if latency
        else None
    )
    if isinstance(model, str):
        request = ModelRequest.make(model, params, input_shape, attn, seed, weights, attn_position=attn_position)
        return profiling.profile(request, depth=depth, latency=settings, baseline=baseline, convention=convention)
    if params or attn or weights or attn_position:
        raise UsageError("params, attn, attn_position and weights apply to a model name; pass your module as built.")
    built = profiling.built_from_module(model, input_shape, seed)
    return profiling.profile_built(built, depth=depth, latency=settings, baseline=baseline, convention=convention)


def bench(
    model: str,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    *,
    attn_position: str | None = None,
    batch_sizes: Iterable[int] | None = None,
    warmup: int | None = None,
    iters: int | None = None,
    device: str | None = None,
    threads: int | None = None,
    opset: int | None = None,
    compile: bool = False,
    min_time: float | None = None,
    provider: str | None = None,
) -> Any:
    """Eager PyTorch against the model exported at ``opset`` in onnxruntime, interleaved, on the same
    inputs (batch sizes default to the input shape's). ``provider``: onnxruntime's execution
    provider (default: ``device``'s; both given, they must agree). Returns an ``attncli.bench.BenchResult``."""
    from attncli.bench import bench as run_bench
    from attncli import onnx_export, timing

    request = ModelRequest.make(model, params, input_shape, attn, seed, weights, attn_position=attn_position)
    if isinstance(opset, str) and opset.strip().lower() == onnx_export.LOWEST_OPSET:
        raise UsageError(
            f"--opset {onnx_export.LOWEST_OPSET} is export's search for the lowest opset that works; bench times one file:"
            " give its opset as a number.", option="opset",
        )
    opset = onnx_export.DEFAULT_OPSET if opset is None else int(opset)
    onnx_export.validate_opset(opset)
    on_provider = _onnxruntime_provider(device, provider) if provider is not None else None
    device = timing.resolve_device(_onnxruntime_device(device))
    with progress.step(f"benchmarking {request.display_name}: exporting, then timing PyTorch and onnxruntime"):
        return run_bench(
            request,
            batch_sizes=list(batch_sizes) if batch_sizes else [request.resolved()[1][0]],
            warmup=timing.DEFAULT_WARMUP[device] if warmup is None else warmup,
            iters=iters, min_time=min_time,
            device=device, threads=threads, opset=opset, compile=compile, provider=on_provider,
        )


def export(
    model: str,
    output: str | Path | None = None,
    *,
    opset: int | None = None,
    dynamic: str = DEFAULT_DYNAMIC,
    exporter: str = "auto",
    force: bool = False,
    verify: bool = True,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    attn_position: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    device: str | None = None,
    provider: str | None = None,
    allow_trace_warnings: bool = False,
    shapes: Iterable[str | Iterable[int]] = (),
    shapes_only: bool = False,
    shape_multiple: int = 1,
    channels_axis: int = 1,
    dtype: str = "float32",
    keep_io_types: bool = False,
    quantize: str | None = None,
    calibration_samples: int | None = None,
    calibration_data: str | Path | None = None,
    eval_samples: int | None = None,
    min_cosine: float | None = None,
    min_top1: float | None = None,
    simplify: bool = False,
) -> Any:
    """Export a model to ONNX at exactly ``opset`` (default ``onnx_export.DEFAULT_OPSET``; ``"min"``:
    the lowest from ``onnx_export.MIN_OPSET`` up that exports and verifies), then unless
    ``verify=False`` compare it with PyTorch in onnxruntime at every shape the file accepts, on the
    execution provider ``provider`` (a short name such as ``cuda`` or onnxruntime's own; see
    ``attncli.providers``), else ``device``'s (both given, they must agree). With ``exporter="auto"`` a
    route whose file does not verify gives way to the next (``onnx_export.export_onnx``); the
    result's ``route`` says which made the file.

    ``dynamic="all"`` on a model whose own forward takes one spatial size only exports with
    ``dynamic="batch"``: the result's ``dynamic`` says which was used. Asking for ``"spatial"``
    on such a model is a usage error.

    The exporter's TracerWarnings from the model's code are in the result's ``trace_warnings``;
    unless ``allow_trace_warnings`` they fail the export (the file stays, for inspection).
    ``shapes``, ``shapes_only``, ``shape_multiple`` and ``channels_axis`` are verification's, as
    in :func:`verify`; ``channels_axis`` also keeps that axis out of the file's dynamic axes.

    ``dtype="float16"``: the file in half precision, its inputs and outputs too unless
    ``keep_io_types``; it is verified against PyTorch in float32 with the half tolerances
    (``parity.DEFAULT_TOLERANCES``) unless ``atol``/``rtol`` are given.

    Returns an ``attncli.onnx_export.ExportResult``; its ``parity`` (a ``ParityReport``, truthy when
    it passed) is None without verification. A failed verification does not raise: the file stays.

    ``quantize`` (``"dynamic"`` or ``"static"``): once the float file is written and has passed,
    quantize it to int8 next to it (``quantize.quantized_path``: ``<stem>_int8.onnx``) and judge it
    against PyTorch over ``eval_samples`` seeded inputs by cosine similarity and top-1 agreement
    (``min_cosine``, ``min_top1``; defaults in ``attncli.quantize``), into the result's
    ``quantization`` (a ``QuantReport``, truthy when it passed; a failed one does not raise either).
    Static calibrates on ``calibration_samples`` seeded inputs or the ``.npy`` files of
    ``calibration_data``, and needs opset ``quantize.QDQ_MIN_OPSET`` or newer.

    ``simplify``: the verified model goes through onnxscript's optimizer (before the float16
    conversion and the quantization), is checked and verified again at every shape, and is written
    instead only when it passes; the result's ``simplify`` says so (a refused simplification does
    not fail the export). It needs ``verify``.
    """
    from attncli import onnx_export, parity

    request = ModelRequest.make(model, params, input_shape, attn, seed, weights, attn_position=attn_position)
    if isinstance(opset, str):  # "min", or a number given as text; None is the default
        opset = opset.strip().lower()
        if opset != onnx_export.LOWEST_OPSET and not opset.lstrip("-").isdigit():
            raise UsageError(f"the opset must be a whole number or {onnx_export.LOWEST_OPSET!r}, not {opset!r}.", option="opset")
    opset = onnx_export.DEFAULT_OPSET if opset is None else opset if opset == onnx_export.LOWEST_OPSET else int(opset)
    onnx_export.check_dtype(dtype, keep_io_types)
    if simplify and not verify:
        raise UsageError("--simplify writes a simplified file only once it verifies: drop --no-verify or --simplify.", option="simplify")
    atol = parity.default_tolerances(dtype)[0] if atol is None else atol
    rtol = parity.default_tolerances(dtype)[1] if rtol is None else rtol
    # a bad opset, exporter, axes, tolerance or destination fails before the (possibly slow) build
    onnx_export.choose_exporter(onnx_export.MIN_OPSET if opset == onnx_export.LOWEST_OPSET else opset, exporter)
    _check_dynamic(dynamic)
    if int(shape_multiple) < 1:
        raise UsageError(f"the spatial multiple must be 1 or more, not {shape_multiple}.", option="shape_multiple")
    parity.check_tolerances(atol, rtol)
    shapes = list(shapes)
    for item in shapes:  # a bad --shape fails now, not after the export
        if isinstance(item, str):
            parity.parse_shape_arg(item)
    if verify:
        parity.check_shapes_only(shapes, shapes_only)
    if opset != onnx_export.LOWEST_OPSET or output is not None:
        onnx_export.check_destination(output, request.display_name, onnx_export.MIN_OPSET if opset == onnx_export.LOWEST_OPSET else opset, force)
    if quantize is not None:
        from attncli import quantize as quantization

        if dtype != "float32":  # onnxruntime's quantizer reads float32 weights and ranges
            raise UsageError(f"int8 quantization starts from a float32 file, not {dtype}: drop --dtype or --quantize.", option="quantize")
        quantization.check_options(
            quantize, opset, calibration_samples=calibration_samples, calibration_data=calibration_data,
            eval_samples=eval_samples, min_cosine=min_cosine, min_top1=min_top1,
        )
        if opset != onnx_export.LOWEST_OPSET or output is not None:
            floating = Path(output) if output is not None else onnx_export.default_path(request.display_name, opset)
            onnx_export.check_destination(quantization.quantized_path(floating), request.display_name, 0, force)
    built = _build(request)
    onnx_export.check_channels_axis(channels_axis, len(built.input_shape))
    dynamic = onnx_export.resolve_dynamic(built, dynamic, channels_axis, shape_multiple)
    on_device = _onnxruntime_provider(device, provider) if verify else None
    if quantize is not None:  # a bad calibration folder fails before any file is written
        calibration = quantization.prepare_calibration(
            built, quantize, calibration_samples=calibration_samples, calibration_data=calibration_data,
            dynamic_axes=onnx_export.dynamic_axes_for(len(built.input_shape), dynamic, channels_axis),
        )

    def verify_file(path: str, example_outputs: dict[str, Any]) -> Any:
        with progress.step("verifying the file in onnxruntime"):
            return parity.verify_onnx(
                built, path, atol=atol, rtol=rtol, provider=on_device, example_outputs=example_outputs,
                shapes=shapes, shapes_only=shapes_only, shape_multiple=shape_multiple, channels_axis=channels_axis,
            )

    with progress.step(f"exporting {built.name} at " + ("the lowest opset that works" if opset == onnx_export.LOWEST_OPSET else f"opset {opset}")):
        result = onnx_export.export_onnx(
            built, output, opset=opset, dynamic=dynamic, exporter=exporter, force=force, allow_trace_warnings=allow_trace_warnings,
            verify=verify_file if verify else None, channels_axis=channels_axis, dtype=dtype, keep_io_types=keep_io_types,
            simplify=simplify,
        )
    if quantize is not None and result.passed:  # a float file that failed is not worth quantizing
        with progress.step(f"quantizing {result.path} to int8 ({quantize}) and judging it against PyTorch"):
            result.quantization = quantization.quantize_and_evaluate(
                built, result.path, quantize, input_name=result.input_name, calibration=calibration,
                eval_samples=eval_samples, min_cosine=min_cosine, min_top1=min_top1,
                provider=on_device or _onnxruntime_provider(device, provider), force=force,
            )
    return result


def verify(
    model: str | None = None,
    file: str | Path | None = None,
    *,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    attn_position: str | None = None,
    seed: int | None = None,
    weights: str | Path | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seeds: int = 1,
    shapes: Iterable[str | Iterable[int]] = (),
    shapes_only: bool = False,
    device: str | None = None,
    provider: str | None = None,
    on_differences: Callable[[list[str]], None] | None = None,
    shape_multiple: int = 1,
    channels_axis: int | None = None,
    localize: bool = False,
) -> Any:
    """Rebuild the model from the same spec (same seed, same weights) and compare it with the ONNX
    file in onnxruntime on the execution provider ``provider`` (a short name or onnxruntime's),
    else ``device``'s (both given, they must agree). ``atol``/``rtol`` None: the defaults of the
    file's precision (``parity.default_tolerances``: float16 and bfloat16 files are looser).
    ``shapes`` are checked after the planned ones; with ``shapes_only`` they replace them.
    ``shape_multiple``: every planned spatial size a multiple of it (the model's stride).
    ``channels_axis``: the input's channel axis, never varied (None: the one the file records, else 1).

    ``verify(file)`` (or ``verify(file=...)``) rebuilds the model from the spec that ``export``
    recorded in the file (``onnx_export.spec_from_file``); a recorded weights file must still be
    there with the same sha256. ``verify(model, file, ...)`` builds the model as given and compares
    as asked; where that spec differs from the recorded one (``onnx_export.spec_differences``),
    ``on_differences`` gets one sentence per field once the comparison has run, before the report
    is returned, and a usage error raised by the comparison (the file fixes an axis the model does
    not have...) ends with those sentences. ``seed`` None is 0 with a model.

    ``localize``: then also compare every module's output with the ONNX tensor that implements it
    (``parity.localize_mismatch``), at the first failed case's input (the example's when all passed),
    into the report's ``localization``: the first module that diverges, or none.

    Returns an ``attncli.parity.ParityReport``, truthy when every case passed."""
    from attncli import onnx_export, parity

    if file is None:  # verify(file): the one-argument form
        model, file = None, model
    if file is None:
        raise UsageError("give the ONNX file to verify.")
    shapes = list(shapes)
    parity.check_shapes_only(shapes, shapes_only)  # before the (possibly slow) build
    differences: list[str] = []
    if model is None:
        request = _recorded_request(file, onnx_export.spec_from_file(file), params=params, input_shape=input_shape,
                                    attn=attn, attn_position=attn_position, seed=seed, weights=weights)
    else:
        request = ModelRequest.make(model, params, input_shape, attn, 0 if seed is None else seed, weights, attn_position=attn_position)
        try:
            recorded = onnx_export.spec_from_file(file)
        except UsageError:  # a missing or broken file: verification says so, after the model's own checks
            recorded = None
        differences = onnx_export.spec_differences(recorded, request) if recorded is not None else []
    built = _build(request)
    if channels_axis is None:
        channels_axis = onnx_export.recorded_channels_axis(file)
    try:
        with progress.step(f"verifying {file} in onnxruntime"):
            report = parity.verify_onnx(
                built, file,
                atol=atol, rtol=rtol,
                seeds=seeds, shapes=shapes, shapes_only=shapes_only, provider=_onnxruntime_provider(device, provider),
                shape_multiple=shape_multiple, channels_axis=channels_axis,
            )
    except UsageError as exc:
        # A usage error is one line: the differences that likely explain it go into it, not before it.
        if differences:
            exc.args = (f"{str(exc).rstrip('.')}; {'; '.join(differences)}.", *exc.args[1:])
        raise
    if localize:
        shape, case_seed, distribution = report.localization_input() or (tuple(built.input_shape), built.request.seed, "normal")
        with progress.step(f"localizing the first divergence in {file}"):
            report.localization = parity.localize_mismatch(
                built, file, atol=report.atol, rtol=report.rtol, shape=shape, seed=case_seed, distribution=distribution,
                provider=_onnxruntime_provider(device, provider),
            )
    # Before the report is shown: a reader meets the differences before the verdict they explain.
    if differences and on_differences is not None:
        on_differences(differences)
    return report


def inspect(file: str | Path) -> Any:
    """What an ONNX file holds, without running it: an ``attncli.inspect_onnx.OnnxSummary``."""
    from attncli.inspect_onnx import inspect_file

    return inspect_file(file)


def _recorded_request(file: str | Path, recorded: dict[str, Any] | None, **given: Any) -> ModelRequest:
    """The request recorded in ``file`` by ``export``, its weights file checked against the recorded sha256."""
    from attncli.onnx_export import weights_sha256

    if recorded is None:
        raise UsageError(f"{file} records no model spec (attncli export did not write it): give the model to compare it with.")
    options = [name for name, value in given.items() if value is not None and value != [] and value != ()]
    if options:
        raise UsageError(
            f"model options ({', '.join(options)}) need a model: without one, {file} is rebuilt from the spec it records.",
            option=options[0],
        )
    path, digest = recorded["weights"], recorded["weights_sha256"]
    if path is not None:
        if not Path(path).is_file():
            raise UsageError(f"{file} was exported with weights {path}, which is missing now.")
        if digest is not None and weights_sha256(path) != digest:
            raise UsageError(
                f"{path} has changed since {file} was exported: its sha256 differs from the one recorded"
                f" ({digest[:12]}..., now {weights_sha256(path)[:12]}...)."
            )
    return ModelRequest.make(
        recorded["model"], recorded["params"], recorded["input_shape"], recorded["attn"], recorded["seed"], path,
        attn_position=recorded["attn_position"],
    )


def check(
    patterns: Iterable[str] = (),
    *,
    opsets: Iterable[int] | None = None,
    dynamic: str | None = None,
    kind: str | None = None,
    jobs: int | None = None,
    shard: str | tuple[int, int] | None = None,
    timeout: float | None = None,
    fail_fast: bool = False,
    allow_trace_warnings: bool = False,
    config: str | Path | None = None,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    attn_position: str | None = None,
    seed: int | None = None,
    weights: str | Path | None = None,
    shapes: Iterable[str | Iterable[int]] = (),
    shapes_only: bool = False,
    atol: float | None = None,
    rtol: float | None = None,
    on_plan: Any = None,
    on_start: Any = None,
    on_result: Any = None,
    quantize: str | None = None,
    provider: str | None = None,
) -> Any:
    """The CI gate as a function: build, count, export and verify every selected model at each opset
    (default 11 and 17), each model in a fresh process. Returns an ``attncli.gate.CheckReport``,
    whose ``passed`` is True only when every planned case passed::

        def test_my_blocks_export():
            report = attncli.check(["models.py:Net"], input_shape="1,3,64,64", opsets=[13, 17])
            assert report.passed, [c.message for c in report.cases if not c.passed]

    ``patterns`` are registry wildcards and model targets (``file.py:Name``, ``package.module:Name``);
    the model options (``params`` ... ``rtol``) apply to every selected model. With no pattern, the
    project configuration runs: ``config``, else the nearest ``attncli.toml`` or ``pyproject.toml``
    with a ``[tool.attncli]`` table (see ``attncli.config``); with neither, every registered model.
    An export whose trace warned fails its case unless ``allow_trace_warnings`` (the warnings are in
    the case's result either way). ``quantize`` (``"dynamic"`` or ``"static"``): each verified file
    is also quantized to int8 and judged as ``export`` judges it (default thresholds, seeded
    calibration); the figures are in the case's ``quantization``. ``provider``: onnxruntime's
    execution provider for every case's verification (a short name or onnxruntime's; default CPU).
    """
    import sys

    from attncli import gate
    from attncli.config import find_config, load_config
    from attncli.onnx_export import validate_opset

    patterns = list(patterns)
    opset_list = sorted(set(opsets)) if opsets else None
    for opset in opset_list or ():
        validate_opset(opset)
    if dynamic is not None:
        _check_dynamic(dynamic)
    shard_spec = gate.parse_shard(shard) if isinstance(shard, str) or shard is None else tuple(shard)
    on_provider = _onnxruntime_provider(None, provider) if provider is not None else None  # a missing one: before anything runs
    options = {
        "params": params, "input_shape": input_shape, "attn": attn, "attn_position": attn_position,
        "seed": seed, "weights": weights, "shapes": list(shapes), "shapes_only": shapes_only, "atol": atol, "rtol": rtol,
        "quantize": quantize,
    }
    options = {k: v for k, v in options.items() if v is not None and v is not False and not (isinstance(v, (list, tuple, dict)) and not v)}
    config_path = Path(config) if config is not None else (find_config() if not patterns else None)
    if config_path is not None:
        if patterns:
            raise UsageError("give models or a configuration, not both.", option="config")
        if options:
            raise UsageError(
                f"model options ({', '.join(sorted(options))}) go into the configuration's models, not beside it.", option="config"
            )
        project = load_config(config_path)
        folder = str(project.path.parent.resolve())
        if folder not in sys.path:  # package.module:Name targets of the project import from its folder
            sys.path.insert(0, folder)
        cases = gate.plan_config(project, opset_list, dynamic, allow_trace_warnings)
        jobs = jobs if jobs is not None else project.jobs
        timeout = timeout if timeout is not None else project.timeout
        opset_list = opset_list or sorted({c.opset for c in cases})
    else:
        opset_list = opset_list or list(gate.DEFAULT_CHECK_OPSETS)
        cases = gate.plan_cases(patterns, opset_list, kind, dynamic or DEFAULT_DYNAMIC, allow_trace_warnings, options)
    cases = gate.select_shard(cases, shard_spec)
    if on_provider is not None:
        import dataclasses

        cases = [dataclasses.replace(case, provider=on_provider) for case in cases]
    if on_plan:
        on_plan(cases)
    return gate.run_check(
        cases, jobs=1 if jobs is None else jobs, timeout=gate.DEFAULT_TIMEOUT_S if timeout is None else timeout,
        fail_fast=fail_fast, on_start=on_start, on_result=on_result, opsets=opset_list, shard=shard_spec,
    )


def providers() -> list[Any]:
    """onnxruntime's execution providers: the installed ones, then the known ones that are not,
    each with its short name and the package that has it (``attncli.providers.ProviderInfo``)."""
    from attncli.providers import list_providers

    return list_providers()


def _onnxruntime_provider(device: str | None, provider: str | None) -> str:
    """The execution provider onnxruntime runs on: ``provider`` when given (checked against
    ``device`` when that is given too: a CPU device with a GPU provider, or the reverse, is a
    usage error), else ``device``'s (``_onnxruntime_device``)."""
    from attncli.parity import PROVIDERS
    from attncli.providers import resolve_provider

    if provider is None:
        return _onnxruntime_device(device)
    full = resolve_provider(PROVIDERS.get(provider, provider))
    on_gpu = full in (PROVIDERS["cuda"], "TensorrtExecutionProvider")
    if device is not None and device in PROVIDERS and (device == "cuda") != on_gpu:
        raise UsageError(f"--device {device} and --provider {provider} disagree: give one of them, or a provider that runs on {device}.",
                         option="provider")
    return full


def _onnxruntime_device(device: str | None) -> str:
    """The device onnxruntime runs on: ``None`` (auto) is cuda only when torch sees a GPU and this
    onnxruntime has the CUDA execution provider (the default ``onnxruntime`` wheel does not), else cpu.
    An explicit device is returned as given and checked where it is used."""
    if device is not None:
        return device
    import onnxruntime as ort

    from attncli.parity import PROVIDERS
    from attncli.timing import resolve_device

    if PROVIDERS["cuda"] not in ort.get_available_providers():
        return "cpu"
    return resolve_device(None)


def _check_dynamic(dynamic: str) -> None:
    from attncli.onnx_export import DYNAMIC_CHOICES

    if dynamic not in DYNAMIC_CHOICES:
        raise UsageError(f"dynamic must be one of {', '.join(DYNAMIC_CHOICES)}, not {dynamic!r}.", option="dynamic")




def compare(
    models: Iterable[str] = (),
    *,
    attn: str | Iterable[str] | None = None,
    on: str | Iterable[str] | None = None,
    input_shape: str | Iterable[int] | None = None,
    seed: int = 0,
    attn_position: str | None = None,
    baseline: str | None = None,
    sort: str | None = None,
    latency: bool = True,
    device: str | None = None,
    threads: int | None = None,
    min_time: float | None = None,
    export_opset: int | None = None,
) -> Any:
    """The comparison table of an attention paper: ``attn`` blocks x ``on`` backbones (each
    backbone's plain row as the baseline of its blocks), or the named ``models`` with their
    registry baselines (``baseline``: one model for all, or ``"none"``). Each model is built and
    counted once; latency (unless ``latency=False``) is timed for all models interleaved, about
    ``min_time`` seconds each; ``export_opset`` adds whether each exports and verifies at that
    opset. Returns an ``attncli.compare.CompareReport`` (``to_markdown``, ``to_latex``,
    ``to_csv``, ``as_dict``)."""
    from attncli.compare import compare as run_compare

    return run_compare(
        [models] if isinstance(models, str) else list(models), attn=attn, on=on, input_shape=input_shape, seed=seed,
        attn_position=attn_position, baseline=baseline, sort=sort, latency=latency, device=device, threads=threads,
        min_time=min_time, export_opset=export_opset,
    )
