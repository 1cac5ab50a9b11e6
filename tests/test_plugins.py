"""Third-party blocks through the ``attncli.plugins`` entry-point group, and ATTNCLI_PLUGINS.

The plugin packages under tests/plugins/ are installed for real with pip (into a folder of their own,
put on PYTHONPATH of a child process, so the test venv itself is not changed), and attncli runs as a
separate process, as a user would run it.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGINS = Path(__file__).parent / "plugins"
RESNET18 = 11_689_512  # torchvision's published count


def pip_install(package: str, tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp(f"{package}-src") / package
    shutil.copytree(PLUGINS / package, source)  # build outside the repository: no build/ or egg-info left in it
    target = tmp_path_factory.mktemp(f"{package}-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )
    assert list(target.glob("*.dist-info/entry_points.txt")), "pip wrote no entry points"
    return target


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    return pip_install("demo", tmp_path_factory)


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    return pip_install("broken", tmp_path_factory)


def attncli(*args: str, site: Path | None = None, plugins: str | None = None, code: str | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATTNCLI_PLUGINS")}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    if plugins is not None:
        env["ATTNCLI_PLUGINS"] = plugins
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "attncli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_an_installed_plugin_appears_in_list_without_importing_torch(demo_site):
    code = textwrap.dedent("""
        import sys
        from typer.testing import CliRunner
        from attncli.cli.main import app
        result = CliRunner().invoke(app, ["list", "--format", "json"])
        assert result.exit_code == 0, result.output
        assert '"spatial_gate_lite"' in result.stdout, result.stdout
        print("torch" in sys.modules)
    """)
    out = attncli(site=demo_site, code=code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_an_installed_plugin_block_builds_alone_and_in_a_backbone(demo_site):
    alone = attncli("info", "sgl", "--format", "json", site=demo_site)
    assert alone.returncode == 0, alone.stderr
    assert '"params": 18' in alone.stdout  # a 3x3 conv from 2 maps to 1, no bias: 2 * 9
    inside = attncli("info", "resnet18", "--attn", "spatial_gate_lite", "--depth", "0", "--format", "json", site=demo_site)
    assert inside.returncode == 0, inside.stderr
    assert f'"params": {RESNET18 + 8 * 18}' in inside.stdout  # one block in each of the 8 basic blocks


def test_a_plugin_that_fails_to_import_is_one_line_and_exit_2(broken_site):
    out = attncli("list", site=broken_site)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "'broken'" in lines[0] and "a_library_that_is_not_installed" in lines[0]
    assert "Traceback" not in out.stderr


def test_attncli_plugins_still_loads_a_file(tmp_path):
    plugin = tmp_path / "myblocks.py"
    plugin.write_text(textwrap.dedent("""
        from torch import nn
        from attncli.registry import register

        @register("double_it", input_shape=(1, 4, 8, 8), paper=("none",))
        class DoubleIt(nn.Module):
            '''x * 2, no parameters.'''
            def __init__(self, channels=4):
                super().__init__()
            def forward(self, x):
                return x * 2
    """))
    out = attncli("list", "double*", plugins=f"{plugin},")  # a trailing comma is harmless
    assert out.returncode == 0, out.stderr
    assert "double_it" in out.stdout


@pytest.mark.parametrize(
    "content, plugins, expected",
    [
        ("def broken(:\n", "{path}", "SyntaxError"),
        ("", "no_such_module_anywhere", "No module named 'no_such_module_anywhere'"),
        ("import sys\nsys.exit(0)\n", "{path}", "SystemExit"),
    ],
    ids=["syntax-error", "missing-module", "exits-at-import"],
)
def test_a_broken_attncli_plugins_entry_is_one_line_and_exit_2(tmp_path, content, plugins, expected):
    path = tmp_path / "plugin.py"
    path.write_text(content)
    out = attncli("list", plugins=plugins.format(path=path))
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], out.stderr
    assert "Traceback" not in out.stderr
