"""`attncli inspect FILE.onnx` and export's graph summary. Files made here, counted here with onnx."""

import json
from collections import Counter

import pytest

from attncli.errors import UsageError
from attncli.inspect_onnx import element_type_name, inspect_file

SMALL = ("-s", "1,16,8,8")


@pytest.fixture(scope="module")
def se_file(tmp_path_factory):
    """se exported by attncli (its spec recorded), batch and spatial axes dynamic."""
    from attncli import api

    path = tmp_path_factory.mktemp("inspect") / "se.onnx"
    api.export("se", path, opset=13, input_shape="1,16,8,8", verify=False)
    return path


def _histogram(graph):
    return Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}" for n in graph.node)


def test_element_types_are_named_in_words():
    assert [element_type_name(t) for t in (1, 10, 16, 11, 7, 9)] == ["float32", "float16", "bfloat16", "float64", "int64", "bool"]
    assert element_type_name(9999) == "element type 9999"


def test_inspect_counts_what_onnx_reads(se_file):
    import os

    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(se_file))
    summary = inspect_file(se_file)

    assert summary.node_count == len(model.graph.node) and summary.subgraph_node_count == 0
    expected = _histogram(model.graph)
    assert dict(summary.operators) == dict(expected)
    counts = [n for _, n in summary.operators]
    assert counts == sorted(counts, reverse=True)  # most used first
    assert summary.initializer_count == len(model.graph.initializer)
    assert summary.initializer_bytes == sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
    assert summary.file_bytes == os.path.getsize(se_file)
    assert summary.opset_imports == {"ai.onnx": 13}
    assert summary.ir_version == model.ir_version and summary.producer_name == model.producer_name

    (given,) = model.graph.input
    named = [d.dim_param or d.dim_value for d in given.type.tensor_type.shape.dim]
    assert named == ["batch", 16, "height", "width"]
    assert [(t.name, t.elem_type, t.shape) for t in summary.inputs] == [(given.name, "float32", named)]
    assert summary.dynamic_axes == {given.name: {0: "batch", 2: "height", 3: "width"}}
    assert summary.attncli_spec["model"] == "se" and summary.attncli_spec["input_shape"] == [1, 16, 8, 8]
    assert summary.metadata == {p.key: p.value for p in model.metadata_props}
    assert not summary.external_data and not summary.checker_problem


def test_external_data_is_summarised_without_reading_it(se_file, tmp_path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(se_file))
    nbytes = sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.bin", size_threshold=0)

    summary = inspect_file(path)
    assert summary.external_data
    (ext,) = summary.external_files
    assert (ext.location, ext.tensors, ext.bytes, ext.exists) == ("ext.bin", len(model.graph.initializer), nbytes, True)
    assert summary.initializer_bytes == nbytes

    (tmp_path / "ext.bin").unlink()  # the weights gone: still summarised, and said to be missing
    assert inspect_file(path, check=False).external_files[0].exists is False


def test_nodes_inside_an_if_are_counted_apart():
    """A graph of Identity then If, each branch one node (Neg / Abs): 2 in the main graph, 2 inside."""
    import tempfile
    from pathlib import Path

    import onnx
    from onnx import TensorProto, helper

    def branch(op):
        out = helper.make_tensor_value_info(f"{op}_out", TensorProto.FLOAT, [2])
        return helper.make_graph([helper.make_node(op, ["y"], [f"{op}_out"])], f"{op}_branch", [], [out])

    nodes = [
        helper.make_node("Identity", ["x"], ["y"]),
        helper.make_node("If", ["c"], ["z"], then_branch=branch("Neg"), else_branch=branch("Abs")),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "if.onnx"
        onnx.save(model, str(path))
        summary = inspect_file(path)
    assert (summary.node_count, summary.subgraph_node_count) == (2, 2)
    assert dict(summary.operators) == {"Identity": 1, "If": 1, "Neg": 1, "Abs": 1}
    assert [t.elem_type for t in summary.inputs] == ["float32", "bool"]


def test_inspect_json_through_the_cli(cli, se_file):
    import onnx

    model = onnx.load(str(se_file))
    result = cli("inspect", se_file, "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["node_count"] == len(model.graph.node)
    assert {o["op"]: o["count"] for o in data["operators"]} == dict(_histogram(model.graph))
    assert data["inputs"][0]["shape"] == ["batch", 16, "height", "width"]
    assert data["opset_imports"] == {"ai.onnx": 13} and data["attncli_spec"]["model"] == "se"

    table = cli("inspect", se_file, "--top", "2")
    assert table.exit_code == 0, table.stderr
    top_op = _histogram(model.graph).most_common(1)[0][0]
    assert top_op in table.stdout and "batch, 16, height, width" in table.stdout


@pytest.mark.parametrize("content", [b"", b"this is not a protobuf \xff\xfe\x00 at all"])
def test_a_bad_file_is_one_line_and_exit_2(cli, tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    result = cli("inspect", path)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not a valid ONNX model" in lines[0]
    with pytest.raises(UsageError):
        inspect_file(tmp_path / "missing.onnx")
    missing = cli("inspect", tmp_path / "missing.onnx")
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_export_reports_node_count_and_top_operators(cli, tmp_path):
    import onnx

    path = tmp_path / "se.onnx"
    result = cli("export", "se", *SMALL, "--opset", "13", "-o", path, "--no-verify", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    model = onnx.load(str(path))
    assert data["node_count"] == len(model.graph.node)
    counts = _histogram(model.graph)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert [(o["op"], o["count"]) for o in data["top_operators"]] == top

    table = cli("export", "se", *SMALL, "--opset", "13", "-o", tmp_path / "se2.onnx", "--no-verify")
    assert table.exit_code == 0, table.stderr
    assert f"{len(model.graph.node)} nodes; most used: {top[0][0]} {top[0][1]}" in table.stdout
