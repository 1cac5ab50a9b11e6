"""The zoo as data: every named network is its plain backbone plus a block, built by the same code path,
and each block goes where its paper and official code put it.

Expected counts come from the official code (issue figures) or hand arithmetic; positions are checked
by recomputing a unit's forward pass by hand from its own layers.
"""

import re
from pathlib import Path

import pytest
import torch

from attncli import api, registry, zoo
from attncli.blocks import POSITIONS
from attncli.errors import UsageError
from attncli.modelspec import ModelRequest, build

NAMED = [s for s in zoo.SPECS if s.base is not None]
SLOW = {"gam_resnet50"} | {s.name for s in NAMED if "101" in s.name or "152" in s.name}


def as_cli_param(key, value):
    """A -p string, as a user would type it."""
    if isinstance(value, tuple):
        text = ",".join(str(v) for v in value)
    elif value is None:
        text = "none"
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{key}={text}"


def test_every_named_network_has_a_plain_base_and_a_block():
    for spec in NAMED:
        base = registry.get(spec.base)
        assert base.base is None and base.takes_attn, spec.name
        assert spec.attn and registry.get(spec.attn).kind == "block", spec.name
        assert spec.target == base.target and spec.input_shape == base.input_shape


@pytest.mark.parametrize("spec", [pytest.param(s, marks=pytest.mark.slow) if s.name in SLOW else s for s in NAMED], ids=lambda s: s.name)
def test_named_network_state_dict_equals_its_generic_twin(spec):
    twin = zoo.twin_of(spec, registry.get(spec.base))
    params = [as_cli_param(k, v) for k, v in twin["params"].items() if k != "attn_position"]
    position = twin["params"].get("attn_position")
    named = api.build(spec.name).module.state_dict()
    generic = build(ModelRequest.make(twin["model"], params, attn=twin["attn"], attn_position=position)).module.state_dict()
    assert list(named) == list(generic)
    for key in named:
        assert torch.equal(named[key], generic[key]), key


def test_the_papers_are_written_once():
    source = Path(zoo.__file__).read_text()
    for paper in zoo.PAPERS.values():
        assert source.count(paper.title) == 1, paper.title
    backbones = Path(zoo.__file__).parent / "backbones" / "resnet.py"
    assert "register" not in backbones.read_text()


# ---- each block at its paper's position ----


@pytest.mark.parametrize(
    "model, attn, expected",
    [
        ("resnet50", "psa", 22_561_715),  # EPSANet-50, official code
        ("resnext50_32x4d", "sk", 27_479_784),  # SKNet-50, official Caffe model
        ("resnet50", "simam", 25_557_032),  # parameter-free: the plain ResNet-50's count
    ],
)
def test_attn_goes_where_the_paper_puts_it(model, attn, expected):
    assert api.build(model, attn=attn).num_params == expected


def test_block_classes_declare_their_position():
    positions = {s.name: getattr(s.load_factory(), "position", None) for s in registry.list_specs(kind="block")}
    for name in ("se", "eca", "cbam", "coordatt", "gam"):
        assert positions[name] == "branch_end"
    assert positions["simam"] == "after_3x3"
    assert positions["psa"] == positions["sk"] == "replace_3x3"
    assert set(positions.values()) - {None} <= set(POSITIONS)


def unit_by_hand(unit, x, simam_at):
    """A torchvision bottleneck's forward pass with SimAM applied at ``simam_at``, written out here."""
    from attncli.blocks.simam import SimAM

    simam = SimAM()
    out = torch.relu(unit.bn1(unit.conv1(x)))
    out = unit.conv2(out)
    if simam_at == "after_3x3":
        out = simam(out)
    out = torch.relu(unit.bn2(out))
    out = unit.bn3(unit.conv3(out))
    if simam_at == "branch_end":
        out = simam(out)
    identity = x if unit.downsample is None else unit.downsample(x)
    return torch.relu(out + identity)


def test_simam_resnet50_applies_simam_between_the_3x3_conv_and_bn2():
    net = api.build("simam_resnet50").module
    unit = net.layer2[0]
    with torch.no_grad():  # make BN non-trivial so the two positions give different numbers
        for bn in (unit.bn1, unit.bn2, unit.bn3):
            bn.running_mean.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(1))
            bn.running_var.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(2))
    x = torch.randn(2, 256, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = unit(x)
        official = unit_by_hand(unit, x, "after_3x3")
        at_the_end = unit_by_hand(unit, x, "branch_end")
    assert torch.allclose(got, official, atol=1e-6)
    assert not torch.allclose(got, at_the_end, atol=1e-3)


def test_attn_position_overrides_the_blocks_own():
    net = build(ModelRequest.make("resnet50", attn="simam", attn_position="branch_end")).module
    assert net.layer1[0].attn_position == "branch_end"
    se = build(ModelRequest.make("resnet50", attn="se", attn_position="after_3x3_act")).module
    assert se.layer3[0].attn.fc1.in_features == 256  # the 3x3's width, not the 1024 of the branch end
    with pytest.raises(UsageError, match="no place 'replace_3x3'"):
        api.build("mobilenetv2", attn="psa")
    with pytest.raises(UsageError, match="one place"):
        build(ModelRequest.make("cnn1d", attn="eca1d", attn_position="after_3x3"))
    with pytest.raises(UsageError, match="need an attention block"):
        build(ModelRequest.make("resnet50", attn_position="after_3x3"))
    with pytest.raises(UsageError, match="bad attention position"):
        ModelRequest.make("resnet50", attn="se", attn_position="somewhere")


# ---- the faithfulness fixes ----


def test_eca_mobilenetv2_widths_round_as_the_official_code():
    # int(c * 0.5): stem 16, stages 8, 12, 16, 32, 48, 80, 160, head 1280 (width < 1 keeps 1280)
    assert api.build("eca_mobilenetv2", params=["width_mult=0.5"]).num_params == 1_965_479
    assert api.build("eca_mobilenetv2").num_params == 3_504_872 + 10 * 1 + 7 * 3


def test_cnn1d_batch_norm_uses_keras_epsilon_and_momentum():
    net = api.build("eca_cnn1d").module
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(bns) == 5
    assert all(bn.eps == 1e-3 and bn.momentum == 0.01 for bn in bns)  # Keras: epsilon 1e-3, momentum 0.99


def test_cnn1d_softmax_gives_the_keras_output():
    logits_model = api.build("eca_cnn1d", input_shape="2,1,2048")
    probs_model = api.build("eca_cnn1d", input_shape="2,1,2048", params=["softmax=true"])
    with torch.no_grad():
        logits = logits_model.module(logits_model.example)
        probs = probs_model.module(probs_model.example)
    assert torch.allclose(probs.sum(dim=1), torch.ones(2))
    assert torch.allclose(probs, torch.exp(logits) / torch.exp(logits).sum(dim=1, keepdim=True), atol=1e-6)


def test_named_rows_take_short_names_for_their_block_arguments_and_refuse_fixed_ones():
    # -p k_size on eca_resnet50 is -p attn.k_size; 16 blocks of k=3 ECA
    assert api.build("eca_resnet50", params=["k_size=3"]).num_params == 25_557_032 + 16 * 3
    with pytest.raises(UsageError, match="fixes depth=50"):
        api.build("resnet50", params=["depth=101"])


def test_reduction_is_one_name_and_the_old_names_still_work():
    # GAM on 64 channels, reduction 8: MLP 64*8+8 + 8*64+64, 7x7 convs 64*8*49+8 and 8*64*49+64, two BNs 2*8 + 2*64
    expected = (64 * 8 + 8 + 8 * 64 + 64) + (64 * 8 * 49 + 8) + (8 * 64 * 49 + 64) + 2 * 8 + 2 * 64
    assert api.build("gam", params=["reduction=8"]).num_params == expected
    assert api.build("gam", params=["rate=8"]).num_params == expected
    sk_new = api.build("sk", params=["reduction=4"]).num_params
    assert api.build("sk", params=["r=4"]).num_params == sk_new
    with pytest.raises(UsageError, match="old name"):
        api.build("gam", params=["rate=8", "reduction=8"])


def test_info_says_how_generic_eca_chooses_k(cli):
    result = cli("info", "resnet50", "--attn", "eca", "--depth", "0")
    assert result.exit_code == 0, result.stderr
    text = re.sub(r"\s+", " ", result.stdout)
    assert "psi(C)" in text and "3,5,5,7" in text
