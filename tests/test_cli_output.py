"""Where the CLI's output goes: --debug on either side of the subcommand, -o FILE for every report,
data on stdout and diagnostics on stderr."""

import json
import subprocess
import sys

import pytest

from attncli.errors import UnknownModelError


def run_attncli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, cwd=cwd)


# ----------------------------------------------------------------------------- --debug


@pytest.mark.parametrize("argv", [["--debug", "info", "ecq"], ["info", "ecq", "--debug"]])
def test_debug_before_or_after_the_subcommand_raises_the_error(cli, argv):
    with pytest.raises(UnknownModelError):
        cli(*argv)


def test_without_debug_the_same_error_is_one_line(cli):
    result = cli("info", "ecq")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


def test_debug_after_the_subcommand_prints_the_traceback_from_the_console_script():
    out = run_attncli("info", "ecq", "--debug")
    assert out.returncode != 0 and "Traceback" in out.stderr and "UnknownModelError" in out.stderr
    plain = run_attncli("info", "ecq")
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and plain.stderr.strip().count("\n") == 0


def test_debug_does_not_leak_into_the_next_invocation(cli):
    with pytest.raises(UnknownModelError):
        cli("info", "ecq", "--debug")
    assert cli("info", "ecq").exit_code == 2


# ----------------------------------------------------------------------------- -o FILE


def assert_written(result, path) -> str:
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"report written to {path}" in " ".join(result.stderr.split())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind
    return path.read_text()


def test_list_o_json(cli, tmp_path):
    path = tmp_path / "models.json"
    data = json.loads(assert_written(cli("list", "eca*", "--format", "json", "-o", path), path))
    assert {d["name"] for d in data} >= {"eca", "eca_ns", "eca_resnet50"}
    assert all(d["name"].startswith("eca") for d in data)


def test_info_o_json_is_what_stdout_would_have_been(cli, tmp_path):
    path = tmp_path / "eca.json"
    data = json.loads(assert_written(cli("info", "eca", "-f", "json", "--output", path), path))
    assert data == json.loads(cli("info", "eca", "-f", "json").stdout)
    assert data["name"] == "eca" and data["params"] == 3  # one 3-tap Conv1d without bias


def test_profile_o_json_without_latency(cli, tmp_path):
    path = tmp_path / "se.json"
    data = json.loads(assert_written(cli("profile", "se", "--no-latency", "-f", "json", "-o", path), path))
    assert data["model"] == "se" and data["latency"] is None
    assert data["params"]["total"] == 2 * 64 * 4  # two bias-free 64x4 linears (reduction 16)


def test_o_table_is_the_terminal_text_without_colour(cli, tmp_path):
    path = tmp_path / "eca.txt"
    text = assert_written(cli("info", "eca", "-o", path), path)
    assert "\x1b[" not in text
    assert text == cli("info", "eca").stdout


def test_o_replaces_an_existing_report(cli, tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    json.loads(assert_written(cli("info", "se", "-f", "json", "-o", path), path))


@pytest.mark.parametrize("command", [["list"], ["info", "eca"], ["profile", "eca", "--no-latency"]])
def test_o_into_a_missing_folder_is_a_usage_error(cli, tmp_path, command):
    result = cli(*command, "-o", tmp_path / "missing" / "r.json")
    assert result.exit_code == 2 and "does not exist" in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_o_onto_a_folder_is_a_usage_error(cli, tmp_path):
    result = cli("list", "-o", tmp_path)
    assert result.exit_code == 2 and "is a folder" in result.stderr


def test_check_table_report_to_a_file(tmp_path):
    out = run_attncli("check", "eca", "--opset", "17", "-o", "summary.txt", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "summary.txt").read_text()
    assert "eca" in text and "PASSED" in text and "\x1b[" not in text
    assert "PASSED" in out.stdout and "report written to summary.txt" in out.stderr


# ----------------------------------------------------------------------------- export, verify


def test_export_default_dynamic_falls_back_to_batch_for_a_fixed_length_model(cli, tmp_path):
    path, report = tmp_path / "m.onnx", tmp_path / "m.json"
    result = cli("export", "cnn1d", "-o", path, "--format", "json", "--report", report)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and "one spatial size only" in result.stderr
    data = json.loads(report.read_text())
    assert data["dynamic"] == "batch" and data["dynamic_axes"] == {"0": "batch"}
    assert data["parity"]["passed"] is True
    asked = cli("export", "cnn1d", "-o", tmp_path / "s.onnx", "--dynamic", "spatial")
    assert asked.exit_code == 2 and "--dynamic spatial" in asked.stderr
    assert not (tmp_path / "s.onnx").exists()


def test_export_all_axes_by_default_and_verify_with_the_old_provider_flag(cli, tmp_path):
    path = tmp_path / "se.onnx"
    exported = cli("export", "se", "-o", path, "--no-verify", "--format", "json")
    assert exported.exit_code == 0, exported.stderr
    assert json.loads(exported.stdout)["dynamic_axes"] == {"0": "batch", "2": "height", "3": "width"}
    verified = cli("verify", "se", path, "--provider", "cpu", "-f", "json")
    assert verified.exit_code == 0, verified.stderr
    # --provider, once a deprecated alias of --device, is now the shared provider option (docs/providers.md)
    assert "deprecated" not in verified.stderr and json.loads(verified.stdout)["provider"] == "CPUExecutionProvider"
    report = tmp_path / "v.json"
    by_device = cli("verify", "se", path, "--device", "cpu", "-f", "json", "-o", report)
    assert by_device.exit_code == 0 and json.loads(report.read_text())["passed"] is True


# ----------------------------------------------------------------------------- --attn-position


def test_attn_position_reaches_the_model(cli):
    def info(*extra):
        result = cli("info", "resnet50", "--attn", "se", "-s", "1,3,32,32", "--depth", "0", "-f", "json", *extra)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    default, moved = info(), info("--attn-position", "after_3x3")
    assert default["attn"]["position"] == "branch_end" and moved["attn"]["position"] == "after_3x3"
    # SE (reduction 16, bias-free) costs 2*C*C/16 = C^2/8: at the branch end of a bottleneck it sees
    # 4x the channels of its 3x3 conv, so moving it there divides its cost by 16 in each of the
    # 3+4+6+3 units with widths 64, 128, 256, 512
    per_width = {64: 3, 128: 4, 256: 6, 512: 3}
    se_end = sum(n * (4 * w) ** 2 // 8 for w, n in per_width.items())
    se_mid = sum(n * w**2 // 8 for w, n in per_width.items())
    assert default["params"] - moved["params"] == se_end - se_mid


def test_a_bad_attn_position_is_a_usage_error(cli):
    result = cli("info", "resnet18", "--attn", "se", "--attn-position", "somewhere")
    assert result.exit_code == 2 and "--attn-position" in result.stderr


def test_bench_o_json_uses_the_shared_defaults(cli, tmp_path):
    from attncli.timing import DEFAULT_MIN_TIME, DEFAULT_WARMUP

    path = tmp_path / "bench.json"
    result = cli("bench", "se", "-s", "2,64,8,8", "--device", "cpu", "-f", "json", "-o", path)
    data = json.loads(assert_written(result, path))
    assert data["warmup"] == DEFAULT_WARMUP["cpu"] and data["iters"] is None and data["min_time_s"] == DEFAULT_MIN_TIME["cpu"]
    assert [row["batch_size"] for row in data["rows"]] == [2]  # the input shape's batch, as in profile


@pytest.mark.parametrize("argv", [["list"], ["info", "eca"]])
def test_a_reader_that_goes_away_is_a_quiet_stop_not_a_bug(argv):
    # `attncli info eca | head -1`: the pipe's reader is gone before attncli writes
    proc = subprocess.Popen([sys.executable, "-m", "attncli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, stderr
    assert "bug" not in stderr and "Traceback" not in stderr
