import textwrap

import pytest
import torch

from attncli import api
from attncli.errors import UsageError
from attncli.modelspec import ModelRequest, parse_params, parse_shape, parse_value

USER_MODEL = textwrap.dedent("""
    import torch
    from torch import nn

    class Gate(nn.Module):
        '''A user's own attention: a learnable per-channel gate.'''
        def __init__(self, channels=8, scale=1.0):
            super().__init__()
            self.w = nn.Parameter(torch.randn(channels))
            self.scale = scale
        def forward(self, x):
            return x * torch.sigmoid(self.w * self.scale)[None, :, None, None]

    def make_gate(channels=4):
        return Gate(channels)

    NOT_A_MODEL = 3
""")


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "my_attention.py"
    path.write_text(USER_MODEL)
    return path


@pytest.mark.parametrize(
    "text, value",
    [("64", 64), ("-3", -3), ("1e-4", 1e-4), ("0.5", 0.5), ("true", True), ("False", False), ("none", None),
     ("3,5,5,7", (3, 5, 5, 7)), ("(1, 2)", (1, 2)), ("relu", "relu"), ("3,", (3,))],
)
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_parse_params_and_shapes():
    assert parse_params(["channels=64", "k_size=3,5,5,7"]) == {"channels": 64, "k_size": (3, 5, 5, 7)}
    assert parse_shape("1,64,56,56") == (1, 64, 56, 56)
    assert parse_shape("2x3x8") == (2, 3, 8)
    for bad in ("1,a,3", "1,0,3", "", "1,-2"):
        with pytest.raises(UsageError, match="bad input shape"):
            parse_shape(bad)
    with pytest.raises(UsageError, match="key=value"):
        parse_params(["channels"])


def test_user_class_and_function_from_a_file(user_file):
    built = api.build(f"{user_file}:Gate", params=["channels=16", "scale=0.5"], input_shape="2,16,5,5")
    assert built.module.scale == 0.5 and built.num_params == 16
    assert built.module(built.example).shape == (2, 16, 5, 5)
    built = api.build(f"{user_file}:make_gate", input_shape="1,4,3,3")
    assert built.num_params == 4


def test_user_model_from_a_package_module(tmp_path, monkeypatch):
    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "__init__.py").write_text("")
    (tmp_path / "userpkg" / "gates.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    built = api.build("userpkg.gates:Gate", input_shape="1,8,2,2")
    assert built.num_params == 8


def test_user_model_errors_are_usage_errors(user_file, tmp_path):
    cases = [
        (f"{tmp_path}/missing.py:Gate", "1,8,2,2", "no such file"),
        (f"{user_file}:Nope", "1,8,2,2", "has no 'Nope'"),
        (f"{user_file}:NOT_A_MODEL", "1,8,2,2", "not a class or function"),
        (f"{user_file}:Gate", None, "give its input shape"),
        ("no_such_pkg_xyz.mod:Gate", "1,8,2,2", "could not import module"),
    ]
    for model, shape, message in cases:
        with pytest.raises(UsageError, match=message):
            api.build(model, input_shape=shape)
    with pytest.raises(UsageError, match="takes no parameter colour"):
        api.build(f"{user_file}:Gate", params=["colour=red"], input_shape="1,8,2,2")


def test_same_seed_same_weights_and_input():
    a, b, c = api.build("cbam", seed=7), api.build("cbam", seed=7), api.build("cbam", seed=8)
    for (ka, va), (kb, vb) in zip(a.module.state_dict().items(), b.module.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert torch.equal(a.example, b.example)
    assert not torch.equal(a.module.channel.mlp[0].weight, c.module.channel.mlp[0].weight)
    assert not torch.equal(a.example, c.example)


def test_building_leaves_the_callers_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    api.build("se", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_channels_and_input_shape_follow_each_other():
    assert api.build("se", params={"channels": 256}).input_shape == (1, 256, 56, 56)
    built = api.build("se", input_shape="8,128,28,28")
    assert built.kwargs["channels"] == 128 and built.num_params == 2 * 128 * 128 // 16


def test_registry_entries_accept_overrides():
    built = api.build("eca", params=["k_size=7"])
    assert built.module.conv.kernel_size == (7,)
    with pytest.raises(UsageError, match="k_size must be a positive odd number"):
        api.build("eca", params=["k_size=4"])


def test_weights_round_trip_and_mismatches(tmp_path):
    src = api.build("cbam", seed=1)
    path = tmp_path / "cbam.pt"
    torch.save(src.module.state_dict(), path)
    loaded = api.build("cbam", seed=2, weights=path)
    assert torch.equal(loaded.module.channel.mlp[0].weight, src.module.channel.mlp[0].weight)

    with pytest.raises(UsageError, match=r"missing keys: .*unexpected keys: bogus"):
        state = dict(src.module.state_dict())
        state.pop("spatial.conv.weight")
        state["bogus"] = torch.zeros(1)
        torch.save(state, tmp_path / "bad.pt")
        api.build("cbam", weights=tmp_path / "bad.pt")
    torch.save(api.build("cbam", params={"channels": 128}).module.state_dict(), tmp_path / "wide.pt")
    with pytest.raises(UsageError, match=r"shape mismatch: channel\.mlp\.0\.weight \(8, 128\) vs \(4, 64\)"):
        api.build("cbam", weights=tmp_path / "wide.pt")
    with pytest.raises(UsageError, match="no such weights file"):
        api.build("cbam", weights=tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(UsageError, match="could not read"):
        api.build("cbam", weights=tmp_path / "junk.pt")


def test_request_is_plain_data():
    req = ModelRequest.make("eca", ["k_size=5"], "1,64,8,8", seed=3)
    assert req.params == {"k_size": 5} and req.input_shape == (1, 64, 8, 8)
    assert req.display_name == "eca"
