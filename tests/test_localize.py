"""`verify --localize`: where PyTorch and onnxruntime first diverge. A file corrupted in one middle
layer here (its weight perturbed with onnx's numpy_helper) must be traced to that layer."""

import json
import textwrap

import pytest

from attncli.parity import node_module_path

# conv-bn-relu three times: a Sequential stem, a named middle block with a residual add, a Sequential head
NET = textwrap.dedent(
    """
    from torch import nn

    def cbr(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())

    class Middle(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.bn = nn.BatchNorm2d(c)
            self.act = nn.ReLU(inplace=True)
        def forward(self, x):
            return self.act(self.bn(self.conv(x))) + x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = cbr(3, 8)
            self.middle = Middle(8)
            self.head = cbr(8, 4)
        def forward(self, x):
            return self.head(self.middle(self.stem(x)))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Net exported by attncli (its spec recorded in the file), and a copy with middle.conv's weight perturbed."""
    import onnx
    from onnx import numpy_helper

    from attncli import api

    folder = tmp_path_factory.mktemp("localize")
    (folder / "net.py").write_text(NET)
    good = folder / "good.onnx"
    api.export(f"{folder / 'net.py'}:Net", good, opset=17, input_shape="1,3,8,8", verify=False)

    model = onnx.load(str(good))
    (conv,) = [n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith("/middle/conv/")]
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    values = numpy_helper.to_array(weight).copy()
    values[0] += 0.5  # the first output channel only
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    bad = folder / "bad.onnx"
    onnx.save(model, str(bad))
    return good, bad


def test_node_names_and_namespaces_map_to_module_paths():
    from onnx import helper

    def named(name):
        return helper.make_node("Relu", ["a"], ["b"], name=name)

    assert node_module_path(named("/layer1/layer1.0/conv1/Conv")) == "layer1.0.conv1"
    # names as torch's TorchScript exporter gives them, read with the model's module paths
    modules = ["layer1", "layer1.0", "layer1.0.conv1", "layer1.0.downsample", "layer1.0.downsample.0", "layer1.0.d", "layer1.0.d.k"]
    assert node_module_path(named("/layer1/layer1.0/downsample/downsample.0/Conv"), modules) == "layer1.0.downsample.0"
    assert node_module_path(named("/layer1/layer1.0/k/Relu"), modules) == "layer1.0.d.k"  # a ModuleDict entry
    assert node_module_path(named("/layer1/layer1.0/relu_1/Relu"), modules) == "layer1.0.relu_1"  # a second call: under its block
    assert node_module_path(named("/stem/stem.0/Conv")) == "stem.0"
    assert node_module_path(named("/ReduceMean")) == ""  # the model's own forward
    assert node_module_path(named("Conv_12")) is None  # no scope in the name
    dynamo = named("node_Conv_3")
    entry = dynamo.metadata_props.add()
    entry.key, entry.value = "namespace", ": m.Net/stem: Sequential/stem.1: BatchNorm2d/bn: aten.batch_norm.default"
    assert node_module_path(dynamo) == "stem.1"


def test_the_perturbed_layer_is_named(exported):
    from attncli import api

    _, bad = exported
    report = api.verify(bad, localize=True)
    assert not report
    where = report.localization
    assert not where and where.first is not None
    assert where.first.path == "middle.conv" and where.first.type == "Conv2d"
    assert where.first.folded == ["middle.bn (BatchNorm2d)"]  # the exporter folded the BatchNorm into the Conv
    assert any(name.startswith("/middle/conv/") for name in where.first.nodes)
    # every module before it matched: the stem's conv (with its bn), relu and the stem itself
    before = where.modules[: where.modules.index(where.first)]
    assert [m.path for m in before] == ["stem.0", "stem.2", "stem"] and all(before)
    assert where.first.comparison.max_abs > report.atol


def test_the_cli_names_the_layer_in_table_and_json(cli, exported):
    _, bad = exported
    table = cli("verify", bad, "--localize")
    assert table.exit_code == 1
    assert "first divergence at module middle.conv (Conv2d" in table.stdout
    assert "/middle/conv/Conv" in table.stdout

    result = cli("verify", bad, "--localize", "-f", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)["localization"]
    assert data["passed"] is False and data["first_divergence"]["module"] == "middle.conv"
    assert data["matched_before_first"] == 3 and data["compared"] >= 6


def test_an_intact_file_has_no_divergence(cli, exported):
    good, _ = exported
    result = cli("verify", good, "--localize", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["passed"] and data["localization"]["passed"] and data["localization"]["first_divergence"] is None
    assert data["localization"]["matched"] == data["localization"]["compared"] >= 6

    table = cli("verify", good, "--localize")
    assert table.exit_code == 0 and "no divergence" in table.stdout
    plain = cli("verify", good, "-f", "json")  # not asked: not run
    assert json.loads(plain.stdout)["localization"] is None


@pytest.mark.slow
def test_a_dynamo_exported_file_is_mapped_through_its_namespaces(exported, tmp_path):
    import onnx
    import torch
    from onnx import numpy_helper

    from attncli import api
    from attncli.parity import localize_mismatch

    good, _ = exported
    built = api.build(f"{good.parent / 'net.py'}:Net", input_shape="1,3,8,8")
    program = torch.onnx.export(built.module, (built.example,), dynamo=True, opset_version=18, input_names=["input"])
    model = program.model_proto
    path = tmp_path / "dynamo.onnx"
    onnx.save(model, str(path))
    assert localize_mismatch(built, path)

    (conv,) = [n for n in model.graph.node if n.op_type == "Conv" and any("middle.bn" in p.value for p in n.metadata_props)]
    weight = next(t for t in model.graph.initializer if t.name == conv.input[1])
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + 0.5, weight.name))
    onnx.save(model, str(path))
    first = localize_mismatch(built, path).first
    assert first is not None and first.path == "middle.conv" and first.folded == ["middle.bn (BatchNorm2d)"]
