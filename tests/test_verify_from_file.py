"""`attncli verify FILE.onnx`: the file remembers the spec it was exported from. Real exports, no mocks."""

import json

import pytest

SMALL = ("-s", "1,16,8,8")  # small inputs keep each export and verification under a second


def _export(cli, *args):
    result = cli("export", *args, "--no-verify")
    assert result.exit_code == 0, result.stderr
    return result


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_registry_model_verifies_from_the_file_alone(cli, tmp_path):
    path = tmp_path / "se.onnx"
    _export(cli, "se", *SMALL, "--opset", "13", "-o", path)
    result = cli("verify", path, "-f", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["model"] == "se"
    assert report["cases"][0]["shape"] == [1, 16, 8, 8]  # the recorded input shape, not se's default
    assert report["environment"]["seed"] == 0 and report["environment"]["device"] == "cpu"
    assert "note:" not in result.stderr


def test_a_user_file_model_with_weights_verifies_from_the_file_alone_from_another_folder(cli, tiny_net_file, tmp_path, monkeypatch):
    import torch

    from attncli.api import build

    weights = tmp_path / "tiny.pt"
    built = build(f"{tiny_net_file}:Tiny", input_shape="1,3,8,8", seed=5)
    torch.save({k: v + 0.5 for k, v in built.module.state_dict().items()}, weights)  # not the seeded values
    path = tmp_path / "tiny.onnx"
    monkeypatch.chdir(tmp_path)
    _export(cli, "net.py:Tiny", "-s", "1,3,8,8", "--seed", "5", "--weights", "tiny.pt", "-o", path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths were recorded absolute at export
    result = cli("verify", path)
    assert result.exit_code == 0, result.stderr
    assert "PASSED" in result.stdout

    # the same spec given explicitly, from the other folder: no note
    result = cli("verify", f"{tiny_net_file}:Tiny", path, "-s", "1,3,8,8", "--seed", "5", "--weights", weights)
    assert result.exit_code == 0, result.stderr
    assert "note:" not in result.stderr


def test_the_file_records_the_full_spec(cli, tiny_net_file, tmp_path, monkeypatch):
    import hashlib

    import torch

    from attncli.api import build
    from attncli.onnx_export import spec_from_file

    monkeypatch.chdir(tmp_path)
    built = build(f"{tiny_net_file}:Tiny", input_shape="1,3,8,8", params=["width=6"])
    torch.save(built.module.state_dict(), tmp_path / "w.pt")
    _export(cli, "net.py:Tiny", "-p", "width=6", "-s", "1,3,8,8", "--seed", "2", "--weights", "w.pt", "--dynamic", "batch", "-o", "t.onnx")
    spec = spec_from_file(tmp_path / "t.onnx")
    assert spec["model"] == f"{tiny_net_file}:Tiny"
    assert spec["as_given"] == {"model": "net.py:Tiny", "attn": None, "weights": "w.pt"}
    assert spec["params"] == {"width": 6} and spec["input_shape"] == [1, 3, 8, 8] and spec["seed"] == 2
    assert spec["weights"] == str(tmp_path / "w.pt")
    assert spec["weights_sha256"] == hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
    assert json.loads(spec["metadata"]["attncli.dynamic_axes"]) == {"input": {"0": "batch"}}
    assert spec["metadata"]["attncli.exporter"] == "torchscript"
    assert spec["metadata"]["attncli.version"] and "attncli.request" in spec["metadata"]


def test_a_different_model_is_a_note_before_the_failing_comparison(cli, tmp_path):
    path = tmp_path / "cbam_opset13.onnx"
    _export(cli, "cbam", *SMALL, "--opset", "13", "-o", path)
    result = cli("verify", "se", path, *SMALL, "--seed", "1")
    assert result.exit_code == 1
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: the file was exported from model cbam; you gave se",
        "note: the file was exported with seed 0; you gave 1",
    ]
    assert "FAILED" in result.stdout


def test_a_changed_weights_file_is_refused(cli, tiny_net_file, tmp_path):
    import torch

    from attncli.api import build

    weights = tmp_path / "w.pt"
    built = build(f"{tiny_net_file}:Tiny", input_shape="1,3,8,8")
    torch.save(built.module.state_dict(), weights)
    path = tmp_path / "tiny.onnx"
    _export(cli, f"{tiny_net_file}:Tiny", "-s", "1,3,8,8", "--weights", weights, "-o", path)
    torch.save({k: v * 2 for k, v in built.module.state_dict().items()}, weights)

    result = cli("verify", path)
    assert result.exit_code == 2
    (line,) = _error_lines(result.stderr)
    assert str(weights) in line and "sha256 differs" in line

    weights.unlink()
    result = cli("verify", path)
    assert result.exit_code == 2
    (line,) = _error_lines(result.stderr)
    assert str(weights) in line and "missing" in line


def test_a_file_without_attncli_metadata_needs_the_model(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 16, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 16, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "plain", [x], [y])
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)

    result = cli("verify", path)
    assert result.exit_code == 2
    (line,) = _error_lines(result.stderr)
    assert "records no model spec" in line and "give the model" in line


@pytest.mark.parametrize("args", [("a", "b", "c.onnx"), ("a", "b", "c", "d.onnx")])
def test_more_than_two_arguments_is_a_one_line_usage_error(cli, args):
    result = cli("verify", *args)
    assert result.exit_code == 2
    (line,) = _error_lines(result.stderr)
    assert "FILE.onnx or MODEL FILE.onnx" in line


def test_model_options_without_a_model_are_refused(cli, tmp_path):
    path = tmp_path / "se.onnx"
    _export(cli, "se", *SMALL, "--opset", "13", "-o", path)
    result = cli("verify", path, "--seed", "3")
    assert result.exit_code == 2
    (line,) = _error_lines(result.stderr)
    assert line.startswith("error: --seed:") and "rebuilt from the spec it records" in line


def test_spec_differences_names_each_field_once(tmp_path):
    from attncli.modelspec import ModelRequest
    from attncli.onnx_export import spec_differences

    recorded = {
        "model": "se", "params": {"reduction": 8}, "input_shape": None, "attn": None, "attn_position": None,
        "seed": 0, "weights": None, "weights_sha256": None, "as_given": {},
    }
    same = ModelRequest.make("se", ["reduction=8"], "1,64,56,56")  # se's default shape given explicitly
    assert spec_differences(recorded, same) == []
    other = ModelRequest.make("se", ["reduction=4"], "1,64,28,28", seed=3)
    assert spec_differences(recorded, other) == [
        "the file was exported with params reduction=8; you gave reduction=4",
        "the file was exported with input shape 1,64,56,56; you gave 1,64,28,28",
        "the file was exported with seed 0; you gave 3",
    ]


def test_a_usage_error_of_the_comparison_carries_the_differences_in_its_one_line(cli, tmp_path):
    path = tmp_path / "se.onnx"
    _export(cli, "se", *SMALL, "--opset", "13", "-o", path)
    result = cli("verify", "se", path, "-s", "1,32,8,8")
    assert result.exit_code == 2
    (line,) = _error_lines(result.stderr)
    assert "fixes axis 1" in line and line.endswith("the file was exported with input shape 1,16,8,8; you gave 1,32,8,8.")
