"""MACs and FLOPs: hand-computed expectations, FlopCounterMode cross-checks, coverage of every
registered model, and the model left as it was."""

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from attncli import api, registry
from attncli.counting import OPERATOR_HANDLES, OPERATOR_RULES, count_costs, count_params, elementwise


def flop_counter_mode_flops(module, x) -> int:
    """torch's own counter: 2 x MACs for convolution, linear and matrix products, nothing else."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    return counter.get_total_flops()


def small_shape(spec):
    """Tracing cost is what this checks, so backbones get a 32 x 32 image (1-D inputs as registered)."""
    shape = spec.input_shape
    if spec.kind == "backbone" and len(shape) == 4:
        return (1, shape[1], 32, 32)
    return None


# ------------------------------------------------------------------ hand-computed


def test_se_by_hand():
    built = api.build("se", input_shape=(1, 64, 56, 56))  # C = 64, r = 16: hidden 4
    costs = count_costs(built.module, built.example)
    elements = 64 * 56 * 56  # 200,704
    fc1 = 64 * 4  # Linear 64 -> 4 without bias: 256 MACs
    fc2 = 4 * 64  # Linear 4 -> 64: 256 MACs
    assert costs.macs == fc1 + fc2 == 512
    pool = elements  # mean over H, W: one FLOP per input element
    relu, sigmoid = 4, 64  # one per output element
    rescale = elements  # x * gate: one multiply per output element
    assert costs.flops == 2 * 512 + pool + relu + sigmoid + rescale == 402_500
    assert costs.uncounted_ops == {}
    assert costs.flops_by_operator == {"mean": pool, "mul": rescale, "linear": 2 * 512, "sigmoid": sigmoid, "relu": relu}
    assert costs.flops_by_operator["linear"] == flop_counter_mode_flops(built.module, built.example)


@pytest.mark.parametrize("channels, shape, k", [(64, (1, 64, 56, 56), 3), (256, (2, 256, 14, 14), 5)])
def test_eca_by_hand(channels, shape, k):
    built = api.build("eca", params={"channels": channels}, input_shape=shape)
    assert built.module.conv.kernel_size == (k,)
    costs = count_costs(built.module, built.example)
    n = shape[0]
    elements = n * channels * shape[2] * shape[3]
    conv = n * channels * k  # Conv1d(1, 1, k) along the channel axis: k MACs per channel
    assert costs.macs == conv
    assert costs.flops == 2 * conv + elements + n * channels + elements  # pool, conv, sigmoid, rescale
    assert 2 * costs.macs == flop_counter_mode_flops(built.module, built.example)
    assert costs.uncounted_ops == {}


def test_eca1d_on_a_one_dimensional_input():
    built = api.build("eca1d")  # (1, 32, 128); log2(32) = 5 -> |(5 + 1) / 2| = 3, odd: k = 3
    costs = count_costs(built.module, built.example)
    assert costs.macs == 32 * 3
    assert costs.flops == 2 * 96 + 32 * 128 + 32 + 32 * 128


class TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.fc(x.flatten(1))


def test_tiny_conv_net_by_hand_and_against_flop_counter_mode():
    net, x = TinyConvNet().eval(), torch.randn(1, 3, 16, 16)
    costs = count_costs(net, x)
    conv = (8 * 16 * 16) * (3 * 3 * 3)  # outputs x (C_in * k * k) = 2048 * 27
    fc = 512 * 10
    assert costs.macs == conv + fc == 60_416
    bn = 2 * 2048  # eval batch norm: a folded scale and shift per element
    relu = 2048
    pool = (8 * 8 * 8) * (2 * 2)  # each output element reads a 2 x 2 window
    assert costs.flops == 2 * (conv + fc) + bn + relu + pool == 129_024
    assert 2 * costs.macs == flop_counter_mode_flops(net, x)
    assert costs.by_module["conv"].macs == conv and costs.by_module["fc"].macs == fc
    assert costs.by_module["bn"].flops == bn and costs.by_module["pool"].flops == pool


def test_broadcast_matmul_and_bmm_against_flop_counter_mode():
    class Products(nn.Module):
        def forward(self, x):
            w = torch.ones(5, 6)
            y = x @ w  # (2, 3, 4, 5) @ (5, 6): 2*3*4*6 outputs x 5
            return torch.bmm(y.flatten(0, 1), y.flatten(0, 1).transpose(1, 2))  # (6, 4, 6) @ (6, 6, 4)

    x = torch.randn(2, 3, 4, 5)
    costs = count_costs(Products(), x)
    assert costs.macs == 2 * 3 * 4 * 6 * 5 + 6 * 4 * 4 * 6
    assert 2 * costs.macs == flop_counter_mode_flops(Products(), x)


def test_ops_fvcore_skips_by_default_are_counted():
    class Skipped(nn.Module):
        def forward(self, x):  # x: (2, 3, 4)
            a = torch.relu(x)  # 24
            b = a.clamp(0, 1)  # 24
            c = torch.max(b, dim=1).values  # reduction: 24 input elements -> (2, 4)
            d = torch.max(b, b)  # elementwise: 24
            e = torch.floor_divide(d, 2)  # 24
            return c.sum() + e.sum()  # 8 + 24 input elements, then one add

    costs = count_costs(Skipped(), torch.randn(2, 3, 4))
    assert costs.uncounted_ops == {}
    assert costs.flops == 24 * 5 + 8 + 24 + 1
    assert costs.flops_by_operator["relu"] == 24 and costs.flops_by_operator["clamp"] == 24
    assert costs.flops_by_operator["max"] == 48


def test_every_op_fvcore_ignores_has_a_rule_in_our_table():
    from fvcore.nn.jit_analysis import _IGNORED_OPS

    assert sorted(_IGNORED_OPS - set(OPERATOR_HANDLES)) == []


def test_an_op_without_a_rule_is_reported_and_the_table_extends():
    class Rare(nn.Module):
        def forward(self, x):
            return torch.erfinv(x.clamp(-0.5, 0.5)) * 2

    x = torch.randn(3, 5)
    costs = count_costs(Rare(), x)
    assert costs.uncounted_ops == {"aten::erfinv": 1}
    assert costs.flops == 15 + 15  # clamp and mul; erfinv is reported, not zero in silence
    extended = count_costs(Rare(), x, handles={**OPERATOR_HANDLES, "aten::erfinv": elementwise(1)})
    assert extended.uncounted_ops == {}
    assert extended.flops == 45


def test_softmax_and_batch_norm_rules():
    class Gate(nn.Module):
        def forward(self, x):
            return x.softmax(dim=1)

    costs = count_costs(Gate(), torch.randn(2, 7, 3))
    assert costs.flops == 3 * 42  # exp, sum, divide per element


# ------------------------------------------------------------------ every registered model


@pytest.mark.parametrize("name", [spec.name for spec in registry.list_specs()])
def test_no_registered_model_has_an_uncounted_operator(name):
    built = api.build(name, input_shape=small_shape(registry.get(name)))
    costs = count_costs(built.module, built.example)
    assert costs.uncounted_ops == {}
    assert costs.flops >= 2 * costs.macs
    if registry.get(name).kind == "backbone":
        assert costs.macs > 0


# ------------------------------------------------------------------ the model is left alone


def snapshot(module):
    return (
        {k: v.clone() for k, v in module.state_dict().items()},
        [(name, buf.clone()) for name, buf in module.named_buffers()],
        [m.training for m in module.modules()],
    )


def hooks_of(module):
    return [
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in module.modules()
    ]


def test_counting_leaves_the_model_unchanged_even_in_training_mode():
    net = TinyConvNet().train()  # batch norm in training mode would update its running stats
    net.fc.eval()  # a mixed tree: every flag must come back as it was
    state, buffers, flags = snapshot(net)
    hooks = hooks_of(net)
    count_costs(net, torch.randn(2, 3, 16, 16))
    after_state, after_buffers, after_flags = snapshot(net)
    assert list(after_state) == list(state)
    assert all(torch.equal(state[k], after_state[k]) for k in state)
    assert [n for n, _ in after_buffers] == [n for n, _ in buffers]
    assert after_flags == flags
    assert hooks_of(net) == hooks


def test_param_counts_count_shared_tensors_once_and_split_trainable():
    lin = nn.Linear(4, 4)
    net = nn.Sequential(lin, nn.ReLU(), lin, nn.Linear(4, 2))
    net[3].weight.requires_grad_(False)
    total, trainable = count_params(net)
    assert total == (16 + 4) + (8 + 2)
    assert trainable == total - 8


# ------------------------------------------------------------------ the generated page


def test_docs_flop_rules_page_is_what_the_rule_table_generates():
    docs = Path(__file__).resolve().parents[1] / "docs"
    spec = importlib.util.spec_from_file_location("gen_flop_rules", docs / "gen_flop_rules.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (docs / "flop-rules.md").read_text(encoding="utf-8")
    assert committed == generator.render(), "docs/flop-rules.md is stale: run .venv/bin/python docs/gen_flop_rules.py"
    # the page is the table: every operator with a rule appears in it (in-place forms as name/name_)
    for op in OPERATOR_RULES:
        name = op.split("::", 1)[1]
        assert f"`{name}`" in committed
