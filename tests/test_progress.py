"""attncli.progress (the library's named steps) and the CLI's reporters that show them on stderr."""

import io
import time

import pytest
from rich.console import Console

from attncli import progress
from attncli.cli import render


class Recorder:
    def __init__(self):
        self.events = []

    def start(self, label):
        self.events.append(("start", label))

    def end(self, label, seconds):
        self.events.append(("end", label, seconds))


@pytest.fixture
def recorder():
    rec = Recorder()
    previous = progress.set_reporter(rec)
    yield rec
    progress.set_reporter(previous)


def test_without_a_reporter_a_step_is_silent_and_runs_its_block():
    assert progress.reporter() is None
    ran = []
    with progress.step("building x"):
        ran.append(1)
    assert ran == [1]


def test_set_reporter_returns_the_one_it_replaces():
    first, second = Recorder(), Recorder()
    assert progress.set_reporter(first) is None
    try:
        assert progress.set_reporter(second) is first
        assert progress.reporter() is second
    finally:
        assert progress.set_reporter(None) is second


def test_nested_steps_start_outside_in_and_end_inside_out(recorder):
    with progress.step("exporting"):
        with progress.step("verifying"):
            time.sleep(0.02)
    assert [e[:2] for e in recorder.events] == [("start", "exporting"), ("start", "verifying"), ("end", "verifying"), ("end", "exporting")]
    inner, outer = recorder.events[2][2], recorder.events[3][2]
    assert 0.02 <= inner <= outer


def test_a_step_that_raises_still_ends(recorder):
    with pytest.raises(ValueError):
        with progress.step("tracing"):
            raise ValueError("boom")
    assert [e[:2] for e in recorder.events] == [("start", "tracing"), ("end", "tracing")]


# ----------------------------------------------------------------------------- the CLI's reporters


def plain_console():
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=False, width=80, color_system=None), buffer


def terminal_console():
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=80, color_system=None), buffer


def test_off_a_terminal_a_step_of_a_second_or_more_is_one_plain_line():
    console, buffer = plain_console()
    with render.Reporter(console) as reporter:
        assert progress.reporter() is reporter
        reporter.start("building slow")
        reporter.end("building slow", 1.25)
        reporter.start("tracing")
        reporter.end("tracing", 0.2)  # under a second: nothing
        reporter.start(progress.IMPORTING_TORCH)
        reporter.end(progress.IMPORTING_TORCH, 3.0)  # every run starts with it: not in a log
    assert progress.reporter() is None
    assert buffer.getvalue() == "building slow: 1.2 s\n"


def test_off_a_terminal_a_failed_step_leaves_the_telling_to_the_error():
    console, buffer = plain_console()
    reporter = render.Reporter(console)
    try:
        raise RuntimeError("failed")
    except RuntimeError:
        reporter.end("building slow", 5.0)
    assert buffer.getvalue() == ""


def test_on_a_terminal_each_running_step_has_a_line_and_the_display_goes_when_they_end():
    console, buffer = terminal_console()
    with render.Reporter(console) as reporter:
        reporter.start("exporting eca at opset 17")
        reporter.start("verifying the file in onnxruntime")
        shown = [t.description for t in reporter._display.tasks]
        assert shown == ["exporting eca at opset 17", "  verifying the file in onnxruntime"]
        reporter.end("verifying the file in onnxruntime", 0.5)
        assert [t.description for t in reporter._display.tasks] == ["exporting eca at opset 17"]
        reporter.end("exporting eca at opset 17", 1.0)
        assert reporter._display is None  # nothing left running: the spinner is taken down
    assert "exporting eca at opset 17" in buffer.getvalue()


def test_a_command_installs_a_reporter_for_its_run_and_removes_it(cli, tmp_path):
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import time\nfrom torch import nn\n\n"
        "class Slow(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        time.sleep(1.1)\n"
        "        self.conv = nn.Conv2d(3, 4, 1)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n"
    )
    result = cli("info", f"{slow}:Slow", "-s", "1,3,8,8")
    assert result.exit_code == 0, result.stderr
    # the runner's stderr is not a terminal: a plain line on stderr, nothing of it on stdout
    assert f"building {slow}:Slow: 1." in result.stderr
    assert "building" not in result.stdout
    assert progress.reporter() is None


# ----------------------------------------------------------------------------- the gate's progress


def test_the_gate_names_every_running_case_and_shows_the_start_before_the_first():
    from attncli.gate import Case, CaseResult

    console, buffer = terminal_console()
    cases = [Case("eca", 11), Case("se", 11), Case("eca", 17)]
    with render.CheckProgress(console) as check:
        check.planned(cases)
        lines = [t.description for t in check._display.tasks]
        assert any("starting the worker processes" in line for line in lines)
        check.started(cases[0])
        check.started(cases[1])  # -j 2: two at once, both named
        lines = [t.description for t in check._display.tasks]
        assert not any("starting" in line for line in lines)
        assert [line.strip() for line in lines[1:]] == ["eca@opset11", "se@opset11"]
        check.finished(CaseResult("se", 11, "passed", 1.5, max_abs=1e-6))
        lines = [t.description.strip() for t in check._display.tasks]
        assert "se@opset11" not in lines and "eca@opset11" in lines
        assert check._display.tasks[0].completed == 1 and check._display.tasks[0].total == 3
    assert "[1/3] se@opset11 passed 1.5s" in buffer.getvalue()


def test_off_a_terminal_the_gate_prints_one_line_per_finished_case():
    from attncli.gate import Case, CaseResult

    console, buffer = plain_console()
    with render.CheckProgress(console) as check:
        check.planned([Case("eca", 11), Case("eca", 17)])
        check.started(Case("eca", 11))
        check.finished(CaseResult("eca", 11, "failed", 2.0, "max abs 1e-2 over tolerance"))
    assert buffer.getvalue() == "[1/2] eca@opset11 failed 2.0s  - max abs 1e-2 over tolerance\n"
