"""The pytest plugin (entry point pytest11), in a separate pytest run as a team would use it: the
project's [tool.attncli] models collected as tests, and the attncli_check fixture."""

import re
import subprocess
import sys
import textwrap

from test_config import BRANCH_LINE, MODELS, PYPROJECT


def run_pytest(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *args],
        capture_output=True, text=True, cwd=cwd, timeout=600,
    )


def outcome(out) -> dict[str, str]:
    """test id -> PASSED / FAILED, from -rA's short summary."""
    return dict((m.group(2), m.group(1)) for m in re.finditer(r"^(PASSED|FAILED) (\S+)", out.stdout, re.M))


def test_the_projects_configuration_is_collected_as_one_test_per_model_and_opset(tmp_path):
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    out = run_pytest(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    # the same verdicts as `attncli check` on this project (tests/test_config.py)
    assert outcome(out) == {
        "pyproject.toml::net@opset17": "PASSED",
        "pyproject.toml::branchy@opset13": "FAILED",
        "pyproject.toml::branchy@opset17": "FAILED",
    }
    assert f"models.py:{BRANCH_LINE}" in out.stdout and "trace warned" in out.stdout

    disabled = run_pytest(tmp_path, "-p", "no:attncli")
    assert disabled.returncode == 5, disabled.stdout  # no tests collected


def test_the_fixture_passes_a_good_model_and_fails_a_bad_one_with_its_figures(tmp_path):
    (tmp_path / "models.py").write_text(MODELS)
    (tmp_path / "test_models.py").write_text(textwrap.dedent(
        """\
        def test_net(attncli_check):
            report = attncli_check("models.py:Net", input_shape="1,3,32,32", params=["width=16"], opsets=[17])
            assert [c.status for c in report.cases] == ["passed"]

        def test_branchy(attncli_check):
            attncli_check("models.py:Branchy", input_shape="1,3,16,16", opsets=[17], allow_trace_warnings=True)
        """
    ))
    out = run_pytest(tmp_path)
    assert outcome(out) == {"test_models.py::test_net": "PASSED", "test_models.py::test_branchy": "FAILED"}, out.stdout
    # the failure shows the case, its status, its largest error and what failed (the shifted input)
    assert re.search(r"models\.py:Branchy@opset17: failed, max abs \d\.\d\de[+-]\d\d: ", out.stdout), out.stdout
    assert "1 of 1 case(s) did not pass" in out.stdout
