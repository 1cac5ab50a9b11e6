"""The registry-wide gate (attncli.gate, `attncli check`): sharding, isolation of broken and hanging cases, reports."""

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from attncli import gate as check
from attncli.errors import UsageError

PLUGIN = textwrap.dedent('''
    """Models registered for the tests only: one breaks export, one hangs."""
    import time
    import torch
    from torch import nn
    from attncli.registry import register

    @register("zz_broken_export", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class BrokenExport(nn.Module):
        def __init__(self, channels=4):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(channels))
        def forward(self, x):
            if torch.onnx.is_in_onnx_export():
                raise RuntimeError("this model refuses to be exported")
            return x * self.scale[None, :, None, None]

    @register("zz_hangs", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class Hangs(nn.Module):
        def __init__(self, channels=4):
            super().__init__()
            time.sleep(600)
''')


def run_cli(args, tmp_path, plugin=True):
    env = dict(os.environ)
    if plugin:
        path = tmp_path / "check_fixtures.py"
        path.write_text(PLUGIN)
        env["ATTNCLI_PLUGINS"] = str(path)
    return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def test_shards_are_disjoint_and_cover_every_case():
    cases = check.plan_cases(opsets=(11, 13, 17))
    assert len(cases) == len(set(cases)) == 3 * len({c.model for c in cases})
    for n in (1, 2, 3, 4, 7):
        shards = [check.select_shard(cases, (i, n)) for i in range(1, n + 1)]
        seen = [c for shard in shards for c in shard]
        assert sorted(seen, key=lambda c: c.id) == sorted(cases, key=lambda c: c.id)  # union, each exactly once
        assert len(seen) == len(set(seen))
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1
    # Deterministic: planning again gives the same shard.
    assert check.select_shard(check.plan_cases(opsets=(11, 13, 17)), (2, 4)) == check.select_shard(cases, (2, 4))


@pytest.mark.parametrize("text", ["0/4", "5/4", "1-4", "a/b", "2/0"])
def test_bad_shard_is_a_usage_error(text):
    with pytest.raises(UsageError, match="bad shard"):
        check.parse_shard(text)


def test_broken_and_hanging_cases_fail_and_the_rest_pass(tmp_path):
    args = ["check", "eca", "zz_*", "simam", "--opset", "11", "-j", "2", "--timeout", "15", "--format", "junit", "-o", "report.xml"]
    out = run_cli(args, tmp_path)
    assert out.returncode == 1, out.stderr
    root = ET.parse(tmp_path / "report.xml").getroot()
    cases = {tc.get("name"): tc for tc in root.iter("testcase")}
    assert sorted(cases) == ["eca@opset11", "simam@opset11", "zz_broken_export@opset11", "zz_hangs@opset11"]
    suite = root.find("testsuite")
    assert int(suite.get("tests")) == 4
    assert int(suite.get("failures")) + int(suite.get("errors")) == 2
    assert cases["eca@opset11"].find("failure") is None and cases["eca@opset11"].find("error") is None
    broken = cases["zz_broken_export@opset11"].find("failure")
    assert broken is not None and broken.get("type") == "failed"
    assert "export" in broken.get("message") and "refuses to be exported" in broken.get("message")
    hang = cases["zz_hangs@opset11"].find("failure")
    assert hang is not None and hang.get("type") == "timeout"
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".report.xml*"))


def test_json_and_markdown_reports_for_a_passing_run(tmp_path):
    out = run_cli(["check", "eca", "se", "--opset", "11", "--opset", "17", "--format", "json"], tmp_path, plugin=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["passed"] is True and data["summary"]["passed"] == 4
    for case in data["cases"]:
        assert {"model", "opset", "status", "max_abs", "seconds", "message"} <= set(case)
        assert case["status"] == "passed" and case["max_abs"] < 1e-4 and case["seconds"] > 0
        assert len(case["shapes"]) >= 3
    assert sorted((c["model"], c["opset"]) for c in data["cases"]) == [("eca", 11), ("eca", 17), ("se", 11), ("se", 17)]

    out = run_cli(["check", "simam", "--opset", "13", "--format", "markdown", "-o", "summary.md"], tmp_path, plugin=False)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "summary.md").read_text()
    assert "PASSED" in text and "| `simam` |" in text and "| 13 |" in text


def test_check_usage_errors(tmp_path):
    out = run_cli(["check", "no_such_model_*"], tmp_path, plugin=False)
    assert out.returncode == 2 and "no registered model matches" in out.stderr and "Traceback" not in out.stderr
    out = run_cli(["check", "eca", "--shard", "3/2"], tmp_path, plugin=False)
    assert out.returncode == 2 and "bad shard '3/2'" in out.stderr
    out = run_cli(["check", "eca", "--format", "junit", "-o", "missing/dir/report.xml"], tmp_path, plugin=False)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_ctrl_c_writes_the_report_of_what_finished_and_exits_130(tmp_path):
    import signal

    path = tmp_path / "check_fixtures.py"
    path.write_text(PLUGIN)
    env = dict(os.environ, ATTNCLI_PLUGINS=str(path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "attncli", "check", "eca", "zz_hangs", "--opset", "11", "--timeout", "300",
         "--format", "json", "-o", "report.json"],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        for line in proc.stderr:  # plain progress lines: not a terminal
            if "eca@opset11" in line:
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["interrupted"] is True and data["passed"] is False
    assert [c["model"] for c in data["cases"]] == ["eca"] and data["planned"] == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--timeout", "0"], "time limit must be a finite number of seconds above 0, not 0."),
        (["--timeout", "nan"], "not nan."),
        (["--timeout", "-5"], "not -5."),
        (["--timeout", "inf"], "not inf."),
        (["-j", "0"], "must be a whole number of at least 1, not 0."),
        (["-o", "."], "it is a folder"),
        (["-o", "missing/report.json"], "does not exist"),
        pytest.param(["-o", "/proc/x.json"], "no file can be created in /proc",
                     marks=pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")),
    ],
)
def test_check_options_are_refused_before_any_case_runs(cli, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    out = cli("check", "eca", "--opset", "11", *args)
    assert out.exit_code == 2
    assert fragment in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr and "eca@opset11" not in out.stderr + out.stdout  # no case ran
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "soon"])
def test_timeouts_that_are_not_a_positive_number_of_seconds(value):
    with pytest.raises(UsageError, match="time limit must be a finite number of seconds above 0"):
        check.check_timeout(value)
    assert check.check_timeout(0.5) == 0.5
