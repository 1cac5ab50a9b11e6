"""The exported file under races and faults: no clobbering, names up to NAME_MAX, nothing left by
SIGTERM, and what SIGKILL leaves removed by the next export. Real processes, real signals."""

import hashlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from attncli.errors import UsageError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process ids")

# 16 M float32 parameters: a 64 MB file, so writing and checking it takes a moment. The slice on the
# input's channel count keeps constant folding from dropping the weights.
BIG = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(16_000_000))
        def forward(self, x):
            return x + self.weight[: x.shape[1]].view(1, -1, 1, 1)
    """
)

# Both exports wait for each other inside the exporter's trace, after both have found the path free:
# from there the write alone decides who gets the name.
RACER = textwrap.dedent(
    """\
    import os
    import pathlib
    import time

    import torch
    from torch import nn

    GATE = pathlib.Path({gate!r})


    class Racer(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)
        def forward(self, x):
            if torch.onnx.is_in_onnx_export():
                (GATE / f"{{os.getpid()}}.ready").touch()
                deadline = time.monotonic() + 120
                while len(list(GATE.glob("*.ready"))) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
            return self.conv(x)
    """
)


def temp_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def export_argv(model: str, out, *extra: str) -> list[str]:
    return [sys.executable, "-m", "attncli", "export", model, "-s", "1,4,8,8", "--no-verify", "-o", str(out), *extra]


def start_and_signal_when_the_temporary_file_appears(tmp_path, sig: int) -> tuple[subprocess.Popen, bytes]:
    (tmp_path / "big.py").write_text(BIG)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.Popen(export_argv(f"{tmp_path / 'big.py'}:Big", out_dir / "big.onnx"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if temp_files(out_dir):
            proc.send_signal(sig)
            break
        time.sleep(0.002)
    else:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the temporary file never appeared: {err.decode()}")
    _, err = proc.communicate(timeout=120)
    return proc, err


# ----------------------------------------------------------------------------- no clobbering


def test_two_racing_exports_to_one_new_path_give_one_file_and_one_already_exists(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    source = tmp_path / "racer.py"
    source.write_text(RACER.format(gate=str(gate)))
    out = tmp_path / "out"
    out.mkdir()
    argv = [sys.executable, "-m", "attncli", "export", f"{source}:Racer", "-s", "1,3,8,8", "--no-verify", "-o", str(out / "m.onnx")]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out_text, err_text = proc.communicate(timeout=300)
        results.append((proc.returncode, out_text, err_text))
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    (loser,) = [err for code, _, err in results if code == 2]
    # the write refused it, not the early check: both had found the path free
    assert "already exists (another process created it during this export)" in loser
    assert loser.strip().count("\n") == 0 and "Traceback" not in loser
    assert [p.name for p in out.iterdir()] == ["m.onnx"]
    assert len(list(gate.glob("*.ready"))) == 2


def test_a_file_created_during_the_export_is_not_replaced(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from attncli import onnx_export

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [value], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    target = tmp_path / "m.onnx"
    target.write_bytes(b"someone else's file")  # created after check_destination found the name free
    with pytest.raises(UsageError, match="already exists"):
        onnx_export._write_checked(data, target, tmp_path, 17, "torchscript")
    assert target.read_bytes() == b"someone else's file" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    onnx_export._write_checked(data, target, tmp_path, 17, "torchscript", force=True)
    assert onnx.load(str(target)).graph.node[0].op_type == "Identity"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# ----------------------------------------------------------------------------- names


def test_an_output_name_of_name_max_bytes_works_and_one_byte_more_is_one_line(cli, tiny_net_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    name_max = os.pathconf(out, "PC_NAME_MAX")
    longest = "a" * (name_max - len(".onnx")) + ".onnx"
    assert len(longest.encode()) == name_max
    model = f"{tiny_net_file}:Tiny"
    ok = cli("export", model, "-s", "1,3,8,8", "--no-verify", "-o", out / longest)
    assert ok.exit_code == 0, ok.stderr
    assert [p.name for p in out.iterdir()] == [longest]
    too_long = cli("export", model, "-s", "1,3,8,8", "--no-verify", "-o", out / ("b" + longest))
    assert too_long.exit_code == 2 and "File name too long" in too_long.stderr
    assert too_long.stderr.strip().count("\n") == 0 and "Traceback" not in too_long.stderr
    assert [p.name for p in out.iterdir()] == [longest]


# ----------------------------------------------------------------------------- signals


def test_sigterm_while_the_file_is_being_written_leaves_nothing(tmp_path):
    proc, err = start_and_signal_when_the_temporary_file_appears(tmp_path, signal.SIGTERM)
    assert proc.returncode == -signal.SIGTERM, err.decode()  # it still ends by the signal, after cleaning up
    assert list((tmp_path / "out").iterdir()) == []


def test_a_temporary_file_left_by_a_killed_export_is_removed_by_the_next_one(cli, tiny_net_file, tmp_path):
    proc, err = start_and_signal_when_the_temporary_file_appears(tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    out_dir = tmp_path / "out"
    (stale,) = temp_files(out_dir)  # SIGKILL cannot be caught: this is what the next run must clear
    assert stale.startswith(".attncli-") and f"-{proc.pid}-" in stale
    result = cli("export", f"{tiny_net_file}:Tiny", "-s", "1,3,8,8", "--no-verify", "-o", out_dir / "tiny.onnx")
    assert result.exit_code == 0, result.stderr
    assert f"removed {out_dir / stale}" in result.stderr and "killed" in result.stderr
    assert [p.name for p in out_dir.iterdir()] == ["tiny.onnx"]


def test_only_temporary_files_of_dead_writers_on_this_machine_are_removed(tmp_path):
    from attncli.onnx_export import remove_stale_temp_files

    host = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # reaped: its process id names no process now
    dead, alive = finished.pid, os.getpid()
    names = {
        f".attncli-{host}-{dead}-0123abcd.part": False,  # a dead writer here: removed
        f".attncli-{host}-{alive}-0123abcd.part": True,  # a live writer (this process)
        f".attncli-{other_host}-{dead}-0123abcd.part": True,  # another machine's process ids mean nothing here
        f".attncli-{host}-{dead}-0123abcd.part.keep": True,  # not the name
        ".m.onnx.0123abcd.part": True,  # not ours to judge
        "m.onnx": True,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temp_files(tmp_path)
    assert [p.name for p in removed] == [f".attncli-{host}-{dead}-0123abcd.part"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, kept in names.items() if kept)


def test_the_opset_read_from_the_files_top_level_fields_is_onnxs(tmp_path):
    """file_opset reads ModelProto field 8 without parsing the graph; onnx.load parses it all."""
    import onnx
    from onnx import helper

    from attncli.onnx_export import file_opset

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    for imports in ([("", 11)], [("com.microsoft", 1), ("", 17)], [("ai.onnx", 13), ("ai.onnx.ml", 3)], [("custom", 2)]):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in imports], producer_name="p" * 300)
        path = tmp_path / "m.onnx"
        onnx.save(model, path)
        loaded = onnx.load(path)
        expected = next((o.version for o in loaded.opset_import if o.domain in ("", "ai.onnx")), None)
        assert file_opset(path) == expected
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 64)
    assert file_opset(tmp_path / "empty.onnx") is None and file_opset(tmp_path / "junk.onnx") is None
