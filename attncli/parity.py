"""Numerical parity between the PyTorch model and its ONNX file in onnxruntime.

Two runners with one job each, ``infer(feeds) -> {name: array}``, are fed the same seeded inputs at
every shape the file accepts, each runner its own copy (a forward that writes into its input must
not change what the other one sees); each output pair is compared element by element under
``PARITY_RULE`` (Polygraphy's elementwise check), and shapes and dtypes must match exactly. A
comparison is an object that carries its statistics and is truthy when it passes.

The inputs come from several distributions (``INPUT_DISTRIBUTIONS``): a traced graph keeps the one
branch of a Python ``if`` on a tensor's value that its example took, and only an input that takes the
other branch shows it.

PyTorch runs on the CPU in float32 as the reference whatever provider onnxruntime uses, and
whatever the file's precision: a float16 (or bfloat16) file is fed the same draws cast to its input
type, its outputs are widened to float32 before the comparison (the one exception to matching
dtypes), its default tolerances are looser (``DEFAULT_TOLERANCES``), and its error is also given in
its format's ULPs (``ulp``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Collection, Iterable, Sequence

from attncli.errors import CheckFailed, UsageError

DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}

# The default tolerances by the file's precision (``file_precision``: the narrowest floating-point
# type among its inputs, outputs and weights); PyTorch stays the float32 reference. float16 keeps
# 11 significant bits, so one rounding of a value is up to 2^-11 (4.9e-4) of it, and a deep net
# compounds a few of those on every layer: rtol 1e-2 is about 20 half-precision ULPs, and atol 1e-3
# covers the elements near zero, whose relative error means nothing. The untrained eca_resnet18
# and se pass with margin (docs/conventions.md gives the figures); float32's 1e-5 / 1e-4 fail them.
# bfloat16 keeps 8 bits (one rounding up to 2^-8, 3.9e-3): the same margin is ten times wider.
DEFAULT_TOLERANCES = {"float32": (DEFAULT_ATOL, DEFAULT_RTOL), "float64": (DEFAULT_ATOL, DEFAULT_RTOL),
                      "float16": (1e-3, 1e-2), "bfloat16": (1e-2, 1e-1)}
# (significand bits after the leading one, smallest normal exponent) of the half formats: the ULP
# of a value r is 2^(max(floor(log2 |r|), emin) - bits), the gap between r's binade's neighbours
# (below the normal range the subnormals' fixed spacing 2^(emin - bits)).
HALF_FORMATS = {"float16": (10, -14), "bfloat16": (7, -126)}


def default_tolerances(precision: str) -> tuple[float, float]:
    """(atol, rtol) for a file of ``precision`` (an element type in words)."""
    return DEFAULT_TOLERANCES.get(precision, (DEFAULT_ATOL, DEFAULT_RTOL))


def ulp(values: Any, precision: str) -> Any:
    """The ULP of each of ``values`` (float32 or float64 numbers) in the half format ``precision``:
    the spacing of that format's numbers around the value."""
    import numpy as np

    bits, emin = HALF_FORMATS[precision]
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    _, exponent = np.frexp(magnitude)  # |r| = m * 2^e with m in [0.5, 1): floor(log2 |r|) = e - 1
    floor_log2 = np.where(magnitude > 0, exponent - 1, emin)  # frexp(0) says e = 0: zero is below every binade
    return np.exp2(np.maximum(floor_log2, emin) - bits)

# Each input is a seed's standard-normal draw z, shifted and scaled: (shift, scale) -> shift + scale * z.
# A shift of 2 standard deviations puts the mean (and 98% of the elements) on one side of zero, so
# a branch on the sign of a mean, a sum or a max takes each side at least once; the scale of 4 moves
# a branch on a magnitude (a norm, a variance, a max over a threshold). "normal" is the draw of the
# model's own example input. Every shape gets "normal"; the others run at one small shape only (each
# axis at its smallest planned size), which keeps their cost down while a frozen branch still shows
# (it does not depend on the size).
INPUT_DISTRIBUTIONS: dict[str, tuple[float, float]] = {
    "normal": (0.0, 1.0),
    "positive": (2.0, 1.0),
    "negative": (-2.0, 1.0),
    "scaled": (0.0, 4.0),
}

# The one statement of the rule: compare_outputs implements it, reports and docs/conventions.md quote it.
# It is Polygraphy's elementwise check, (absdiff > atol) & (absdiff / |expected| > rtol), not numpy's
# isclose (|d| <= atol + rtol * |expected|), which passes up to twice the error. Two NaNs at the same
# place fail too: a NaN in PyTorch's output is a broken reference, not an agreement.
PARITY_RULE = (
    "an element fails only when it exceeds both tolerances: |actual - expected| > atol and"
    " |actual - expected| > rtol * |expected| (expected: PyTorch); a NaN on either side fails,"
    " NaN against NaN too, and an infinity fails unless both sides hold the same one"
)


# ----------------------------------------------------------------------------- comparison


@dataclass
class OutputComparison:
    """One output at one input: error statistics, and whether every element is within tolerance."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    max_rel: float
    mismatch_ratio: float
    min_atol: float  # the smallest atol that would have passed at this rtol (0: any; inf: none would)
    passed: bool
    problem: str = ""  # a shape or dtype mismatch, or non-finite values
    ref_max_abs: float = math.nan  # the largest |expected|: near or under atol, any answer near zero passes
    # a half-precision file's error in its own terms: the largest |actual - expected| in ULPs of the
    # half format at the expected value (``ulp``); NaN for a float32 file
    max_ulp: float = math.nan

    def __bool__(self) -> bool:
        return self.passed


def check_tolerances(atol: float, rtol: float) -> None:
    """A NaN tolerance would pass every element (no comparison with NaN is true): refuse it, and
    infinite or negative ones, as usage errors."""
    if not (math.isfinite(atol) and math.isfinite(rtol) and atol >= 0 and rtol >= 0):
        raise UsageError(f"--atol and --rtol must be finite and zero or more, not {atol:g} and {rtol:g}.")


def compare_outputs(
    name: str, actual: Any, expected: Any, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, precision: str = "float32",
) -> OutputComparison:
    """Compare ``actual`` (onnxruntime) with ``expected`` (PyTorch) under ``PARITY_RULE``.

    ``max_rel`` divides by |expected|, floored at the dtype's machine epsilon so that an exact zero
    in the reference gives a large but finite figure. ``min_atol``: an element within rtol * |expected|
    passes whatever atol is, any other needs atol >= its error, so it is the largest error among the
    elements beyond rtol (0 when there are none).

    ``precision``: the file's (``file_precision``). A half-precision ``actual`` is widened to
    ``expected``'s dtype first (the comparison is in float32 terms), and ``max_ulp`` is filled in.
    """
    import numpy as np

    check_tolerances(atol, rtol)

    a, b = np.asarray(actual), np.asarray(expected)
    if precision in HALF_FORMATS and a.dtype != b.dtype and a.dtype.kind == "f" and b.dtype.kind == "f":
        a = a.astype(b.dtype)
    if a.shape != b.shape or a.dtype != b.dtype:
        what = (f"shape {tuple(a.shape)} vs {tuple(b.shape)}" if a.shape != b.shape else f"dtype {a.dtype} vs {b.dtype}")
        inf = math.inf
        return OutputComparison(name, tuple(b.shape), inf, inf, inf, 1.0, inf, False, f"{what} (onnxruntime vs PyTorch)")
    if a.size == 0:
        return OutputComparison(name, tuple(b.shape), 0.0, 0.0, 0.0, 0.0, 0.0, True)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    finite = np.isfinite(a64) & np.isfinite(b64)
    same_inf = np.isinf(a64) & (a64 == b64)
    bad = ~finite & ~same_inf  # NaN anywhere, or an infinity the other side does not share
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: masked out just below
        diff = np.where(finite, np.abs(a64 - b64), 0.0)
    scale = np.abs(np.where(finite, b64, 0.0))
    beyond_rtol = diff > rtol * scale
    over = ((diff > atol) & beyond_rtol) | bad
    eps = float(np.finfo(b.dtype).eps) if np.issubdtype(b.dtype, np.floating) else 1.0
    rel = diff / np.maximum(scale, eps)
    problem = ""
    if bad.any():
        torch_bad = int((~np.isfinite(b64)).sum())
        where = f"; PyTorch itself gives {torch_bad} NaN/Inf values at this input" if torch_bad else ""
        problem = f"{int(bad.sum())} elements are NaN or an unmatched Inf{where}"
    n_bad = bool(bad.any())
    max_ulp = math.nan
    if precision in HALF_FORMATS:
        max_ulp = math.inf if n_bad else float((diff / ulp(b64, precision)).max())
    return OutputComparison(
        name=name,
        shape=tuple(b.shape),
        max_abs=math.inf if n_bad else float(diff.max()),
        mean_abs=math.inf if n_bad else float(diff.mean()),
        max_rel=math.inf if n_bad else float(rel.max()),
        mismatch_ratio=float(over.mean()),
        min_atol=math.inf if n_bad else float(diff[beyond_rtol].max(initial=0.0)),
        passed=not over.any(),
        problem=problem,
        ref_max_abs=float(scale.max()),
        max_ulp=max_ulp,
    )


def describe_distribution(name: str) -> str:
    """``normal`` -> ``N(0, 1)``, ``negative`` -> ``N(-2, 1)``, ``scaled`` -> ``N(0, 4^2)``."""
    shift, scale = INPUT_DISTRIBUTIONS[name]
    return f"N({shift:+g}, {scale:g}^2)".replace("N(+0, ", "N(0, ").replace(", 1^2)", ", 1)")


@dataclass
class ParityCase:
    """All outputs at one input shape, seed and input distribution."""

    shape: tuple[int, ...]
    seed: int
    outputs: list[OutputComparison] = field(default_factory=list)
    problem: str = ""  # a runner failed at this shape
    distribution: str = "normal"  # a key of INPUT_DISTRIBUTIONS

    @property
    def passed(self) -> bool:
        return not self.problem and bool(self.outputs) and all(self.outputs)

    def __bool__(self) -> bool:
        return self.passed

    def _worst(self, attr: str) -> float:
        if self.problem or not self.outputs:
            return math.inf
        return max(getattr(o, attr) for o in self.outputs)

    @property
    def max_abs(self) -> float:
        return self._worst("max_abs")

    @property
    def mean_abs(self) -> float:
        return self._worst("mean_abs")

    @property
    def max_rel(self) -> float:
        return self._worst("max_rel")

    @property
    def mismatch_ratio(self) -> float:
        return 1.0 if self.problem or not self.outputs else max(o.mismatch_ratio for o in self.outputs)

    @property
    def min_atol(self) -> float:
        return self._worst("min_atol")

    def as_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "seed": self.seed,
            "distribution": self.distribution,
            "max_abs": _finite(self.max_abs),
            "mean_abs": _finite(self.mean_abs),
            "max_rel": _finite(self.max_rel),
            "mismatch_ratio": self.mismatch_ratio,
            "min_atol": _finite(self.min_atol),
            "passed": self.passed,
            "problem": self.problem or None,
            "outputs": [
                {
                    "name": o.name, "shape": list(o.shape), "max_abs": _finite(o.max_abs), "mean_abs": _finite(o.mean_abs),
                    "max_rel": _finite(o.max_rel), "mismatch_ratio": o.mismatch_ratio, "min_atol": _finite(o.min_atol),
                    "passed": o.passed, "problem": o.problem or None, "ref_max_abs": _finite(o.ref_max_abs),
                    "max_ulp": _finite(o.max_ulp),
                }
                for o in self.outputs
            ],
        }


def _finite(value: float) -> float | None:
    """JSON has no infinity (or NaN): a comparison that no tolerance passes reports null."""
    return value if math.isfinite(value) else None


@dataclass
class SkippedShape:
    """A planned input the PyTorch model does not accept, and PyTorch's reason."""

    shape: tuple[int, ...]
    seed: int
    distribution: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "seed": self.seed, "distribution": self.distribution, "reason": self.reason}


@dataclass
class ParityReport:
    """The verdict over every case; truthy when all cases pass."""

    model: str
    file: str
    opset: int | None
    provider: str
    atol: float
    rtol: float
    input_name: str
    file_input_shape: list[int | str]
    dynamic_axes: dict[int, str]
    cases: list[ParityCase] = field(default_factory=list)
    # Planned shapes the PyTorch model itself refuses (a window that does not divide the size...):
    # the file cannot be judged there, so they are reported and do not count against it.
    skipped: list[SkippedShape] = field(default_factory=list)
    # verify --localize: the first module whose output diverges (a LocalizeReport), None when not asked
    localization: Any = None
    # the file's precision (``file_precision``), which picked the default tolerances; PyTorch is float32
    precision: str = "float32"

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(self.cases)

    @property
    def max_ulp(self) -> float:
        """The largest error in ULPs of the file's half format (NaN for a float32 file)."""
        values = [o.max_ulp for c in self.cases for o in c.outputs if not math.isnan(o.max_ulp)]
        return max(values) if values else math.nan

    @property
    def max_rel(self) -> float:
        return max((c.max_rel for c in self.cases), default=math.inf)

    def _in_precision(self) -> str:
        """``; in float16: max rel 2.1e-03, max 7 ULPs`` for a half-precision file, else ''."""
        if self.precision not in HALF_FORMATS or not self.cases:
            return ""
        return f"; in {self.precision}: max rel {self.max_rel:.2e}, max {self.max_ulp:.3g} ULPs"

    def __bool__(self) -> bool:
        return self.passed

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return list(dict.fromkeys(c.shape for c in self.cases))

    @property
    def distributions(self) -> list[str]:
        return list(dict.fromkeys(c.distribution for c in self.cases))

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for c in self.cases), default=math.inf)

    @property
    def failed_cases(self) -> list[ParityCase]:
        return [c for c in self.cases if not c.passed]

    @property
    def warnings(self) -> list[str]:
        """Comparisons that could hardly fail: PyTorch's output is within 10 x atol of zero everywhere
        (an untrained deep net in eval mode can shrink its signal that far)."""
        weak = {}
        for case in self.cases:
            for o in case.outputs:
                if o.ref_max_abs <= 10 * self.atol:
                    weak[o.name] = max(weak.get(o.name, 0.0), o.ref_max_abs)
        return [
            f"output {name}: PyTorch's values are at most {top:.1e} in magnitude, within 10 x atol of zero,"
            " so this comparison is weak; judge it by max rel, or load trained weights (--weights)"
            for name, top in weak.items()
        ]

    @property
    def rule(self) -> str:
        """The comparison rule with this report's tolerances in front of it."""
        return f"atol {self.atol:g}, rtol {self.rtol:g}; {PARITY_RULE}"

    @property
    def message(self) -> str:
        """One line: the verdict and the worst figure, or what went wrong first."""
        n, k = len(self.shapes), len(self.distributions)
        skipped = list(dict.fromkeys(s.shape for s in self.skipped))
        aside = ""
        if skipped:
            shown = "; ".join(",".join(map(str, s)) for s in skipped)
            aside = f"; skipped {len(skipped)} shape{'s' * (len(skipped) != 1)} the model does not accept ({shown})"
        if self.passed:
            return (
                f"PASSED at {n} shape{'s' * (n != 1)} and {k} input distribution{'s' * (k != 1)}:"
                f" max abs error {self.max_abs:.2e}{self._in_precision()} ({self.rule}){aside}"
            )
        if not self.cases:
            return f"FAILED: no case ran{aside}"
        bad = self.failed_cases
        first = bad[0]
        where = ",".join(map(str, first.shape))
        if first.distribution != "normal":
            where += f" ({first.distribution} input {describe_distribution(first.distribution)}, seed {first.seed})"
        else:
            where += f" (seed {first.seed})"
        if first.problem:
            detail = first.problem
        else:
            worst = next(o for o in first.outputs if not o.passed)
            half = f" (in {self.precision}: max rel {worst.max_rel:.2e}, max {worst.max_ulp:.3g} ULPs)" if not math.isnan(worst.max_ulp) else ""
            detail = worst.problem or (
                f"{worst.name}: max abs {worst.max_abs:.2e}{half}, {worst.mismatch_ratio:.1%} of elements fail ({self.rule})"
            )
        return f"FAILED at {len(bad)} of {len(self.cases)} cases; at {where}: {detail}{aside}"

    def localization_input(self) -> tuple[tuple[int, ...], int, str] | None:
        """(shape, seed, distribution) of the first case whose outputs exceed the tolerance (the input
        where localisation looks), or None when no case failed that way."""
        return next(((c.shape, c.seed, c.distribution) for c in self.cases if not c.problem and not c.passed), None)

    def as_dict(self) -> dict[str, Any]:
        from attncli.environment import describe

        # the environment of this process: the model's seed (the first case's: cases draw from seed,
        # seed + 1, ...) and onnxruntime's device (PyTorch runs on the CPU)
        device = next((name for name, provider in PROVIDERS.items() if provider == self.provider), self.provider)
        return {
            "model": self.model,
            "file": self.file,
            "opset": self.opset,
            "passed": self.passed,
            "provider": self.provider,
            "precision": self.precision,
            "atol": self.atol,
            "rtol": self.rtol,
            "rule": PARITY_RULE,
            "input": {"name": self.input_name, "shape": self.file_input_shape},
            "distributions": {d: describe_distribution(d) for d in self.distributions},
            "dynamic_axes": {str(k): v for k, v in self.dynamic_axes.items()},
            "warnings": self.warnings,
            "cases": [c.as_dict() for c in self.cases],
            "skipped": [s.as_dict() for s in self.skipped],
            "localization": self.localization.as_dict() if self.localization is not None else None,
            "environment": describe(seed=min((c.seed for c in self.cases), default=None), device=device),
        }


# ----------------------------------------------------------------------------- runners


class TorchRunner:
    """The reference: the PyTorch module on the CPU under inference mode."""

    def __init__(self, module: Any, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        self.module = module
        self.input_names = list(input_names)
        self.output_names = list(output_names)

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        import numpy as np
        import torch

        from attncli.onnx_export import model_prints_to_stderr

        # a copy: the module may write into its input (x.mul_(2)), and the caller's array is not its to change
        args = [torch.from_numpy(np.array(feeds[n], copy=True, order="C")) for n in self.input_names]
        with torch.inference_mode(), model_prints_to_stderr():
            out = self.module(*args)
        tensors = list(out) if isinstance(out, (tuple, list)) else [out]
        if len(tensors) != len(self.output_names):
            raise RuntimeError(f"PyTorch returns {len(tensors)} outputs, the ONNX file {len(self.output_names)}")
        return {n: t.detach().cpu().numpy() for n, t in zip(self.output_names, tensors)}


class OnnxRuntimeRunner:
    """An onnxruntime session on the chosen provider (the CPU one is always there)."""

    def __init__(self, path: str | Path, provider: str = "cpu") -> None:
        import onnxruntime as ort

        from attncli.providers import resolve_provider

        # a short name (cpu, cuda, tensorrt, openvino, dml, coreml) or onnxruntime's; one this
        # onnxruntime lacks is a usage error naming the installed ones
        wanted = resolve_provider(PROVIDERS.get(provider, provider or "CPUExecutionProvider"))
        quiet_onnxruntime()
        options = ort.SessionOptions()
        # Fatal only: shape warnings at other sizes are ours to report, and an error (a node that
        # fails at a shape) comes back as the exception that attncli words as one line; at the
        # error level onnxruntime would also print it, in red, on stderr before attncli speaks.
        options.log_severity_level = 4
        # as many threads as PyTorch has: neither side is favoured, and the gate's workers (one
        # thread each) do not oversubscribe the cores
        import torch

        options.intra_op_num_threads = torch.get_num_threads()
        providers = [wanted] + (["CPUExecutionProvider"] if wanted != "CPUExecutionProvider" else [])
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
            types = [v.type for v in [*self.session.get_inputs(), *self.session.get_outputs()]]
            if "tensor(bfloat16)" in types:
                # numpy has no bfloat16: the same graph with a Cast at each bfloat16 input and output
                # (float32 -> bfloat16 rounds as the caller would; bfloat16 -> float32 is exact)
                self.session = ort.InferenceSession(_with_float32_io(path), options, providers=providers)
        except Exception as exc:  # a valid ONNX file that this onnxruntime cannot run: the check failed
            if "bfloat16" in str(exc) or "NOT_IMPLEMENTED" in str(exc) and _precision_of_file(path) == "bfloat16":
                raise UsageError(
                    f"onnxruntime's {wanted} cannot run {path}, a bfloat16 file: {_first_line(exc)}"
                    " (onnxruntime's bfloat16 kernels are mostly on its GPU providers: try --provider cuda)."
                ) from exc
            raise CheckFailed(f"onnxruntime cannot load {path}: {_first_line(exc)}") from exc
        self.provider = self.session.get_providers()[0]
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # what each input takes: the caller's float32 arrays are cast to it (a float16 file takes float16)
        self.input_dtypes = {i.name: _NUMPY_TYPES.get(i.type, "float32") for i in self.session.get_inputs()}

    def infer(self, feeds: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        import onnxruntime as ort

        quiet = ort.RunOptions()
        quiet.log_severity_level = 4  # as the session's: its errors come back as the exception
        arrays = {n: np.array(a, copy=True, dtype=self.input_dtypes.get(n)) for n, a in feeds.items()}
        values = self.session.run(self.output_names, arrays, quiet)
        return dict(zip(self.output_names, values))


# onnxruntime's type strings of the floating-point inputs attncli feeds -> numpy's dtype names
_NUMPY_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _with_float32_io(path: str | Path) -> bytes:
    """The model at ``path`` with its bfloat16 inputs and outputs made float32 by Cast nodes."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    renamed: dict[str, str] = {}
    first, last = [], []
    for value in graph.input:
        if value.name not in weights and value.type.tensor_type.elem_type == TensorProto.BFLOAT16:
            renamed[value.name] = inner = f"{value.name}__attncli_bfloat16"
            first.append(helper.make_node("Cast", [value.name], [inner], to=TensorProto.BFLOAT16))
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    outputs = {}
    for value in graph.output:
        if value.type.tensor_type.elem_type == TensorProto.BFLOAT16:
            outputs[value.name] = inner = f"{value.name}__attncli_bfloat16_out"
            last.append(helper.make_node("Cast", [inner], [value.name], to=TensorProto.FLOAT))
            value.type.tensor_type.elem_type = TensorProto.FLOAT
    for node in graph.node:
        node.input[:] = [renamed.get(outputs.get(n, n), outputs.get(n, n)) for n in node.input]
        node.output[:] = [outputs.get(n, n) for n in node.output]
    nodes = [*first, *graph.node, *last]
    del graph.node[:]
    graph.node.extend(nodes)
    return _serialize_model(model)


def _serialize_model(model: Any) -> bytes:
    from attncli.onnx_export import _serialize

    return _serialize(model, "the model")


def _precision_of_file(path: str | Path) -> str:
    import onnx

    try:
        return file_precision(onnx.load(str(path), load_external_data=False))
    except Exception:
        return "float32"


def file_precision(model: Any) -> str:
    """The narrowest floating-point type (in words) among a ModelProto's inputs, outputs and weights:
    ``float16`` for a half file, also one whose inputs and outputs stay float32 (--keep-io-types).
    The types, not the ``attncli.dtype`` metadata, decide: a file converted after its export keeps
    the metadata of the float32 one."""
    from onnx import TensorProto

    from attncli.inspect_onnx import element_type_name

    graph = model.graph
    types = {v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    types |= {t.data_type for t in graph.initializer}
    for narrow in (TensorProto.BFLOAT16, TensorProto.FLOAT16):
        if narrow in types:
            return element_type_name(narrow)
    return "float32"


def quiet_onnxruntime() -> None:
    """onnxruntime's process-wide logger at errors only, before any session exists: its warnings
    (a shape it could not infer, a node it placed on the CPU) would print on stderr around
    attncli's own lines, and its errors come back as exceptions that attncli words as one line."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:400]


# ----------------------------------------------------------------------------- the file and the plan


@dataclass
class OnnxInput:
    name: str
    dims: list[int | str]  # an int for a fixed size, the axis name (or "?") for a dynamic one
    elem_type: int

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.dims) if isinstance(d, str)}


def load_onnx(path: str | Path) -> Any:
    """Load and check a model file; anything that is not a valid ONNX model is a usage error."""
    import onnx

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such file: {path}." if not file.exists() else f"{path} is not a file.")
    try:
        model = onnx.load(str(file), load_external_data=False)
        onnx.checker.check_model(str(file))
    except Exception as exc:
        raise UsageError(f"{path} is not a valid ONNX model: {_first_line(exc)}") from exc
    if not model.graph.node and not model.graph.output:
        raise UsageError(f"{path} is not a valid ONNX model: it holds no graph.")
    return model


def model_inputs(model: Any) -> list[OnnxInput]:
    """The graph's real inputs (older files also list their initializers as inputs)."""
    weights = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        dims: list[int | str] = []
        for d in tensor.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?"))
        inputs.append(OnnxInput(value.name, dims, tensor.elem_type))
    return inputs


def parse_shape_arg(text: str) -> tuple[str | None, tuple[int, ...]]:
    """``--shape`` value: ``2,64,28,28`` or ``input=2,64,28,28`` (the name of the file's input)."""
    from attncli.modelspec import parse_shape

    name, sep, dims = text.partition("=")
    if not sep:
        name, dims = "", text
    if sep and not name.strip():
        raise UsageError(f"bad --shape {text!r}: write 2,64,28,28 or NAME=2,64,28,28.")
    return (name.strip() or None), parse_shape(dims)  # type: ignore[return-value]


def _other_batches(base: int) -> list[int]:
    return [3, 2] if base == 1 else [1, base + 1]


def plan_shapes(
    base: Sequence[int], dynamic_axes: Iterable[int], extra: Iterable[Sequence[int]] = (), *,
    multiple: int = 1, channels_axis: int = 1,
) -> list[tuple[int, ...]]:
    """The export shape, then two more that change every dynamic axis, then ``extra``.

    The batch axis (0) takes two other sizes (3 and 2 after 1). Spatial axes (the others) take half
    their size in the first extra shape, and in the second a smaller, uneven size that differs
    between the first two spatial axes (``_uneven``: 56x56 -> 28x28 and 22x26; 224x224 -> 112x112
    and 85x99): a graph that froze a pooling window or assumed a square input fails there. Both
    are smaller than the export shape, so a deep network's extra runs cost less than its first.
    The channel axis (``channels_axis``: 1, or the last of a channels-last model) is never varied.

    ``multiple``: the stride a model's spatial sizes must be a multiple of (a window-4
    pixel_unshuffle, a patch embedding). Each planned spatial size is rounded to the nearest
    multiple of it, and moved up by one multiple at a time while it equals the export size (or,
    in the second shape, the first's), so every dynamic axis still changes.
    """
    base = tuple(int(d) for d in base)
    step = int(multiple)
    if step < 1:
        raise UsageError(f"the spatial multiple must be 1 or more, not {multiple}.", option="shape_multiple")
    dyn = sorted(set(dynamic_axes))
    plans = [base]
    for variant in (0, 1):
        shape = list(base)
        spatial = [a for a in dyn if a != 0 and a != channels_axis]
        for axis in dyn:
            d = base[axis]
            if axis == 0:
                shape[0] = _other_batches(d)[variant]
            elif axis in spatial:
                k = spatial.index(axis)
                size = max(1, d // 2) if variant == 0 else _uneven(d, k)
                if step > 1:
                    size = max(step, round(size / step) * step)
                    taken = {d} | ({plans[1][axis]} if variant == 1 else set())
                    if variant == 1 and k == 1:
                        taken.add(shape[spatial[0]])  # keep the second shape non-square
                    while size in taken:
                        size += step
                shape[axis] = size
        plans.append(tuple(shape))
    plans.extend(tuple(int(d) for d in s) for s in extra)
    return list(dict.fromkeys(plans))


def _uneven(d: int, k: int) -> int:
    """Spatial axis ``k``'s size in the second extra shape: half of ``d`` less a quarter of that
    half for the first spatial axis, an eighth for the others, plus one (56 -> 22 and 26)."""
    half = max(1, d // 2)
    size = half - half // (4 if k == 0 else 8) + 1
    return size + 1 if k == 1 and size == _uneven(d, 0) else size


def seeded_input(shape: Sequence[int], seed: int, distribution: str = "normal") -> Any:
    """Float32 input from a generator of its own: the seed's standard-normal draw (the same draw as
    the model's example), shifted and scaled as ``INPUT_DISTRIBUTIONS[distribution]`` says."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(tuple(shape), generator=gen)
    shift, scale = INPUT_DISTRIBUTIONS[distribution]
    if (shift, scale) != (0.0, 1.0):
        x = x * scale + shift
    return x.numpy()


def check_shapes_only(shapes: Sequence[Any], shapes_only: bool) -> None:
    """Verifying at the given shapes only needs a shape to verify at."""
    if shapes_only and not shapes:
        raise UsageError("verifying at the given shapes only needs at least one shape.", option="shapes_only")


def plan_cases(
    shapes: Sequence[tuple[int, ...]], seeds: Sequence[int], distributions: Sequence[str] = tuple(INPUT_DISTRIBUTIONS),
    *, only_these: bool = False,
) -> list[tuple[tuple[int, ...], int, str]]:
    """(shape, seed, distribution) for each run: every shape and seed at the first distribution,
    then the other distributions at one small shape: each axis at the smallest size it has in
    ``shapes`` (sizes the file takes, axis by axis; 1x3x224x224, 3x3x112x112 and 2x3x169x197 give
    1x3x112x112), or with ``only_these`` the smallest of ``shapes`` itself (the first of equals),
    for a model that is valid at the given shapes only."""
    if not shapes or not distributions:
        return []
    first, *others = distributions
    plan = [(shape, seed, first) for shape in shapes for seed in seeds]
    if only_these or len({len(s) for s in shapes}) != 1:
        small = min(shapes, key=math.prod)
    else:
        small = tuple(min(s[axis] for s in shapes) for axis in range(len(shapes[0])))
    plan += [(small, seed, d) for d in others for seed in seeds]
    return plan


# ----------------------------------------------------------------------------- verify


def verify_onnx(
    built: Any,
    path: str | Path,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    seeds: int = 1,
    shapes: Iterable[str | Sequence[int]] = (),
    shapes_only: bool = False,
    distributions: Iterable[str] = tuple(INPUT_DISTRIBUTIONS),
    provider: str = "cpu",
    example_outputs: dict[str, Any] | None = None,
    references: dict[Any, list[Any]] | None = None,
    shape_multiple: int = 1,
    channels_axis: int = 1,
) -> ParityReport:
    """Compare ``built`` (a BuiltModel) with the ONNX file at every planned shape, seed and input
    distribution (see ``plan_shapes`` and ``plan_cases``).

    ``shapes`` are checked after the planned ones; with ``shapes_only`` they replace them, for a
    model that is valid at some sizes only (its example's shape is then not required to fit the file).
    ``atol``/``rtol`` None: ``default_tolerances`` of the file's precision (``file_precision``); a
    float16 input is fed the float32 draw cast to it, and PyTorch stays in float32.
    ``example_outputs``: PyTorch's outputs for ``built.example`` when the caller already has them
    (the exporter ran it); the first case then skips one forward pass of the model.
    ``references``: PyTorch's outputs by (shape, seed, distribution), read and filled here; a caller
    that verifies one built model against several files (the gate, at each opset) passes the same
    dict to each, so the model runs once per input, not once per file.
    ``shape_multiple`` and ``channels_axis``: see ``plan_shapes``.

    A shape the PyTorch model itself refuses is not the file's fault: it goes into the report's
    ``skipped`` and the other input distributions run at shapes the model accepts. The example's
    shape refused is a failed case; every given shape refused with ``shapes_only`` a usage error.
    """
    from attncli.onnx_export import read_opset

    check_tolerances(DEFAULT_ATOL if atol is None else atol, DEFAULT_RTOL if rtol is None else rtol)
    if seeds < 1:
        raise UsageError(f"--seeds must be 1 or more, not {seeds}.")
    distributions = list(dict.fromkeys(distributions))
    unknown = [d for d in distributions if d not in INPUT_DISTRIBUTIONS]
    if unknown or not distributions:
        raise UsageError(f"input distributions are {', '.join(INPUT_DISTRIBUTIONS)}, not {', '.join(unknown) or 'none'}.")
    shapes = list(shapes)
    check_shapes_only(shapes, shapes_only)
    model = load_onnx(path)
    inputs = model_inputs(model)
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise UsageError(f"{path} has {len(inputs)} inputs ({names}); attncli models take exactly one.")
    (spec,) = inputs
    from attncli.inspect_onnx import element_type_name

    if spec.elem_type not in _FLOAT_ELEMENT_TYPES:
        raise UsageError(
            f"{path} takes input {spec.name!r} of element type {element_type_name(spec.elem_type)}; attncli feeds"
            " floating-point inputs (float32, float16, bfloat16 or float64)."
        )
    precision = file_precision(model)
    default_atol, default_rtol = default_tolerances(precision)
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    base = tuple(built.input_shape)
    from attncli.onnx_export import check_channels_axis

    channels_axis = check_channels_axis(channels_axis, len(base))
    if not shapes_only:
        _check_shape_fits(spec, base, path, f"{built.name}'s example input", hint=" Build the model with the options used at export (-p, --input-shape).")

    extra = []
    for item in shapes:
        name, shape = parse_shape_arg(item) if isinstance(item, str) else (None, tuple(int(d) for d in item))
        if name is not None and name != spec.name:
            raise UsageError(f"{path} has no input named {name!r}; its input is {spec.name!r}.")
        _check_shape_fits(spec, shape, path, f"--shape {','.join(map(str, shape))}")
        extra.append(shape)

    runner = OnnxRuntimeRunner(path, provider)
    reference = TorchRunner(built.module, [spec.name], runner.output_names)
    report = ParityReport(
        model=built.name, file=str(path), opset=read_opset(model), provider=runner.provider, atol=atol, rtol=rtol,
        input_name=spec.name, file_input_shape=list(spec.dims), dynamic_axes=spec.dynamic_axes, precision=precision,
    )
    seed0 = built.request.seed
    planned = list(dict.fromkeys(extra)) if shapes_only else plan_shapes(
        base, spec.dynamic_axes, extra, multiple=shape_multiple, channels_axis=channels_axis)
    references = {} if references is None else references
    if example_outputs and len(example_outputs) == len(runner.output_names):
        references.setdefault((base, seed0, "normal"), list(example_outputs.values()))
    seed_range = range(seed0, seed0 + seeds)
    plan = plan_cases(planned, seed_range, distributions, only_these=shapes_only)
    first = [p for p in plan[: len(planned) * seeds]]  # every shape at the first distribution
    refused: set[tuple[int, ...]] = set()

    def run(shape: tuple[int, ...], seed: int, distribution: str) -> None:
        case = _run_case(reference, runner, spec.name, shape, seed, atol, rtol, distribution, references, precision)
        if isinstance(case, ParityCase):
            report.cases.append(case)
        elif shape == base and not shapes_only:  # the model's own example shape: that is a failure
            report.cases.append(ParityCase(shape, seed, problem=f"PyTorch rejects the model's example shape: {case}", distribution=distribution))
        else:
            refused.add(shape)
            report.skipped.append(SkippedShape(shape, seed, distribution, f"the model does not accept this shape: {case}"))

    for shape, seed, distribution in first:
        run(shape, seed, distribution)
    accepted = [s for s in planned if s not in refused]
    if not accepted:
        shown = "; ".join(",".join(map(str, s)) for s in planned)
        raise UsageError(f"the model does not accept any of the shapes to verify ({shown}): {report.skipped[0].reason}.", option="shapes")
    rest = plan[len(first):] if not refused else plan_cases(accepted, seed_range, distributions, only_these=True)[len(accepted) * seeds:]
    for shape, seed, distribution in rest:
        run(shape, seed, distribution)
    return report


def _check_shape_fits(spec: OnnxInput, shape: tuple[int, ...], path: Any, what: str, hint: str = "") -> None:
    shown = "(" + ", ".join(str(d) for d in spec.dims) + ")"
    if len(shape) != len(spec.dims):
        raise UsageError(f"{path} takes a rank-{len(spec.dims)} input {spec.name!r} {shown}; {what} has rank {len(shape)}.{hint}")
    for axis, (want, got) in enumerate(zip(spec.dims, shape)):
        if isinstance(want, int) and want != got:
            raise UsageError(
                f"{path} fixes axis {axis} of input {spec.name!r} {shown} to {want}; {what} has {got} there.{hint}"
            )


def _run_case(
    reference: TorchRunner, runner: OnnxRuntimeRunner, name: str, shape: tuple[int, ...], seed: int, atol: float, rtol: float,
    distribution: str, references: dict[Any, list[Any]], precision: str = "float32",
) -> ParityCase | str:
    """The case at one input, or (a str) PyTorch's reason for refusing that input."""
    case = ParityCase(shape, seed, distribution=distribution)
    feeds = {name: seeded_input(shape, seed, distribution)}  # each runner copies it
    key = (shape, seed, distribution)
    try:
        if key not in references or len(references[key]) != len(runner.output_names):
            references[key] = list(reference.infer(feeds).values())
        expected = dict(zip(runner.output_names, references[key]))
    except Exception as exc:
        return _first_line(exc)
    try:
        actual = runner.infer(feeds)
    except Exception as exc:
        case.problem = f"onnxruntime fails at this shape: {_first_line(exc)}"
        return case
    case.outputs = [compare_outputs(n, actual[n], expected[n], atol, rtol, precision) for n in runner.output_names]
    return case


# ----------------------------------------------------------------------------- localisation
#
# Where a mismatch starts: every intermediate tensor of the ONNX graph made an output, the PyTorch
# modules' outputs caught with forward hooks on a copy of the model, each module paired with the
# tensor of the ONNX nodes that implement it, and the pairs compared in the order the modules
# finish (a forward hook fires at the end of its module's forward: children before their parent).
#
# Which nodes implement a module comes from their names or metadata:
# - the TorchScript exporter names a node after its module scope, one segment per level, then the
#   operator: ``/layer1/layer1.0/conv1/Conv``. A segment is the child's name, or (a child of a
#   Sequential or ModuleList) its full path (``layer1.0``); a local name has no dot, so a segment
#   that starts with the path so far plus a dot is a full path, and any other is appended to it.
# - the dynamo exporter records ``namespace`` metadata on each node, ``: Net/layer1: Sequential/
#   layer1.0: BasicBlock/conv2d: aten.conv2d.default``: the module paths in full, then the operator.
# A module's output is then the output of its last node (in the graph's order, which is
# topological) whose value has the shape of the module's output in PyTorch.
#
# Folded modules: in eval mode both exporters fold a BatchNorm into the Conv before it, so one of
# the two modules has no node and the file never holds the Conv's output alone. The TorchScript
# exporter keeps the Conv's name on the fused node, the dynamo exporter (its onnxscript rewriter)
# the BatchNorm's namespace. So a module without nodes is compared together with its neighbour:
# in a TorchScript file, with the module before it when it runs straight on that module's output;
# in a dynamo file (or when there is no such module before it), with the module after it when that
# one runs straight on its output. PyTorch's output after both is compared with the one tensor of
# the file, under the first module's name. A module without nodes whose output is its input (Identity, Dropout
# in eval) is a pass-through and is not compared.

_FLOAT_ELEMENT_TYPES = {1, 10, 11, 16}  # float32, float16, float64, bfloat16


@dataclass
class ModuleComparison:
    """One module (or a module with others folded into it) against the ONNX tensor that is its output."""

    path: str
    type: str
    nodes: list[str]  # the ONNX nodes that implement it, in graph order
    tensor: str  # the ONNX value compared with the module's output
    comparison: OutputComparison
    folded: list[str] = field(default_factory=list)  # "path (Type)" of the modules folded into it

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    def as_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "module": self.path, "type": self.type, "folded": list(self.folded), "onnx_nodes": list(self.nodes),
            "onnx_tensor": self.tensor, "shape": list(c.shape), "max_abs": _finite(c.max_abs), "mean_abs": _finite(c.mean_abs),
            "max_rel": _finite(c.max_rel), "mismatch_ratio": c.mismatch_ratio, "passed": c.passed, "problem": c.problem or None,
        }


@dataclass
class LocalizeReport:
    """Every module compared in execution order; ``first`` is the first that exceeds the tolerance.
    Truthy when none does."""

    model: str
    file: str
    provider: str
    atol: float
    rtol: float
    shape: tuple[int, ...]
    seed: int
    distribution: str
    naming: str  # "torchscript" (node names), "dynamo" (namespace metadata) or "none" (nothing to map)
    modules: list[ModuleComparison] = field(default_factory=list)
    not_compared: list[tuple[str, str]] = field(default_factory=list)  # (module path, why)

    @property
    def first(self) -> ModuleComparison | None:
        return next((m for m in self.modules if not m.passed), None)

    @property
    def passed(self) -> bool:
        return self.first is None

    def __bool__(self) -> bool:
        return self.passed

    @property
    def compared(self) -> int:
        return len(self.modules)

    @property
    def matched(self) -> int:
        return sum(m.passed for m in self.modules)

    @property
    def matched_before_first(self) -> int:
        first = self.first
        return self.compared if first is None else self.modules.index(first)

    @property
    def message(self) -> str:
        where = f"at {','.join(map(str, self.shape))} ({self.distribution} input, seed {self.seed})"
        if not self.modules:
            why = "the file's node names carry no module path" if self.naming == "none" else "no module's output is in the file"
            return f"no module could be compared {where}: {why}"
        first = self.first
        if first is None:
            return f"no divergence: all {self.compared} modules compared match {where} (atol {self.atol:g}, rtol {self.rtol:g})"
        c = first.comparison
        folded = f", with {', '.join(first.folded)} folded in" if first.folded else ""
        detail = c.problem or f"max abs {c.max_abs:.2e}, max rel {c.max_rel:.2e}, {c.mismatch_ratio:.1%} of elements over tolerance"
        return (
            f"first divergence at module {first.path} ({first.type}{folded}) {where}: {detail};"
            f" {self.matched_before_first} of {self.compared} modules compared match before it"
        )

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {
            "passed": self.passed,
            "message": self.message,
            "shape": list(self.shape),
            "seed": self.seed,
            "distribution": self.distribution,
            "naming": self.naming,
            "first_divergence": first.as_dict() if first is not None else None,
            "compared": self.compared,
            "matched": self.matched,
            "matched_before_first": self.matched_before_first,
            "modules": [m.as_dict() for m in self.modules],
            "not_compared": [{"module": p, "reason": r} for p, r in self.not_compared],
        }


def node_module_path(node: Any, modules: Collection[str] = ()) -> str | None:
    """The module path of the PyTorch module that made ``node`` (``""``: the model itself), or None
    when neither its name nor its metadata says (see the comment above ``ModuleComparison``).

    ``modules``: the model's module paths. A TorchScript segment is the end of its module's path
    (``downsample.0`` for ``layer1.0.downsample.0``, ``k`` for ``d.k`` of a ModuleDict): each is
    matched to the nearest module under the path so far whose path ends with it. A segment that
    matches none (the second call of a module, ``relu_1``), or any segment without ``modules``, is
    appended to the path (or taken whole when it starts with the path so far and a dot)."""
    for prop in node.metadata_props:  # the dynamo exporter
        if prop.key == "namespace":
            scopes = prop.value.split("/")[:-1]  # the last one is the operator
            return scopes[-1].split(":", 1)[0].strip() if scopes else ""
    name = node.name
    if not name.startswith("/"):
        return None
    path = ""
    for segment in name.split("/")[1:-1]:
        under = [m for m in modules if (not path or m.startswith(path + ".")) and (m == segment or m.endswith("." + segment))]
        if under:
            path = min(under, key=len)
        elif path and not segment.startswith(path + "."):
            path = f"{path}.{segment}"
        else:
            path = segment
    return path


def _all_values_as_outputs(model: Any) -> tuple[Any, list[str]]:
    """A copy of ``model`` whose every floating-point node output is a graph output (typed by shape
    inference, shape left open), and the names added."""
    import onnx
    from onnx import helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inferred = onnx.shape_inference.infer_shapes(copy)
    types = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        if value.type.WhichOneof("value") == "tensor_type":
            types[value.name] = value.type.tensor_type.elem_type
    present = {o.name for o in copy.graph.output}
    added = []
    for node in copy.graph.node:
        for name in node.output:
            if name and name not in present and types.get(name) in _FLOAT_ELEMENT_TYPES:
                copy.graph.output.append(helper.make_tensor_value_info(name, types[name], None))
                present.add(name)
                added.append(name)
    return copy, added


@dataclass
class _Caught:
    path: str
    type: str
    input_id: int | None
    output_id: int | None
    output: Any  # a numpy copy, or None when the module does not return one tensor
    calls: int = 1


def _module_outputs(built: Any, feed: Any) -> list[_Caught]:
    """Each submodule's output on ``feed``, in the order the modules finish, from forward hooks on a
    copy of the model (the caller's module keeps no hook). Outputs are copied at once: a later
    in-place op (ReLU(inplace=True)) would change them. A module called more than once keeps its
    first output, and its count."""
    import copy
    import functools

    import numpy as np
    import torch

    from attncli.onnx_export import model_prints_to_stderr

    module = copy.deepcopy(built.module).eval()
    caught: dict[str, _Caught] = {}
    keep: list[Any] = []  # the tensors whose ids are recorded stay alive, so no id is reused

    def hook(path: str, mod: Any, args: Any, output: Any) -> None:
        if path in caught:
            caught[path].calls += 1
            return
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        tensor = output if isinstance(output, torch.Tensor) else None
        keep.extend(t for t in (first, tensor) if t is not None)
        caught[path] = _Caught(
            path, type(mod).__name__, id(first) if first is not None else None, id(tensor) if tensor is not None else None,
            tensor.detach().float().cpu().numpy().copy() if tensor is not None and tensor.is_floating_point() else None,
        )

    handles = [m.register_forward_hook(functools.partial(hook, path)) for path, m in module.named_modules() if path]
    try:
        with torch.no_grad(), model_prints_to_stderr():
            module(torch.from_numpy(np.array(feed, copy=True)))
    finally:
        for handle in handles:
            handle.remove()
    return list(caught.values())


def localize_mismatch(
    built: Any,
    path: str | Path,
    *,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    shape: Sequence[int] | None = None,
    seed: int | None = None,
    distribution: str = "normal",
    provider: str = "cpu",
) -> LocalizeReport:
    """Find the first module of ``built`` whose output in the ONNX file at ``path`` exceeds the
    tolerance (``PARITY_RULE``), at one input: ``shape`` (default the model's example shape),
    ``seed`` (default the model's) and ``distribution``. onnxruntime runs once on a copy of the
    file with every intermediate floating-point tensor made an output; PyTorch runs once on a copy
    of the model with forward hooks. See the comment above ``ModuleComparison`` for how nodes are
    mapped to modules and what is not compared."""
    import shutil
    import tempfile

    import numpy as np
    import onnx

    check_tolerances(atol, rtol)
    load_onnx(path)  # a missing or broken file: the usual one-line error
    try:
        model = onnx.load(str(path))  # with its external data: the copy is written elsewhere
    except Exception as exc:
        raise UsageError(f"cannot read the external data of {path}: {_first_line(exc)}") from exc
    inputs = model_inputs(model)
    if len(inputs) != 1:
        raise UsageError(f"{path} has {len(inputs)} inputs; attncli models take exactly one.")
    name = inputs[0].name
    shape = tuple(int(d) for d in (shape if shape is not None else built.input_shape))
    seed = built.request.seed if seed is None else int(seed)
    feed = seeded_input(shape, seed, distribution)

    exposed, _ = _all_values_as_outputs(model)
    folder = tempfile.mkdtemp(prefix="attncli-localize-")
    try:
        copy_path = Path(folder) / "all_outputs.onnx"
        onnx.save(exposed, str(copy_path))
        runner = OnnxRuntimeRunner(copy_path, provider)
        try:
            actual = runner.infer({name: feed})
        except Exception as exc:
            raise CheckFailed(f"onnxruntime fails on {path} at {','.join(map(str, shape))}: {_first_line(exc)}") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    caught = _module_outputs(built, feed)

    known = [c.path for c in caught]
    paths = [(node, node_module_path(node, known)) for node in model.graph.node]
    naming = "none"
    if any(p is not None for _, p in paths):
        naming = "dynamo" if any(prop.key == "namespace" for n in model.graph.node for prop in n.metadata_props) else "torchscript"
    report = LocalizeReport(
        model=built.name, file=str(path), provider=runner.provider, atol=atol, rtol=rtol, shape=shape, seed=seed,
        distribution=distribution, naming=naming,
    )

    def nodes_of(module_path: str) -> list[Any]:
        return [n for n, p in paths if p is not None and (p == module_path or p.startswith(module_path + "."))]

    def tensor_of(module_path: str, out: Any) -> tuple[str, list[str]] | None:
        nodes = nodes_of(module_path)
        for node in reversed(nodes):
            for value in node.output:
                if value in actual and np.shape(actual[value]) == out.shape:
                    return value, [n.name for n in nodes]
        return None

    # Groups: (members, the ONNX tensor and nodes) where the members' last output is compared.
    groups: list[tuple[list[_Caught], tuple[str, list[str]] | None]] = []
    pending: list[_Caught] = []

    def set_aside(entries: list[_Caught], why: str) -> None:
        report.not_compared.extend((c.path, why) for c in entries)

    previous: _Caught | None = None
    for entry in caught:
        if entry.output is None:
            set_aside([entry], "it does not return one floating-point tensor")
        elif entry.calls > 1:
            set_aside([entry], f"it runs {entry.calls} times in one forward; the file names its calls apart")
        elif not nodes_of(entry.path):
            if entry.output_id == entry.input_id:
                set_aside([entry], "no node in the file: it passes its input through")
            elif (naming != "dynamo" and groups and previous is not None and groups[-1][0][-1] is previous
                  and entry.input_id == previous.output_id):
                groups[-1][0].append(entry)  # folded into the module before it (TorchScript: BatchNorm into Conv)
            else:
                if pending and entry.input_id != pending[-1].output_id:
                    set_aside(pending, "no node in the file implements it")
                    pending = []
                pending.append(entry)
        else:
            chain = bool(pending) and entry.input_id == pending[-1].output_id
            if pending and not chain:
                set_aside(pending, "no node in the file implements it")
            members = (pending if chain else []) + [entry]  # dynamo: Conv folded into the BatchNorm after it
            pending = []
            found = tensor_of(entry.path, entry.output)
            if found is None:
                set_aside(members, "no node of it in the file gives a tensor of its output's shape")
            else:
                groups.append((members, found))
        previous = entry
    set_aside(pending, "no node in the file implements it")

    for members, (tensor, nodes) in groups:  # type: ignore[misc]
        head, last = members[0], members[-1]
        got = np.asarray(actual[tensor])
        if got.dtype != last.output.dtype and np.issubdtype(got.dtype, np.floating):
            got = got.astype(last.output.dtype)  # a half-precision file: its values against float32 PyTorch
        report.modules.append(ModuleComparison(
            path=head.path, type=head.type, nodes=nodes, tensor=tensor,
            comparison=compare_outputs(head.path, got, last.output, atol, rtol),
            folded=[f"{m.path} ({m.type})" for m in members[1:]],
        ))
    return report
