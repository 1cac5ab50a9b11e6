"""`attncli profile` and `api.profile`: JSON schema, attention share and overhead by hand, published
figures, user models, 1-D inputs, errors, the model left unchanged, and the CUDA path."""

import json

import pytest
import torch
from torch import nn

from attncli import api
from attncli.blocks.eca import ECA

LATENCY_KEYS = {"device", "dtype", "batch_size", "iters", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "throughput"}
FAST = ("--device", "cpu", "--warmup", "1", "--iters", "3")


def profile_json(cli, *args):
    result = cli("profile", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_schema_and_latency_fields(cli):
    data = profile_json(cli, "se", *FAST, "--batch-size", "1", "--batch-size", "4")
    for key in ("model", "input_shape", "params", "macs", "flops", "uncounted_ops", "modules", "latency", "latency_sweep", "reference", "baseline", "attention"):
        assert key in data
    assert data["model"] == "se" and data["input_shape"] == [1, 64, 56, 56]
    assert data["params"]["total"] == data["params"]["trainable"] == 2 * 64 * 4
    assert data["macs"] == 512 and data["flops"] == 402_500  # worked out in test_counting
    assert data["uncounted_ops"] == {} and data["reference"] is None and data["baseline"] is None
    lat = data["latency"]
    assert LATENCY_KEYS <= set(lat)
    assert lat["device"] == "cpu" and lat["dtype"] == "float32" and lat["batch_size"] == 1 and lat["iters"] == 3
    assert [r["batch_size"] for r in data["latency_sweep"]] == [1, 4]
    for r in data["latency_sweep"]:
        assert 0 < r["min_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["mean_ms"] > 0 and r["throughput"] > 0
    rows = {row["path"]: row for row in data["modules"]}
    assert rows["fc1"]["macs"] == 256 and rows["fc2"]["macs"] == 256 and rows["(root)"]["depth"] == 0


def test_no_latency_and_depth(cli):
    data = profile_json(cli, "cbam", "--no-latency", "--depth", "1")
    assert data["latency"] is None and data["latency_sweep"] == []
    assert {row["depth"] for row in data["modules"]} == {0, 1}
    assert [row["path"] for row in data["modules"]] == ["(root)", "channel", "spatial"]
    root = data["modules"][0]
    assert root["macs"] == sum(row["macs"] for row in data["modules"][1:])  # CBAM's own forward has no MACs


def test_table_output_names_macs_and_flops(cli):
    result = cli("profile", "eca", "--no-latency")
    assert result.exit_code == 0, result.stderr
    for word in ("MACs", "FLOPs", "uncounted", "none", "parameters"):
        assert word in result.stdout


def test_one_dimensional_input(cli):
    data = profile_json(cli, "eca1d", *FAST)
    assert data["input_shape"] == [1, 32, 128]
    assert data["macs"] == 32 * 3 and data["latency"]["batch_size"] == 1


def test_attention_composition_share_and_overhead_by_hand(cli):
    # resnet18 + ECA on 64 x 64: stages at 16, 8, 4, 2 pixels with 64, 128, 256, 512 channels,
    # two blocks each. ECA's k from the paper's rule: 3, 5, 5, 5 (one weight per tap).
    data = profile_json(cli, "resnet18", "--attn", "eca", "--input-shape", "1,3,64,64", "--no-latency")
    stages = [(64, 3, 16 * 16), (128, 5, 8 * 8), (256, 5, 4 * 4), (512, 5, 2 * 2)]
    params = 2 * sum(k for _, k, _ in stages)
    macs = 2 * sum(c * k for c, k, _ in stages)
    flops = 2 * macs + 2 * sum(c * hw + c + c * hw for c, _, hw in stages)  # pool, sigmoid, rescale
    base = data["baseline"]
    assert base["model"] == "resnet18"
    assert (base["params_diff"], base["macs_diff"], base["flops_diff"]) == (params, macs, flops)
    assert data["params"]["attention"] == params and data["attention"]["macs"] == macs
    assert len(data["attention"]["modules"]) == 8
    assert data["attention"]["macs_share"] == pytest.approx(macs / data["macs"])
    assert data["reference"] is None  # the published resnet18 figures are not for this model


def test_published_figures_in_the_publications_units(cli):
    # torchvision documents ResNet-18 as 11,689,512 parameters and 1.81 GFLOPS, which are
    # multiply-adds in decimal units: our MACs must land on it, our FLOPs would be twice that.
    data = profile_json(cli, "resnet18", "--no-latency", "--depth", "0")
    ref = data["reference"]
    assert ref["units"] == "decimal"
    assert data["params"]["total"] == 11_689_512 and ref["exact_params_match"] is True
    assert abs(ref["macs_rel_diff"]) < 0.01
    assert ref["measured_macs_g"] == pytest.approx(data["macs"] / 1e9)


def test_published_figures_in_binary_units_and_the_registered_baseline(cli):
    # ECA-Net's table (thop) divides by 2^20 and 2^30: 24.37 M and 3.86 G for ECA-ResNet-50.
    data = profile_json(cli, "eca_resnet50", "--no-latency", "--depth", "0")
    ref = data["reference"]
    assert ref["units"] == "binary"
    assert ref["measured_params_m"] == pytest.approx(data["params"]["total"] / 2**20)
    assert abs(ref["params_rel_diff"]) < 0.001
    assert abs(ref["macs_rel_diff"]) < 0.02  # in 10^9 units it would be about +6%
    assert data["baseline"]["model"] == "resnet50"
    assert data["baseline"]["params_diff"] == data["params"]["attention"]


def test_baseline_option_overrides_and_none_skips(cli):
    data = profile_json(cli, "eca", "--no-latency", "--baseline", "se")
    assert data["baseline"]["model"] == "se" and data["baseline"]["params_diff"] == 3 - 512
    assert profile_json(cli, "resnet18", "--attn", "se", "--input-shape", "1,3,32,32", "--no-latency", "--baseline", "none")["baseline"] is None


def test_user_model_from_a_file(cli, tiny_net_file):
    path = tiny_net_file
    data = profile_json(cli, f"{path}:Tiny", "-p", "width=6", "--input-shape", "1,3,10,10", *FAST)
    out = 8 * 8  # 3 x 3 conv without padding on 10 x 10
    assert data["macs"] == out * 6 * 27 + out * 2 * 6
    assert data["flops"] == 2 * data["macs"] + out * 6  # + the ReLU
    assert data["params"]["attention"] is None and data["attention"] is None
    assert data["reference"] is None and data["baseline"] is None and data["latency"]["mean_ms"] > 0


def test_user_model_with_an_attncli_block_gets_its_share_by_hand():
    net = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), ECA(8))  # ECA(8): log2 8 = 3 -> k = 3 after rounding up to odd
    report = api.profile(net, input_shape=(1, 8, 4, 4), latency=False)
    conv_macs, eca_macs = 8 * 16 * 8, 8 * 3
    assert report.macs == conv_macs + eca_macs
    assert report.attention.modules == ["1"]
    assert report.params.attention == 3 and report.params.attention_share == pytest.approx(3 / 67)
    assert report.attention.macs_share == pytest.approx(eca_macs / (conv_macs + eca_macs))
    rows = {row.path: row for row in report.modules}
    assert rows["1"].is_attention and not rows["0"].is_attention
    assert rows["(root)"].attention_macs_share == pytest.approx(eca_macs / (conv_macs + eca_macs))


def test_an_uncounted_operator_is_reported_with_a_note():
    class Rare(nn.Module):
        def forward(self, x):
            return torch.erfinv(x.clamp(-0.5, 0.5))

    report = api.profile(Rare(), input_shape=(2, 3), latency=False)
    assert report.uncounted_ops == {"aten::erfinv": 1}
    assert any("lower bounds" in note for note in report.notes)


def test_profiling_leaves_the_users_model_unchanged():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), ECA(8), nn.AdaptiveAvgPool2d(1)).train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    buffers = [name for name, _ in net.named_buffers()]
    api.profile(net, input_shape=(2, 3, 12, 12), device="cpu", warmup=1, iters=2, batch_sizes=[1, 2])
    assert list(net.state_dict()) == list(state)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())
    assert [name for name, _ in net.named_buffers()] == buffers
    assert all(m.training for m in net.modules())
    assert all(not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks) for m in net.modules())


@pytest.mark.parametrize(
    "args, message",
    [
        (("se", "--device", "cpu", "--dtype", "float16"), "CUDA only"),
        (("se", "--device", "cpu", "--iters", "0"), "--iters"),
        (("se", "--input-shape", "1,32,8,8", "-p", "channels=64", "--no-latency"), "rejects an input"),
        (("se", "--depth", "-1", "--no-latency"), "--depth"),
    ],
)
def test_mistakes_are_one_line_exit_2(cli, args, message):
    result = cli("profile", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_device_cuda_without_cuda_is_exit_2(cli):
    result = cli("profile", "se", "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA device" in result.stderr


@pytest.mark.gpu
def test_cuda_profile_with_half_precision_and_memory(cli):
    data = profile_json(cli, "eca_resnet50", "--device", "cuda", "--dtype", "float16", "--batch-size", "1", "--batch-size", "16", "--iters", "20")
    for lat in data["latency_sweep"]:
        assert lat["device"] == "cuda" and lat["dtype"] == "float16"
        assert lat["peak_memory_mb"] > 0 and 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
    assert data["latency_sweep"][1]["peak_memory_mb"] > data["latency_sweep"][0]["peak_memory_mb"]
    assert data["baseline"]["latency_p50_ms"] > 0
