"""The operator rules attention code needs (issue 13): each one on a tiny module with its count
derived by hand here, cross-checked against torch's FlopCounterMode where that counter knows the
operator (its FLOPs for a product are 2 x MACs), and the public way to add a rule."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from attncli.counting import OpCost, count_costs, elementwise, register_rule, registered_rules, unregister_rule
from attncli.errors import UsageError, UserCodeError


class Call(nn.Module):
    """A module whose forward is ``fn``: one operator under test per module."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def counted(fn, x):
    costs = count_costs(Call(fn), x)
    assert costs.uncounted_ops == {}
    return costs


def flop_counter_mode_flops(fn, *args) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn(*args)
    return counter.get_total_flops()


# ------------------------------------------------------------------ scaled dot-product attention


def test_sdpa_two_products_then_scale_and_softmax_per_score():
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    costs = counted(lambda x: F.scaled_dot_product_attention(x, k, v), q)
    scores = 2 * 3 * 5 * 7  # batch x heads x L x S = 210
    qk, av = scores * 4, scores * 6  # q k^T over E = 4; weights x v over Ev = 6
    assert costs.macs == qk + av == 2100
    assert costs.flops == 2 * 2100 + scores * (1 + 3) == 5040  # scale 1, softmax 3 per score
    assert 2 * costs.macs == flop_counter_mode_flops(F.scaled_dot_product_attention, q, k, v)


def test_sdpa_mask_adds_one_per_score():
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    mask = torch.randn(5, 7)
    costs = counted(lambda x: F.scaled_dot_product_attention(x, k, v, attn_mask=mask), q)
    assert costs.flops == 2 * 2100 + 210 * (1 + 3 + 1)  # + the mask add: 5250


def test_sdpa_causal_counts_the_full_product_and_a_mask():
    q = torch.randn(1, 2, 6, 4)  # self-attention: L = S = 6
    costs = counted(lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True), q)
    scores = 2 * 6 * 6  # every score, the ones above the diagonal too: 72
    assert costs.macs == scores * (4 + 4) == 576
    assert costs.flops == 2 * 576 + scores * 5 == 1512
    # the reference computation, written out: FlopCounterMode counts its two full products (it
    # counts 0 for this causal call itself, which CPU torch sends to a flash kernel it does not know)
    reference = flop_counter_mode_flops(lambda: (q @ q.transpose(-2, -1)).softmax(-1) @ q)
    assert 2 * costs.macs == reference


# ------------------------------------------------------------------ nn.MultiheadAttention fast path


@pytest.mark.parametrize("need_weights, averaged_weights", [(False, 0), (True, 1)])
def test_native_multi_head_attention_by_hand_and_against_the_slow_path(need_weights, averaged_weights):
    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = nn.MultiheadAttention(16, 2, batch_first=True)  # E = 16, 2 heads of 8

        def forward(self, t):
            return self.mha(t, t, t, need_weights=need_weights)[0]

    module, x = SelfAttention().eval(), torch.randn(2, 5, 16)  # batch 2, L = S = 5
    costs = count_costs(module, x)
    assert costs.uncounted_ops == {}
    assert set(costs.macs_by_operator) == {"native_multi_head_attention"}  # the fused inference path
    projections = 2 * (5 + 5 + 5 + 5) * 16 * 16  # q, k, v in, out: E x E per token each = 10,240
    products = 2 * (2 * 5 * 5 * 16)  # q k^T and weights x v: batch x L x S x (heads x head_dim) = 1,600
    assert costs.macs == projections + products == 11_840
    scores = 2 * 2 * 5 * 5  # batch x heads x L x S = 100
    assert costs.flops == 2 * 11_840 + scores * 4 + averaged_weights * scores
    # FlopCounterMode does not know the fused operator (it counts 0); the same module in training
    # mode (dropout 0) takes the slow path, and with need_weights its products are linear and bmm
    # (without, SDPA's CPU flash kernel, which FlopCounterMode does not count either)
    module.train()
    assert 2 * costs.macs == flop_counter_mode_flops(lambda: module.mha(x, x, x, need_weights=True))


# ------------------------------------------------------------------ mv, dot, outer


def test_mv_dot_and_outer_against_their_matrix_product_forms():
    a = torch.randn(8, 16)
    mv = counted(lambda x: torch.mv(a, x), torch.randn(16))
    assert mv.macs == 8 * 16 and mv.flops == 2 * 128  # each of 8 outputs: a dot product of 16
    assert 2 * mv.macs == flop_counter_mode_flops(lambda v: a @ v[:, None], torch.randn(16))  # as mm
    dot = counted(lambda x: torch.dot(x, x), torch.randn(16))
    assert dot.macs == 16
    y = torch.randn(4)
    outer = counted(lambda x: torch.outer(x, y), torch.randn(3))
    assert outer.macs == 3 * 4 and outer.flops == 24  # |i| x |j| products, a contraction of length 1
    assert 2 * outer.macs == flop_counter_mode_flops(lambda x: x[:, None] @ y[None, :], torch.randn(3))


# ------------------------------------------------------------------ einsum


def test_einsum_attention_scores_exactly():
    # fvcore's own einsum handle gives 29,805,000 here (a float through numpy's einsum_path)
    q = torch.randn(1, 12, 197, 64)
    costs = counted(lambda x: torch.einsum("bhqd,bhkd->bhqk", x, x), q)
    assert costs.macs == 1 * 12 * 197 * 197 * 64 == 29_805_312
    assert type(costs.macs) is int and costs.flops == 2 * 29_805_312
    assert 2 * costs.macs == flop_counter_mode_flops(lambda: torch.einsum("bhqd,bhkd->bhqk", q, q))


def test_einsum_outer_product_counts_every_product():
    y = torch.randn(7)
    costs = counted(lambda x: torch.einsum("i,j->ij", x, y), torch.randn(5))
    assert costs.macs == 5 * 7  # |i| x |j|, not half of it


def test_einsum_two_operands_against_an_explicit_loop():
    b, h, n, m, d = 2, 3, 4, 5, 6
    q, k = torch.randn(b, h, n, d), torch.randn(b, h, m, d)
    out, loop_macs = torch.zeros(b, h, n, m), 0
    for i0 in range(b):
        for i1 in range(h):
            for i2 in range(n):
                for i3 in range(m):
                    for i4 in range(d):
                        out[i0, i1, i2, i3] += q[i0, i1, i2, i4] * k[i0, i1, i3, i4]
                        loop_macs += 1
    assert torch.allclose(out, torch.einsum("bhqd,bhkd->bhqk", q, k), atol=1e-5)  # the loop is the einsum
    for equation in ("bhqd,bhkd->bhqk", "...qd,...kd->...qk", "bhqd,bhkd"):  # explicit, ellipsis, implicit
        assert counted(lambda x, e=equation: torch.einsum(e, x, k), q).macs == loop_macs == 720


def test_einsum_three_operands_left_to_right_against_an_explicit_loop(monkeypatch):
    monkeypatch.setattr(torch.backends.opt_einsum, "enabled", False)  # else opt_einsum's path (tested below)
    i, j, k, m = 2, 3, 5, 7
    a, b, c = torch.randn(i, j), torch.randn(j, k), torch.randn(k, m)
    ab, first = torch.zeros(i, k), 0
    for x in range(i):  # torch contracts a with b first ...
        for y in range(j):
            for z in range(k):
                ab[x, z] += a[x, y] * b[y, z]
                first += 1
    abc, second = torch.zeros(i, m), 0
    for x in range(i):  # ... then the result with c
        for z in range(k):
            for w in range(m):
                abc[x, w] += ab[x, z] * c[z, w]
                second += 1
    assert torch.allclose(abc, a @ b @ c, atol=1e-5)
    costs = counted(lambda t: torch.einsum("ij,jk,kl->il", t, b, c), a)
    assert costs.macs == first + second == 30 + 70
    assert 2 * costs.macs == flop_counter_mode_flops(lambda: torch.einsum("ij,jk,kl->il", a, b, c))


@pytest.mark.parametrize("path, macs", [
    (None, 2 * 3 * 5 + 2 * 5 * 7 + 2 * 7 * 11),  # left to right: ab, abc, abcd = 254
    ([0, 1, 0, 1, 0, 1], 2 * 3 * 5 + 5 * 7 * 11 + 2 * 5 * 11),  # opt_einsum order: ab, then cd, then both = 525
    ([1, 2, 0, 2, 0, 1], 3 * 5 * 7 + 2 * 3 * 7 + 2 * 7 * 11),  # bc, then a(bc), then d with it = 301
])
def test_einsum_follows_the_path_torch_records(path, macs):
    # torch.einsum passes opt_einsum's path to aten::einsum when opt_einsum is installed; the same
    # operator is called here with a path directly, as torch would
    a, b, c, d = torch.randn(2, 3), torch.randn(3, 5), torch.randn(5, 7), torch.randn(7, 11)
    costs = counted(lambda t: torch._VF.einsum("ij,jk,kl,lm->im", [t, b, c, d], path=path), a)
    assert costs.macs == macs
    assert 2 * macs == flop_counter_mode_flops(lambda: torch._VF.einsum("ij,jk,kl,lm->im", [a, b, c, d], path=path))


def test_einsum_of_one_operand_is_a_sum_or_free():
    x = torch.randn(3, 4)
    assert counted(lambda t: torch.einsum("ij->j", t), x).flops == 12  # 1 per term summed, as sum
    assert counted(lambda t: torch.einsum("ij->ji", t), x).flops == 0  # a permutation


# ------------------------------------------------------------------ distances and similarities


@pytest.mark.parametrize("p, per_pair", [(2.0, 3 * 3 + 1), (1.0, 3 * 3), (float("inf"), 3 * 3), (3.0, 4 * 3 + 1)])
def test_cdist_by_definition(p, per_pair):
    # (1, 4, 3) against (1, 5, 3): 20 pairs of 3 coordinates; p = 2: subtract, square, add per
    # coordinate, then a root; p = 1 or inf: subtract, abs, add or max; other p: + a power, + a root
    y = torch.randn(1, 5, 3)
    assert counted(lambda x: torch.cdist(x, y, p=p), torch.randn(1, 4, 3)).flops == 20 * per_pair


def test_cdist_counts_the_same_past_the_size_where_torch_switches_to_a_matrix_product():
    costs = counted(lambda x: torch.cdist(x, x), torch.randn(1, 30, 4))  # 30 > 25 rows: torch uses mm
    assert costs.macs == 0 and costs.flops == 30 * 30 * (3 * 4 + 1)


def test_cosine_similarity_with_broadcasting():
    y = torch.randn(1, 8, 16)
    costs = counted(lambda x: F.cosine_similarity(x, y, dim=-1), torch.randn(2, 1, 16))
    # output (2, 8): 16 cosines over 16 element pairs; per pair: multiply + add (dot product),
    # square + add twice (norms); per cosine: 2 roots, 2 clamps to eps, a product, a division
    assert costs.flops == 16 * (6 * 16 + 6) == 1632 and costs.macs == 0


# ------------------------------------------------------------------ scatters and accumulating writes


def test_scatter_add_and_index_add_count_one_add_per_element_added():
    index = torch.tensor([[0, 1, 2], [3, 0, 1]])  # (2, 3): 6 elements added
    scatter = counted(lambda x: torch.zeros(4, 3).scatter_add(0, index, x), torch.randn(3, 3))
    assert scatter.flops == 6  # src rows beyond the index are not read
    in_place = counted(lambda x: torch.zeros(4, 3).scatter_add_(0, index, x[:2]), torch.randn(3, 3))
    assert in_place.flops == 6
    rows = torch.tensor([0, 2])
    added = counted(lambda x: torch.zeros(4, 3).index_add(0, rows, x), torch.randn(2, 3))
    assert added.flops == 6  # every source element is added
    scaled = counted(lambda x: torch.zeros(4, 3).index_add_(0, rows, x, alpha=2.0), torch.randn(2, 3))
    assert scaled.flops == 12  # a multiply by alpha, then the add


def test_index_put_accumulate_counts_one_add_per_element_written():
    rows = torch.tensor([0, 1, 1])

    def accumulate(x, accumulate=True):
        return torch.zeros(4, 16).index_put_((rows,), x, accumulate=accumulate)

    assert counted(accumulate, torch.randn(3, 16)).flops == 3 * 16  # 3 rows of 16
    assert counted(accumulate, torch.randn(16)).flops == 3 * 16  # values broadcast to the indexed shape
    assert counted(lambda x: accumulate(x, False), torch.randn(3, 16)).flops == 0  # a write
    i, j = torch.tensor([[0], [2]]), torch.tensor([[1, 2, 4]])  # broadcast to (2, 3) positions of (4, 5)

    def two_axes(x):
        return torch.zeros(4, 5, 6).index_put_((i, j), x, accumulate=True)

    assert counted(two_axes, torch.randn(6)).flops == 2 * 3 * 6  # each position holds 6 elements


def test_index_put_accumulate_with_a_mask_is_reported_not_guessed():
    def masked(x):
        return torch.zeros(4, 3).index_put_((x[:, 0] > 0,), x[0], accumulate=True)

    costs = count_costs(Call(masked), torch.randn(4, 3))
    assert costs.uncounted_ops == {"aten::index_put_ (shape unknown)": 1}


# ------------------------------------------------------------------ FFT


def test_fft_follows_fftw_convention_at_powers_of_two():
    x = torch.randn(1, 2, 8, 8)
    # rfft2 of 8 x 8 real points: N = 64, log2 N = 6; 2.5 N log2 N = 960 per image, 2 images
    assert counted(lambda t: torch.fft.rfft2(t), x).flops == 2 * 960
    # irfft2 back: the same 1920, + the 1/N scale on each of the 2 x 64 real outputs
    spectrum = torch.fft.rfft2(x)
    assert counted(lambda t: torch.fft.irfft2(t), spectrum).flops == 1920 + 128
    # ortho on the forward transform scales its 2 x 8 x 5 = 80 complex outputs: 2 real values each
    assert counted(lambda t: torch.fft.rfft2(t, norm="ortho"), x).flops == 1920 + 80 * 2
    # fft along the last axis of (8, 16): 8 complex transforms of 16 points, 5 x 16 x 4 = 320 each
    y = torch.randn(8, 16)
    assert counted(lambda t: torch.fft.fft(t), y).flops == 8 * 320
    assert counted(lambda t: torch.fft.ifft(t), y).flops == 8 * 320 + 2 * 128  # + 1/N on 128 complex values


def test_fft_of_a_length_that_is_not_a_power_of_two_rounds_log2_up():
    assert counted(lambda t: torch.fft.fft(t), torch.randn(12)).flops == 5 * 12 * 4  # ceil(log2 12) = 4
    assert counted(lambda t: torch.fft.rfft(t), torch.randn(7)).flops == 53  # 5 x 7 x 3 = 105, half up
    # fftn over (3, 4): the log is the sum over axes, ceil(log2 3) + log2 4 = 2 + 2
    assert counted(lambda t: torch.fft.fftn(t), torch.randn(3, 4)).flops == 5 * 12 * 4
    # rfft with n = 16 pads the 10 points: the transform length is n
    assert counted(lambda t: torch.fft.rfft(t, n=16), torch.randn(10)).flops == 5 * 16 * 4 // 2


def test_a_global_filter_through_complex_views_counts_only_its_arithmetic():
    weight = torch.randn(8, 5, 2)

    def global_filter(x):  # GFNet's block: rfft2, a learned complex filter, irfft2
        spectrum = torch.fft.rfft2(x, norm="ortho")
        return torch.fft.irfft2(spectrum * torch.view_as_complex(weight), s=(8, 8), norm="ortho")

    costs = counted(global_filter, torch.randn(1, 4, 8, 8))
    assert costs.flops_by_operator["fft_rfft2"] == 4 * 960 + 2 * 4 * 40  # + ortho scale on 160 complex values
    assert costs.flops_by_operator["fft_irfft2"] == 4 * 960 + 4 * 64  # + ortho scale on 256 real values
    assert "view_as_complex" not in costs.flops_by_operator  # a view is free


# ------------------------------------------------------------------ unfold and fold


def test_unfold_is_free_and_fold_adds_where_blocks_overlap():
    unfold = nn.Unfold(3, padding=1, stride=2)
    assert counted(unfold, torch.randn(1, 2, 8, 8)).flops == 0
    fold = nn.Fold((8, 8), 3, padding=1, stride=2)
    cols = torch.randn(1, 2 * 9, 16)
    # per axis: 4 blocks of 3 at rows -1..1, 1..3, 3..5, 5..7: 12 values, 1 in the padding, 11 on 8
    # rows; per plane 11 x 11 = 121 values land on 8 x 8 = 64 positions: 57 adds; 2 channels
    assert counted(fold, cols).flops == 2 * (121 - 64) == 114
    # the same from torch itself: fold ones, and each position received (count - 1) adds
    hits = fold(torch.ones_like(cols))
    assert int(hits.sum() - (hits > 0).sum()) == 114
    patches = nn.Fold((8, 8), 2, stride=2)  # non-overlapping: pure data movement
    assert counted(patches, torch.randn(1, 2 * 4, 16)).flops == 0


# ------------------------------------------------------------------ creation and movement


def test_creation_and_movement_operators_are_free():
    def positions(x):  # a relative-position table as attention code builds one
        steps = torch.linspace(-1, 1, 4)
        grid = torch.stack(torch.meshgrid(steps, steps, indexing="ij"))
        eye = torch.eye(4)
        return x.repeat_interleave(2, dim=0), grid, eye

    costs = counted(positions, torch.randn(3, 4))
    assert costs.flops == 0 and costs.macs == 0


# ------------------------------------------------------------------ scalars from sizes


@pytest.mark.parametrize("scale", [
    lambda a: a / math.sqrt(a.shape[-1]),
    lambda a: a * a.shape[-1] ** -0.5,  # the tracer records the power on the size as an operator
    lambda a: a / torch.tensor(a.shape[-1]).sqrt(),
])
def test_a_scale_from_a_size_costs_one_per_element_and_nothing_for_the_scalar(scale):
    costs = counted(lambda x: scale(x @ x.transpose(-2, -1)), torch.randn(1, 2, 8, 4))
    scores = 2 * 8 * 8
    assert costs.flops == 2 * (scores * 4) + scores  # the scores' product, then 1 per score


def test_a_scalar_parameter_is_model_arithmetic():
    class Temperature(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.log_t = nn.Parameter(torch.tensor(0.5))

        def forward(self, x):
            return x * self.log_t.exp()

    costs = count_costs(Temperature(), torch.randn(2, 8))
    assert costs.flops == 1 + 16  # exp of the parameter once, then the product


# ------------------------------------------------------------------ custom autograd functions


class ScaledShift(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2 + 1

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


@pytest.fixture
def scaled_shift_rule():
    name = "prim::PythonOp.ScaledShift"
    register_rule(name, elementwise(2), "2 per output element (multiply, add)")
    yield name
    unregister_rule(name)


def test_a_custom_function_is_reported_by_class_name_until_a_rule_is_registered():
    x = torch.randn(3, 5)
    before = count_costs(Call(ScaledShift.apply), x)
    assert before.uncounted_ops == {"prim::PythonOp.ScaledShift": 1}
    name = "prim::PythonOp.ScaledShift"
    register_rule(name, elementwise(2), "2 per output element (multiply, add)")  # as docs/counting-rules.md
    try:
        after = count_costs(Call(ScaledShift.apply), x)
        assert after.uncounted_ops == {}
        assert after.flops == 2 * 3 * 5 and after.flops_by_operator == {"PythonOp.ScaledShift": 30}
        assert registered_rules() == {name: "2 per output element (multiply, add)"}
    finally:
        unregister_rule(name)
    assert count_costs(Call(ScaledShift.apply), x).uncounted_ops == {name: 1}


def test_register_rule_counts_an_aten_operator_and_refuses_mistakes(scaled_shift_rule):
    def erfinv(inputs, outputs):
        return OpCost(0, math.prod(outputs[0].type().sizes()))

    register_rule("aten::erfinv", erfinv, "1 per output element")
    try:
        assert counted(torch.erfinv, torch.rand(4, 5) - 0.5).flops == 20
        with pytest.raises(UsageError, match="already has a counting rule"):
            register_rule("aten::erfinv", erfinv, "again")
        with pytest.raises(UsageError, match="already has a counting rule"):
            register_rule("aten::softmax", erfinv, "a built-in rule is not replaced by accident")
    finally:
        unregister_rule("aten::erfinv")
    for bad in ("erfinv", "prim::ListConstruct", "aten::", "prim::PythonOp."):
        with pytest.raises(UsageError, match="cannot register"):
            register_rule(bad, erfinv, "1 per output element")
    with pytest.raises(UsageError, match="stated in words"):
        register_rule("aten::erfinv", erfinv, " ")
    with pytest.raises(UsageError, match="no counting rule was registered"):
        unregister_rule("aten::softmax")
    register_rule(scaled_shift_rule, lambda i, o: OpCost(0, 1.5), "a float", replace=True)
    with pytest.raises(UsageError, match="two integers"):
        count_costs(Call(ScaledShift.apply), torch.randn(3))


def test_a_registered_rule_that_raises_is_reported_as_the_users_code():
    def broken(inputs, outputs):
        raise ValueError("no idea")

    register_rule("prim::PythonOp.ScaledShift", broken, "broken on purpose")
    try:
        with pytest.raises(UserCodeError, match="prim::PythonOp.ScaledShift.*ValueError: no idea"):
            count_costs(Call(ScaledShift.apply), torch.randn(3))
    finally:
        unregister_rule("prim::PythonOp.ScaledShift")


def test_the_example_in_docs_counting_rules_runs_and_counts():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "counting-rules.md").read_text(encoding="utf-8")
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(example, "docs/counting-rules.md", "exec"), namespace)
    try:
        x = torch.randn(3, 5)
        assert count_costs(Call(namespace["ScaledShift"].apply), x).flops == 2 * 15
        bilinear = nn.Bilinear(4, 6, 2)  # per output: x1^T W_o (4 x 6 MACs), then a dot with x2 (6)

        class Pair(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bilinear = bilinear

            def forward(self, x):
                return self.bilinear(x[:, :4], x[:, 4:])

        costs = count_costs(Pair(), torch.randn(3, 10))
        assert costs.uncounted_ops == {} and costs.macs == 3 * 2 * (4 * 6 + 6)
    finally:
        unregister_rule("prim::PythonOp.ScaledShift")
        unregister_rule("aten::bilinear")


# ------------------------------------------------------------------ complex arithmetic, scatter_reduce


def test_complex_elementwise_is_counted_in_real_flops():
    z = torch.randn(3, 4, dtype=torch.complex64)
    w = torch.randn(3, 4, dtype=torch.complex64)
    n = 12
    # (a + bi)(c + di) = (ac - bd) + (ad + bc)i: 4 multiplies, 2 adds
    assert counted(lambda t: t * w, z).flops == 6 * n
    # a quotient: (ac + bd) / (c^2 + d^2) and (bc - ad) / (c^2 + d^2): 6 multiplies, 3 adds, 2 divides
    assert counted(lambda t: t / w, z).flops == 11 * n
    assert counted(lambda t: t + w, z).flops == 2 * n  # real and imaginary parts
    assert counted(lambda t: t * 2.0, z).flops == 2 * n  # a real scale multiplies both parts
    assert counted(lambda t: t * torch.ones(3, 4), z).flops == 2 * n  # a real tensor likewise
    assert counted(lambda t: t.abs(), z).flops == 4 * n  # sqrt(a^2 + b^2): 2 squares, an add, a root
    assert counted(lambda t: t * t, torch.randn(3, 4)).flops == n  # real tensors: 1 per element


def test_a_global_filter_counts_its_transforms_and_complex_product():
    # GFNet-style: rfft2, times complex weights, irfft2 back with s traced from the input's sizes
    weight = torch.randn(8, 5, dtype=torch.complex64)
    x = torch.randn(1, 3, 8, 8)

    def global_filter(t):
        return torch.fft.irfft2(torch.fft.rfft2(t) * weight, s=t.shape[-2:])

    # rfft2 and irfft2 of 8 x 8: N = 64, log2 N = 6, 2.5 N log2 N = 960 per transform, 3 each;
    # the product: 3 x 8 x 5 complex values, 6 each; irfft2's 1/N: 1 per real output (192)
    assert counted(global_filter, x).flops == 3 * 960 + 3 * 8 * 5 * 6 + 3 * 960 + 192 == 6672


@pytest.mark.parametrize("reduce, extra", [("sum", 0), ("prod", 0), ("amax", 0), ("mean", 2 * 8)])
def test_scatter_reduce_one_per_index_element(reduce, extra):
    index = torch.tensor([[0, 1, 0, 1, 0, 1, 0, 1]] * 3)  # 3 x 8 = 24 elements scattered
    src = torch.randn(3, 8)
    costs = counted(lambda t: torch.zeros(2, 8).scatter_reduce(0, index, t, reduce=reduce), src)
    assert costs.flops == 24 + extra  # mean divides each of the 2 x 8 outputs once
