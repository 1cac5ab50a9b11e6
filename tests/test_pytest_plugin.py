"""The pytest plugin (entry point pytest11), in a separate pytest run as a team would use it: the
project's [tool.attncli] models collected as tests, and the attncli_check fixture."""

import json
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


def test_a_project_of_two_files_gets_one_verdict_from_check_four_merged_shards_and_pytest(tmp_path):
    """The issue's bar: a repository holding only pyproject.toml ([tool.attncli]) and models.py."""
    (tmp_path / "models.py").write_text(MODELS)
    # 5 cases, so that each of 4 shards gets at least one: net at 13 and 17, branchy at 11, 13 and 17
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("opsets = [13, 17]", "opsets = [11, 13, 17]").replace(
        'name = "net"', 'name = "net"\nopsets = [13, 17]'))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.py", "pyproject.toml"]

    def attncli(*args):
        return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, cwd=tmp_path, timeout=600)

    whole = attncli("check", "-f", "json")
    verdicts = {f'{c["model"]}@opset{c["opset"]}': c["status"] for c in json.loads(whole.stdout)["cases"]}
    # net passes at both opsets; branchy's frozen branch fails at every opset
    assert verdicts == {"net@opset13": "passed", "net@opset17": "passed", "branchy@opset11": "failed",
                        "branchy@opset13": "failed", "branchy@opset17": "failed"}
    assert whole.returncode == 1

    shards = tmp_path / "shards"
    shards.mkdir()
    for i in range(1, 5):
        assert attncli("check", "--shard", f"{i}/4", "--json", str(shards / f"shard-{i}.json")).returncode in (0, 1)
    merged = attncli("report", "merge", *sorted(str(p) for p in shards.iterdir()), "-f", "json")
    assert merged.returncode == whole.returncode, merged.stderr
    assert {f'{c["model"]}@opset{c["opset"]}': c["status"] for c in json.loads(merged.stdout)["cases"]} == verdicts

    tests = run_pytest(tmp_path, "--ignore=shards")
    assert tests.returncode == 1
    assert outcome(tests) == {f"pyproject.toml::{case}": "PASSED" if status == "passed" else "FAILED" for case, status in verdicts.items()}
