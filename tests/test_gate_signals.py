"""`attncli check` under SIGINT, SIGTERM and SIGHUP: the model processes end, the partial report is
written and reads as interrupted (never as a passing suite), the exit status names the signal, and
no process or temporary file is left. Real signals to a real `attncli check`."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest

from attncli import gate
from processes import gone

HANGS = textwrap.dedent('''
    import os
    import subprocess
    import time
    from pathlib import Path

    import torch
    from torch import nn
    from attncli.registry import register

    @register("zz_hangs_here", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class HangsHere(nn.Module):
        def __init__(self, channels=4):
            super().__init__()
            sleeper = subprocess.Popen(["sleep", "600"])
            Path(os.environ["GATE_TEST_PIDS"]).write_text(f"{os.getpid()} {sleeper.pid}")
            time.sleep(600)
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_ends_the_run_with_an_interrupted_junit_report(tmp_path, sig, status):
    plugin = tmp_path / "hangs.py"
    plugin.write_text(HANGS)
    pids = tmp_path / "pids.txt"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, ATTNCLI_PLUGINS=str(plugin), GATE_TEST_PIDS=str(pids), TMPDIR=str(tmp))
    # onnxruntime's import writes its telemetry session file, $TMPDIR/.ses, once and keeps it: count after it
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True, timeout=60)
    before = sorted(tmp.iterdir())

    # -j 1 runs eca (both opsets) first, then hangs in zz_hangs_here's constructor
    proc = subprocess.Popen(
        [sys.executable, "-m", "attncli", "check", "eca", "zz_hangs_here", "--opset", "11", "--opset", "17", "-j", "1",
         "--timeout", "300", "--format", "junit", "-o", "report.xml"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not (pids.exists() and len(pids.read_text().split()) == 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids.exists(), "the hanging model never started"
        start = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert time.monotonic() - start < 15
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == status

    suite = ET.parse(tmp_path / "report.xml").getroot().find("testsuite")
    # planned: eca@11, eca@17, zz_hangs_here@11, zz_hangs_here@17; two finished, two never did,
    # and one more testcase says the run was interrupted
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures"), suite.get("skipped")) == ("5", "1", "0", "2")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["interrupted"] == signal.Signals(sig).name and props["planned"] == "4"
    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    assert sorted(cases) == ["eca@opset11", "eca@opset17", "interrupted", "zz_hangs_here@opset11", "zz_hangs_here@opset17"]
    assert cases["interrupted"].find("error").get("type") == "interrupted"
    for name in ("zz_hangs_here@opset11", "zz_hangs_here@opset17"):
        assert cases[name].find("skipped") is not None
    for name in ("eca@opset11", "eca@opset17"):
        assert cases[name].find("failure") is None and cases[name].find("error") is None

    model_pid, sleep_pid = map(int, pids.read_text().split())
    deadline = time.monotonic() + 5
    while not (gone(model_pid) and gone(sleep_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(model_pid) and gone(sleep_pid)
    assert sorted(tmp.iterdir()) == before


def interrupted_report() -> gate.CheckReport:
    done = gate.CaseResult("eca", 11, "passed", 1.5, "3 shapes, max abs 1.00e-07", max_abs=1e-7, log="\x1b[31mred\x1b[0m \x00")
    return gate.CheckReport([done], [11, 17], None, 2.0, planned=3, interrupted=True, signal="SIGTERM",
                            not_run=["eca@opset17", "se@opset11"])


def test_an_interrupted_report_in_each_format():
    report = interrupted_report()
    assert not report.passed and report.exit_code == 143
    root = ET.fromstring(gate.junit_xml(report))  # the model's control characters do not break the XML
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("errors"), suite.get("skipped")) == ("4", "1", "2")
    assert root.get("errors") == "1"
    skipped = [tc.get("name") for tc in suite.iter("testcase") if tc.find("skipped") is not None]
    assert skipped == ["eca@opset17", "se@opset11"]
    assert "red" in suite.find("testcase").find("system-out").text

    data = json.loads(gate.report_text(report, "json"))
    assert data["interrupted"] is True and data["signal"] == "SIGTERM" and data["passed"] is False
    assert data["not_run"] == ["eca@opset17", "se@opset11"] and data["completed"] == 1

    text = gate.markdown(report)
    assert "INTERRUPTED (SIGTERM)" in text and "1/3 cases" in text and "2 not run" in text


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_exit_status_of_an_interrupted_run(name, code):
    report = gate.CheckReport([], [11], None, 0.0, planned=1, interrupted=True, signal=name, not_run=["eca@opset11"])
    assert report.exit_code == code


def test_exit_status_of_a_finished_run():
    ok = gate.CaseResult("eca", 11, "passed", 1.0)
    bad = gate.CaseResult("se", 11, "failed", 1.0)
    assert gate.CheckReport([ok], [11], None, 1.0, planned=1).exit_code == 0
    assert gate.CheckReport([ok, bad], [11], None, 1.0, planned=2).exit_code == 1
    # stopped at the first failure: not every planned case ran
    assert gate.CheckReport([ok], [11], None, 1.0, planned=2, not_run=["se@opset11"]).exit_code == 1
