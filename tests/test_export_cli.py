"""`attncli export` end to end: files, exit codes, one-line errors, nothing left behind."""

import json
import os
import sys

import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attncli import registry


class GridSampler(nn.Module):
    """aten::grid_sampler has an ONNX form from opset 16 (GridSample) only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = torch.zeros(x.shape[0], 4, 4, 2)
        return F.grid_sample(x, grid, align_corners=False)


def file_opset(path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def one_line(text: str) -> bool:
    return text.strip() != "" and text.strip().count("\n") == 0 and "Traceback" not in text


def test_export_writes_the_default_path_at_the_default_opset_and_verifies(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("export", "eca")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["eca_opset17.onnx"]
    assert file_opset(tmp_path / "eca_opset17.onnx") == 17
    # 1x64x56x56, 3x64x28x28 and 2x64x22x26, and 1x64x22x26 for the shifted and scaled inputs
    assert "PASSED at 4 shapes" in result.stdout and "torchscript" in result.stdout


def test_existing_file_needs_force(cli, tmp_path):
    path = tmp_path / "se.onnx"
    path.write_bytes(b"keep me")
    refused = cli("export", "se", "-o", path)
    assert refused.exit_code == 2 and "--force" in refused.stderr and one_line(refused.stderr)
    assert path.read_bytes() == b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["se.onnx"]
    forced = cli("export", "se", "-o", path, "--force", "--no-verify")
    assert forced.exit_code == 0 and file_opset(path) == 17
    assert "not verified" in forced.stdout and "PASSED" not in forced.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--opset", "10"], "opset 10 is not supported"),
        (["--opset", "99"], "opset 99 is not supported"),
        (["--opset", "21", "--exporter", "torchscript"], "converts up to opset 20"),
        (["--input-shape", "1,64,7"], "rejects an input of shape"),
        (["--dynamic", "sideways"], ""),
    ],
)
def test_usage_errors_exit_2_and_leave_no_file(cli, tmp_path, argv, message):
    result = cli("export", "se", "-o", tmp_path / "se.onnx", *argv)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    if message:
        assert one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_that_is_not_a_folder(cli, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = cli("export", "se", "-o", blocker / "se.onnx")
    assert result.exit_code == 2 and "not an existing folder" in result.stderr and one_line(result.stderr)
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_an_unwritable_output_folder(cli, tmp_path):
    if os.geteuid() == 0:
        # root writes through permission bits: use a read-only file system instead
        folder = "/sys"
        if not os.path.isdir(folder) or os.access(folder, os.W_OK) and _can_create(folder):
            pytest.skip("no read-only folder to try as root")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        folder = str(locked)
    result = cli("export", "se", "-o", os.path.join(folder, "se.onnx"))
    assert result.exit_code == 2 and "cannot write to folder" in result.stderr and one_line(result.stderr)
    assert not os.path.exists(os.path.join(folder, "se.onnx"))
    if os.geteuid() != 0:
        assert os.listdir(folder) == []


def _can_create(folder: str) -> bool:
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def test_wrong_opset_from_the_dynamo_exporter_exits_1_and_leaves_nothing(cli, tmp_path):
    result = cli("export", "se", "--opset", "11", "--exporter", "dynamo", "-o", tmp_path / "se.onnx")
    assert result.exit_code == 1
    assert "wrote opset 18, not the requested 11" in result.stderr and one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_an_operator_missing_at_the_opset_names_it_and_the_opset_that_has_it(cli, tmp_path):
    model = f"{__file__}:GridSampler"
    result = cli("export", model, "-s", "1,2,8,8", "--opset", "11", "-o", tmp_path / "g.onnx")
    assert result.exit_code == 1 and one_line(result.stderr)
    assert "aten::grid_sampler" in result.stderr and "opset 16" in result.stderr
    assert list(tmp_path.iterdir()) == []
    ok = cli("export", model, "-s", "1,2,8,8", "--opset", "16", "-o", tmp_path / "g.onnx")
    assert ok.exit_code == 0, ok.stderr
    assert file_opset(tmp_path / "g.onnx") == 16


def test_json_output_and_composed_model_names(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("export", "resnet18", "--attn", "eca", "-s", "1,3,32,32", "--opset", "13", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["path"] == "resnet18_eca_opset13.onnx" and data["opset"] == 13 and data["exporter"] == "torchscript"
    # three shapes at N(0, 1), then three more input distributions at the smallest shape
    assert data["parity"]["passed"] is True and len(data["parity"]["cases"]) == 3 + 3
    assert file_opset(tmp_path / "resnet18_eca_opset13.onnx") == 13


def test_help_states_default_opset_range_and_tolerances(cli):
    export_help = cli("export", "--help").stdout
    assert "Default 17" in " ".join(export_help.split())
    assert "11-20" in export_help
    verify_help = " ".join(cli("verify", "--help").stdout.split())
    assert "atol 1e-5, rtol 1e-4" in verify_help


def test_sknet50_end_to_end_at_64x64(cli, tmp_path):
    path = tmp_path / "sknet.onnx"
    result = cli("export", "sknet", "-s", "1,3,64,64", "--opset", "11", "--dynamic", "all", "-o", path, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert file_opset(path) == 11
    data = json.loads(result.stdout)
    assert data["model"] == "sknet50" and data["num_params"] > 27_000_000
    parity = data["parity"]
    # 64 -> 32, then 32 - 8 + 1 = 25 and 32 - 4 + 1 = 29; the shifted and scaled inputs take each
    # axis's smallest size: batch 1, 25 x 29
    shapes = [[1, 3, 64, 64], [3, 3, 32, 32], [2, 3, 25, 29]] + [[1, 3, 25, 29]] * 3
    assert parity["passed"] and [c["shape"] for c in parity["cases"]] == shapes
    assert [c["distribution"] for c in parity["cases"]] == ["normal"] * 3 + ["positive", "negative", "scaled"]
    assert all(c["max_abs"] <= 1e-5 for c in parity["cases"])


BACKBONES = [s.name for s in registry.list_specs(kind="backbone")]


@pytest.mark.slow
@pytest.mark.parametrize("opset", [11, 13, 17, 18])
@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_exports_and_verifies(name, opset, tmp_path):
    from attncli import api

    spec = registry.get(name)
    image = len(spec.input_shape) == 4
    # 96x96 keeps this matrix affordable while every stage stays above 1x1 (SimAM divides by H*W - 1,
    # infinite at 1x1 in PyTorch too); a net that flattens into a Linear takes one length only
    result = api.export(
        name, tmp_path / "m.onnx", opset=opset, dynamic="all" if image else "batch",
        input_shape=(1, spec.input_shape[1], 96, 96) if image else None,
    )
    assert file_opset(result.path) == opset
    assert result.parity, result.parity.message
    assert len(result.parity.shapes) >= 3


def test_ctrl_c_while_the_file_is_being_written_leaves_nothing(tmp_path):
    import signal
    import subprocess
    import time

    # resnet50 at 32x32: a 100 MB file, so writing and checking it takes a while
    argv = [sys.executable, "-m", "attncli", "export", "resnet50", "-s", "1,3,32,32", "--no-verify", "-o", str(tmp_path / "r.onnx")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.endswith(".part") for p in tmp_path.iterdir()):
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.002)
    else:
        proc.kill()
        pytest.fail("the temporary file never appeared")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert list(tmp_path.iterdir()) == []
