"""What a person meets first: --help ending with examples that run, `list` readable at 80 columns
(and plain for scripts), and shell completion that installs."""

import io
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from rich.console import Console

from attncli import registry
from attncli.cli import render
from attncli.cli.main import app

COMMANDS = [["list"], ["info"], ["profile"], ["export"], ["verify"], ["inspect"], ["bench"], ["compare"], ["check"], ["report", "merge"], ["providers"]]


def examples_of(help_text: str) -> list[str]:
    """The command lines under the last "Examples" heading of a --help."""
    lines = [line.strip() for line in help_text.splitlines()]
    start = max(i for i, line in enumerate(lines) if line == "Examples")
    return [line for line in lines[start + 1:] if line and not line.startswith("#")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_help_ends_with_two_or_three_examples_one_a_line(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.rstrip().splitlines()[-1].strip() != ""  # something ends it
    # the examples come after the options, at the end
    assert text.rindex("Examples") > text.rindex("--help")
    examples = examples_of(text)
    assert 2 <= len(examples) <= 3, examples
    assert all("attncli " + " ".join(command) in line for line in examples), examples


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_example_parses(command):
    """Each example's options exist and take the values given (parsed by the real command, not run)."""
    group = typer.main.get_command(app)
    cmd = group
    for word in command:
        cmd = cmd.commands[word]
    lines = [line for line in (cmd.epilog or "").splitlines() if "attncli " in line and not line.startswith("[dim]")]
    assert lines
    for line in lines:
        words = shlex.split(line[line.index("attncli "):].split("|")[0])[1 + len(command):]
        ctx = cmd.make_context(" ".join(command), list(words))
        assert ctx.params is not None


# ----------------------------------------------------------------------------- list


def render_list(width: int, specs=None) -> str:
    specs = registry.list_specs() if specs is None else specs
    buffer = io.StringIO()
    render.list_report(specs, Console(file=buffer, width=width, color_system=None, force_terminal=False))
    return buffer.getvalue()


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("width", [60, 80, 100])
def test_list_wraps_at_narrow_widths_and_crops_nothing(width):
    text = render_list(width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text and "..." not in text
    for spec in registry.list_specs():
        assert flat(spec.paper.title) in flat(text), spec.name
        for alias in spec.aliases:
            assert alias in text
        assert spec.name in text and (spec.paper.arxiv or "-") in text


def test_list_at_a_wide_terminal_shows_whole_titles_on_one_line():
    text = render_list(200)
    assert max(len(line) for line in text.splitlines()) <= 200
    lines = text.splitlines()
    for spec in registry.list_specs():
        assert any(spec.paper.title in line for line in lines), spec.paper.title


def test_list_at_80_columns_through_the_cli():
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "attncli", "list"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= 80
    assert "…" not in out.stdout and "coord_att" in out.stdout


def test_list_plain_is_one_name_per_line(cli, tmp_path):
    names = [d["name"] for d in json.loads(cli("list", "-f", "json").stdout)]
    result = cli("list", "--format", "plain")
    assert result.exit_code == 0 and result.stdout.splitlines() == names
    only = cli("list", "eca*", "--kind", "block", "-f", "plain").stdout.splitlines()
    assert only and all(n.startswith("eca") for n in only)
    path = tmp_path / "names.txt"
    written = cli("list", "-f", "plain", "-o", path)
    assert written.exit_code == 0 and written.stdout == "" and path.read_text().splitlines() == names


# ----------------------------------------------------------------------------- completion


def console_script() -> Path:
    path = Path(sys.executable).with_name("attncli")
    if not path.exists():
        found = shutil.which("attncli")
        if found is None:
            pytest.skip("the attncli console script is not installed")
        path = Path(found)
    return path


def test_install_and_show_completion_are_offered(cli):
    text = cli("--help").stdout
    assert "--install-completion" in text and "--show-completion" in text


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o default -F _attncli_completion attncli"), ("zsh", "#compdef attncli")])
def test_show_completion_prints_the_script_for_a_shell(shell, marker):
    # Typer's switch for naming the shell instead of detecting the one running (as in its own tests)
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    out = subprocess.run([str(console_script()), "--show-completion", shell], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert marker in out.stdout and "_ATTNCLI_COMPLETE" in out.stdout


def test_the_installed_script_completes_commands_and_options():
    env = {**os.environ, "_ATTNCLI_COMPLETE": "complete_bash", "COMP_WORDS": "attncli li", "COMP_CWORD": "1"}
    out = subprocess.run([str(console_script())], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.split() == ["list"], out
    env.update(COMP_WORDS="attncli list --for", COMP_CWORD="2")
    out = subprocess.run([str(console_script())], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["--format"], out
