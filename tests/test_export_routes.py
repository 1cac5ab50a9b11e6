"""Export routes (issue 13): auto takes the first route whose file is at the asked opset and verifies,
says which, and when none works names the operator and the lowest opset that does; planned shapes
that respect the model (a stride, a channels-last axis, shapes the model itself refuses); and
onnxruntime kept quiet so that attncli's line is the only one on stderr.

Which operator needs which opset is torch's own word (torch 2.x, TorchScript exporter): einsum
arrived in its symbolic opset 12, scaled_dot_product_attention in 14, col2im (nn.Fold) in 18, and
it has no rms_norm at all, which the dynamo exporter decomposes into opset-18 operators that onnx's
version converter takes down to 17.
"""

import json
import subprocess
import sys
import textwrap

import onnx
import pytest

from attncli import api
from attncli.errors import CheckFailed, UsageError
from attncli.parity import plan_shapes

MODULES = textwrap.dedent(
    """\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Einsum(nn.Module):
        def forward(self, x):
            return torch.einsum("nchw,nchw->nhw", x, x).unsqueeze(1)


    class Sdpa(nn.Module):
        def forward(self, x):
            q = x.flatten(2).transpose(1, 2)
            return F.scaled_dot_product_attention(q, q, q).transpose(1, 2).reshape(x.shape)


    class Fold(nn.Module):
        def forward(self, x):
            return F.fold(F.unfold(x, 2, stride=2), x.shape[-2:], 2, stride=2)


    class RmsNorm(nn.Module):
        def forward(self, x):
            return F.rms_norm(x.transpose(1, 3), (4,)).transpose(1, 3)


    class Unshuffle(nn.Module):
        # a window of 4: valid only where height and width are multiples of 4
        def forward(self, x):
            return F.pixel_unshuffle(x, 4)


    class ChannelsLast(nn.Module):
        # (N, H, W, C) in, normalised over C
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm(4)

        def forward(self, x):
            return self.norm(x) * 2


    class Flat(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1)


    class CumsumOfBool(nn.Module):
        # how many positive values so far along each row
        def forward(self, x):
            return torch.cumsum(x > 0, dim=-1).to(x.dtype)
    """
)


@pytest.fixture
def modules(tmp_path):
    path = tmp_path / "routes.py"
    path.write_text(MODULES)
    return lambda name: f"{path}:{name}"


def file_opset(path) -> int:
    return next(e.version for e in onnx.load(str(path)).opset_import if e.domain in ("", "ai.onnx"))


# ----------------------------------------------------------------------------- one module per route


def test_einsum_exports_by_torchscript_from_opset_12_and_says_so_below(modules, tmp_path):
    result = api.export(modules("Einsum"), tmp_path / "e12.onnx", opset=12, input_shape="1,4,8,8")
    assert (result.route, result.exporter, result.opset) == ("torchscript", "torchscript", 12)
    assert file_opset(result.path) == 12 and result.parity.passed
    with pytest.raises(CheckFailed) as info:
        api.export(modules("Einsum"), tmp_path / "e11.onnx", opset=11, input_shape="1,4,8,8")
    assert "aten::einsum has no form below opset 12; opset 12 exports and verifies" in str(info.value)
    assert "\n" not in str(info.value) and "--" not in str(info.value)  # one line, and no CLI flag in the library
    assert not (tmp_path / "e11.onnx").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["e12.onnx", "routes.py"]


def test_scaled_dot_product_attention_needs_opset_14(modules, tmp_path):
    result = api.export(modules("Sdpa"), tmp_path / "s14.onnx", opset=14, input_shape="1,4,4,4")
    assert result.route == "torchscript" and file_opset(result.path) == 14 and result.parity.passed
    with pytest.raises(CheckFailed, match="aten::scaled_dot_product_attention has no form below opset 14; opset 14 exports"):
        api.export(modules("Sdpa"), tmp_path / "s13.onnx", opset=13, input_shape="1,4,4,4")


def test_fold_needs_opset_18_and_the_dynamo_exporter(modules, tmp_path):
    result = api.export(modules("Fold"), tmp_path / "f18.onnx", opset=18, input_shape="1,4,8,8")
    assert (result.route, result.exporter) == ("dynamo", "dynamo") and file_opset(result.path) == 18 and result.parity.passed
    with pytest.raises(CheckFailed, match=r"aten::col2im has no form below opset 18; opset 18 exports and verifies \(the dynamo route\)"):
        api.export(modules("Fold"), tmp_path / "f17.onnx", opset=17, input_shape="1,4,8,8")
    assert not (tmp_path / "f17.onnx").exists()


def test_a_model_torchscript_cannot_write_at_17_goes_through_the_version_converter(modules, tmp_path):
    result = api.export(modules("RmsNorm"), tmp_path / "r17.onnx", opset=17, input_shape="1,4,8,8")
    assert (result.route, result.exporter, result.opset) == ("dynamo+version-converter", "dynamo", 17)
    model = onnx.load(result.path)
    assert file_opset(result.path) == 17 and result.parity.passed
    assert {p.key: p.value for p in model.metadata_props}["attncli.route"] == "dynamo+version-converter"
    assert len(result.rejected_routes) == 1 and result.rejected_routes[0].startswith("torchscript at opset 17:")
    assert "rms_norm" in result.rejected_routes[0]
    assert result.as_dict()["route"] == "dynamo+version-converter"


def test_a_file_torchscript_writes_wrong_at_17_is_replaced_by_the_dynamo_route(modules, tmp_path):
    # TorchScript writes CumSum over a bool tensor, a type CumSum does not take (onnxruntime refuses
    # the file: "INVALID_GRAPH ... Type 'tensor(bool)'"); the dynamo exporter casts first
    result = api.export(modules("CumsumOfBool"), tmp_path / "c17.onnx", opset=17, input_shape="1,4,10,14")
    assert (result.route, result.opset) == ("dynamo+version-converter", 17)
    assert file_opset(result.path) == 17 and result.parity.passed
    assert len(result.rejected_routes) == 1 and result.rejected_routes[0].startswith("torchscript at opset 17:")
    assert "CumSum" in result.rejected_routes[0] and "bool" in result.rejected_routes[0]
    with pytest.raises(CheckFailed):
        api.export(modules("CumsumOfBool"), tmp_path / "ts.onnx", opset=17, exporter="torchscript", input_shape="1,4,10,14")
    assert not (tmp_path / "ts.onnx").exists()


def test_opset_min_finds_the_lowest_opset_that_exports_and_verifies(modules, tmp_path):
    result = api.export(modules("Einsum"), tmp_path / "einsum.onnx", opset="min", input_shape="1,4,8,8")
    assert (result.opset, result.route, result.parity.passed) == (12, "torchscript", True)
    assert file_opset(tmp_path / "einsum.onnx") == 12
    with pytest.raises(UsageError, match="whole number or 'min'"):
        api.export(modules("Einsum"), tmp_path / "x.onnx", opset="lowest")


def test_the_cli_names_the_flag_when_no_route_works(cli, modules, tmp_path):
    result = cli("export", modules("Einsum"), "-s", "1,4,8,8", "--opset", "11", "-o", tmp_path / "e.onnx")
    assert result.exit_code == 1
    assert "--opset" in result.stderr and "opset 12 exports and verifies" in result.stderr
    assert result.stderr.strip().count("\n") == 0


# ----------------------------------------------------------------------------- shapes that respect the model


def test_plan_shapes_rounds_spatial_sizes_to_the_multiple_and_still_changes_every_axis():
    # by hand: half of 16 is 8 (a multiple of 8 already); the uneven sizes 7 and 8 round to 8, which the
    # export (16) and the first shape (8) hold, so they step up by 8: 24, and 32 for the second axis
    # (24 is the first axis's, and the shape must not be square)
    assert plan_shapes((1, 4, 16, 16), [0, 2, 3], multiple=8) == [(1, 4, 16, 16), (3, 4, 8, 8), (2, 4, 24, 32)]
    # channels last: axis 3 is the channels and stays; axes 1 and 2 are the spatial ones
    assert plan_shapes((1, 56, 56, 64), [0, 1, 2], channels_axis=3) == [(1, 56, 56, 64), (3, 28, 28, 64), (2, 22, 26, 64)]
    with pytest.raises(UsageError):
        plan_shapes((1, 4, 8, 8), [0, 2, 3], multiple=0)


def test_shape_multiple_keeps_a_window_4_model_to_shapes_it_accepts(cli, modules, tmp_path):
    out = tmp_path / "u.onnx"
    result = cli("export", modules("Unshuffle"), "-s", "1,4,16,16", "--shape-multiple", "8", "-o", out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    shapes = [tuple(c["shape"]) for c in data["parity"]["cases"]]
    assert data["parity"]["skipped"] == []
    assert {s[2] % 4 for s in shapes} == {0} and {s[3] % 4 for s in shapes} == {0}
    assert (2, 4, 24, 32) in shapes  # the second planned shape, as derived by hand above


def test_channels_axis_keeps_the_channels_of_a_channels_last_model_fixed(cli, modules, tmp_path):
    out = tmp_path / "cl.onnx"
    result = cli("export", modules("ChannelsLast"), "-s", "1,8,8,4", "--channels-axis", "-1", "-o", out, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dynamic_axes"] == {"0": "batch", "1": "height", "2": "width"}
    assert {c["shape"][3] for c in data["parity"]["cases"]} == {4}
    assert {c["shape"][1] for c in data["parity"]["cases"]} != {8}  # the height did change
    dims = [d.dim_value or d.dim_param for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "height", "width", 4]
    # the file records the axis: verify FILE.onnx alone plans the same shapes
    again = cli("verify", out, "--format", "json")
    assert again.exit_code == 0, again.stderr
    assert [c["shape"] for c in json.loads(again.stdout)["cases"]] == [c["shape"] for c in data["parity"]["cases"]]


def test_a_channel_axis_that_is_not_one_is_a_usage_error(cli, modules, tmp_path):
    result = cli("export", modules("ChannelsLast"), "-s", "1,8,8,4", "--channels-axis", "0", "-o", tmp_path / "x.onnx")
    assert result.exit_code == 2 and result.stderr.strip().startswith("error: --channels-axis:")


def test_shapes_the_model_refuses_are_skipped_and_all_refused_is_a_usage_error(cli, modules, tmp_path):
    out = tmp_path / "u.onnx"
    assert cli("export", modules("Unshuffle"), "-s", "1,4,8,8", "--no-verify", "-o", out).exit_code == 0
    report = api.verify(modules("Unshuffle"), out, input_shape="1,4,8,8")
    assert report.passed and [s.shape for s in report.skipped] == [(2, 4, 4, 5)]
    assert "skipped 1 shape the model does not accept (2,4,4,5)" in report.message
    refused = cli("verify", modules("Unshuffle"), out, "-s", "1,4,8,8", "--shape", "1,4,6,6", "--shapes-only")
    assert refused.exit_code == 2 and "the model does not accept any of the shapes to verify" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0


# ----------------------------------------------------------------------------- onnxruntime quiet


def _save(model, path):
    onnx.save(model, str(path))
    return path


def test_a_file_onnxruntime_cannot_load_gives_one_line_on_stderr(modules, tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4, 8, 8])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["input"], ["output"], domain="com.example")], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)], ir_version=8)
    path = _save(model, tmp_path / "unknown_op.onnx")
    proc = subprocess.run([sys.executable, "-m", "attncli", "verify", modules("Flat"), str(path), "-s", "1,4,8,8"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime cannot load" in lines[0] and "NoSuchOp" in lines[0], proc.stderr


def test_onnxruntime_prints_nothing_when_a_node_fails_at_a_shape(modules, tmp_path):
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    # a Reshape to a fixed 1x256 in a file that claims a dynamic batch: fails at batch 3 and 2
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 256])
    shape = numpy_helper.from_array(np.array([1, 256], dtype=np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["input", "shape"], ["output"])], "g", [x], [y], initializer=[shape])
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "reshape.onnx")
    proc = subprocess.run([sys.executable, "-m", "attncli", "verify", modules("Flat"), str(path), "-s", "1,4,8,8", "--format", "json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "onnxruntime:" not in proc.stderr and "\x1b[" not in proc.stderr, proc.stderr
    problems = [c["problem"] for c in json.loads(proc.stdout)["cases"] if c["problem"]]
    assert problems and all(p.startswith("onnxruntime fails at this shape") for p in problems)


def test_the_cli_takes_opset_min_and_names_the_file_by_the_opset_found(cli, modules, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("export", modules("Einsum"), "-s", "1,4,8,8", "--opset", "min")
    assert result.exit_code == 0, result.stderr
    assert file_opset(tmp_path / "Einsum_opset12.onnx") == 12
    assert "opset 12, torchscript route" in result.stdout
    bad = cli("export", modules("Einsum"), "-s", "1,4,8,8", "--opset", "lowest")
    assert bad.exit_code == 2 and "'lowest' is not a whole number or 'min'" in bad.stderr
    bench = cli("bench", modules("Einsum"), "-s", "1,4,8,8", "--opset", "min")
    assert bench.exit_code == 2 and "give its opset as a number" in bench.stderr
