"""A user's own attention block (``--attn file.py:Name`` or ``package.module:Name``) goes wherever a
registered block goes: built once per residual unit with the unit's channel count, at its class's
``position`` (``branch_end`` without one) or at ``--attn-position``, through every command.

Expected parameter counts are the plain backbones' published counts (torchvision: resnet18
11,689,512, resnet50 25,557,032, mobilenet_v2 3,504,872) plus the block's parameters summed by hand
over the residual units. The line numbers an error must name are read off the files' own text.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from attncli import api
from attncli.errors import UsageError, UserCodeError

RESNET18 = 11_689_512
RESNET50 = 25_557_032
MOBILENETV2 = 3_504_872

BLOCKS = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Scale(nn.Module):
        # one weight per channel: C parameters; no position, so branch_end
        def __init__(self, channels, init=1.0):
            super().__init__()
            self.weight = nn.Parameter(torch.full((channels,), float(init)))

        def forward(self, x):
            return x * self.weight.view(1, -1, *([1] * (x.dim() - 2)))


    class Mix(nn.Module):
        # a 1x1 convolution C -> C with bias: C*C + C parameters, right after the 3x3 convolution
        position = "after_3x3"

        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 1)

        def forward(self, x):
            return self.conv(x)


    def make_scale(channels, init=0.5):
        return Scale(channels, init)


    class NoChannels(nn.Module):
        def __init__(self, reduction=16):  # <no-channels>
            super().__init__()

        def forward(self, x):
            return x


    class InitRaises(nn.Module):
        def __init__(self, channels):
            super().__init__()
            raise ValueError("bad config")  # <init-raises>


    class ForwardRaises(nn.Module):
        def __init__(self, channels):
            super().__init__()

        def forward(self, x):
            if x.shape[-1] > 8:  # the backbone's probe is 8x8; a 64x64 input reaches layer1 at 16x16
                raise KeyError("oops")  # <forward-raises>
            return x


    class Halves(nn.Module):
        def __init__(self, channels):
            super().__init__()

        def forward(self, x):
            return x[:, : x.shape[1] // 2]
    """
)


def line_of(source: str, marker: str) -> int:
    """The line of ``source`` that carries ``# <marker>`` (1-based), as a traceback numbers it."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if f"<{marker}>" in line)


@pytest.fixture
def blocks(tmp_path):
    path = tmp_path / "myblocks.py"
    path.write_text(BLOCKS)
    return path


def count(model: str, attn: str, *params: str, position: str | None = None) -> int:
    return api.build(model, params=list(params), attn=attn, attn_position=position).num_params


# ----------------------------------------------------------------------------- where the block goes


def test_a_per_channel_scale_in_resnet18_adds_the_channels_of_every_basic_block(blocks):
    # BasicBlock: branch_end follows bn2, C = planes; 2 units per stage of 64, 128, 256, 512 channels.
    added = 2 * (64 + 128 + 256 + 512)  # = 1,920
    assert count("resnet18", f"{blocks}:Scale") == RESNET18 + added == 11_691_432


def test_a_per_channel_scale_in_resnet50_sits_at_the_branch_end(blocks):
    # Bottleneck: branch_end follows bn3, C = 4 * width; 3, 4, 6, 3 units of 256, 512, 1024, 2048.
    added = 3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048  # = 768 + 2,048 + 6,144 + 6,144 = 15,104
    assert count("resnet50", f"{blocks}:Scale") == RESNET50 + added == 25_572_136


def test_the_class_position_is_honoured_and_the_option_overrides_it(blocks):
    # Mix declares after_3x3: in a Bottleneck that is the width, 64, 128, 256, 512 (3, 4, 6, 3 units);
    # C*C + C each: 4,160, 16,512, 65,792, 262,656.
    at_3x3 = 3 * 4_160 + 4 * 16_512 + 6 * 65_792 + 3 * 262_656  # = 1,261,248
    assert count("resnet50", f"{blocks}:Mix") == RESNET50 + at_3x3 == 26_818_280
    # --attn-position branch_end: C = 4 * width, 256, 512, 1024, 2048: 65,792, 262,656, 1,049,600, 4,196,352.
    at_end = 3 * 65_792 + 4 * 262_656 + 6 * 1_049_600 + 3 * 4_196_352  # = 20,134,656
    assert count("resnet50", f"{blocks}:Mix", position="branch_end") == RESNET50 + at_end == 45_691_688

    unit = api.build("resnet50", attn=f"{blocks}:Mix").module.layer2[0]
    assert unit.attn_position == "after_3x3" and unit.attn.conv.in_channels == 128


def test_a_1x1_conv_in_resnet18_after_the_3x3(blocks):
    # BasicBlock after_3x3: after conv2, C = planes; C*C + C for 2 units each of 64, 128, 256, 512.
    added = 2 * (4_160 + 16_512 + 65_792 + 262_656)  # = 698,240
    assert count("resnet18", f"{blocks}:Mix") == RESNET18 + added == 12_387_752


def test_block_arguments_go_to_the_user_block_stage_by_stage(blocks):
    net = api.build("resnet18", attn=f"{blocks}:Scale", params=["attn.init=1,2,3,4"]).module
    firsts = [stage[0].attn.weight[0].item() for stage in (net.layer1, net.layer2, net.layer3, net.layer4)]
    assert firsts == [1.0, 2.0, 3.0, 4.0]


def test_a_function_returning_the_block(blocks):
    net = api.build("resnet18", attn=f"{blocks}:make_scale").module
    assert net.layer4[1].attn.weight[0].item() == 0.5  # make_scale's own default
    assert sum(p.numel() for p in net.parameters()) == RESNET18 + 1_920


def test_mobilenetv2_and_cnn1d_take_a_user_block(blocks):
    # MobileNetV2, branch_end after the projection BN: the output channels of its 17 inverted residuals,
    # 16 + 2*24 + 3*32 + 4*64 + 3*96 + 3*160 + 320 = 1,504.
    assert count("mobilenetv2", f"{blocks}:Scale") == MOBILENETV2 + 1_504 == 3_506_376
    # cnn1d: one block on its 32 channels after the second stage
    assert count("cnn1d", f"{blocks}:Scale") == api.build("cnn1d").num_params + 32


def test_a_block_from_an_importable_package(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "userblock_pkg_t12"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "gates.py").write_text(BLOCKS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    built = api.build("resnet18", attn="userblock_pkg_t12.gates:Scale")
    assert built.num_params == RESNET18 + 1_920
    assert built.name == "resnet18+Scale"


# ----------------------------------------------------------------------------- through the CLI


def test_profile_export_and_verify_with_a_user_block(cli, blocks, tmp_path):
    common = ("--attn", f"{blocks}:Scale", "-s", "1,3,32,32")
    result = cli("profile", "resnet18", *common, "--no-latency", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["params"]["total"] == RESNET18 + 1_920
    assert data["kwargs"]["attn"] == f"{blocks}:Scale"
    # the user's blocks are the attention share, as a registered block's would be: 8 of them, 1,920 weights
    assert data["attention"]["params"] == 1_920 and len(data["attention"]["modules"]) == 8

    path = tmp_path / "scaled.onnx"
    result = cli("export", "resnet18", *common, "--opset", "17", "-o", path, "--no-verify")
    assert result.exit_code == 0, result.stderr
    result = cli("verify", "resnet18", path, *common)
    assert result.exit_code == 0, result.stderr


def test_attn_position_on_the_command_line(cli, blocks):
    result = cli(
        "profile", "resnet50", "--attn", f"{blocks}:Mix", "--attn-position", "branch_end",
        "-s", "1,3,32,32", "--no-latency", "--format", "json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["params"]["total"] == RESNET50 + 20_134_656


def test_info_with_a_user_block(cli, blocks):
    result = cli("info", "resnet18", "--attn", f"{blocks}:Scale", "--depth", "0", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["params"] == RESNET18 + 1_920


# ----------------------------------------------------------------------------- errors: one line, exit 2


ERRORS = {
    "missing-file": ("{d}/nothing.py:Scale", "--attn: no such file: {d}/nothing.py"),
    "missing-class": ("{f}:Nope", "--attn: {f} has no 'Nope'; it defines: ForwardRaises"),
    "no-channels": ("{f}:NoChannels", "{f}:NoChannels takes no channels argument (it takes: reduction)"),
    "init-raises": ("{f}:InitRaises", "failed at myblocks.py:{init-raises}: ValueError: bad config"),
    "forward-raises": ("{f}:ForwardRaises", "resnet18+ForwardRaises's forward failed at myblocks.py:{forward-raises}: KeyError"),
    "wrong-shape": ("{f}:Halves", "returns (2, 32, 8, 8), and an inserted block must return the reweighted input"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_a_bad_user_block_is_one_line_and_exit_2(cli, blocks, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)  # messages name the file relative to the working folder
    target, fragment = ERRORS[name]
    fragment = fragment.format(d=tmp_path, f=blocks, **{m: line_of(BLOCKS, m) for m in ("init-raises", "forward-raises")})
    result = cli("profile", "resnet18", "--attn", target.format(d=tmp_path, f=blocks), "-s", "1,3,64,64", "--no-latency")
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr and "bug in attncli" not in result.stderr
    assert fragment in " ".join(result.stderr.split()), result.stderr


def test_a_constructor_without_channels_is_named_at_its_line(blocks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=rf"at myblocks.py:{line_of(BLOCKS, 'no-channels')}\)") as err:
        api.build("resnet18", attn=f"{blocks}:NoChannels")
    assert err.value.option == "attn"


def test_the_library_names_no_flags(blocks, tmp_path):
    with pytest.raises(UsageError) as err:
        api.build("resnet18", attn=f"{tmp_path}/nothing.py:Scale")
    assert err.value.option == "attn" and "--attn" not in str(err.value)
    with pytest.raises(UserCodeError) as err:
        api.build("resnet18", attn=f"{blocks}:InitRaises")
    assert err.value.location is not None and err.value.location.line == line_of(BLOCKS, "init-raises")


def test_channels_is_the_backbones_to_give(blocks):
    with pytest.raises(UsageError, match="attn.channels is set by the backbone") as err:
        api.build("resnet18", attn=f"{blocks}:Scale", params=["attn.channels=8"])
    assert err.value.option == "params"


def test_an_argument_the_block_does_not_take(blocks):
    with pytest.raises(UsageError, match=r"takes no parameter attn.colour; it takes: channels, init"):
        api.build("resnet18", attn=f"{blocks}:Scale", params=["attn.colour=1"])
