"""Parameters, MACs and FLOPs of a module, counted from one trace of its forward pass.

Conventions (the point of this module is numbers that can go into a paper):

- **MACs** are multiply-accumulates of the contraction operators only: convolution (every
  ``aten::_convolution``/``conv*d`` form, transposed too), ``linear``, ``addmm``, ``mm``, ``matmul``,
  ``bmm``, ``baddbmm``, ``mv``, ``addmv``, ``dot``, ``outer``, ``einsum``, and the products inside
  ``scaled_dot_product_attention`` and ``_native_multi_head_attention``. This is what fvcore's
  ``FlopCountAnalysis`` reports as "flops" for the convolutions and linear layers (its handles are
  reused here for those) and what papers such as ResNet and ECA-Net call FLOPs. Biases are not
  counted separately.
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
A custom ``torch.autograd.Function`` is traced as one ``prim::PythonOp`` node and reported as
``prim::PythonOp.<its class name>`` until a rule is registered for it with :func:`register_rule`.

Every count is integer arithmetic on shapes: no handle computes with floats, so nothing is rounded.
"""

from __future__ import annotations

import contextlib
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from collections.abc import Callable, Iterator

from attncli import progress

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
    """The tracer records ``n = H * W`` on sizes as ops on 0-d integer tensors, and ``d ** -0.5`` or
    ``torch.tensor(d).sqrt()`` on a size as ops on 0-d float tensors: no model arithmetic (Python
    computes them once per call, not once per element)."""
    if not _is_tensor(value):
        return True
    if not value.isCompleteTensor() or value.type().sizes():
        return False
    return value.type().scalarType() in ("Long", "Int", "Short", "Char", "Byte") or _from_sizes_only(value)


# Producers that end the search of _from_sizes_only: a graph input (the model's input, a parameter
# or a buffer) is model data; a size or a constant is not.
_MODEL_DATA = ("prim::Param", "prim::GetAttr")
_SIZES = ("prim::Constant", "aten::size", "aten::numel", "aten::dim")


def _from_sizes_only(value: Any) -> bool:
    """True when ``value`` is computed from tensor sizes and constants alone, never from model data."""
    seen: set[int] = set()
    stack = [value]
    while stack:
        value = stack.pop()
        if value.unique() in seen:
            continue
        seen.add(value.unique())
        kind = value.node().kind()
        if kind in _MODEL_DATA:
            return False
        if kind not in _SIZES:
            stack.extend(value.node().inputs())
    return True


def _is_none(value: Any) -> bool:
    return value.type().kind() == "NoneType"


def _int_list(value: Any) -> list[int]:
    constant = value.toIValue()
    if constant is None and value.node().kind() == "prim::ListConstruct":
        constant = [v.toIValue() for v in value.node().inputs()]
    if isinstance(constant, int):
        return [constant]
    if not isinstance(constant, (list, tuple)) or not all(isinstance(v, int) for v in constant):
        raise UnknownShape
    return list(constant)


def _optional_int_list(value: Any) -> list[int] | None:
    return None if _is_none(value) else _int_list(value)


def _list_items(value: Any) -> list:
    """The traced values of a list argument (``Tensor[]``, ``Tensor?[]``), as the trace built it."""
    if value.node().kind() != "prim::ListConstruct":
        raise UnknownShape
    return list(value.node().inputs())


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
        macs = operator.index(macs)  # an integer (numpy's too), never a float rounded in silence
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


# ---------------------------------------------------------------- attention, products, scatters, FFT


def _broadcast(*shapes: list[int]) -> list[int]:
    """The shape that ``shapes`` broadcast to (right-aligned; a size 1 stretches)."""
    width = max((len(s) for s in shapes), default=0)
    padded = [[1] * (width - len(s)) + list(s) for s in shapes]
    return [max(sizes) for sizes in zip(*padded)]


def _score_flops(scores: int, masked: bool) -> int:
    """Per attention score: the scale (1), the softmax (3, as ``softmax``), the mask (1, when there is one)."""
    return scores * (4 + (1 if masked else 0))


def scaled_dot_product_attention() -> CostHandle:
    """``softmax(q k^T * scale + mask) v``: two products, then per score the scale, softmax and mask.

    A causal call counts the full L x S products plus a mask, like any masked call: the reference
    (math) implementation computes every score and so does FlopCounterMode; a kernel that skips the
    blocks above the diagonal does less work than this count. ``dropout_p`` is not counted: dropout
    is identity at inference.
    """

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
        query, key, value = (_shape(v) for v in inputs[:3])
        batch_heads = math.prod(_shape(outputs[0])[:-2])  # the query's, after broadcasting (and GQA)
        scores = batch_heads * query[-2] * key[-2]  # L x S per batch and head
        macs = scores * query[-1] + scores * value[-1]  # q k^T over E, then weights x v over Ev
        masked = not _is_none(inputs[3]) or bool(inputs[5].toIValue())
        return OpCost(macs, 2 * macs + _score_flops(scores, masked))

    return handle


def native_multi_head_attention() -> CostHandle:
    """``nn.MultiheadAttention``'s inference fast path in one operator: the q, k, v projections, the
    attention of every head, the output projection; the weights averaged over heads when returned."""

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::_native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight,
        #     qkv_bias, proj_weight, proj_bias, mask, need_weights, average_attn_weights, mask_type)
        query, key = _shape(inputs[0]), _shape(inputs[1])
        embed, heads = inputs[3].toIValue(), inputs[4].toIValue()
        batch, length, source = math.prod(query[:-2]), query[-2], key[-2]
        projections = batch * (length + 2 * source + length) * embed * embed  # q; k and v; out
        products = 2 * batch * length * source * embed  # q k^T and weights x v: heads x head_dim = embed
        scores = batch * heads * length * source
        flops = 2 * (projections + products) + _score_flops(scores, not _is_none(inputs[9]))
        if inputs[10].toIValue() and inputs[11].toIValue():
            flops += scores  # the returned weights averaged over heads: 1 per score, as mean
        return OpCost(projections + products, flops)

    return handle


def _outer_macs(inputs: list, outputs: list) -> int:
    # Products with no shared axis: a contraction of length 1 per output element, as einsum("i,j->ij")
    # and x[:, None] @ y[None, :] count them.
    return _numel(outputs[0])


def _einsum_parse(equation: str, shapes: list[list[int]]) -> tuple[list[list[str]], list[str], dict[str, int]]:
    """Each operand's labels, the output's labels and each label's size (broadcast: the largest).
    The dimensions under ``...`` get labels by their position from the right, as they broadcast."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise UnknownShape

    def expand(term: str, width: int) -> list[str]:
        before, dots, after = term.partition("...")
        return [*before, *(f"...{width - 1 - i}" for i in range(width if dots else 0)), *after]

    labels: list[list[str]] = []
    sizes: dict[str, int] = {}
    widest = 0
    for term, shape in zip(terms, shapes):
        width = len(shape) - len(term.replace("...", ""))
        if width < 0 or (width and "..." not in term):
            raise UnknownShape
        widest = max(widest, width)
        operand = expand(term, width)
        labels.append(operand)
        for label, size in zip(operand, shape):
            sizes[label] = max(sizes.get(label, 1), size)
    if arrow:
        output = expand(rhs, widest)
    else:  # implicit output: the broadcast dimensions, then every letter that occurs exactly once
        letters = Counter(lhs.replace("...", "").replace(",", ""))
        output = expand("..." if widest else "", widest) + [c for c, n in letters.items() if n == 1]
    return labels, output, sizes


def einsum() -> CostHandle:
    """Pairwise contractions in torch's order; each costs the product of the sizes of every distinct
    label of its two operands (the einsum loop nest); a single operand is a sum, 1 FLOP per term."""

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::einsum(equation, tensors, *, path=None)
        operands = _list_items(inputs[1])
        labels, output, size = _einsum_parse(inputs[0].toIValue(), [_shape(v) for v in operands])
        terms = [set(operand) for operand in labels]
        if len(terms) == 1:  # a permutation or a diagonal is free; a sum costs one add per term
            return OpCost(0, math.prod(size[x] for x in terms[0]) if terms[0] - set(output) else 0)
        path = _optional_int_list(inputs[2]) if len(inputs) > 2 else None
        macs = 0

        def contract(a: set[str], b: set[str], later: list[set[str]]) -> set[str]:
            nonlocal macs
            macs += math.prod(size[x] for x in a | b)
            return (a | b) & set(output).union(*later)  # what the output or a later operand still needs

        if path is None:  # torch without opt_einsum: left to right
            result = terms[0]
            for n in range(1, len(terms)):
                result = contract(result, terms[n], terms[n + 1:])
        else:  # the path torch recorded (opt_einsum's): contract a pair, append the result at the end
            if len(path) != 2 * (len(terms) - 1):
                raise UnknownShape
            for i, j in zip(path[::2], path[1::2]):
                rest = [t for n, t in enumerate(terms) if n not in (i, j)]
                terms = [*rest, contract(terms[i], terms[j], rest)]
        return OpCost(macs, 2 * macs)

    return handle


def pairwise_distance() -> CostHandle:
    """``cdist``: every pair of rows, by the p-norm's definition, whichever kernel torch picks
    (for p = 2 it uses a matrix product past 25 rows; the count does not jump there)."""

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::cdist(x1, x2, p, compute_mode): (B, P, M) with (B, R, M) -> (B, P, R)
        pairs, width = _numel(outputs[0]), _shape(inputs[0])[-1]
        p = inputs[2].toIValue()
        if p in (0, 1) or math.isinf(p):  # subtract, then |d| (or d != 0), then add (or max)
            return OpCost(0, pairs * 3 * width)
        per_coordinate = 3 if p == 2 else 4  # subtract, square, add; or subtract, |d|, power, add
        return OpCost(0, pairs * (per_coordinate * width + 1))  # + the root of each pair

    return handle


def cosine_similarity() -> CostHandle:
    """``x1 . x2 / (max(|x1|, eps) max(|x2|, eps))``, torch's formula."""

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::cosine_similarity(x1, x2, dim, eps)
        common = _broadcast(_shape(inputs[0]), _shape(inputs[1]))
        length = common[inputs[2].toIValue()]
        # per element pair: the dot product (multiply, add) and two squared norms (square, add each);
        # per output: two roots, two clamps to eps, one product, one division
        return OpCost(0, _numel(outputs[0]) * (6 * length + 6))

    return handle


def scatter_add(source_arg: int, index_arg: int | None = None) -> CostHandle:
    """One add per element scattered: the index's elements (``scatter_add``), or the source's
    (``index_add``, times 2 when ``alpha`` != 1 scales it)."""

    def handle(inputs: list, outputs: list) -> OpCost:
        if index_arg is not None:  # aten::scatter_add(self, dim, index, src): src beyond index is unused
            return OpCost(0, _numel(inputs[index_arg]))
        alpha = inputs[4].toIValue() if len(inputs) > 4 else 1  # aten::index_add(self, dim, index, source, alpha)
        return OpCost(0, _numel(inputs[source_arg]) * (1 if alpha == 1 else 2))

    return handle


def scatter_reduce() -> CostHandle:
    """``scatter_reduce``: one operation (add, multiply, max or min) per source element the index
    selects; ``mean`` also divides each output element once."""

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::scatter_reduce(self, dim, index, src, reduce, include_self)
        flops = _numel(inputs[2])  # src beyond the index's shape is unused
        if inputs[4].toIValue() == "mean":
            flops += _numel(outputs[0])
        return OpCost(0, flops)

    return handle


def complex_aware(name: str, real_handle: CostHandle) -> CostHandle:
    """An elementwise operator that may act on complex tensors (a Fourier filter's spectrum times
    its complex weights), counted in real FLOPs: add, subtract and negate act on both parts (2);
    a complex product is 4 multiplies + 2 adds (6), a complex quotient 6 multiplies, 3 adds and 2
    divides (11), a product or quotient with a real operand 2; ``abs`` is 2 squares, an add and a
    root (4); any other operator 1 per part (2). Real tensors keep ``real_handle``'s count."""
    both_complex = {"mul": 6, "div": 11, "true_divide": 11}

    def handle(inputs: list, outputs: list) -> OpCost:
        operands = [v for v in inputs[:2] if _is_tensor(v) and _is_complex(v)]
        if not operands:
            return real_handle(inputs, outputs)
        if name == "abs":
            return OpCost(0, 4 * _numel(outputs[0]))
        per_element = both_complex.get(name, 2) if len(operands) == 2 else 2
        return OpCost(0, per_element * _numel(outputs[0]))

    return handle


def _is_complex(value: Any) -> bool:
    return (value.type().scalarType() or "").startswith("Complex")


def index_put() -> CostHandle:
    """A write is free; ``accumulate=True`` adds: one per element written (the indexed shape)."""

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::index_put(self, indices, values, accumulate)
        if not inputs[3].toIValue():
            return OpCost(0, 0)
        target = _shape(inputs[0])
        indices = _list_items(inputs[1])
        index_shapes, sliced = [], 1
        for axis, index in enumerate(indices):
            if _is_none(index):  # a ":" keeps the whole axis
                sliced *= target[axis]
            elif index.type().scalarType() in ("Bool", "Byte"):
                raise UnknownShape  # a mask writes as many elements as it holds True: known at run time only
            else:
                index_shapes.append(_shape(index))
        written = math.prod(_broadcast(*index_shapes)) * sliced * math.prod(target[len(indices):])
        return OpCost(0, written)

    return handle


def fold() -> CostHandle:
    """``col2im`` (``nn.Fold``) sums the blocks where they overlap: one add per value that lands on
    an output position already written; values in the padding are dropped, not added. Non-overlapping
    blocks (stride >= kernel) are pure data movement."""

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::col2im(self, output_size, kernel_size, dilation, padding, stride)
        geometry = [_int_list(v) for v in inputs[1:6]]
        landed, covered = 1, 1  # the blocks' grid is the product of one grid per axis
        for size, kernel, dilation, padding, stride in zip(*(g * 2 if len(g) == 1 else g for g in geometry)):
            blocks = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
            positions = [b * stride + k * dilation - padding for b in range(blocks) for k in range(kernel)]
            inside = [x for x in positions if 0 <= x < size]
            landed *= len(inside)
            covered *= len(set(inside))
        planes = math.prod(_shape(outputs[0])[:-2])  # batch x channels
        return OpCost(0, planes * (landed - covered))

    return handle


def fourier(real: str | None, inverse: bool) -> CostHandle:
    """FFTW's benchmark convention (https://www.fftw.org/speed/method.html): 5 N log2 N real FLOPs
    per complex transform of N points, half that for a real-data one. ``real`` is "input" (rfft,
    ihfft: real in, half spectrum out), "output" (irfft, hfft) or None (complex to complex).

    log2 N is taken as the sum of ceil(log2 n) over the transformed axes, so counts stay integers:
    exact when every n is a power of two, else the cost of that many radix-2 passes (an upper
    bound of the formula). A real transform's half is rounded up. The normalisation, when the
    ``norm`` mode applies one in this direction, is 1 multiply per real output value.
    """

    def handle(inputs: list, outputs: list) -> OpCost:
        # aten::fft_<kind>(self, n or s, dim, norm): 1-D, 2-D and n-D forms share this layout
        out = _shape(outputs[0])
        try:
            given = _optional_int_list(inputs[1])
            given_axes = len(given) if given is not None else None
        except UnknownShape:
            # s traced from sizes (irfft2(x, s=x.shape[-2:])): its values are the output's lengths,
            # which is all a complex or real-output transform needs; a real-input one needs s itself
            if real == "input":
                raise
            given, given_axes = None, len(_list_items(inputs[1]))
        dims = _optional_int_list(inputs[2])
        if dims is None:  # fftn: the last len(s) axes, or every axis
            dims = list(range(len(out) - given_axes, len(out))) if given_axes is not None else list(range(len(out)))
        dims = [d % len(out) for d in dims]
        if real == "input":  # the output holds n // 2 + 1 of n points: the length is s (n), else the input's
            lengths = given if given is not None else [_shape(inputs[0])[d] for d in dims]
        else:
            lengths = [out[d] for d in dims]
        points = math.prod(lengths)
        passes = sum((n - 1).bit_length() for n in lengths)  # ceil(log2 n) per axis
        per_transform = 5 * points * passes
        if real:
            per_transform = (per_transform + 1) // 2
        transforms = math.prod(size for d, size in enumerate(out) if d not in dims)
        flops = transforms * per_transform
        norm = inputs[3].toIValue()
        if norm == "ortho" or (norm == "forward") != inverse:  # inverse: None means "backward", scaled
            complex_out = outputs[0].type().scalarType().startswith("Complex")
            flops += _numel(outputs[0]) * (2 if complex_out else 1)
        return OpCost(0, flops)

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
    "where", "masked_fill", "tril", "triu", "isnan", "nan_to_num",
)
_ELEMENTWISE_2 = ("addcmul", "addcdiv", "lerp")  # a product or quotient, then an add
_COMPLEX_AWARE = ("add", "sub", "rsub", "neg", "mul", "div", "true_divide", "abs")  # complex_aware()
_REDUCTIONS_1 = ("mean", "sum", "amax", "amin", "prod", "argmax", "argmin", "all", "any", "cumsum", "cumprod")
_FREE = (
    # shape and layout
    "view", "view_as", "reshape", "reshape_as", "_reshape_alias", "flatten", "unflatten", "permute",
    "transpose", "t", "movedim", "expand", "expand_as", "squeeze", "unsqueeze", "contiguous", "clone",
    "alias", "as_strided", "detach", "lift_fresh", "to", "type_as", "copy_",
    # joining, splitting, selecting, padding
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "split", "split_with_sizes", "chunk",
    "tensor_split", "unbind", "unsafe_split", "unsafe_chunk", "slice", "select", "narrow", "index",
    "index_select", "gather", "take", "masked_select", "nonzero", "embedding", "repeat",
    "repeat_interleave", "tile", "flip", "roll", "unfold", "im2col", "diagonal", "diag_embed", "swapaxes",
    "swapdims", "moveaxis", "broadcast_to", "broadcast_tensors", "meshgrid", "constant_pad_nd", "pad",
    "reflection_pad1d", "reflection_pad2d",
    "replication_pad1d", "replication_pad2d", "replication_pad3d", "pixel_shuffle", "pixel_unshuffle",
    "channel_shuffle", "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d",
    # creation and sizes
    "size", "numel", "dim", "Int", "Float", "Bool", "ScalarImplicit", "IntImplicit", "FloatImplicit",
    "arange", "linspace", "logspace", "eye", "tril_indices", "triu_indices", "zeros", "ones", "empty", "full",
    "zeros_like", "ones_like", "empty_like", "full_like",
    "rand_like", "randn_like", "new_zeros", "new_ones", "new_empty", "new_full", "scalar_tensor", "tensor",
    "zero_", "fill_",
    # complex numbers as pairs of reals, and views of them
    "view_as_real", "view_as_complex", "real", "imag", "conj", "resolve_conj", "resolve_neg",
    "fft_fftshift", "fft_ifftshift", "fft_fftfreq", "fft_rfftfreq",
    # identity at inference
    "dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d",
    "dropout3d",
)
_IN_PLACE = _ELEMENTWISE_1 + _ELEMENTWISE_2 + ("squeeze", "unsqueeze", "dropout", "feature_dropout")
# The FFT operators: (real side, inverse direction) of each, for fourier()
_FFT = {
    **{f"fft_{name}{axes}": (None, name == "ifft") for name in ("fft", "ifft") for axes in ("", "2", "n")},
    **{f"fft_{name}{axes}": ("input", name == "ihfft") for name in ("rfft", "ihfft") for axes in ("", "2", "n")},
    **{f"fft_{name}{axes}": ("output", name == "irfft") for name in ("irfft", "hfft") for axes in ("", "2", "n")},
}


def _aten(name: str) -> str:
    return f"aten::{name}"


def _build_table() -> tuple[dict[str, CostHandle], dict[str, str]]:
    from fvcore.nn.jit_handles import addmm_flop_jit, bmm_flop_jit, linear_flop_jit

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
    shared_axis = "MACs: output elements x shared axis; FLOPs = 2 x MACs"
    add(("mm", "matmul", "mv", "dot"), multiply_accumulate(_matmul_macs), shared_axis)
    add(("baddbmm", "addmv"), multiply_accumulate(_batched_matmul_macs), shared_axis)
    add(("outer", "ger"), multiply_accumulate(_outer_macs),
        "MACs: 1 per output element (no shared axis: a contraction of length 1, as einsum i,j->ij); FLOPs = 2 x MACs")
    add(("einsum",), einsum(),
        "MACs: per pairwise contraction, the product of the sizes of every distinct index of its two operands "
        "(the loop nest); pairs left to right, or along the path torch recorded when opt_einsum chose one; "
        "FLOPs = 2 x MACs; one operand: 1 FLOP per term summed, free when nothing is summed")
    add(("scaled_dot_product_attention",), scaled_dot_product_attention(),
        "MACs: batch x heads x L x S x (E + Ev) (q k^T, then weights x v); FLOPs = 2 x MACs + 4 per score "
        "(scale 1, softmax 3) + 1 per score with attn_mask or is_causal (causal counts the full L x S "
        "products); dropout_p not counted (identity at inference)")
    add(("_native_multi_head_attention",), native_multi_head_attention(),
        "MACs: q, k, v and output projections (E x E per token each) + batch x L x S x E twice (q k^T, "
        "weights x v over all heads); FLOPs = 2 x MACs + 4 per score (scale, softmax) + 1 per score with a "
        "mask + 1 per score when the weights are returned averaged over heads")

    add(tuple(n for n in _ELEMENTWISE_1 if n not in _COMPLEX_AWARE), elementwise(1), "1 per output element")
    for name in _COMPLEX_AWARE:
        add((name,), complex_aware(name, elementwise(1)),
            "1 per output element; on complex tensors in real FLOPs: add/sub/neg 2, product 6 (2 by a real), "
            "quotient 11 (2 by a real), abs 4")
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
    add(("cdist",), pairwise_distance(),
        "per pair of rows and coordinate: 3 (subtract, square, add) + 1 root per pair for p = 2; 3 for p = 0, "
        "1, inf (subtract, abs or compare, add or max); 4 + 1 root per pair for other p; by definition, "
        "whichever kernel torch picks")
    add(("cosine_similarity",), cosine_similarity(),
        "6 per element pair along dim (dot product, two squared norms) + 6 per output element (two roots, "
        "two clamps to eps, product, division)")
    add(("scatter_add",), scatter_add(3, index_arg=2), "1 per index element (an add)", in_place=True)
    add(("index_add",), scatter_add(3), "1 per source element (an add); 2 when alpha != 1", in_place=True)
    add(("scatter_reduce",), scatter_reduce(),
        "1 per index element (the reduction's add, multiply, max or min); mean: + 1 per output element (divide)",
        in_place=True)
    add(("index_put",), index_put(),
        "free when it writes; accumulate=True: 1 per element written (the indexed shape); a boolean mask "
        "index is reported as shape unknown (how many it writes is known at run time only)", in_place=True)
    add(("col2im",), fold(),
        "1 per value added onto an output position already written (overlapping blocks); values in the "
        "padding are dropped; non-overlapping blocks are free")
    for name, (real, inverse) in _FFT.items():
        add((name,), fourier(real, inverse),
            "FFTW's convention (https://www.fftw.org/speed/method.html): 5 N log2 N per complex transform of "
            "N points, half (rounded up) per real one (rfft, irfft, hfft, ihfft forms); log2 N = the sum of "
            "ceil(log2 n) over the transformed axes (exact at powers of two, an upper bound otherwise); + 1 per "
            "real output value when the norm mode scales in that direction")
    add(_FREE, free(), "free: data movement, views, creation or identity at inference")
    return table, rules


OPERATOR_HANDLES, OPERATOR_RULES = _build_table()


# ---------------------------------------------------------------- rules added at run time

# Rules added with register_rule: kept apart from the built-in table, which docs/flop-rules.md shows.
_REGISTERED_HANDLES: dict[str, CostHandle] = {}
_REGISTERED_RULES: dict[str, str] = {}
_RULE_NAME = re.compile(r"(?:prim::PythonOp\.[A-Za-z_]\w*|(?!prim::)[A-Za-z_]\w*::[A-Za-z_]\w*)\Z")


def register_rule(name: str, handle: CostHandle, rule: str, *, replace: bool = False) -> None:
    """Count operator ``name`` with ``handle`` in every later :func:`count_costs` call of this process.

    ``name`` is an operator as the trace names it: ``"aten::foo"`` (or a custom op's ``"ns::foo"``),
    or ``"prim::PythonOp.MyFn"`` for a ``torch.autograd.Function`` subclass ``MyFn`` (the name
    ``uncounted_ops`` reports it under). ``handle(inputs, outputs)`` gets the traced node's values and
    returns ``OpCost(macs, flops)`` in integers; ``rule`` states the rule for people, as the table's do.
    A name that already has a rule (built in or registered) is refused unless ``replace`` is true.
    """
    from attncli.errors import UsageError

    if not isinstance(name, str) or not _RULE_NAME.match(name):
        raise UsageError(
            f"cannot register a counting rule for {name!r}: name an operator as the trace does, "
            "'aten::foo' (or 'namespace::foo'), or 'prim::PythonOp.ClassName' for a torch.autograd.Function"
        )
    if not callable(handle):
        raise UsageError(f"the counting rule for {name} needs a handle(inputs, outputs) -> OpCost, not {handle!r}")
    if not isinstance(rule, str) or not rule.strip():
        raise UsageError(f"the counting rule for {name} needs its rule stated in words (rule='...')")
    existing = _REGISTERED_RULES.get(name, OPERATOR_RULES.get(name))
    if existing is not None and not replace:
        raise UsageError(f"{name} already has a counting rule ({existing}); pass replace=True to replace it")
    _REGISTERED_HANDLES[name] = _checked(name, handle)
    _REGISTERED_RULES[name] = rule.strip()


def unregister_rule(name: str) -> None:
    """Remove a rule added with :func:`register_rule` (the built-in table does not change)."""
    from attncli.errors import UsageError

    if name not in _REGISTERED_HANDLES:
        raise UsageError(f"no counting rule was registered for {name!r}")
    del _REGISTERED_HANDLES[name], _REGISTERED_RULES[name]


def registered_rules() -> dict[str, str]:
    """The rules added with :func:`register_rule`: operator name -> rule stated for people."""
    return dict(_REGISTERED_RULES)


def _checked(name: str, handle: CostHandle) -> CostHandle:
    """A registered handle is the user's code: its exceptions and results are checked here."""
    from attncli.errors import UsageError, user_code_error

    def checked(inputs: list, outputs: list) -> OpCost:
        try:
            cost = handle(inputs, outputs)
        except UnknownShape:
            raise
        except Exception as exc:
            raise user_code_error(f"the counting rule registered for {name}", exc) from exc
        try:
            macs, flops = cost
            macs, flops = operator.index(macs), operator.index(flops)
        except (TypeError, ValueError):
            macs = flops = -1
        if macs < 0 or flops < 0:
            raise UsageError(
                f"the counting rule registered for {name} returned {cost!r}: "
                "it must return OpCost(macs, flops), two integers >= 0"
            )
        return OpCost(macs, flops)

    return checked


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

    ``handles`` (operator name -> handle) replaces the whole table when given; by default it is the
    built-in ``OPERATOR_HANDLES`` plus the rules added with :func:`register_rule`.

    The module comes back as it was: fvcore's scope hooks are removed after the trace, nothing is
    registered on the module, and no parameter or buffer is touched.
    """
    import logging

    import torch
    from fvcore.nn import FlopCountAnalysis

    table = {**OPERATOR_HANDLES, **_REGISTERED_HANDLES} if handles is None else handles
    analysis = FlopCountAnalysis(module, (example,))
    analysis.clear_op_handles()
    # fvcore's default ignore list hides arithmetic (relu, max, clamp, ...): every aten operator
    # must meet a rule in our table or be reported.
    analysis._ignored_ops = set()
    analysis.set_op_handle(**{name: _fvcore_handle(name, handle) for name, handle in table.items()})
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    fvcore_log = logging.getLogger("fvcore.nn.jit_analysis")
    with eval_mode(module), torch.no_grad(), progress.step("tracing to count MACs and FLOPs"):
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

