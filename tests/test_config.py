"""The gate on the user's own models: model targets on the command line, the project configuration
([tool.attncli] / attncli.toml), expected failures, and attncli.check() from scripts and stdin.
Real files and real processes; the expected verdicts are stated here, by what each model does."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from attncli.config import find_config, load_config
from attncli.errors import UsageError

MODELS = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, width: int = 8):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self.gate = nn.Conv2d(width, width, 1)

        def forward(self, x):
            y = self.conv(x)
            return y * torch.sigmoid(self.gate(y))


    class Branchy(nn.Module):
        def __init__(self, width: int = 8):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 1)

        def forward(self, x):
            if x.mean() > 0:  # <branch>
                return self.conv(x)
            return self.conv(x) - 2.0
    """
)
BRANCH_LINE = next(i for i, line in enumerate(MODELS.splitlines(), 1) if "<branch>" in line)

PYPROJECT = textwrap.dedent(
    """\
    [project]
    name = "my-attention"
    version = "0.1"

    [tool.attncli]
    opsets = [17]

    [[tool.attncli.models]]
    target = "models.py:Net"
    name = "net"
    input_shape = [1, 3, 32, 32]
    params = { width = 16 }

    [[tool.attncli.models]]
    target = "models.py:Branchy"
    name = "branchy"
    input_shape = [1, 3, 16, 16]
    opsets = [13, 17]
    """
)


def project(tmp_path: Path, pyproject: str = PYPROJECT) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "models.py").write_text(MODELS)
    (root / "pyproject.toml").write_text(pyproject)
    return root


def attncli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def statuses(report_json: str) -> dict[tuple[str, int], str]:
    return {(c["model"], c["opset"]): c["status"] for c in json.loads(report_json)["cases"]}


# ----------------------------------------------------------------------------- the gate from the configuration


def test_check_with_no_model_runs_the_projects_configuration_from_any_subfolder(tmp_path):
    root = project(tmp_path)
    (root / "src").mkdir()
    out = attncli("check", "-f", "json", cwd=root / "src")  # found in the folder above
    # net passes; branchy's Python branch on x.mean() fails its export's trace at both opsets
    assert out.returncode == 1, out.stderr
    assert statuses(out.stdout) == {("net", 17): "passed", ("branchy", 13): "failed", ("branchy", 17): "failed"}
    branchy = [c for c in json.loads(out.stdout)["cases"] if c["model"] == "branchy"]
    assert all(f"models.py:{BRANCH_LINE}" in c["message"] for c in branchy)


def test_expected_failures_pass_the_gate_and_an_unexpected_pass_fails_it(tmp_path):
    text = PYPROJECT.replace('name = "branchy"', 'name = "branchy"\nxfail = "data-dependent branch"')
    text = text.replace('name = "net"', 'name = "net"\nxfail = "thought broken"')
    root = project(tmp_path, text)
    out = attncli("check", "-f", "json", cwd=root)
    assert out.returncode == 1, out.stderr  # net passed although expected to fail
    assert statuses(out.stdout) == {("net", 17): "xpassed", ("branchy", 13): "xfailed", ("branchy", 17): "xfailed"}
    messages = {c["model"]: c["message"] for c in json.loads(out.stdout)["cases"]}
    assert "data-dependent branch" in messages["branchy"] and "remove the expectation" in messages["net"]

    (root / "pyproject.toml").write_text(text.replace('xfail = "thought broken"\n', ""))
    out = attncli("check", "-f", "json", cwd=root)
    assert out.returncode == 0, out.stdout
    assert json.loads(out.stdout)["passed"] is True


def test_per_model_options_reach_the_build_and_verification(tmp_path):
    # allowed trace warnings: the export goes through and the input of the other sign fails verification
    text = PYPROJECT.replace("opsets = [13, 17]", "opsets = [17]\nallow_trace_warnings = true")
    root = project(tmp_path, text)
    out = attncli("check", "-f", "json", cwd=root)
    assert out.returncode == 1
    cases = {c["model"]: c for c in json.loads(out.stdout)["cases"]}
    assert cases["branchy"]["status"] == "failed" and "trace warned" not in cases["branchy"]["message"]
    assert len(cases["branchy"]["trace_warnings"]) == 1
    # width 16 reached the constructor: 3*3*3*16 + 16 + 16*16 + 16 = 432 + 16 + 256 + 16 = 720 parameters,
    # so the 1x1 gate conv has 16*16 MACs per pixel: MACs = 32*32 * (3*3*3*16 + 16*16) = 1024 * 688
    assert cases["net"]["macs"] == 1024 * 688


def test_check_takes_model_targets_with_model_options_on_the_command_line(tmp_path):
    root = project(tmp_path)
    out = attncli("check", "models.py:Net", "se", "-s", "1,3,32,32", "-p", "width=16", "--opset", "17", "-f", "json", cwd=root)
    # -s and -p go to every model named: se takes no width, which is its case's error (found when
    # its process builds it), while models.py:Net passes
    assert out.returncode == 1, out.stderr
    cases = {c["model"]: c for c in json.loads(out.stdout)["cases"]}
    assert cases["se"]["status"] == "error" and "se takes no parameter width" in cases["se"]["message"]
    assert cases["models.py:Net"]["status"] == "passed"
    out = attncli("check", "models.py:Net", "-s", "1,3,32,32", "-p", "width=16", "--opset", "17", "-f", "json", cwd=root)
    assert out.returncode == 0, out.stderr
    (case,) = json.loads(out.stdout)["cases"]
    assert case["model"] == "models.py:Net" and case["macs"] == 1024 * 688


def test_the_configuration_named_explicitly_and_its_paths_relative_to_it(tmp_path):
    root = project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = attncli("check", "--config", str(root / "pyproject.toml"), "--opset", "17", "-f", "json", cwd=elsewhere)
    assert statuses(out.stdout) == {("net", 17): "passed", ("branchy", 17): "failed"}


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (("opsets = [17]", "opset = [17]"), "unknown key 'opset' in [tool.attncli]; did you mean 'opsets'?"),
        (('name = "net"', 'name = "net"\ncolour = "red"'), "unknown key 'colour' in model 1"),
        (('target = "models.py:Net"', 'targte = "models.py:Net"'), "unknown key 'targte' in model 1"),
        (("opsets = [13, 17]", 'opsets = "17"'), "opsets in model 2 ([[models]] table 2) must be this model's opsets"),
        (('name = "branchy"', 'name = "net"'), "two models are named 'net'"),
        (("input_shape = [1, 3, 32, 32]", "input_shape = [1, 0, 32, 32]"), "model 'net': bad input shape"),
        (("params = { width = 16 }", 'params = { width = 16 }\nattn_position = "nowhere"'), "model 'net': bad attention position 'nowhere'"),
        (("[[tool.attncli.models]]", "[[tool.attncli.model]]"), "unknown key 'model' in [tool.attncli]; did you mean 'models'?"),
    ],
    ids=["top-key", "model-key", "no-target", "bad-type", "same-name", "bad-shape", "bad-position", "models-typo"],
)
def test_a_bad_configuration_is_one_line_naming_the_key_and_the_file(tmp_path, edit, fragment):
    root = project(tmp_path, PYPROJECT.replace(*edit, 1))
    out = attncli("check", cwd=root, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert str(root / "pyproject.toml") in out.stderr and fragment in out.stderr, out.stderr


def test_finding_and_reading_the_configuration(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")  # no [tool.attncli]: not ours
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep) is None
    (tmp_path / "a" / "attncli.toml").write_text('[[models]]\ntarget = "se"\nopsets = [13]\n')
    assert find_config(deep) == tmp_path / "a" / "attncli.toml"
    config = load_config(tmp_path / "a" / "attncli.toml")
    assert [(m["name"], m["target"], m["opsets"]) for m in config.models] == [("se", "se", [13])]
    (tmp_path / "a" / "attncli.toml").write_text("[[models]]\n")
    with pytest.raises(UsageError, match="needs a target"):
        load_config(tmp_path / "a" / "attncli.toml")
    (tmp_path / "a" / "attncli.toml").write_text("models = [\n")
    with pytest.raises(UsageError, match="is not valid TOML"):
        load_config(tmp_path / "a" / "attncli.toml")


def test_file_targets_are_relative_to_the_configurations_folder(tmp_path):
    root = project(tmp_path)
    config = load_config(root / "pyproject.toml")
    assert config.models[0]["target"] == f"{root.resolve() / 'models.py'}:Net"
    assert config.models[0]["params"] == {"width": 16} and config.models[1]["opsets"] == [13, 17]


# ----------------------------------------------------------------------------- attncli.check() from anywhere


@pytest.mark.parametrize("how", ["script-without-guard", "stdin"])
def test_the_api_gate_runs_from_a_script_without_a_main_guard_and_from_stdin(tmp_path, how):
    code = 'import attncli\nr = attncli.check(["se"], opsets=[11])\nprint("RESULT", r.passed, r.cases[0].status)\n'
    script = tmp_path / "gate_me.py"
    script.write_text(code)
    if how == "stdin":
        out = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    else:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    # the script ran once: a model's process re-running it would print a second RESULT line
    assert out.stdout.count("RESULT") == 1 and "RESULT True passed" in out.stdout, out.stdout + out.stderr
