"""Parameters, MACs and FLOPs of a module, counted from one trace of its forward pass.

Conventions (the point of this module is numbers that can go into a paper):

- **MACs** are multiply-accumulates of the contraction operators only: convolution (every
  ``aten::_convolution``/``conv*d`` form, transposed too), ``linear``, ``addmm``, ``mm``, ``matmul``,
  ``bmm``, ``baddbmm`` and ``einsum``. This is what fvcore's ``FlopCountAnalysis`` reports as
  "flops" for those operators (its handles are reused here for the counts) and what papers such as
  ResNet and ECA-Net call FLOPs. Biases are not counted separately.
- **FLOPs** are every arithmetic operation: 2 per MAC (a multiply and an add, which also covers the
  bias add) plus the rules of ``OPERATOR_RULES`` for everything else (activations, gates,
  reductions, normalisation, pooling, softmax).
- Data movement (views, reshapes, permutes, expand, concatenation, slicing, indexing, padding,
  dtype casts) costs nothing and is declared so explicitly in the table.

The traversal is fvcore's (``FlopCountAnalysis``: a scoped JIT trace, per-module attribution);
the table ``OPERATOR_HANDLES`` maps each ``aten::`` operator to a small handle built by a factory
(``multiply_accumulate``, ``elementwise``, ``reduction``, ...), exactly like fvcore's own table.
Extending it is adding an entry. fvcore silently skips a list of operators by default (among them
``aten::relu``, ``aten::max``, ``aten::clamp``, which are arithmetic); here that list is emptied,
so an operator with no entry is reported in ``uncounted_ops``, never counted as zero in silence.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from collections.abc import Callable, Iterator

MACS_KEY = "macs:"
FLOPS_KEY = "flops:"
UNKNOWN_SHAPE_KEY = "unknown-shape:"


class OpCost(NamedTuple):
    macs: int
    flops: int


# A handle takes the traced node's input and output values (torch._C.Value) and returns its cost.
CostHandle = Callable[[list, list], OpCost]


class UnknownShape(Exception):
    """A tensor the trace did not give a complete shape for: the operator cannot be counted."""


# ---------------------------------------------------------------- shapes from traced values


def _is_tensor(value: Any) -> bool:
    return value.type().kind() == "TensorType"


def _shape(value: Any) -> list[int]:
    if not value.isCompleteTensor():
        raise UnknownShape
    return list(value.type().sizes())


def _numel(value: Any) -> int:
    return math.prod(_shape(value))


def _is_shape_arithmetic(value: Any) -> bool:
    """The tracer records ``n = H * W`` on sizes as ops on 0-d integer tensors: no model arithmetic."""
    if not _is_tensor(value):
        return True
    dtype = value.type().scalarType()
    return value.isCompleteTensor() and not value.type().sizes() and dtype in ("Long", "Int", "Short", "Char", "Byte")


def _int_list(value: Any) -> list[int]:
    constant = value.toIValue()
    if constant is None and value.node().kind() == "prim::ListConstruct":
        constant = [v.toIValue() for v in value.node().inputs()]
    if isinstance(constant, int):
        return [constant]
    if not isinstance(constant, (list, tuple)) or not all(isinstance(v, int) for v in constant):
        raise UnknownShape
    return list(constant)


# ---------------------------------------------------------------- handle factories


def free() -> CostHandle:
    """Data movement or bookkeeping: no arithmetic."""

    def handle(inputs: list, outputs: list) -> OpCost:
        return OpCost(0, 0)

    return handle


def elementwise(per_element: int = 1) -> CostHandle:
    """``per_element`` FLOPs for every element of the (first) output; shape arithmetic is free."""

    def handle(inputs: list, outputs: list) -> OpCost:
        out = outputs[0]
        if _is_shape_arithmetic(out):
            return OpCost(0, 0)
        return OpCost(0, per_element * _numel(out))

    return handle


def reduction(per_element: int = 1) -> CostHandle:
    """``per_element`` FLOPs for every element of the reduced input."""

    def handle(inputs: list, outputs: list) -> OpCost:
        if _is_shape_arithmetic(inputs[0]):
            return OpCost(0, 0)
        return OpCost(0, per_element * _numel(inputs[0]))

    return handle


def larger_side(per_element: int = 1) -> CostHandle:
    """For ``max``/``min``, which are a reduction (``max(x, dim)``) or elementwise (``max(x, y)``):
    one FLOP per element of whichever is larger, the input or the output."""

    def handle(inputs: list, outputs: list) -> OpCost:
        if _is_shape_arithmetic(outputs[0]):
            return OpCost(0, 0)
        sizes = [_numel(v) for v in (inputs[0], outputs[0]) if _is_tensor(v)]
        return OpCost(0, per_element * max(sizes))

    return handle


def multiply_accumulate(count_macs: Callable[[list, list], Any]) -> CostHandle:
    """A contraction: its MACs, and 2 FLOPs (multiply, add) per MAC."""

    def handle(inputs: list, outputs: list) -> OpCost:
        try:
            macs = count_macs(inputs, outputs)
        except TypeError as exc:  # fvcore's handles call prod(None) on an incomplete shape
            raise UnknownShape from exc
        if isinstance(macs, Counter):
            macs = sum(macs.values())
        macs = int(macs)
        return OpCost(macs, 2 * macs)

    return handle


def window(spatial_dims: int, kernel_arg: int = 1) -> CostHandle:
    """Fixed-window pooling: each output element reads a kernel-sized window, 1 FLOP per position."""

    def handle(inputs: list, outputs: list) -> OpCost:
        kernel = _int_list(inputs[kernel_arg])
        if len(kernel) == 1:  # kernel_size=3 means 3 along every spatial axis
            kernel = kernel * spatial_dims
        return OpCost(0, _numel(outputs[0]) * math.prod(kernel))

    return handle


def interpolation(taps: int) -> CostHandle:
    """Each output element is a weighted sum of ``taps`` inputs: taps multiplies + (taps - 1) adds."""
    return elementwise(2 * taps - 1)


def batch_norm() -> CostHandle:
    """Eval mode: running statistics fold into one scale and one shift per channel, 2 per element.
    Training mode computes the statistics first: mean and variance, 1 each, so 4 per element."""

    def handle(inputs: list, outputs: list) -> OpCost:
        training = inputs[5].toIValue()
        return OpCost(0, (4 if training else 2) * _numel(inputs[0]))

    return handle


# ---------------------------------------------------------------- MAC counters


def _matmul_macs(inputs: list, outputs: list) -> int:
    # Every output element is a dot product over the shared axis (the last of the first operand);
    # unlike fvcore's matmul handle this holds for broadcast batches and 1-D operands.
    a = _shape(inputs[0])
    return _numel(outputs[0]) * (a[-1] if a else 1)


def _batched_matmul_macs(inputs: list, outputs: list) -> int:
    # aten::baddbmm(self, batch1, batch2, beta, alpha)
    return _numel(outputs[0]) * _shape(inputs[1])[-1]


def _conv_macs(transposed_arg: int | None, transposed: bool = False) -> Callable[[list, list], int]:
    from fvcore.nn.jit_handles import conv_flop_count

    def count(inputs: list, outputs: list) -> int:
        is_transposed = inputs[transposed_arg].toIValue() if transposed_arg is not None else transposed
        return conv_flop_count(_shape(inputs[0]), _shape(inputs[1]), _shape(outputs[0]), transposed=bool(is_transposed))

    return count


# ---------------------------------------------------------------- the table

# name -> (rule stated for people, handle factory). One FLOP per output element for elementwise
# operators and activations, whatever their internal cost (a transcendental counts as one).
_ELEMENTWISE_1 = (
    "add", "sub", "rsub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod", "neg",
    "abs", "sign", "sgn", "pow", "square", "sqrt", "rsqrt", "reciprocal", "exp", "exp2", "expm1", "log",
    "log2", "log10", "log1p", "sin", "cos", "tan", "tanh", "atan2", "erf", "sigmoid", "hardsigmoid",
    "hardswish", "hardtanh", "relu", "relu6", "leaky_relu", "prelu", "rrelu", "elu", "selu", "celu",
    "gelu", "silu", "mish", "softplus", "softsign", "log_sigmoid", "threshold", "clamp", "clamp_min",
    "clamp_max", "clip", "maximum", "minimum", "fmax", "fmin", "floor", "ceil", "round", "trunc", "frac",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "logical_and", "logical_or", "logical_xor",
    "bitwise_not", "bitwise_and", "bitwise_or", "bitwise_xor", "__and__", "__or__", "__xor__",
    "where", "masked_fill", "isnan", "nan_to_num",
)
_ELEMENTWISE_2 = ("addcmul", "addcdiv", "lerp")  # a product or quotient, then an add
_REDUCTIONS_1 = ("mean", "sum", "amax", "amin", "prod", "argmax", "argmin", "all", "any", "cumsum", "cumprod")
_FREE = (
    # shape and layout
    "view", "view_as", "reshape", "reshape_as", "_reshape_alias", "flatten", "unflatten", "permute",
    "transpose", "t", "movedim", "expand", "expand_as", "squeeze", "unsqueeze", "contiguous", "clone",
    "alias", "as_strided", "detach", "lift_fresh", "to", "type_as", "copy_",
    # joining, splitting, selecting, padding
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "split", "split_with_sizes", "chunk",
    "tensor_split", "unbind", "unsafe_split", "unsafe_chunk", "slice", "select", "narrow", "index",
    "index_select", "gather", "take", "masked_select", "nonzero", "index_put", "embedding", "repeat",
    "tile", "flip", "roll", "constant_pad_nd", "pad", "reflection_pad1d", "reflection_pad2d",
    "replication_pad1d", "replication_pad2d", "replication_pad3d", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
    # creation and sizes
    "size", "numel", "dim", "Int", "Float", "Bool", "ScalarImplicit", "IntImplicit", "FloatImplicit",
    "arange", "zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like",
    "rand_like", "randn_like", "new_zeros", "new_ones", "new_empty", "new_full", "scalar_tensor", "tensor",
    "zero_", "fill_",
    # identity at inference
    "dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d",
    "dropout3d",
)
_IN_PLACE = _ELEMENTWISE_1 + _ELEMENTWISE_2 + ("squeeze", "unsqueeze", "dropout", "feature_dropout", "index_put")


def _aten(name: str) -> str:
    return f"aten::{name}"


def _build_table() -> tuple[dict[str, CostHandle], dict[str, str]]:
    from fvcore.nn.jit_handles import addmm_flop_jit, bmm_flop_jit, einsum_flop_jit, linear_flop_jit

    table: dict[str, CostHandle] = {}
    rules: dict[str, str] = {}

    def add(names: Iterator[str] | tuple[str, ...], handle: CostHandle, rule: str, in_place: bool = False) -> None:
        for name in names:
            variants = (name, f"{name}_") if in_place or name in _IN_PLACE else (name,)
            for variant in variants:
                table[_aten(variant)] = handle
                rules[_aten(variant)] = rule

    mac_rule = "MACs as fvcore counts them; FLOPs = 2 x MACs"
    add(("_convolution",), multiply_accumulate(_conv_macs(6)), mac_rule)
    add(("convolution",), multiply_accumulate(_conv_macs(6)), mac_rule)
    add(("conv1d", "conv2d", "conv3d"), multiply_accumulate(_conv_macs(None)), mac_rule)
    add(("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"), multiply_accumulate(_conv_macs(None, True)), mac_rule)
    add(("linear",), multiply_accumulate(linear_flop_jit), mac_rule)
    add(("addmm",), multiply_accumulate(addmm_flop_jit), mac_rule)
    add(("bmm",), multiply_accumulate(bmm_flop_jit), mac_rule)
    add(("einsum",), multiply_accumulate(einsum_flop_jit), mac_rule)
    add(("mm", "matmul"), multiply_accumulate(_matmul_macs), "MACs: output elements x shared axis; FLOPs = 2 x MACs")
    add(("baddbmm",), multiply_accumulate(_batched_matmul_macs), "MACs: output elements x shared axis; FLOPs = 2 x MACs")

    add(_ELEMENTWISE_1, elementwise(1), "1 per output element")
    add(_ELEMENTWISE_2, elementwise(2), "2 per output element (a product or quotient, then an add)")
    add(_REDUCTIONS_1, reduction(1), "1 per input element")
    add(("max", "min"), larger_side(1), "1 per element of the larger of input and output (reduction or elementwise)")
    add(("var", "std", "var_mean", "std_mean"), reduction(3), "3 per input element (mean, squared deviation, mean)")
    add(("norm", "linalg_vector_norm", "frobenius_norm"), reduction(2), "2 per input element (square, accumulate)")
    add(("logsumexp",), reduction(3), "3 per input element (exp, sum; the log is per output)")
    add(("softmax", "log_softmax", "_softmax", "_log_softmax"), elementwise(3),
        "3 per element (exp, sum, divide; the max subtracted for stability is not counted)")
    add(("batch_norm",), batch_norm(), "2 per element in eval (folded scale + shift); 4 in training (+ mean, variance)")
    add(("layer_norm", "group_norm", "instance_norm"), elementwise(4),
        "4 per element (mean, variance, then scale + shift with the affine folded in)")
    for n in (1, 2, 3):
        dims = f"{n}d"
        add((f"max_pool{dims}", f"avg_pool{dims}", f"max_pool{dims}_with_indices"), window(n),
            "1 per output element per kernel position (kernel-size rule)")
        add((f"adaptive_avg_pool{dims}", f"adaptive_max_pool{dims}"), reduction(1), "1 per input element")
    add(("upsample_linear1d",), interpolation(2), "3 per output element (2 taps: 2 multiplies, 1 add)")
    add(("upsample_bilinear2d", "grid_sampler"), interpolation(4), "7 per output element (4 taps: 4 multiplies, 3 adds)")
    add(("upsample_trilinear3d",), interpolation(8), "15 per output element (8 taps)")
    add(("upsample_bicubic2d",), interpolation(16), "31 per output element (16 taps)")
    add(_FREE, free(), "free: data movement, views, creation or identity at inference")
    return table, rules


OPERATOR_HANDLES, OPERATOR_RULES = _build_table()


# ---------------------------------------------------------------- results


@dataclass
class CostCount:
    """The counts of one traced forward pass, in total and per submodule (canonical names)."""

    macs: int
    flops: int
    macs_by_operator: dict[str, int]
    flops_by_operator: dict[str, int]
    uncounted_ops: dict[str, int]  # operator -> how many times it ran with no rule (must be empty)
    by_module: dict[str, OpCost] = field(default_factory=dict)  # "" is the root

    def module(self, path: str) -> OpCost:
        return self.by_module.get(path, OpCost(0, 0))


def count_params(module: Any) -> tuple[int, int]:
    """(total, trainable) parameters, each shared tensor counted once."""
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _fvcore_handle(name: str, handle: CostHandle) -> Callable[[list, list], Counter]:
    short = name.split("::", 1)[-1]
    if not short.startswith("__"):
        short = short.strip("_")  # relu_ is relu in place, _convolution is convolution: one row each

    def counted(inputs: list, outputs: list) -> Counter:
        try:
            cost = handle(inputs, outputs)
        except UnknownShape:
            return Counter({f"{UNKNOWN_SHAPE_KEY}{name}": 1})
        return Counter({f"{MACS_KEY}{short}": cost.macs, f"{FLOPS_KEY}{short}": cost.flops})

    return counted


@contextlib.contextmanager
def eval_mode(module: Any) -> Iterator[Any]:
    """Eval mode for the duration, then each submodule's own training flag back as it was."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in flags:
            m.training = training


def count_costs(module: Any, example: Any, handles: dict[str, CostHandle] | None = None) -> CostCount:
    """Trace ``module(example)`` once (eval mode, no grad) and count MACs and FLOPs per module.

    The module comes back as it was: fvcore's scope hooks are removed after the trace, nothing is
    registered on the module, and no parameter or buffer is touched.
    """
    import logging

    import torch
    from fvcore.nn import FlopCountAnalysis

    table = OPERATOR_HANDLES if handles is None else handles
    analysis = FlopCountAnalysis(module, (example,))
    analysis.clear_op_handles()
    # fvcore's default ignore list hides arithmetic (relu, max, clamp, ...): every aten operator
    # must meet a rule in our table or be reported.
    analysis._ignored_ops = set()
    analysis.set_op_handle(**{name: _fvcore_handle(name, handle) for name, handle in table.items()})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    fvcore_log = logging.getLogger("fvcore.nn.jit_analysis")
    with eval_mode(module), torch.no_grad():
        previous = fvcore_log.level
        fvcore_log.setLevel(logging.ERROR)
        try:
            per_module = analysis.by_module_and_operator()
        finally:
            fvcore_log.setLevel(previous)
    root = per_module[""]
    uncounted = Counter(analysis.unsupported_ops(""))
    for key, n in root.items():
        if key.startswith(UNKNOWN_SHAPE_KEY):
            uncounted[f"{key[len(UNKNOWN_SHAPE_KEY):]} (shape unknown)"] += n
    by_module = {
        name: OpCost(_sum(counter, MACS_KEY), _sum(counter, FLOPS_KEY)) for name, counter in per_module.items()
    }
    return CostCount(
        macs=by_module[""].macs,
        flops=by_module[""].flops,
        macs_by_operator=_by_operator(root, MACS_KEY),
        flops_by_operator=_by_operator(root, FLOPS_KEY),
        uncounted_ops=dict(sorted(uncounted.items())),
        by_module=by_module,
    )


def _sum(counter: Counter, prefix: str) -> int:
    return int(sum(v for k, v in counter.items() if k.startswith(prefix)))


def _by_operator(counter: Counter, prefix: str) -> dict[str, int]:
    rows = {k[len(prefix):]: int(v) for k, v in counter.items() if k.startswith(prefix) and v}
    return dict(sorted(rows.items(), key=lambda kv: -kv[1]))

