"""What ``attncli profile`` reports: parameters, MACs and FLOPs (in total, per module and for the
attention blocks), the MACs in a paper's counting convention (``attncli.conventions``), the
overhead over a plain baseline, the published figures in their own units and convention, and latency.

The model is built once and traced once (``counting.count_costs``); the baseline likewise. Latency
is measured on the same module (CPU float32) or on a copy (CUDA, half types), so the caller's
module keeps its parameters, buffers, hooks and training flags.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from attncli import count_cache, progress, registry
from attncli.count_cache import CountedModel
from attncli.conventions import Convention, convention_macs, get_convention, macs_by_operator
from attncli.counting import CostCount, count_costs, count_params, eval_mode
from attncli.environment import describe as describe_environment
from attncli.describe import ReferenceComparison, check_depth, compare_reference, jsonable, relative_diff
from attncli.errors import UsageError
from attncli.modelspec import ATTN_PREFIX, BuiltModel, ModelRequest, build, check_outputs, forward_errors, run_example
from attncli.timing import (
    DEFAULT_MIN_TIME,
    DEFAULT_WARMUP,
    LatencyStats,
    check_settings,
    latency_overhead,
    measure_interleaved,
    measure_latency,
    resolve_device,
)

NO_BASELINE = "none"  # --baseline none: skip the comparison
UNSTEADY_TIMING = 0.25  # std / mean above this: timings this noisy should not go into a paper

CONVENTIONS = {
    "params": "exact count of parameter elements, shared tensors once; trainable = requires_grad",
    "macs": "multiply-accumulates of convolution, linear, addmm, mm, matmul, bmm, baddbmm and einsum"
    " (fvcore's count for those operators; what ResNet/ECA-Net tables call FLOPs)",
    "flops": "2 x MACs plus every other arithmetic operation: 1 per output element for elementwise ops and"
    " activations, 1 per input element for reductions, 3 per element for softmax, 2 per element for"
    " eval batch_norm, kernel size per output for fixed-window pooling; views, reshapes, concatenation,"
    " indexing and padding are free",
    "attention": "parameters and operations inside modules that are registered attention blocks"
    " (kind=block), outermost block only",
    "latency": "one forward pass under torch.inference_mode(); ms per iteration, each sample a block of calls"
    " lasting at least 1 ms divided by its size, as many as the time budget (min_time) allows;"
    " p50 with the 95% confidence interval of the median from order statistics; throughput = batch / mean;"
    " the baseline is timed interleaved with the model, and an overhead whose intervals overlap is within noise",
}


@dataclass
class ParamCounts:
    total: int
    trainable: int
    attention: int | None  # inside registered attention blocks; None when the model has none
    attention_share: float | None  # attention / total


@dataclass
class AttentionCost:
    modules: list[str]  # outermost attention blocks, by module path
    params: int
    macs: int
    flops: int
    params_share: float | None
    macs_share: float | None
    flops_share: float | None


@dataclass
class ModuleCost:
    path: str
    type: str
    depth: int
    params: int
    macs: int
    flops: int
    is_attention: bool  # the module is, or sits inside, an attention block
    attention_params_share: float | None  # of this module's params; None if the model has no attention
    attention_macs_share: float | None  # of this module's MACs; None also when the module has no MACs


@dataclass
class BaselineComparison:
    """The plain counterpart's figures and the difference (model - baseline), absolute and relative."""

    model: str
    params: int
    macs: int
    flops: int
    latency_p50_ms: float | None  # median (robust to a noisy machine), first batch size of the sweep
    params_diff: int
    macs_diff: int
    flops_diff: int
    latency_diff_ms: float | None
    params_rel_diff: float | None
    macs_rel_diff: float | None
    flops_rel_diff: float | None
    latency_rel_diff: float | None
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    latency_within_noise: bool | None = None  # the two medians' 95% intervals overlap; None without latency


@dataclass
class ConventionCount:
    """The model's MACs as the chosen counting convention adds them up (attncli.conventions), in
    total and by operator; the per-module table and the attention share stay in attncli's MACs."""

    name: str
    rule: str
    macs: int
    macs_by_operator: dict[str, int]

    @classmethod
    def of(cls, costs: CostCount, convention: Convention) -> ConventionCount:
        return cls(convention.name, convention.rule, convention_macs(costs, convention), macs_by_operator(costs, convention))


@dataclass
class ProfileReport:
    model: str
    kind: str  # block, backbone or user
    input_shape: list[int]
    kwargs: dict[str, Any]
    params: ParamCounts
    macs: int
    flops: int
    macs_by_operator: dict[str, int]
    flops_by_operator: dict[str, int]
    uncounted_ops: dict[str, int]
    attention: AttentionCost | None
    depth: int
    modules: list[ModuleCost]
    baseline: BaselineComparison | None
    reference: ReferenceComparison | None
    latency: LatencyStats | None  # the first batch size of the sweep
    latency_sweep: list[LatencyStats]
    convention: ConventionCount | None = None  # MACs in the --convention asked for
    notes: list[str] = field(default_factory=list)  # things a reader should know before quoting a number
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))
    # versions, platform, CPU, threads, GPU, seed and device (attncli.environment.describe)
    environment: dict[str, Any] = field(default_factory=dict)
    # every count above (the model's and the baseline's) was read from attncli.count_cache, none traced
    counts_from_cache: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def top_flops_shares(self, n: int = 6) -> list[tuple[str, float]]:
        """The ``n`` operators with the most FLOPs, each with its share of all FLOPs."""
        if not self.flops:
            return []
        top = sorted(self.flops_by_operator.items(), key=lambda kv: -kv[1])[:n]
        return [(op, flops / self.flops) for op, flops in top]


# ---------------------------------------------------------------- attention blocks


def attention_classes() -> tuple[type, ...]:
    """The classes registered as attention blocks (functions returning a block are skipped: the
    class they return is registered under its own name)."""
    classes = []
    for spec in registry.list_specs(kind="block"):
        factory = spec.load_factory()
        if isinstance(factory, type):
            classes.append(factory)
    return tuple(classes)


def user_block_classes(module: Any, files: tuple[str, ...]) -> tuple[type, ...]:
    """The classes in ``module`` defined in ``files`` (a user's --attn block from its file or
    package): its instances are the attention blocks, as a registered block's are."""
    if not files:
        return ()
    wanted = {str(Path(f).resolve()) for f in files}
    found = []
    for sub in module.modules():
        cls = type(sub)
        try:
            source = inspect.getsourcefile(cls)
        except TypeError:
            continue
        if source and str(Path(source).resolve()) in wanted and cls not in found:
            found.append(cls)
    return tuple(found)


def attention_paths(module: Any, classes: tuple[type, ...]) -> list[str]:
    """Paths of the outermost attention blocks in ``module`` ("" when the module is one)."""
    found: list[str] = []
    for path, sub in module.named_modules():
        if isinstance(sub, classes) and not any(_inside(path, outer) for outer in found):
            found.append(path)
    return found


def _inside(path: str, ancestor: str) -> bool:
    return ancestor == "" or path == ancestor or path.startswith(ancestor + ".")


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _unique_param_count(modules: Iterable[Any]) -> int:
    seen: dict[int, int] = {}
    for m in modules:
        for p in m.parameters():
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _module_costs(module: Any, costs: CostCount, attn: list[str], depth: int) -> list[ModuleCost]:
    named = dict(module.named_modules())
    rows = []
    for path, sub in named.items():
        level = 0 if not path else path.count(".") + 1
        if level > depth:
            continue
        cost = costs.module(path)
        params = sum(p.numel() for p in sub.parameters())
        is_attention = any(_inside(path, a) for a in attn)
        if not attn:
            p_share = m_share = None
        elif is_attention:
            p_share, m_share = (1.0 if params else None), (1.0 if cost.macs else None)
        else:
            below = [a for a in attn if _inside(a, path)]
            p_share = _share(_unique_param_count(named[a] for a in below), params)
            m_share = _share(sum(costs.module(a).macs for a in below), cost.macs)
        rows.append(ModuleCost(path or "(root)", type(sub).__name__, level, params, cost.macs, cost.flops, is_attention, p_share, m_share))
    return rows


# ---------------------------------------------------------------- comparisons


def baseline_request(built: BuiltModel, baseline: str | None) -> ModelRequest | None:
    """The plain counterpart: ``--baseline NAME``, else the backbone without ``--attn``, else the
    registry's ``baseline``; none for blocks and user models. Same input shape and seed; the
    model's own ``-p`` arguments carry over where the baseline takes them."""
    request = built.request
    if baseline is not None and baseline.strip().lower() == NO_BASELINE:
        return None
    if baseline is not None:
        name = baseline
    elif request.attn or any(k.startswith(ATTN_PREFIX) for k in request.params):
        name = request.model
    elif built.spec is not None and built.spec.baseline:
        name = built.spec.baseline
    else:
        return None
    params = {k: v for k, v in request.params.items() if not k.startswith(ATTN_PREFIX)}
    params = _accepted(ModelRequest.make(name), params)
    return ModelRequest(model=name, params=params, input_shape=tuple(built.input_shape), seed=request.seed)


def _accepted(request: ModelRequest, params: dict[str, Any]) -> dict[str, Any]:
    spec = request.spec()
    if spec is None or not params:
        return params
    try:
        sig = inspect.signature(spec.load_factory())
    except (TypeError, ValueError):
        return params
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return params
    return {k: v for k, v in params.items() if k in sig.parameters}


# ---------------------------------------------------------------- the report


@dataclass
class LatencySettings:
    device: str | None = None
    dtype: str = "float32"
    batch_sizes: list[int] | None = None
    warmup: int | None = None
    iters: int | None = None  # None: adaptive, min_time seconds of timed blocks
    threads: int | None = None
    min_time: float | None = None

    def resolved(self) -> LatencySettings:
        """Device chosen and every value checked, before anything is built."""
        device = resolve_device(self.device)
        warmup = DEFAULT_WARMUP[device] if self.warmup is None else self.warmup
        min_time = DEFAULT_MIN_TIME[device] if self.min_time is None and self.iters is None else self.min_time
        check_settings(device, self.dtype, self.batch_sizes or [], warmup, self.iters, self.threads, min_time)
        return LatencySettings(device, self.dtype, list(self.batch_sizes or []) or None, warmup, self.iters, self.threads, min_time)


def traced_costs(built: BuiltModel) -> CostCount:
    """One traced forward pass (no plain one first: it doubled the cost of `profile`). When the
    trace fails, a plain forward says why as `attncli.modelspec.run_example` says it (an input the
    model refuses, an output it cannot give), and only if that passes does the trace's error stand."""
    outputs: list[Any] = []
    hook = built.module.register_forward_hook(lambda module, args, out: outputs.append(out))
    try:
        with forward_errors(built, action="forward (traced to count its operations)"):
            costs = count_costs(built.module, built.example.clone())
    except Exception:
        hook.remove()
        with eval_mode(built.module):  # a caller's module in training mode keeps its BN statistics
            run_example(built)
        raise
    finally:
        hook.remove()
    if outputs:  # the trace takes an output attncli cannot use (None, a number): refused as run_example does
        check_outputs(built, outputs[-1])
    return costs


def _time(built: BuiltModel, settings: LatencySettings, batch_sizes: list[int] | None) -> list[LatencyStats]:
    with forward_errors(built, action="forward (timed)", changed=bool(batch_sizes)), progress.step(f"timing {built.name}"):
        return measure_latency(
            built.module,
            tuple(built.input_shape),
            device=settings.device,
            dtype=settings.dtype,
            batch_sizes=batch_sizes,
            warmup=settings.warmup,
            iters=settings.iters,
            threads=settings.threads,
            seed=built.request.seed,
            min_time=settings.min_time,
        )


def _time_with_baseline(built: BuiltModel, base: BuiltModel, settings: LatencySettings, batch: int) -> tuple[LatencyStats, LatencyStats]:
    """The model and its baseline at one batch size, samples interleaved so host noise hits both alike.
    With a fixed iteration count (``iters``) each is timed alone, as asked."""
    if settings.iters is not None:
        return _time(built, settings, [batch])[0], _time(base, settings, [batch])[0]
    shape = (batch, *built.input_shape[1:])
    with forward_errors(built, action="forward (timed)", changed=batch != built.input_shape[0]), progress.step(
        f"timing {built.name} and {base.name}, interleaved"
    ):
        model_lat, base_lat = measure_interleaved(
            [(built.module, shape), (base.module, shape)],
            device=settings.device,
            dtype=settings.dtype,
            threads=settings.threads,
            min_time=settings.min_time,
            seed=built.request.seed,
            warmup=settings.warmup,
        )
    return model_lat, base_lat


def _count_built(built: BuiltModel, depth: int) -> CountedModel:
    """Trace and count ``built``; the per-module table down to ``depth``."""
    module = built.module
    costs = traced_costs(built)
    total, trainable = count_params(module)
    attn = attention_paths(module, attention_classes() + user_block_classes(module, built.attn_files))
    attn_params = _unique_param_count(dict(module.named_modules())[a] for a in attn) if attn else None
    rows = [asdict(row) for row in _module_costs(module, costs, attn, depth)]
    return CountedModel(built.name, jsonable(built.kwargs), total, trainable, costs, attn, attn_params, rows)


def _counts(built: BuiltModel, use_cache: bool, depth: int) -> tuple[CountedModel, BuiltModel, bool]:
    """The model's counts, from the cache when it holds them (then nothing is traced), and
    whether they came from it; the model is built here if the caller left that to a cache hit."""
    key = count_cache.entry_key(built.request) if use_cache else None
    cached = count_cache.load(key)
    if cached is not None:
        return cached, built, True
    if built.module is None:
        built = build(built.request)
    counted = _count_built(built, sys.maxsize if key else depth)  # an entry holds every depth
    count_cache.store(key, counted)
    return counted, built, False


def profile_built(
    built: BuiltModel,
    *,
    depth: int = 2,
    latency: LatencySettings | None = None,
    baseline: str | None = None,
    convention: str | None = None,
    use_count_cache: bool = False,
) -> ProfileReport:
    """Profile an already built model. ``latency=None`` skips timing; ``convention`` (a name in
    ``attncli.conventions.CONVENTIONS``, default attncli's) is how ``report.convention`` counts MACs.
    ``use_count_cache``: read and write ``attncli.count_cache`` (only for a module built from its
    request and unchanged since; ``built.module`` may then be None, and is built on a miss)."""
    check_depth(depth)
    counting_convention = get_convention(convention)
    if latency is not None:
        latency = latency.resolved()
    counted, built, from_cache = _counts(built, use_count_cache, depth)
    costs, total, trainable, attn, attn_params = counted.costs, counted.params, counted.trainable_params, counted.attention, counted.attention_params
    attention = None
    if attn:
        attn_macs = sum(costs.module(a).macs for a in attn)
        attn_flops = sum(costs.module(a).flops for a in attn)
        attention = AttentionCost(
            modules=[a or "(root)" for a in attn],
            params=attn_params,
            macs=attn_macs,
            flops=attn_flops,
            params_share=_share(attn_params, total),
            macs_share=_share(attn_macs, costs.macs),
            flops_share=_share(attn_flops, costs.flops),
        )

    base_request = baseline_request(built, baseline)
    # with a baseline, the first batch size is timed below, interleaved with the baseline's
    sweep = _time(built, latency, latency.batch_sizes) if latency is not None and base_request is None else []

    base_cmp = None
    if base_request is not None:
        base_key = count_cache.entry_key(base_request) if use_count_cache else None
        base_counted = count_cache.load(base_key)
        from_cache = from_cache and base_counted is not None
        base_built = build(base_request) if base_counted is None or latency is not None else None
        if base_counted is None:
            base_counted = _count_built(base_built, sys.maxsize if base_key else 0)
            count_cache.store(base_key, base_counted)
        base_costs, base_params = base_counted.costs, base_counted.params
        base_ms = overhead = None
        if latency is not None:
            sizes = latency.batch_sizes or [built.input_shape[0]]
            first, base_lat = _time_with_baseline(built, base_built, latency, sizes[0])
            sweep = [first] + (_time(built, latency, sizes[1:]) if sizes[1:] else [])
            base_ms = base_lat.p50_ms
            overhead = latency_overhead(first, base_lat)
        latency_diff = overhead.delta_ms if overhead is not None else None
        base_cmp = BaselineComparison(
            model=base_counted.name,
            params=base_params,
            macs=base_costs.macs,
            flops=base_costs.flops,
            latency_p50_ms=base_ms,
            params_diff=total - base_params,
            macs_diff=costs.macs - base_costs.macs,
            flops_diff=costs.flops - base_costs.flops,
            latency_diff_ms=latency_diff,
            params_rel_diff=relative_diff(total - base_params, base_params),
            macs_rel_diff=relative_diff(costs.macs - base_costs.macs, base_costs.macs),
            flops_rel_diff=relative_diff(costs.flops - base_costs.flops, base_costs.flops),
            latency_rel_diff=overhead.rel if overhead is not None else None,
            uncounted_ops=base_costs.uncounted_ops,
            latency_within_noise=overhead.within_noise if overhead is not None else None,
        )

    notes = [
        f"latency at batch {lat.batch_size} varies by {lat.std_ms / lat.mean_ms:.0%} (std / mean):"
        " the machine may be busy; repeat, with a longer time budget (min_time) or a fixed thread count (threads)"
        for lat in sweep
        if lat.mean_ms > 0 and lat.std_ms / lat.mean_ms > UNSTEADY_TIMING
    ]
    if costs.uncounted_ops:
        notes.append("some operators have no counting rule (see uncounted_ops): MACs and FLOPs are lower bounds")
    return ProfileReport(
        model=built.name,
        kind=built.spec.kind if built.spec else "user",
        input_shape=list(built.input_shape),
        kwargs=counted.kwargs,
        params=ParamCounts(total, trainable, attn_params, _share(attn_params, total) if attn_params is not None else None),
        macs=costs.macs,
        flops=costs.flops,
        macs_by_operator=costs.macs_by_operator,
        flops_by_operator=costs.flops_by_operator,
        uncounted_ops=costs.uncounted_ops,
        attention=attention,
        depth=depth,
        modules=[ModuleCost(**row) for row in counted.modules if row["depth"] <= depth],
        baseline=base_cmp,
        reference=compare_reference(built, total, costs),
        latency=sweep[0] if sweep else None,
        latency_sweep=sweep,
        convention=ConventionCount.of(costs, counting_convention),
        notes=notes,
        environment=describe_environment(seed=built.request.seed, device=latency.device if latency is not None else None),
        counts_from_cache=from_cache,
    )


def profile(
    request: ModelRequest,
    *,
    depth: int = 2,
    latency: LatencySettings | None = None,
    baseline: str | None = None,
    convention: str | None = None,
) -> ProfileReport:
    """Build ``request`` once and profile it (settings are checked before building). Counts come
    from ``attncli.count_cache`` where it holds them; without latency the model is then not built."""
    check_depth(depth)
    get_convention(convention)
    if latency is not None:
        latency = latency.resolved()
    if latency is None and count_cache.load(count_cache.entry_key(request)) is not None:
        # the module is built only if the entry is gone by the time profile_built reads it
        built = BuiltModel(request.display_name, None, None, request.resolved()[1], {}, request, request.spec())
    else:
        built = build(request)
    return profile_built(built, depth=depth, latency=latency, baseline=baseline, convention=convention, use_count_cache=True)


def built_from_module(module: Any, input_shape: Iterable[int], seed: int = 0) -> BuiltModel:
    """Wrap a module the caller built, for profiling (its training flags are left as they are)."""
    import torch

    from attncli.modelspec import parse_shape

    shape = parse_shape(input_shape)
    if shape is None:
        raise UsageError("give the input shape of your module, e.g. input_shape=(1, 64, 56, 56).", option="input_shape")
    name = type(module).__name__
    gen = torch.Generator().manual_seed(seed)
    return BuiltModel(
        name=name,
        module=module,
        example=torch.randn(shape, generator=gen),
        input_shape=shape,
        kwargs={},
        request=ModelRequest(model=f"python:{name}", input_shape=shape, seed=seed),
        spec=None,
    )
