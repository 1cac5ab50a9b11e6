"""Every registered block: builds, keeps its promise on shape, is deterministic, counts by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from attncli import api, registry

BLOCK_NAMES = [s.name for s in registry.list_specs(kind="block")]


def hand_k(channels: int, gamma: int = 2, b: int = 1) -> int:
    t = int(abs((math.log(channels, 2) + b) / gamma))
    return t if t % 2 == 1 else t + 1


def params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_builds_keeps_shape_and_is_deterministic(name):
    spec = registry.get(name)
    shape = (2, *spec.input_shape[1:])
    shape = shape[:2] + tuple(min(d, 20) for d in shape[2:])  # small, non-square enough to be quick
    a = api.build(name, input_shape=shape, seed=3)
    b = api.build(name, input_shape=shape, seed=3)
    with torch.inference_mode():
        ya, yb = a.module(a.example), b.module(b.example)
    expected = (shape[0], shape[1], 1, 1) if name == "se_weight" else shape
    assert tuple(ya.shape) == expected
    assert torch.isfinite(ya).all()
    assert torch.equal(ya, yb)
    if params(a.module):
        c = api.build(name, input_shape=shape, seed=4)
        assert any(not torch.equal(p, q) for p, q in zip(a.module.parameters(), c.module.parameters()))


@pytest.mark.parametrize("channels, k", [(64, 3), (256, 5), (512, 5), (2048, 7), (128, 5), (16, 3)])
def test_adaptive_kernel_rule(channels, k):
    # psi(C) = |(log2 C + 1) / 2|, rounded to the nearest odd above: worked out by hand.
    assert hand_k(channels) == k
    built = api.build("eca", params={"channels": channels})
    assert built.module.conv.kernel_size == (k,)
    assert params(built.module) == k


def test_eca_parameter_counts_by_hand():
    assert params(api.build("eca", params={"channels": 64, "k_size": 5}).module) == 5
    assert params(api.build("eca_ns", params={"channels": 64}).module) == 3 * 64
    assert params(api.build("eca_ns", params={"channels": 256, "k_size": 7}).module) == 7 * 256
    assert params(api.build("eca1d", params={"channels": 32}).module) == hand_k(32)


@pytest.mark.parametrize("channels, r", [(64, 16), (256, 16), (512, 8)])
def test_se_and_cbam_parameter_counts_by_hand(channels, r):
    assert params(api.build("se", params={"channels": channels, "reduction": r}).module) == 2 * channels * channels // r
    # CBAM: shared MLP with biases (C*C/r + C/r + C/r*C + C), spatial 7x7 conv on 2 maps without bias, BN (2).
    mlp = 2 * channels * (channels // r) + channels // r + channels
    assert params(api.build("cbam", params={"channels": channels, "reduction": r}).module) == mlp + 2 * 7 * 7 + 2
    assert params(api.build("cbam", params={"channels": channels, "reduction": r, "kernel_size": 3}).module) == mlp + 2 * 9 + 2


def test_other_block_parameter_counts_by_hand():
    c = 64
    # SEWeight: two 1x1 convs with bias.
    assert params(api.build("se_weight", params={"channels": c}).module) == c * 4 + 4 + 4 * c + c
    # SimAM has no parameters.
    assert params(api.build("simam").module) == 0
    # Coordinate attention: mip = max(8, 64 // 32) = 8; conv1 + BN + two direction convs, all with bias.
    assert params(api.build("coordatt", params={"channels": c}).module) == (c * 8 + 8) + 2 * 8 + 2 * (8 * c + c)
    # GAM rate 4: MLP 64->16->64 with biases; 7x7 convs 64->16->64 with biases; BN(16), BN(64).
    gam = (c * 16 + 16 + 16 * c + c) + (c * 16 * 49 + 16) + 2 * 16 + (16 * c * 49 + c) + 2 * c
    assert params(api.build("gam", params={"channels": c}).module) == gam
    # SK (M=2, G=32, r=16, L=32): two grouped 3x3 convs + BN, fc C->d=32 no bias + BN, two fcs d->C
    # without bias as in the official prototxt; fc_bias adds C per branch.
    sk = 2 * (c * (c // 32) * 9 + 2 * c) + (c * 32 + 2 * 32) + 2 * (32 * c)
    assert params(api.build("sk", params={"channels": c}).module) == sk
    assert params(api.build("sk", params={"channels": c, "fc_bias": True}).module) == sk + 2 * c
    # PSA on 64 -> 4 x 16: kernels 3,5,7,9 with groups 1,4,8,16, then one SEWeight(16, r=16) shared.
    convs = sum(64 // g * 16 * k * k for k, g in ((3, 1), (5, 4), (7, 8), (9, 16)))
    assert params(api.build("psa").module) == convs + (16 * 1 + 1) + (1 * 16 + 16)


def test_eca_matches_the_papers_formula():
    built = api.build("eca", input_shape=(2, 16, 5, 7))
    x, w = built.example, built.module.conv.weight.reshape(-1)
    k = w.numel()
    pooled = x.mean(dim=(2, 3))
    padded = F.pad(pooled, ((k - 1) // 2, (k - 1) // 2))
    mixed = torch.stack([sum(w[i] * padded[:, c + i] for i in range(k)) for c in range(16)], dim=1)
    expected = x * torch.sigmoid(mixed)[:, :, None, None]
    with torch.inference_mode():
        assert torch.allclose(built.module(x), expected, atol=1e-6)


def test_eca_ns_gives_each_channel_its_own_kernel():
    built = api.build("eca_ns", input_shape=(2, 8, 4, 4), params={"k_size": 3})
    x, w = built.example, built.module.conv.weight  # (C, 1, k)
    padded = F.pad(x.mean(dim=(2, 3)), (1, 1))
    mixed = torch.stack([sum(w[c, 0, i] * padded[:, c + i] for i in range(3)) for c in range(8)], dim=1)
    with torch.inference_mode():
        assert torch.allclose(built.module(x), x * torch.sigmoid(mixed)[:, :, None, None], atol=1e-6)


def test_simam_matches_the_closed_form_energy():
    built = api.build("simam", input_shape=(2, 4, 6, 5))
    x = built.example
    n = 6 * 5 - 1
    d = (x - x.mean(dim=(2, 3), keepdim=True)) ** 2
    y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + 1e-4)) + 0.5
    with torch.inference_mode():
        assert torch.allclose(built.module(x), x * torch.sigmoid(y), atol=1e-6)


def test_coordatt_equals_the_official_adaptive_pool_form():
    built = api.build("coordatt", input_shape=(2, 32, 9, 13))
    m, x = built.module, built.example
    h, w = 9, 13
    x_h = torch.nn.AdaptiveAvgPool2d((None, 1))(x)
    x_w = torch.nn.AdaptiveAvgPool2d((1, None))(x).permute(0, 1, 3, 2)
    y = m.act(m.bn1(m.conv1(torch.cat([x_h, x_w], dim=2))))
    y_h, y_w = torch.split(y, [h, w], dim=2)
    expected = x * m.conv_w(y_w.permute(0, 1, 3, 2)).sigmoid() * m.conv_h(y_h).sigmoid()
    with torch.inference_mode():
        assert torch.allclose(m(x), expected, atol=1e-6)


def test_sk_applies_a_softmax_across_branches():
    built = api.build("sk", input_shape=(2, 64, 8, 8))
    m, x = built.module, built.example
    with torch.inference_mode():
        feats = [b(x) for b in m.branches]
        z = m.fc(sum(feats).mean(dim=(2, 3), keepdim=True))
        logits = torch.stack([fc(z) for fc in m.fcs])
        weights = torch.exp(logits) / torch.exp(logits).sum(dim=0)  # softmax over the M branches, by hand
        expected = sum(wi * fi for wi, fi in zip(weights, feats))
        assert torch.allclose(m(x), expected, atol=1e-5)
        # Without the softmax (the seed's bug) the result would differ.
        assert not torch.allclose(m(x), sum(w * f for w, f in zip(logits, feats)), atol=1e-3)


def test_psa_concatenates_weighted_branches_in_reverse_order():
    built = api.build("psa", input_shape=(1, 64, 8, 8))
    m, x = built.module, built.example
    with torch.inference_mode():
        feats = [conv(x) for conv in m.convs]
        logits = torch.stack([m.se(f) for f in feats])
        weights = torch.exp(logits) / torch.exp(logits).sum(dim=0)
        weighted = [w * f for w, f in zip(weights, feats)]
        expected = torch.cat(weighted[::-1], dim=1)  # official loop: cat((x_i, out)) for i = 0..3
        assert torch.allclose(m(x), expected, atol=1e-5)


def test_cbam_pools_max_then_mean_for_the_spatial_gate():
    built = api.build("cbam", input_shape=(1, 32, 6, 6), params={"reduction": 4})
    m, x = built.module, built.example
    with torch.inference_mode():
        mlp = m.channel.mlp
        xc = x * torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.amax(dim=(2, 3))))[:, :, None, None]
        pooled = torch.cat([xc.max(dim=1, keepdim=True).values, xc.mean(dim=1, keepdim=True)], dim=1)
        expected = xc * torch.sigmoid(m.spatial.bn(m.spatial.conv(pooled)))
        assert torch.allclose(m(x), expected, atol=1e-6)


def test_gam_groups_and_shuffle_cut_the_spatial_parameters():
    plain = params(api.build("gam", params={"channels": 256}).module)
    grouped = params(api.build("gam", params={"channels": 256, "groups": 4}).module)
    # Each 7x7 conv's weights shrink by the group count; biases and BNs stay.
    conv_weights = 2 * 256 * 64 * 49
    assert plain - grouped == conv_weights - conv_weights // 4
    with torch.inference_mode():
        built = api.build("gam", params={"channels": 256, "groups": 4}, input_shape=(1, 256, 7, 7))
        assert built.module(built.example).shape == (1, 256, 7, 7)
