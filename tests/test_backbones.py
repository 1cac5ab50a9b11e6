"""Every registered backbone builds and classifies; parameter counts match the papers, official code and hand arithmetic.

Expected counts come from the issue (the official code's exact counts), published tables, or are
worked out here from the stage layout (channels per stage, blocks per stage) by hand, never by
building a second model of ours and subtracting.
"""

import functools
import math

import pytest
import torch

from attncli import api, registry
from attncli.errors import UsageError
from attncli.modelspec import run_example

BACKBONES = [s.name for s in registry.list_specs(kind="backbone")]
SLOW_FORWARD = {n for n in BACKBONES if "101" in n or "152" in n} | {"gam_resnet50"}

# Blocks per stage, from the ResNet paper's Table 1.
LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def stage_channels(depth: int) -> tuple[int, ...]:
    """Channels where the attention block sits: bn2 of a basic block, bn3 (4x planes) of a bottleneck."""
    expansion = 1 if depth < 50 else 4
    return tuple(planes * expansion for planes in (64, 128, 256, 512))


def per_block(depth: int, cost) -> int:
    """Sum ``cost(channels, stage)`` over every residual block of a ResNet of that depth."""
    return sum(n * cost(c, i) for i, (n, c) in enumerate(zip(LAYERS[depth], stage_channels(depth))))


@functools.cache
def count(name: str, attn: str | None = None, params: tuple[str, ...] = ()) -> int:
    return api.build(name, params=list(params), attn=attn).num_params


def small_input(name: str) -> str | None:
    return None if registry.get(name).input_shape[1] == 1 else "1,3,64,64"


# ---- every backbone: builds, maps its input to (N, num_classes) ----


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FORWARD else n for n in BACKBONES]
)
def test_backbone_builds_and_classifies_with_num_classes_override(name):
    built = api.build(name, params=["num_classes=10"], input_shape=small_input(name))
    out = run_example(built)
    assert tuple(out.shape) == (built.input_shape[0], 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_registration(name):
    spec = registry.get(name)
    assert spec.input_shape == ((1, 1, 2048) if "cnn1d" in name else (1, 3, 224, 224))
    assert spec.paper.title
    assert spec.defaults.get("num_classes") == (10 if "cnn1d" in name else 1000)
    if spec.baseline is not None:
        base = registry.get(spec.baseline)
        assert base.kind == "backbone" and base.baseline is None
    if spec.reference is not None:
        assert spec.reference.units in ("binary", "decimal")


@pytest.mark.parametrize(
    "name, baseline",
    [
        ("eca_resnet18", "resnet18"),
        ("eca_resnet50", "resnet50"),
        ("eca_resnet152", "resnet152"),
        ("se_resnet101", "resnet101"),
        ("cbam_resnet50", "resnet50"),
        ("gam_resnet50", "resnet50"),
        ("simam_resnet50", "resnet50"),
        ("coordatt_resnet50", "resnet50"),
        ("sknet50", "resnext50_32x4d"),
        ("sknet101", "resnext101_32x4d"),
        ("epsanet50", "resnet50"),
        ("epsanet101", "resnet101"),
        ("eca_mobilenetv2", "mobilenetv2"),
        ("coordatt_mobilenetv2", "mobilenetv2"),
        ("eca_cnn1d", "cnn1d"),
    ],
)
def test_attention_backbones_name_their_plain_counterpart(name, baseline):
    assert registry.get(name).baseline == baseline


def test_aliases():
    assert registry.get("sknet").name == "sknet50"
    assert registry.get("epsanet50_small").name == "epsanet50"


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_maps_its_default_input(name):
    built = api.build(name)
    assert tuple(run_example(built).shape) == (1, registry.get(name).defaults["num_classes"])


def test_input_resolution_and_batch_are_free():
    built = api.build("resnet18", input_shape="3,3,96,80")
    assert tuple(run_example(built).shape) == (3, 1000)


# ---- exact counts ----

# The exact counts (official code / torchvision), and torchvision's published num_params.
EXACT = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "eca_resnet18": 11_689_556,
    "eca_resnet34": 21_797_744,
    "eca_resnet50": 25_557_112,
    "eca_resnet101": 44_549_317,
    "eca_resnet152": 60_193_042,
    "epsanet50": 22_561_715,
    "epsanet101": 38_900_279,
    "mobilenetv2": 3_504_872,
    "resnext50_32x4d": 25_028_904,
    "sknet50": 27_479_784,
    "sknet101": 48_686_760,
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_parameter_counts(name):
    assert count(name) == EXACT[name]
    ref = registry.get(name).reference
    if ref is not None and ref.exact_params is not None:
        assert ref.exact_params == EXACT[name]


@pytest.mark.parametrize("name, published_m", [("sknet50", 27.5), ("sknet101", 48.9), ("coordatt_mobilenetv2", 3.95)])
def test_counts_within_one_percent_of_the_papers(name, published_m):
    assert abs(count(name) / 1e6 - published_m) / published_m < 0.01


@pytest.mark.parametrize("name", [s.name for s in registry.list_specs(kind="backbone") if s.reference and s.reference.params_m])
def test_published_figures_are_in_the_stated_units(name):
    # A wrong unit (2^20 vs 10^6) is a 4.9% error; the papers round to within 3.1% (MobileNetV2: 3.4M for 3.50M).
    ref = registry.get(name).reference
    divisor = 2**20 if ref.units == "binary" else 1e6
    assert abs(count(name) / divisor - ref.params_m) / ref.params_m < 0.04


def test_cnn1d_counts_by_hand():
    # conv+bias, BN (2 per channel) for each stage; ECA-1D k=3 for 32 channels; 256 -> 100 -> 10.
    convs = [(1, 16, 64), (16, 32, 3), (32, 64, 3), (64, 64, 3), (64, 64, 3)]
    plain = sum(cin * cout * k + cout + 2 * cout for cin, cout, k in convs) + (256 * 100 + 100) + (100 * 10 + 10)
    assert count("cnn1d") == plain == 60_710
    assert count("cnn1d", params=("softmax=true",)) == plain
    assert count("eca_cnn1d") == plain + 3
    assert count("cnn1d", attn="eca1d") == plain + 3


# ---- attention cost: (attention net) - (plain net) == the inserted blocks, by hand ----


def eca_cost(k_sizes):
    return lambda c, stage: k_sizes[stage]


def se_cost(c, stage):
    return 2 * c * c // 16


def cbam_cost(c, stage):
    return 2 * c * c // 16 + c // 16 + c + 2 * 49 + 2


def gam_cost(c, stage, rate=4, groups=4):
    hidden = c // rate
    mlp = c * hidden + hidden + hidden * c + c
    conv_in = hidden * (c // groups) * 49 + hidden  # grouped 7x7, C -> C/rate, with bias
    conv_out = c * (hidden // groups) * 49 + c  # grouped 7x7, C/rate -> C, with bias
    return mlp + conv_in + 2 * hidden + conv_out + 2 * c


def coordatt_cost(c, stage):
    mip = max(8, c // 32)
    return (c * mip + mip) + 2 * mip + 2 * (mip * c + c)


@pytest.mark.parametrize(
    "name, depth, cost",
    [
        ("eca_resnet18", 18, eca_cost((3, 5, 7, 7))),
        ("eca_resnet34", 34, eca_cost((3, 3, 5, 7))),
        ("eca_resnet50", 50, eca_cost((3, 5, 5, 7))),
        ("eca_resnet101", 101, eca_cost((3, 3, 5, 7))),
        ("eca_resnet152", 152, eca_cost((3, 3, 5, 7))),
        ("se_resnet50", 50, se_cost),
        ("se_resnet101", 101, se_cost),
        ("se_resnet152", 152, se_cost),
        ("cbam_resnet50", 50, cbam_cost),
        ("cbam_resnet101", 101, cbam_cost),
        ("gam_resnet50", 50, gam_cost),
        ("simam_resnet50", 50, lambda c, stage: 0),
        ("coordatt_resnet50", 50, coordatt_cost),
    ],
)
def test_attention_resnet_overhead_by_hand(name, depth, cost):
    assert count(name) - EXACT[f"resnet{depth}"] == per_block(depth, cost)


@pytest.mark.parametrize(
    "model, attn, depth, cost",
    [("resnet18", "cbam", 18, cbam_cost), ("resnet50", "cbam", 50, cbam_cost), ("resnet34", "se", 34, se_cost)],
)
def test_attn_option_puts_the_block_in_every_residual_branch(model, attn, depth, cost):
    assert count(model, attn=attn) - EXACT[model] == per_block(depth, cost)


def test_eca_kernel_sizes_per_stage_and_override():
    assert count("eca_resnet50", params=("k_size=3,3,3,3",)) == EXACT["resnet50"] + 3 * sum(LAYERS[50])
    assert count("eca_resnet50", params=("k_size=3",)) == EXACT["resnet50"] + 3 * sum(LAYERS[50])
    assert count("resnet50", attn="eca", params=("attn.k_size=3,5,5,7",)) == EXACT["eca_resnet50"]
    net = api.build("eca_resnet34").module
    assert [stage[0].attn.conv.kernel_size[0] for stage in (net.layer1, net.layer2, net.layer3, net.layer4)] == [3, 3, 5, 7]


def sk_extra(width: int, L: int = 32) -> int:
    """An SK unit minus the grouped 3x3 conv + BN it replaces: the dilated branch + BN, fuse fc (no bias) + BN,
    two branch fcs without bias (official Caffe model)."""
    d = max(width // 16, L)
    return width * width // 32 * 9 + 2 * width + width * d + 2 * d + 2 * d * width


# The official SKNet-101 release fuses its conv3_x units (width 256) to 16 channels, not max(256/16, 32) = 32.
@pytest.mark.parametrize(
    "name, plain, depth, fuse_floor",
    [("sknet50", "resnext50_32x4d", 50, (32, 32, 32, 32)), ("sknet101", "resnext101_32x4d", 101, (32, 16, 32, 32))],
)
def test_sknet_overhead_by_hand(name, plain, depth, fuse_floor):
    widths = (128, 256, 512, 1024)  # 32 groups x 4 channels, doubling per stage
    expected = sum(n * sk_extra(w, L) for n, w, L in zip(LAYERS[depth], widths, fuse_floor))
    assert count(name) - count(plain) == expected


def test_sknet101_is_the_official_release_and_the_paper_rule_is_one_argument_away():
    # 4 conv3_x units x (256 + 2 + 2 * 256) parameters per fuse channel x 16 channels fewer = 49,280
    assert count("sknet101") == 48_686_760
    assert count("sknet101", params=("attn.L=32",)) == 48_686_760 + 4 * (256 + 2 + 2 * 256) * 16 == 48_736_040


def psa_minus_conv3x3(width: int, kernels=(3, 5, 7, 9), groups=(1, 4, 8, 16)) -> int:
    split = width // 4
    convs = sum(width // g * split * k * k for k, g in zip(kernels, groups))
    se = (split * (split // 16) + split // 16) + (split // 16 * split + split)  # 1x1 convs with bias
    return convs + se - width * width * 9


@pytest.mark.parametrize("name, depth", [("epsanet50", 50), ("epsanet101", 101)])
def test_epsanet_overhead_by_hand(name, depth):
    widths = (64, 128, 256, 512)
    expected = sum(n * psa_minus_conv3x3(w) for n, w in zip(LAYERS[depth], widths))
    assert count(name) - EXACT[f"resnet{depth}"] == expected


# MobileNetV2 (t, c, n, s), the paper's Table 2; the stem has 32 channels.
MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mbv2_blocks():
    """(t, in_channels, out_channels) of every inverted residual."""
    blocks, cin = [], 32
    for t, c, n, _ in MBV2:
        for _ in range(n):
            blocks.append((t, cin, c))
            cin = c
    return blocks


def test_mobilenetv2_attention_overhead_by_hand():
    eca = sum(1 if cout < 96 else 3 for _, _, cout in mbv2_blocks())
    assert eca == 10 * 1 + 7 * 3
    assert count("eca_mobilenetv2") - EXACT["mobilenetv2"] == eca
    coordatt = sum(coordatt_cost(cin * t, 0) for t, cin, _ in mbv2_blocks() if t != 1)
    assert count("coordatt_mobilenetv2") - EXACT["mobilenetv2"] == coordatt


# ---- where the blocks sit ----


def test_attention_sits_after_the_last_bn_before_the_addition():
    net = api.build("eca_resnet50").module
    block = net.layer2[0]
    seen = {}
    block.bn3.register_forward_hook(lambda m, i, o: seen.__setitem__("bn3", o.clone()))
    block.attn.register_forward_hook(lambda m, i, o: seen.update(attn_in=i[0].clone(), attn_out=o.clone()))
    block.downsample.register_forward_hook(lambda m, i, o: seen.__setitem__("identity", o.clone()))
    x = torch.randn(1, 256, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = block(x)
    assert torch.equal(seen["attn_in"], seen["bn3"])
    assert torch.allclose(y, torch.relu(seen["attn_out"] + seen["identity"]))


def test_sknet_and_epsanet_replace_the_middle_conv():
    sk = api.build("sknet50").module
    assert type(sk.layer2[0].conv2).__name__ == "SelectiveKernel" and sk.layer2[0].bn2 is None
    assert sk.layer2[0].conv2.branches[0][0].stride == (2, 2)  # the SK unit carries the stride
    assert sk.layer1[0].conv2.branches[0][0].groups == 32
    eps = api.build("epsanet50").module
    assert type(eps.layer3[0].conv2).__name__ == "PSA" and eps.layer3[0].bn2 is not None
    assert [c.stride for c in eps.layer3[0].conv2.convs] == [(2, 2)] * 4


def test_coordatt_sits_after_the_depthwise_conv_of_expanding_blocks():
    net = api.build("coordatt_mobilenetv2").module
    blocks = net.features[1:-1]
    assert len(blocks) == 17
    has_ca = [any(type(m).__name__ == "CoordAtt" for m in b.conv) for b in blocks]
    assert has_ca == [False] + [True] * 16  # the t=1 block has none, as in the official code
    second = blocks[1].conv
    assert isinstance(second[1][2], torch.nn.ReLU6) and type(second[2]).__name__ == "CoordAtt"


def test_eca_mobilenetv2_kernel_rule():
    net = api.build("eca_mobilenetv2").module
    ks = [b.conv[-1].conv.kernel_size[0] for b in net.features[1:-1]]
    assert ks == [1 if cout < 96 else 3 for _, _, cout in mbv2_blocks()]


def test_cnn1d_keras_same_padding_and_flatten():
    # Keras 'same': total pad = (ceil(L / s) - 1) * s + k - L, split evenly.
    length, k, s = 2048, 64, 16
    total = (math.ceil(length / s) - 1) * s + k - length
    net = api.build("eca_cnn1d").module
    assert net.stage1[0].padding == (total // 2,) == (24,)
    assert net.classifier[0].in_features == 64 * 4
    built = api.build("eca_cnn1d", input_shape="3,1,2048")
    assert tuple(run_example(built).shape) == (3, 10)


# ---- blocks that cannot go in ----


@pytest.mark.parametrize(
    "model, attn, reason",
    [
        ("resnet50", "se_weight", "shaped like its input"),
        ("mobilenetv2", "se_weight", "shaped like its input"),
        ("resnet18", "eca1d", "rank-3"),
        ("cnn1d", "eca", "rank-4"),
    ],
)
def test_blocks_that_cannot_be_inserted_are_refused(model, attn, reason):
    with pytest.raises(UsageError, match=reason):
        api.build(model, attn=attn)


def test_wrong_number_of_per_stage_values_is_refused():
    with pytest.raises(UsageError, match="one per stage"):
        api.build("eca_resnet50", params=["k_size=3,5"])


# ---- the CLI ----


def test_cli_info_eca_resnet50(cli):
    result = cli("info", "eca_resnet50", "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert "25,557,112" in result.stdout and "1910.03151" in result.stdout


def test_cli_info_sknet(cli):
    result = cli("info", "sknet", "--depth", "1")
    assert result.exit_code == 0, result.stderr
    assert "sknet50" in result.stdout and "1903.06586" in result.stdout


def test_cli_info_resnet50_with_cbam(cli):
    result = cli("info", "resnet50", "--attn", "cbam", "--depth", "0")
    assert result.exit_code == 0, result.stderr
    assert f"{EXACT['resnet50'] + per_block(50, cbam_cost):,}" in result.stdout


def test_cli_refuses_a_block_that_returns_weights(cli):
    result = cli("info", "resnet50", "--attn", "se_weight")
    assert result.exit_code == 2
    assert "se_weight" in result.stderr and "Traceback" not in result.stderr
