import json

import pytest


def test_list_table_and_pattern(cli):
    result = cli("list")
    assert result.exit_code == 0
    for name in ("eca", "eca_ns", "eca1d", "se", "se_weight", "cbam", "sk", "psa", "gam", "simam", "coordatt"):
        assert name in result.stdout
    only_eca = cli("list", "eca*", "--kind", "block")
    assert only_eca.exit_code == 0
    assert "eca_ns" in only_eca.stdout and "cbam" not in only_eca.stdout


def test_list_json_is_parseable_and_complete(cli):
    result = cli("list", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    entry = {d["name"]: d for d in data}["eca"]
    assert entry["kind"] == "block" and entry["input_shape"] == [1, 64, 56, 56]
    assert entry["paper"]["arxiv"] == "1910.03151" and "eca_layer" in entry["aliases"]
    assert all({"name", "kind", "input_shape", "paper", "aliases"} <= set(d) for d in data)


def test_info_table_and_json(cli):
    result = cli("info", "eca")
    assert result.exit_code == 0
    assert "1910.03151" in result.stdout and "parameters  3" in result.stdout
    data = json.loads(cli("info", "cbam", "-p", "channels=128", "--format", "json").stdout)
    assert data["name"] == "cbam" and data["kind"] == "block"
    assert data["input_shape"] == [1, 128, 56, 56] and data["output_shape"] == [1, 128, 56, 56]
    assert data["params"] == 2 * 128 * 8 + 8 + 128 + 2 * 49 + 2
    assert data["paper"]["arxiv"] == "1807.06521"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["info", "ecq"], "Did you mean eca"),
        (["info", "se", "-p", "reduction"], "key=value"),
        (["info", "se", "-p", "colour=red"], "takes no parameter colour"),
        (["info", "se", "--input-shape", "1,64,x"], "bad input shape"),
        (["info", "se", "--input-shape", "1,64,7"], "rejects an input of shape 1,64,7"),
        (["info", "eca", "--attn", "se"], "a backbone"),
        (["info", "missing_dir/nothing.py:Net", "--input-shape", "1,3,8,8"], "no such file"),
        (["info", "eca", "--weights", "nowhere.pt"], "no such weights file"),
        (["list", "--kind", "blocks"], ""),
    ],
)
def test_user_mistakes_exit_2_with_one_line_and_no_traceback(cli, argv, message):
    result = cli(*argv)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert message in result.stderr
    if argv[0] == "info":
        assert result.stderr.strip().count("\n") == 0 and result.stdout == ""


def test_debug_shows_the_traceback(cli):
    from attncli.errors import UnknownModelError

    with pytest.raises(UnknownModelError):
        cli("--debug", "info", "ecq")


def test_info_on_a_user_model_from_a_file(cli, tiny_net_file):
    path = tiny_net_file
    result = cli("info", f"{path}:Tiny", "-p", "width=6", "--input-shape", "1,3,10,10", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "user" and data["output_shape"] == [1, 2, 8, 8]
    assert data["params"] == (3 * 6 * 9 + 6) + (6 * 2 + 2)


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "attncli", "list", "simam", "--format", "json"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)[0]["name"] == "simam"
