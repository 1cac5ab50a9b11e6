"""The gate across machines (attncli.ci_reports, `attncli report merge`, check's --junit/--markdown/
--json, GitHub annotations and step summary). Real runs of `attncli check`, no mocks."""

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from attncli import ci_reports
from attncli.gate import CaseResult, CheckReport

MODELS = ["se", "eca", "cbam", "simam", "--opset", "11", "--opset", "17"]

FIXTURES = textwrap.dedent('''
    """Models that fail the gate honestly, registered for these tests only."""
    import torch
    from torch import nn
    from attncli.registry import register

    class Scale(nn.Module):
        def __init__(self, channels=4):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(channels))
        def forward(self, x):
            return x * self.scale[None, :, None, None]

    @register("zz_frozen_branch", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class FrozenBranch(Scale):
        def forward(self, x):
            if x.mean() > 0:  # a Python branch on a tensor: the trace freezes it, and warns
                return super().forward(x)
            return super().forward(x) - 2.0

    @register("zz_percent", input_shape=(1, 4, 8, 8), paper=("test fixture",))
    class Percent(Scale):
        def forward(self, x):
            # refused by every export route (TorchScript, and dynamo's torch.export trace)
            if torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
                raise RuntimeError("100% refused, on purpose")
            return super().forward(x)
''')


def attncli(args, cwd, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "attncli", *args], capture_output=True, text=True, cwd=cwd, env=env or dict(os.environ), timeout=timeout
    )


def clean_env(**extra):
    """No GitHub Actions variables but those given: the tests may themselves run on a runner."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", ci_reports.GITHUB_OPT_OUT)}
    env.update(extra)
    return env


def statuses(data):
    return [(c["model"], c["opset"], c["status"]) for c in data["cases"]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three shards of a small plan, and the same plan unsharded with every report format at once."""
    folder = tmp_path_factory.mktemp("shards")
    for i in (1, 2, 3):
        out = attncli(["check", *MODELS, "--shard", f"{i}/3", "-f", "json", "-o", f"shard-{i}.json"], folder, clean_env())
        assert out.returncode == 0, out.stderr
    out = attncli(
        ["check", *MODELS, "--junit", "all.xml", "--markdown", "all.md", "--json", "all.json"], folder, clean_env()
    )
    assert out.returncode == 0, out.stderr
    return folder, out


def load(path):
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------- merging


def test_the_merged_shards_are_the_unsharded_run(runs):
    folder, _ = runs
    out = attncli(["report", "merge", "shard-1.json", "shard-2.json", "shard-3.json", "-f", "json", "-o", "merged.json"], folder, clean_env())
    assert out.returncode == 0, out.stderr
    merged, whole = load(folder / "merged.json"), load(folder / "all.json")
    shards = [load(folder / f"shard-{i}.json") for i in (1, 2, 3)]
    assert [s["planned"] for s in shards] == [3, 3, 2]  # 8 cases dealt round-robin
    assert statuses(merged) == statuses(whole)  # the same cases, statuses, and the plan's order
    assert len(statuses(merged)) == 8
    assert merged["summary"] == whole["summary"] == {"passed": 8, "failed": 0, "error": 0, "timeout": 0, "xfailed": 0, "xpassed": 0}
    assert (merged["passed"], merged["planned"], merged["completed"], merged["interrupted"]) == (True, 8, 8, False)
    assert merged["shard"] is None and merged["opsets"] == [11, 17] and merged["not_run"] == []
    assert merged["seconds"] == max(s["seconds"] for s in shards)  # the wall time of shards run side by side

    # the order of the files does not matter, and every format renders
    out = attncli(["report", "merge", "shard-3.json", "shard-1.json", "shard-2.json", "-f", "junit"], folder, clean_env())
    assert out.returncode == 0, out.stderr
    suite = ET.fromstring(out.stdout).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("8", "0", "0")
    assert "PASSED" in out.stderr  # the summary table goes to the terminal, beside the report


def test_a_shard_given_twice_is_refused(runs):
    folder, _ = runs
    out = attncli(["report", "merge", "shard-1.json", "shard-2.json", "shard-1.json", "-o", "x.json", "-f", "json"], folder, clean_env())
    assert out.returncode == 2
    assert "shard 1/3 is given twice" in out.stderr and "overlap" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (folder / "x.json").exists()


def test_a_missing_shard_is_refused_and_named(runs):
    folder, _ = runs
    out = attncli(["report", "merge", "shard-1.json", "shard-3.json"], folder, clean_env())
    assert out.returncode == 2 and "shard 2/3 is missing" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_shards_of_different_plans_are_refused(runs, tmp_path):
    folder, _ = runs
    data = load(folder / "shard-2.json")
    (tmp_path / "of-four.json").write_text(json.dumps(dict(data, shard="2/4")))
    (tmp_path / "opset13.json").write_text(json.dumps(dict(data, opsets=[11, 13])))
    # a case in two shards: shard 1's cases presented as shard 2
    (tmp_path / "fake-2.json").write_text(json.dumps(dict(load(folder / "shard-1.json"), shard="2/3")))
    one, three = str(folder / "shard-1.json"), str(folder / "shard-3.json")

    out = attncli(["report", "merge", one, str(tmp_path / "of-four.json"), three], tmp_path, clean_env())
    assert out.returncode == 2 and "different splits" in out.stderr and "1/3" in out.stderr and "2/4" in out.stderr
    out = attncli(["report", "merge", one, str(tmp_path / "opset13.json"), three], tmp_path, clean_env())
    assert out.returncode == 2 and "different opsets" in out.stderr
    out = attncli(["report", "merge", one, str(tmp_path / "fake-2.json"), three], tmp_path, clean_env())
    assert out.returncode == 2 and "is in shard 1/3" in out.stderr and "and in shard 2/3" in out.stderr


def test_files_that_are_not_reports_are_usage_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"rows": []}')
    for name, expected in (("bad.json", "is not JSON"), ("other.json", "not the JSON report"), ("absent.json", "no such file")):
        out = attncli(["report", "merge", name], tmp_path, clean_env())
        assert out.returncode == 2 and expected in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_an_interrupted_shard_makes_the_union_fail_with_its_unfinished_cases(runs, tmp_path):
    folder, _ = runs
    data = load(folder / "shard-2.json")
    last = data["cases"].pop()
    data.update(interrupted=True, signal="SIGTERM", not_run=[f"{last['model']}@opset{last['opset']}"], completed=2)
    (tmp_path / "shard-2.json").write_text(json.dumps(data))
    paths = [str(folder / "shard-1.json"), str(tmp_path / "shard-2.json"), str(folder / "shard-3.json")]
    out = attncli(["report", "merge", *paths, "-f", "json"], tmp_path, clean_env())
    assert out.returncode == 1, out.stderr  # the union failed; the merge itself was not interrupted
    merged = json.loads(out.stdout)
    assert (merged["passed"], merged["interrupted"], merged["signal"], merged["planned"], merged["completed"]) == (False, True, "SIGTERM", 8, 7)
    assert merged["not_run"] == data["not_run"]


def test_a_report_round_trips_through_its_dict(runs):
    folder, _ = runs
    for name in ("shard-1.json", "all.json"):
        data = load(folder / name)
        assert ci_reports.report_from_dict(data).as_dict() == data


def test_merge_needs_no_torch(runs):
    """The merge job of a matrix reads JSON: it imports none of the heavy packages."""
    folder, _ = runs
    code = textwrap.dedent("""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "numpy", "onnx", "onnxruntime", "fvcore"):
                    raise ImportError("refused: " + name)
        sys.meta_path.insert(0, Refuse())
        sys.argv = ["attncli", "report", "merge", "shard-1.json", "shard-2.json", "shard-3.json", "-f", "markdown"]
        from attncli.cli.main import run
        run()
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder, env=clean_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("### attncli check: PASSED")


# ----------------------------------------------------------------------------- every format in one run


def test_one_run_writes_every_format(runs):
    folder, out = runs
    root = ET.parse(folder / "all.xml").getroot()
    assert sorted(tc.get("name") for tc in root.iter("testcase")) == sorted(f"{m}@opset{o}" for m in ("cbam", "eca", "se", "simam") for o in (11, 17))
    assert load(folder / "all.json")["summary"]["passed"] == 8
    text = (folder / "all.md").read_text()
    assert text.startswith("### attncli check: PASSED") and text.count("| ✅ passed |") == 8
    assert "attncli check" in out.stdout and "PASSED" in out.stdout  # -f table still on stdout
    for name in ("all.xml", "all.md", "all.json"):
        assert f"report written to {name}" in out.stderr
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".attncli-")]


def test_every_report_file_is_checked_before_any_case_runs(tmp_path):
    out = attncli(["check", "se", "--opset", "11", "--json", "ok.json", "--junit", "missing/dir/r.xml"], tmp_path, clean_env(), timeout=60)
    assert out.returncode == 2 and "--junit" in out.stderr and "does not exist" in out.stderr, out.stderr
    assert "se@opset11" not in out.stderr and not (tmp_path / "ok.json").exists()
    out = attncli(["check", "se", "--opset", "11", "-f", "json", "-o", "r.json", "--json", "r.json"], tmp_path, clean_env(), timeout=60)
    assert out.returncode == 2 and "--json" in out.stderr and "two reports would be written to r.json" in out.stderr, out.stderr


# ----------------------------------------------------------------------------- GitHub Actions


def test_workflow_commands_escape_what_github_reads_as_syntax():
    assert ci_reports.escape_data("100% done\r\nnext %0A") == "100%25 done%0D%0Anext %250A"
    assert ci_reports.escape_property("models.py:Net, v2") == "models.py%3ANet%2C v2"
    failed = CaseResult("models.py:Net", 17, "failed", 1.0, "verify: 12% off\nsecond line")
    report = CheckReport([failed, CaseResult("se", 17, "passed", 1.0, "ok")], [17], None, 2.0, 3, True, "SIGINT", ["eca@opset17"])
    assert ci_reports.github_annotations(report) == [
        "::error title=attncli check models.py%3ANet@opset17::failed: verify: 12%25 off%0Asecond line",
        "::error title=attncli check::the check was interrupted by SIGINT after 2 of 3 cases",
    ]
    assert not ci_reports.on_github_actions({"GITHUB_ACTIONS": "true", "ATTNCLI_GITHUB": "0"})
    assert ci_reports.on_github_actions({"GITHUB_ACTIONS": "true"}) and not ci_reports.on_github_actions({})


@pytest.fixture(scope="module")
def failing(tmp_path_factory):
    folder = tmp_path_factory.mktemp("github")
    plugin = folder / "failing_models.py"
    plugin.write_text(FIXTURES)
    summary = folder / "summary.md"
    summary.write_text("earlier step")  # no newline at its end
    env = clean_env(ATTNCLI_PLUGINS=str(plugin), GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    out = attncli(["check", "zz_*", "se", "--opset", "17", "--json", "run.json"], folder, env)
    return folder, env, summary, out


def annotations(text):
    return [line for line in text.splitlines() if line.startswith("::")]


def test_on_github_failed_cases_are_annotated_on_stdout_and_summarised(failing):
    folder, env, summary, out = failing
    assert out.returncode == 1, out.stderr
    cases = {c["model"]: c for c in load(folder / "run.json")["cases"]}
    assert cases["se"]["status"] == "passed"
    assert cases["zz_frozen_branch"]["status"] in ("failed", "error") and cases["zz_percent"]["status"] == "failed"
    lines = annotations(out.stdout)
    assert sorted(lines) == sorted(
        f"::error title=attncli check {m}@opset17::{ci_reports.escape_data(cases[m]['status'] + ': ' + cases[m]['message'])}"
        for m in ("zz_frozen_branch", "zz_percent")
    )
    percent = next(line for line in lines if "zz_percent" in line)
    assert "100%25 refused, on purpose" in percent and "100% " not in percent
    assert not annotations(out.stderr)
    text = summary.read_text()
    assert text.startswith("earlier step\n### attncli check: FAILED") and "`zz_percent`" in text and "| `se` | ✅ passed |" in text


def test_on_github_a_json_report_on_stdout_stays_json_and_annotations_go_to_stderr(failing):
    folder, env, summary, _ = failing
    before = summary.read_text()
    out = attncli(["check", "zz_percent", "--opset", "17", "-f", "json"], folder, env)
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)  # nothing but the report
    assert statuses(data) == [("zz_percent", 17, "failed")]
    assert [line.split("::")[1] for line in annotations(out.stderr)] == ["error title=attncli check zz_percent@opset17"]
    assert summary.read_text().startswith(before) and summary.read_text().count("### attncli check") == 2


def test_report_merge_publishes_on_github_too(failing, tmp_path):
    folder, env, _, _ = failing
    summary = tmp_path / "merge-summary.md"
    env = dict(env, GITHUB_STEP_SUMMARY=str(summary))
    out = attncli(["report", "merge", str(folder / "run.json"), "--junit", "merged.xml"], tmp_path, env)
    assert out.returncode == 1, out.stderr
    assert len(annotations(out.stdout)) == 2 and "zz_percent@opset17" in out.stdout
    assert summary.read_text().startswith("### attncli check: FAILED")
    suite = ET.parse(tmp_path / "merged.xml").getroot().find("testsuite")
    assert (suite.get("tests"), int(suite.get("failures")) + int(suite.get("errors"))) == ("3", 2)

    # ATTNCLI_GITHUB=0 (the shards of a matrix whose merge job publishes): neither
    out = attncli(["report", "merge", str(folder / "run.json")], tmp_path, dict(env, ATTNCLI_GITHUB="0", GITHUB_STEP_SUMMARY=str(tmp_path / "no.md")))
    assert out.returncode == 1 and not annotations(out.stdout) and not (tmp_path / "no.md").exists()


# ----------------------------------------------------------------------------- the shipped workflow


def test_the_shipped_workflow_runs_four_shards_and_merges_them_with_options_that_exist():
    yaml = pytest.importorskip("yaml")
    import re
    from pathlib import Path

    import typer

    from attncli.cli.main import app

    workflow = yaml.safe_load((Path(__file__).parents[1] / "docs" / "github-workflow.yml").read_text())
    jobs = workflow["jobs"]
    check, merge = jobs["check"], jobs["merge"]
    assert check["strategy"]["matrix"]["shard"] == [1, 2, 3, 4] and check["strategy"]["fail-fast"] is False
    assert check["env"][ci_reports.GITHUB_OPT_OUT] == "0" and merge["needs"] == "check"
    runs = {job: [s["run"] for s in jobs[job]["steps"] if "run" in s] for job in jobs}
    [check_cmd] = [r for r in runs["check"] if r.startswith("attncli ")]
    [merge_cmd] = [r for r in runs["merge"] if r.startswith("attncli ")]
    assert check_cmd.startswith("attncli check --shard ${{ matrix.shard }}/4 ") and "--json shard-${{ matrix.shard }}.json" in check_cmd
    assert merge_cmd.startswith("attncli report merge shard-*.json ")
    downloads = [s for s in merge["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
    uploads = [s for s in check["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert downloads[0]["with"]["pattern"] == "attncli-shard-*" and uploads[0]["with"]["name"] == "attncli-shard-${{ matrix.shard }}"
    group = typer.main.get_command(app)
    commands = {"check": group.commands["check"], "report merge": group.commands["report"].commands["merge"]}
    for command, line in (("check", check_cmd), ("report merge", merge_cmd)):
        flags = {opt for p in commands[command].params for opt in p.opts}
        used = set(re.findall(r"(?<!\S)(--?[a-z][\w-]*)", line))
        assert used <= flags, used - flags
