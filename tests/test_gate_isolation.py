"""`attncli check` isolation: a clean interpreter per model, process groups killed whole, the
model's output kept out of the report, and no temporary files left behind. Real processes only."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import attncli
from attncli import gate
from processes import gone

FIXTURES = textwrap.dedent('''
    """Models registered for these tests only."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import torch
    from torch import nn
    from attncli.registry import register

    PIDS = Path(os.environ["GATE_TEST_PIDS"])

    class Scale(nn.Module):
        def __init__(self, channels=4):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(channels))
        def forward(self, x):
            return x * self.scale[None, :, None, None]

    def spawn_sleep(tag):
        # inherits this process's stdout and stderr, as a careless model's helper would
        proc = subprocess.Popen(["sleep", "600"])
        (PIDS / tag).write_text(str(proc.pid))

    # Sorts before every built-in model, so with -j 1 it runs first.
    @register("aa_poisons_state", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class PoisonsState(Scale):
        def __init__(self, channels=4):
            torch.set_default_dtype(torch.float64)
            torch.set_grad_enabled(False)
            torch.set_num_threads(1)
            torch.manual_seed(1234)
            super().__init__(channels)

    @register("zz_prints", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class Prints(Scale):
        def forward(self, x):
            print("PRINTED-BY-FORWARD")
            sys.stderr.write("STDERR-BY-FORWARD\\n")
            os.write(1, b"FD1-BY-FORWARD\\n")
            return super().forward(x)

    @register("zz_sleeper_hangs", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class SleeperHangs(Scale):
        def __init__(self, channels=4):
            super().__init__(channels)
            spawn_sleep("hangs")
            time.sleep(600)

    @register("zz_sleeper_passes", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class SleeperPasses(Scale):
        def __init__(self, channels=4):
            super().__init__(channels)
            spawn_sleep("passes")

    @register("zz_exits_3", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class Exits(Scale):
        def forward(self, x):
            os._exit(3)

    @register("zz_sigkills_itself", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class KillsItself(Scale):
        def forward(self, x):
            os.kill(os.getpid(), signal.SIGKILL)

    @register("zz_sys_exit", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class SysExit(Scale):
        def forward(self, x):
            sys.exit(0)

    @register("zz_waits_to_be_killed", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class WaitsToBeKilled(Scale):
        def __init__(self, channels=4):
            super().__init__(channels)
            (PIDS / "worker").write_text(str(os.getpid()))  # the model's process: the test kills it
            time.sleep(600)

    @register("zz_frozen_branch", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class FrozenBranch(Scale):
        def forward(self, x):
            if x.mean() > 0:  # <frozen-branch>
                return super().forward(x)
            return super().forward(x) - 2.0
''')


@pytest.fixture
def gate_env(tmp_path):
    """The fixture plugin, a folder for the pids of the `sleep`s the models start, and a private TMPDIR."""
    plugin = tmp_path / "gate_fixtures.py"
    plugin.write_text(FIXTURES)
    pids = tmp_path / "pids"
    pids.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, ATTNCLI_PLUGINS=str(plugin), GATE_TEST_PIDS=str(pids), TMPDIR=str(tmp))
    return env, pids, tmp


def run_check(args, env, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "attncli", "check", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def test_a_poisoned_state_would_break_the_next_model(tmp_path):
    """The control: in one interpreter, the state the poisoning model leaves makes eca fail."""
    code = textwrap.dedent("""
        import sys, tempfile, torch
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.set_num_threads(1)
        from attncli.gate import Case, run_model_cases
        [result] = run_model_cases([Case("eca", 11)], tempfile.mkdtemp())
        print(result.status)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] != "passed"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_model_changing_global_state_does_not_affect_the_next_one(gate_env, tmp_path):
    env, _, _ = gate_env
    out = run_check(["aa_poisons_state", "eca", "--opset", "11", "-j", "1", "-f", "json"], env, tmp_path)
    data = json.loads(out.stdout)
    cases = {c["model"]: c for c in data["cases"]}
    assert list(cases) == ["aa_poisons_state", "eca"]
    assert cases["eca"]["status"] == "passed", cases["eca"]["message"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_timed_out_and_finished_models_leave_no_process_and_do_not_hold_stdout(gate_env, tmp_path):
    env, pids, _ = gate_env
    start = time.monotonic()
    # subprocess.run reads stdout to its end: a `sleep` holding it would make this take 600 s
    out = run_check(["zz_sleeper_*", "--opset", "11", "-j", "2", "--timeout", "4", "-f", "json"], env, tmp_path, timeout=90)
    assert time.monotonic() - start < 60
    assert out.returncode == 1, out.stderr
    cases = {c["model"]: c for c in json.loads(out.stdout)["cases"]}
    assert cases["zz_sleeper_hangs"]["status"] == "timeout"
    assert cases["zz_sleeper_passes"]["status"] == "passed"
    for tag in ("hangs", "passes"):
        pid = int((pids / tag).read_text())
        deadline = time.monotonic() + 5
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone(pid), f"the `sleep` started by zz_sleeper_{tag} survived"


def test_model_output_goes_to_the_case_log_not_to_the_report(gate_env, tmp_path):
    env, _, _ = gate_env
    out = run_check(["zz_prints", "eca", "--opset", "11", "-f", "json"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # stdout is the report and nothing else
    log = {c["model"]: c.pop("log") for c in data["cases"]}
    for marker in ("PRINTED-BY-FORWARD", "STDERR-BY-FORWARD", "FD1-BY-FORWARD"):
        assert marker not in json.dumps(data) and marker not in out.stderr
    assert "PRINTED-BY-FORWARD" in log["zz_prints"] and "STDERR-BY-FORWARD" in log["zz_prints"]
    assert "FD1-BY-FORWARD" in log["zz_prints"]
    assert "PRINTED-BY-FORWARD" not in log["eca"]


def test_crashes_and_timeouts_are_errors_and_leave_no_temporary_files(gate_env, tmp_path):
    env, _, tmp = gate_env
    # onnxruntime's import writes its telemetry session file, $TMPDIR/.ses, once and keeps it: count after it
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True, timeout=60)
    before = sorted(tmp.iterdir())
    args = ["zz_exits_3", "zz_sigkills_itself", "zz_sys_exit", "zz_sleeper_hangs", "se", "--opset", "11", "--opset", "17",
            "-j", "2", "--timeout", "4", "-f", "json"]
    out = run_check(args, env, tmp_path)
    assert out.returncode == 1, out.stderr
    cases = {(c["model"], c["opset"]): c for c in json.loads(out.stdout)["cases"]}
    assert len(cases) == 10
    for opset in (11, 17):
        assert cases["zz_exits_3", opset]["status"] == "error"
        assert "exited with code 3" in cases["zz_exits_3", opset]["message"]
        assert "SIGKILL" in cases["zz_sigkills_itself", opset]["message"]
        # SystemExit in the model's forward is the model's error, not a silent exit 0 of its process
        assert cases["zz_sys_exit", opset]["status"] == "error"
        assert "SystemExit" in cases["zz_sys_exit", opset]["message"]
        assert cases["zz_sleeper_hangs", opset]["status"] == "timeout"
        assert cases["se", opset]["status"] == "passed"
    assert sorted(tmp.iterdir()) == before


def test_the_python_api_runs_the_gate_in_process_callers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = attncli.check(["se"], opsets=[11])
    assert report.passed and report.exit_code == 0
    assert [c.id for c in report.cases] == ["se@opset11"]
    assert list(tmp_path.iterdir()) == []


def test_a_model_is_built_once_for_all_its_opsets(tmp_path):
    """run_model_cases, in this process: the build and count stages appear on the first case only."""
    results = list(gate.run_model_cases([gate.Case("se", 11), gate.Case("se", 17)], tmp_path))
    assert [r.status for r in results] == ["passed", "passed"]
    assert {"build", "count", "export", "verify"} <= set(results[0].stages)
    assert "build" not in results[1].stages and "export" in results[1].stages
    assert results[0].macs == results[1].macs is not None
    assert list(tmp_path.iterdir()) == []


def test_a_worker_killed_from_outside_is_that_models_error_and_the_run_goes_on(gate_env, tmp_path):
    """SIGKILL sent by someone else (the OOM killer, an operator) to a model's process."""
    env, pids, tmp = gate_env
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=env, check=True, timeout=60)
    before = sorted(tmp.iterdir())
    proc = subprocess.Popen(
        [sys.executable, "-m", "attncli", "check", "zz_waits_to_be_killed", "se", "--opset", "11", "-j", "1", "-f", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 60
        while not (pids / "worker").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        worker = int((pids / "worker").read_text())
        assert worker != proc.pid
        os.kill(worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    cases = {c["model"]: c for c in json.loads(out)["cases"]}
    assert cases["zz_waits_to_be_killed"]["status"] == "error"
    assert "died with SIGKILL" in cases["zz_waits_to_be_killed"]["message"]
    assert cases["se"]["status"] == "passed"
    assert gone(worker)
    assert sorted(tmp.iterdir()) == before


def test_the_gate_fails_a_trace_warning_unless_allowed_and_reports_it_either_way(gate_env, tmp_path):
    env, _, _ = gate_env
    line = next(i for i, text in enumerate(FIXTURES.splitlines(), 1) if "<frozen-branch>" in text)
    out = run_check(["zz_frozen_branch", "--opset", "17", "-f", "json"], env, tmp_path)
    assert out.returncode == 1, out.stderr
    (case,) = json.loads(out.stdout)["cases"]
    assert case["status"] == "failed"
    assert f"gate_fixtures.py:{line}" in case["message"] and "trace warned" in case["message"]
    assert len(case["trace_warnings"]) == 1 and f"gate_fixtures.py:{line}:" in case["trace_warnings"][0]

    # allowed, the export passes on; the input of the other sign then fails verification
    out = run_check(["zz_frozen_branch", "--opset", "17", "-f", "json", "--allow-trace-warnings"], env, tmp_path)
    assert out.returncode == 1, out.stderr
    (case,) = json.loads(out.stdout)["cases"]
    assert case["status"] == "failed" and "trace warned" not in case["message"]
    assert "negative" in case["message"] or "positive" in case["message"], case["message"]
    assert len(case["trace_warnings"]) == 1
