"""Export of every registered block at the opsets that matter, read back from the file itself."""

import json

import onnx
import pytest
import torch

from attncli import api, onnx_export, registry
from attncli.errors import CheckFailed, UsageError
from attncli.onnx_export import choose_exporter, default_path, dynamic_axes_for, validate_opset

BLOCKS = [s.name for s in registry.list_specs(kind="block")]


def file_opset(path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    (version,) = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return version


def input_dims(path) -> list:
    model = onnx.load(str(path), load_external_data=False)
    return [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]


@pytest.mark.parametrize("opset", [11, 17, 18])
@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_exports_with_dynamic_batch_and_spatial_axes_and_verifies(name, opset, tmp_path):
    path = tmp_path / f"{name}.onnx"
    result = api.export(name, path, opset=opset, dynamic="all")
    assert file_opset(path) == opset
    assert result.exporter == ("torchscript" if opset < 18 else "dynamo")
    spatial = ["length"] if len(result.input_shape) == 3 else ["height", "width"]
    assert input_dims(path) == ["batch", result.input_shape[1], *spatial]
    report = result.parity
    assert report, report.message
    assert len(report.shapes) >= 3
    # the plan changed the batch and every spatial size, and produced a non-square input
    assert {s[0] for s in report.shapes} >= {1, 2, 3}
    if len(result.input_shape) == 4:
        assert any(s[2] != s[3] for s in report.shapes)
    assert all(c.max_abs <= 1e-5 for c in report.cases)


@pytest.mark.slow
@pytest.mark.parametrize("name", BLOCKS)
def test_every_block_at_opset_13(name, tmp_path):
    result = api.export(name, tmp_path / "m.onnx", opset=13, dynamic="all")
    assert file_opset(result.path) == 13 and result.parity, result.parity.message


def test_metadata_records_provenance(tmp_path):
    result = api.export("se", tmp_path / "se.onnx", opset=17, dynamic="batch", params=["reduction=8"], seed=3, verify=False)
    meta = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    from attncli import __version__

    assert meta["attncli.version"] == __version__
    assert meta["attncli.model"] == "se"
    assert json.loads(meta["attncli.arguments"]) == {"channels": 64, "reduction": 8}
    assert json.loads(meta["attncli.request"])["seed"] == 3
    assert meta["attncli.exporter"] == "torchscript"
    assert meta["torch.version"] == torch.__version__
    assert meta["attncli.example_input_shape"] == "1,64,56,56"
    # SE without biases: Linear 64->8 and 8->64
    assert meta["attncli.parameters"] == str(64 * 8 + 8 * 64)
    assert json.loads(meta["attncli.dynamic_axes"]) == {"input": {"0": "batch"}}
    assert result.parity is None


def test_dynamic_choices_name_the_axes():
    assert dynamic_axes_for(4, "batch") == {0: "batch"}
    assert dynamic_axes_for(4, "spatial") == {2: "height", 3: "width"}
    assert dynamic_axes_for(4, "all") == {0: "batch", 2: "height", 3: "width"}
    assert dynamic_axes_for(3, "all") == {0: "batch", 2: "length"}
    assert dynamic_axes_for(4, "none") == {}
    with pytest.raises(UsageError):
        dynamic_axes_for(2, "spatial")


def test_static_export_has_fixed_dims_and_a_single_shape_plan(tmp_path):
    result = api.export("eca", tmp_path / "eca.onnx", dynamic="none")
    assert input_dims(result.path) == [1, 64, 56, 56]
    assert result.parity and result.parity.shapes == [(1, 64, 56, 56)]


def test_opset_range_and_exporter_choice():
    for opset in range(onnx_export.MIN_OPSET, onnx_export.TORCHSCRIPT_MAX_OPSET + 1):
        validate_opset(opset)
    assert choose_exporter(11) == choose_exporter(17) == "torchscript"
    assert choose_exporter(18) == choose_exporter(onnx_export.max_opset()) == "dynamo"
    assert choose_exporter(18, "torchscript") == "torchscript"
    assert onnx_export.max_opset() >= 18
    for bad in (onnx_export.MIN_OPSET - 1, onnx_export.max_opset() + 1):
        with pytest.raises(UsageError, match="not supported"):
            validate_opset(bad)
    with pytest.raises(UsageError, match="TorchScript exporter converts up to opset 20"):
        validate_opset(21, "torchscript")


def test_default_path_is_sanitized():
    assert default_path("sknet50", 11).name == "sknet50_opset11.onnx"
    assert default_path("resnet50+cbam", 17).name == "resnet50_cbam_opset17.onnx"
    assert default_path("models/my net.py:TinyNet", 13).name == "TinyNet_opset13.onnx"
    assert str(default_path("se", 17)) == "se_opset17.onnx"  # in the current folder


def test_a_dynamo_file_at_the_wrong_opset_is_refused_and_removed(tmp_path):
    # the dynamo exporter cannot build at 11: it writes opset 18 and only warns
    with pytest.raises(CheckFailed, match="wrote opset 18, not the requested 11"):
        api.export("se", tmp_path / "se.onnx", opset=11, exporter="dynamo")
    assert list(tmp_path.iterdir()) == []


def test_a_file_the_checker_rejects_leaves_nothing_behind(tmp_path):
    target = tmp_path / "m.onnx"
    with pytest.raises(CheckFailed, match="checker rejects"):
        onnx_export._write_checked(b"\x08\x07not a model", target, tmp_path, 17, "torchscript")
    assert list(tmp_path.iterdir()) == []


def test_the_written_file_has_a_normal_mode_not_the_temporary_files_0600(tmp_path):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    api.export("se", tmp_path / "se.onnx", verify=False)
    assert (tmp_path / "se.onnx").stat().st_mode & 0o777 == 0o666 & ~mask
