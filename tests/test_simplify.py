"""`export --simplify`: onnxscript's optimizer on the verified model, kept only when it verifies again.
Node counts and opsets are read here with onnx, from one file exported without and one with it."""

import json

import onnx
import pytest
from typer.testing import CliRunner

from attncli import api, onnx_export

SHAPE = "1,3,64,64"


def read(path):
    model = onnx.load(str(path))
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return len(model.graph.node), opset, dims, {p.key: p.value for p in model.metadata_props}


@pytest.fixture(scope="module")
def eca50(tmp_path_factory):
    """eca_resnet50 exported at opset 17 without and with --simplify (JSON), and the table of the second."""
    from attncli.cli.main import app

    folder = tmp_path_factory.mktemp("simplify")
    runner = CliRunner()
    plain, simple = folder / "plain.onnx", folder / "simple.onnx"
    first = runner.invoke(app, ["export", "eca_resnet50", "-s", SHAPE, "--opset", "17", "-o", str(plain), "-f", "json"])
    assert first.exit_code == 0, first.stderr
    second = runner.invoke(app, ["export", "eca_resnet50", "-s", SHAPE, "--opset", "17", "-o", str(simple), "--simplify", "-f", "json"])
    assert second.exit_code == 0, second.stderr
    return plain, simple, json.loads(first.stdout), json.loads(second.stdout)


def test_simplify_reduces_the_nodes_of_eca_resnet50_keeps_the_opset_and_verifies(eca50):
    plain, simple, _, data = eca50
    before, plain_opset, plain_dims, plain_meta = read(plain)
    after, opset, dims, meta = read(simple)
    assert after < before
    assert opset == plain_opset == 17 and data["opset"] == 17
    assert dims == plain_dims == ["batch", 3, "height", "width"]  # the dynamic axes stay
    assert data["simplify"]["applied"] is True and data["simplify"]["problem"] is None
    assert (data["simplify"]["nodes_before"], data["simplify"]["nodes_after"]) == (before, after)
    assert data["node_count"] == after
    assert data["passed"] and data["parity"]["passed"] and len({tuple(c["shape"]) for c in data["parity"]["cases"]}) > 1
    assert meta["attncli.simplified"].startswith("onnxscript.optimizer ") and "attncli.simplified" not in plain_meta
    assert data["metadata"]["attncli.simplified"] == meta["attncli.simplified"]


def test_the_table_prints_the_node_counts(cli, tmp_path):
    path = tmp_path / "eca18.onnx"
    result = cli("export", "eca_resnet18", "-s", SHAPE, "-o", path, "--simplify")
    assert result.exit_code == 0, result.stderr
    nodes = read(path)[0]
    line = next(row for row in result.stdout.splitlines() if row.startswith("simplified"))
    assert line.split()[1:] == [line.split()[1], "->", str(nodes), "nodes", "(onnxscript", "optimizer)"]
    assert int(line.split()[1]) > nodes


def test_simplify_without_verification_is_a_one_line_usage_error(cli, tmp_path):
    result = cli("export", "eca_resnet18", "-s", SHAPE, "-o", tmp_path / "x.onnx", "--simplify", "--no-verify")
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "--simplify" in result.stderr and "--no-verify" in result.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_a_simplified_model_that_fails_verification_is_not_written(cli, tmp_path, monkeypatch):
    """A simplification that breaks parity (here: one weight perturbed after the optimizer) is refused:
    the unsimplified, verified file is written, and stderr says so; the export passes."""
    real = onnx_export.simplify_model

    def breaking(data, name):
        model = onnx.load_model_from_string(real(data, name))
        weight = next(i for i in model.graph.initializer if len(i.dims) == 4)
        array = onnx.numpy_helper.to_array(weight) + 1.0
        weight.CopyFrom(onnx.numpy_helper.from_array(array, weight.name))
        return model.SerializeToString()

    monkeypatch.setattr(onnx_export, "simplify_model", breaking)
    path = tmp_path / "eca18.onnx"
    result = cli("export", "eca_resnet18", "-s", SHAPE, "-o", path, "--simplify", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    nodes, _, _, meta = read(path)
    assert data["simplify"]["applied"] is False and "verification failed" in data["simplify"]["problem"]
    assert nodes == data["simplify"]["nodes_before"] > data["simplify"]["nodes_after"]
    assert "attncli.simplified" not in meta and data["passed"]
    assert "not simplified" in result.stderr and "unsimplified" in result.stderr


def test_simplify_with_float16_simplifies_before_the_conversion(tmp_path):
    result = api.export("eca_resnet18", tmp_path / "half.onnx", input_shape=SHAPE, dtype="float16", simplify=True)
    assert result.passed and result.simplify["applied"]
    nodes, opset, _, meta = read(result.path)
    assert nodes == result.simplify["nodes_after"] < result.simplify["nodes_before"] and opset == 17
    assert meta["attncli.dtype"] == "float16" and "attncli.simplified" in meta
    model = onnx.load(result.path)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16


def test_simplify_with_quantize_quantizes_the_simplified_file(cli, tmp_path):
    """The int8 file is made from the simplified one (onnxruntime's quantizer once failed on the
    optimizer's value_info: it is dropped)."""
    path = tmp_path / "eca18.onnx"
    result = cli("export", "eca_resnet18", "-s", SHAPE, "-o", path, "--simplify", "--quantize", "dynamic", "--eval-samples", "4", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["simplify"]["applied"] and data["quantization"]["passed"]
    assert "attncli.simplified" in read(tmp_path / "eca18_int8.onnx")[3]
