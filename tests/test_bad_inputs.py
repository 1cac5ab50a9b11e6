"""Bad inputs, as a new user types them: each is refused with one line on stderr and the promised
exit code, never a traceback, never a silent success.

The table says, for each command line, the exit code (2: a user mistake, or an exception raised in
the user's own code; 1: a failed check) and a fragment of the one line. The user's model files are
written below, so the line numbers a message must name are read off this file's own text. Most rows
run in-process through Typer's runner; those that need a real process (an exit at import, a plugin
loaded at start-up) run ``python -m attncli``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attncli.cli.main import app

# ----------------------------------------------------------------------------- the user's files

MODELS = textwrap.dedent(
    """\
    import sys
    import torch
    from torch import nn

    NOT_A_MODEL = 3

    def make_number():
        return 7

    class InitRaises(nn.Module):
        def __init__(self):
            super().__init__()
            raise ValueError("bad config")  # <init-raises>

    class InitExits(nn.Module):
        def __init__(self):
            super().__init__()
            sys.exit(3)  # <init-exits>

    class Needs(nn.Module):
        def __init__(self, channels):
            super().__init__()
        def forward(self, x):
            return x

    class FwdRaises(nn.Module):
        def forward(self, x):
            raise KeyError("oops")  # <forward-raises>

    class FwdExits(nn.Module):
        def forward(self, x):
            raise SystemExit(0)  # <forward-exits>

    class Conv(nn.Module):
        def __init__(self, channels: int = 8):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3)  # <conv-init>
        def forward(self, x):
            return self.conv(x)  # <conv-forward>

    class Scale(nn.Module):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = factor
        def forward(self, x):
            return x * self.factor

    class ReturnsNone(nn.Module):
        def forward(self, x):
            return None

    class ReturnsFloat(nn.Module):
        def forward(self, x):
            return 1.5

    class ReturnsEmpty(nn.Module):
        def forward(self, x):
            return ()

    class ReturnsTupleWithNone(nn.Module):
        def forward(self, x):
            return x, None

    class ReturnsTuple(nn.Module):
        def forward(self, x):
            return x, x.mean(dim=1)

    class ReturnsDict(nn.Module):
        def forward(self, x):
            return {"features": x, "pooled": x.mean(dim=(2, 3))}

    class TwoInputs(nn.Module):
        def forward(self, x, y):
            return x + y

    class NoInput(nn.Module):
        def forward(self):
            return torch.zeros(1)
    """
)
RAISES_AT_IMPORT = 'import torch\nraise RuntimeError("boom at import")  # <import-raises>\n'
EXITS_AT_IMPORT = "import sys\nsys.exit(0)  # <import-exits>\n"
SYNTAX_ERROR = "import torch\ndef broken(:\n    pass\n"
IMPORTS_MISSING = "import torch\nimport a_module_that_is_not_installed  # <import-missing>\n"
PACKAGE_MODULE_FINE = "from torch import nn\n\nclass Net(nn.Module):\n    def __init__(self, channels: int = 4):\n        super().__init__()\n    def forward(self, x):\n        return x\n"
PACKAGE_MODULE_BROKEN = "import torch\nraise ImportError('needs a GPU build')  # <pkg-raises>\n"
LONG_NAME = "a" * 300  # a file name over NAME_MAX (255 bytes)


def line_of(source: str, marker: str) -> int:
    """The line of ``source`` that carries ``# <marker>`` (1-based), as a traceback numbers it."""
    return next(i for i, line in enumerate(source.splitlines(), 1) if f"<{marker}>" in line)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("user")
    (d / "models.py").write_text(MODELS)
    (d / "raises_at_import.py").write_text(RAISES_AT_IMPORT)
    (d / "exits_at_import.py").write_text(EXITS_AT_IMPORT)
    (d / "syntax_error.py").write_text(SYNTAX_ERROR)
    (d / "imports_missing.py").write_text(IMPORTS_MISSING)
    (d / "notes.txt").write_text("not python")
    pkg = d / "site" / "userpkg_bad_inputs"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "fine.py").write_text(PACKAGE_MODULE_FINE)
    (pkg / "broken.py").write_text(PACKAGE_MODULE_BROKEN)
    # weights: empty, ints, a bare tensor, not a checkpoint, and a state_dict for 128 channels (se has 64)
    (d / "empty.pt").write_bytes(b"")
    torch.save({"fc1.weight": 1, "fc2.weight": 2}, d / "ints.pt")
    torch.save(torch.zeros(3), d / "tensor.pt")
    (d / "junk.pt").write_text("not a checkpoint")
    torch.save({"fc1.weight": torch.zeros(8, 128), "fc2.weight": torch.zeros(128, 8)}, d / "wide.pt")
    return d


@pytest.fixture
def on_path(files, monkeypatch):
    monkeypatch.syspath_prepend(str(files / "site"))


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    argv: tuple[str, ...]
    code: int
    fragment: str

    def args(self, d: Path) -> list[str]:
        return [a.format(d=d, long=LONG_NAME) for a in self.argv]


def row(line: str, code: int, fragment: str, *, args: tuple[str, ...] = ()) -> Row:
    """``line`` is split on spaces; ``args`` (for values with spaces or empty) are appended whole."""
    return Row((*line.split(), *args), code, fragment)


M = "{d}/models.py"
ROWS = {
    # -p values: syntax, types, bounds, the constructors' own checks
    "p-no-equals": row("info se -p reduction", 2, "-p: bad parameter 'reduction': write key=value"),
    "p-no-key": row("info se -p =3", 2, "write key=value"),
    "p-unknown": row("info se -p colour=red", 2, "se takes no parameter colour; it takes: channels, reduction, bias"),
    "p-string-for-int": row("info se -p channels=abc", 2, "se takes channels as a positive integer, not 'abc'"),
    "p-bool-for-int": row("info se -p channels=true", 2, "se takes channels as a positive integer, not True"),
    "p-negative-channels": row("info se -p channels=-5", 2, "se takes channels as a positive integer, not -5"),
    "p-string-reduction": row("info se -p reduction=abc", 2, "se takes reduction as an integer, not 'abc'"),
    "p-inf": row("info se -p channels=1e400", 2, "'channels=1e400': inf is not a finite number"),
    "p-nan": row("info se -p reduction=nan", 2, "'reduction=nan': nan is not a finite number"),
    "p-beyond-int64": row("info se -p channels=99999999999999999999999", 2, "is beyond a 64-bit integer"),
    "p-huge-channels": row("info se -p channels=99999999999999", 2, "--input-shape: bad input shape 1,99999999999999,56,56"),
    "p-huge-kernel": row("info eca -p k_size=99999999999", 2, "GiB of parameters, and this machine has"),
    "p-huge-classes": row("info resnet50 -p num_classes=99999999999999", 2, "GiB of parameters"),
    "p-reduction-0": row("info se -p reduction=0", 2, "reduction must be at least 1, not 0"),
    "p-attn-reduction-0": row("info resnet50 --attn se -p attn.reduction=0", 2, "reduction must be at least 1, not 0"),
    "p-attn-string": row("info resnet50 --attn se -p attn.reduction=abc", 2, "se takes attn.reduction as an integer, not 'abc'"),
    "p-attn-unknown": row("info resnet50 --attn se -p attn.colour=1", 2, "se takes no parameter attn.colour"),
    "p-even-kernel": row("info eca -p k_size=4", 2, "k_size must be a positive odd number, not 4"),
    "p-tuple-for-int": row("info eca -p k_size=3,5", 2, "eca takes k_size as an integer or none, not (3, 5)"),
    "p-per-stage-count": row("info eca_resnet50 -p k_size=3,5", 2, "give one, or one per stage (4)"),
    "p-fixed-arg": row("info resnet50 -p depth=101", 2, "resnet50 fixes depth=50; pick the model with the depth you want"),
    "p-zero-classes": row("info resnet50 -p num_classes=0", 2, "num_classes must be at least 1, not 0"),
    "p-old-and-new-name": row("info gam -p rate=4 -p reduction=4", 2, "rate is the old name of reduction"),
    # --attn and --attn-position
    "attn-args-without-attn": row("info resnet50 -p attn.reduction=4", 2, "--attn: attn.* parameters and attn_position need an attention block"),
    "position-without-attn": row("info resnet50 --attn-position after_3x3", 2, "need an attention block"),
    "position-bad": row("info resnet50 --attn se --attn-position somewhere", 2, "'somewhere' is not one of"),
    "attn-unknown": row("info resnet50 --attn nosuch", 2, "unknown model 'nosuch'"),
    "attn-backbone": row("info resnet50 --attn resnet18", 2, "--attn: the attention block must be a block, and resnet18 is a backbone"),
    "attn-on-a-block": row("info se --attn eca", 2, "--attn: an attention block goes into a backbone that takes one"),
    "attn-on-a-full-row": row("info eca_resnet50 --attn se", 2, "eca_resnet50 already holds eca"),
    "attn-empty": row("info resnet50 --attn", 2, "--attn: the attention block is empty", args=("",)),
    "attn-no-place": row("info mobilenetv2 --attn psa", 2, "--attn: could not build mobilenetv2"),
    "attn-wrong-rank": row("info cnn1d --attn eca", 2, "rank-4"),
    "attn-returns-weights": row("info resnet50 --attn se_weight", 2, "shaped like its input"),
    # refused by the command-line parser itself: one line too, naming where to look
    "option-unknown": row("check --opset 11 --bogus", 2, "No such option: --bogus"),
    "option-value-missing": row("check --jobs", 2, "Option '--jobs' requires an argument; see attncli check -h."),
    "option-not-an-int": row("check --jobs abc", 2, "Invalid value for '--jobs' / '-j'"),
    "argument-missing": row("profile", 2, "Missing argument 'model'; see attncli profile -h."),
    "command-unknown": row("profil se", 2, "No such command 'profil'"),
    # model names and kinds
    "model-typo": row("info ecq", 2, "unknown model 'ecq'. Did you mean eca"),
    "model-empty": row("info", 2, "the model is empty", args=("",)),
    "kind-bad": row("list --kind blocks", 2, "'blocks' is not one of"),
    "check-kind-bad": row("check --kind blocks", 2, "'blocks' is not one of"),
    # input shapes
    "shape-letters": row("info se -s 1,64,x", 2, "--input-shape: bad input shape '1,64,x': give positive integers"),
    "shape-zero": row("info se -s 1,0,3", 2, "bad input shape '1,0,3'"),
    "shape-negative": row("info se -s 1,-2", 2, "bad input shape '1,-2'"),
    "shape-empty": row("info se -s", 2, "bad input shape ''", args=("",)),
    "shape-beyond-int64": row("info se -s 99999999999999999999999,1", 2, "an axis may be at most 2,147,483,647"),
    "shape-terabytes": row("info se -s 100000,64,1000,1000", 2, "GiB for its float32 input alone"),
    "shape-rank": row("info se -s 1,64,7", 2, "--input-shape: se rejects an input of shape 1,64,7"),
    "shape-spaces-are-axes": row("info se -s", 2, "se rejects an input of shape 1,64,7", args=("1 64 7",)),
    "shape-user-model-missing": row(f"info {M}:Conv", 2, "--input-shape: {d}/models.py:Conv is your own module: give its input shape"),
    # --seed and --depth
    "seed-negative": row("info se --seed -1", 2, "--seed: seed must be an integer from 0 to 9223372036854775807, not -1"),
    "seed-beyond-int64": row("info se --seed 99999999999999999999999", 2, "seed must be an integer from 0 to"),
    "seed-not-a-number": row("info se --seed abc", 2, "--seed"),
    "depth-negative": row("info se --depth -1", 2, "--depth: depth must be 0 or more, not -1"),
    "profile-depth-negative": row("profile se --depth -1 --no-latency", 2, "--depth: depth must be 0 or more"),
    # --weights
    "weights-empty-path": row("info se --weights", 2, "--weights: the weights path is empty", args=("",)),
    "weights-missing": row("info se --weights {d}/absent.pt", 2, "no such weights file"),
    "weights-folder": row("info se --weights {d}", 2, "is a folder, not a weights file"),
    "weights-empty-file": row("info se --weights {d}/empty.pt", 2, "empty.pt is empty (0 bytes), not a saved state_dict"),
    "weights-ints": row("info se --weights {d}/ints.pt", 2, "is not a state_dict of tensors: fc1.weight, fc2.weight hold int values"),
    "weights-a-tensor": row("info se --weights {d}/tensor.pt", 2, "holds a Tensor, not a state_dict"),
    "weights-junk": row("info se --weights {d}/junk.pt", 2, "could not read"),
    "weights-wrong-shape": row("info se --weights {d}/wide.pt", 2, "shape mismatch: fc1.weight (8, 128) vs (4, 64)"),
    # the user's file
    "file-missing": row("info {d}/nothing.py:Net -s 1,3,8,8", 2, "no such file: {d}/nothing.py"),
    "file-is-a-folder": row("info {d}:Net -s 1,3,8,8", 2, "is a folder; give a Python file"),
    "file-not-python": row("info {d}/notes.txt:Net -s 1,3,8,8", 2, "notes.txt is not a .py file"),
    "file-name-too-long": row("info {d}/{long}.py:Net -s 1,3,8,8", 2, "a file or folder name may be at most 255 bytes, and one here has 303"),
    "file-no-name": row(f"info {M}: -s 1,3,8,8", 2, "bad model"),
    "file-no-path": row("info :Net -s 1,3,8,8", 2, "bad model ':Net'"),
    "file-no-such-class": row(f"info {M}:Nope -s 1,3,8,8", 2, "has no 'Nope'; it defines: Conv"),
    "file-not-callable": row(f"info {M}:NOT_A_MODEL -s 1,3,8,8", 2, "is not a class or function returning an nn.Module"),
    "file-not-a-module": row(f"info {M}:make_number -s 1,3,8,8", 2, "returned int, not a torch.nn.Module"),
    "file-unknown-param": row(f"info {M}:Conv -s 1,8,8,8 -p width=3", 2, "takes no parameter width; it takes: channels"),
    "file-string-param": row(f"info {M}:Conv -s 1,8,8,8 -p channels=abc", 2, "takes channels as an integer, not 'abc'"),
    "file-string-for-a-number-default": row(f"info {M}:Scale -s 1,8,8,8 -p factor=big", 2, "takes factor as a number, not 'big'"),
    "file-required-param": row(f"info {M}:Needs -s 1,8,8,8", 2, "needs a value for channels"),
    "file-huge-param": row(f"info {M}:Conv -s 1,8,8,8 -p channels=99999999999999", 2, "models.py:{conv-init}"),
    "file-raises-at-import": row(
        "info {d}/raises_at_import.py:Net -s 1,3,8,8", 2, "raises_at_import.py:{import-raises}: RuntimeError: boom at import"
    ),
    "file-exits-at-import": row("info {d}/exits_at_import.py:Net -s 1,3,8,8", 2, "exits_at_import.py:{import-exits}: SystemExit(0)"),
    "file-syntax-error": row("info {d}/syntax_error.py:Net -s 1,3,8,8", 2, "syntax_error.py:2: SyntaxError"),
    "file-imports-missing": row(
        "info {d}/imports_missing.py:Net -s 1,3,8,8", 2,
        "imports_missing.py:{import-missing}: ModuleNotFoundError: No module named 'a_module_that_is_not_installed'",
    ),
    "init-raises": row(f"info {M}:InitRaises -s 1,3,8,8", 2, "failed at {d}/models.py:{init-raises}: ValueError: bad config"),
    "init-exits": row(f"info {M}:InitExits -s 1,3,8,8", 2, "models.py:{init-exits}: SystemExit(3)"),
    "forward-raises": row(f"info {M}:FwdRaises -s 1,3,8,8", 2, "forward failed at {d}/models.py:{forward-raises}: KeyError: 'oops'"),
    "forward-exits": row(f"info {M}:FwdExits -s 1,3,8,8", 2, "models.py:{forward-exits}: SystemExit(0)"),
    "forward-shape-at-users-line": row(
        f"info {M}:Conv -s 1,3,8,8", 2,
        "--input-shape: {d}/models.py:Conv rejects an input of shape 1,3,8,8: at {d}/models.py:{conv-forward}, RuntimeError: Given groups=1",
    ),
    "forward-two-inputs": row(f"info {M}:TwoInputs -s 1,3,8,8", 2, "forward takes 2 inputs (x, y); attncli feeds one tensor"),
    "forward-no-input": row(f"info {M}:NoInput -s 1,3,8,8", 2, "forward takes no input"),
    "returns-none": row(f"info {M}:ReturnsNone -s 1,3,8,8", 2, "forward returns None; attncli needs a tensor"),
    "returns-float": row(f"info {M}:ReturnsFloat -s 1,3,8,8", 2, "forward returns a float; attncli needs a tensor"),
    "returns-empty": row(f"info {M}:ReturnsEmpty -s 1,3,8,8", 2, "forward returns an empty tuple"),
    "returns-tuple-with-none": row(f"info {M}:ReturnsTupleWithNone -s 1,3,8,8", 2, "forward returns a tuple holding None at output[1]"),
    "pkg-not-found": row("info no_such_pkg_xyz.mod:Net -s 1,3,8,8", 2, "could not import module 'no_such_pkg_xyz.mod'"),
    "pkg-raises-at-import": row(
        "info userpkg_bad_inputs.broken:Net -s 1,3,8,8", 2, "broken.py:{pkg-raises}: ImportError: needs a GPU build"
    ),
    "pkg-string-param": row("info userpkg_bad_inputs.fine:Net -s 1,4,2,2 -p channels=abc", 2, "takes channels as an integer, not 'abc'"),
    # profile and bench take the same model options, and their own
    "profile-forward-raises": row(f"profile {M}:FwdRaises -s 1,3,8,8 --no-latency", 2, "models.py:{forward-raises}: KeyError"),
    "profile-returns-none": row(f"profile {M}:ReturnsNone -s 1,3,8,8 --no-latency", 2, "forward returns None"),
    "profile-iters-0": row("profile se --device cpu --iters 0", 2, "--iters"),
    "bench-iters-0": row("bench se --iters 0", 2, "--iters: iters must be 1 or more, not 0"),
    "bench-threads-0": row("bench se --threads 0", 2, "--threads: threads must be a positive integer, not 0"),
    "bench-batch-0": row("bench se --batch-size 0", 2, "--batch-size: batch sizes must be positive"),
    "bench-forward-raises": row(f"bench {M}:FwdRaises -s 1,3,8,8", 2, "models.py:{forward-raises}: KeyError"),
    # report files
    "output-folder": row("info se -o {d}", 2, "-o: cannot write {d}: it is a folder"),
    "output-no-folder": row("info se -o {d}/nowhere/x.json", 2, "folder {d}/nowhere does not exist"),
    "output-name-too-long": row("list -o {d}/{long}.json", 2, "at most 255 bytes, and one here has 305"),
    "output-proc": row("list -o /proc/attncli-report.json", 2, "no file can be created in /proc"),
    # export, verify and check share the model options (options.py) and check them before any work
    "export-seed-negative": row("export se -o {d}/se.onnx --seed -1", 2, "--seed: seed must be an integer"),
    "export-string-param": row("export se -o {d}/se.onnx -p channels=abc", 2, "se takes channels as a positive integer"),
    "export-weights-empty": row("export se -o {d}/se.onnx --weights", 2, "--weights: the weights path is empty", args=("",)),
    "verify-seed-beyond-int64": row("verify se {d}/se.onnx --seed 99999999999999999999999", 2, "seed must be an integer"),
    "verify-two-inputs": row(f"verify {M}:TwoInputs {{d}}/x.onnx -s 1,3,8,8", 2, "forward takes 2 inputs"),
}


def expected_fragment(r: Row, d: Path) -> str:
    text = r.fragment.replace("{d}", str(d))
    for source in (MODELS, RAISES_AT_IMPORT, EXITS_AT_IMPORT, IMPORTS_MISSING, PACKAGE_MODULE_BROKEN):
        for line in source.splitlines():
            if "# <" in line:
                marker = line.split("# <")[1].rstrip(">")
                text = text.replace("{" + marker + "}", str(line_of(source, marker)))
    return text


def test_the_table_is_big_enough():
    assert len(ROWS) >= 60


@pytest.mark.parametrize("name", list(ROWS))
def test_a_bad_input_is_one_line_and_the_promised_exit_code(name, files, on_path, monkeypatch, tmp_path):
    r = ROWS[name]
    monkeypatch.chdir(tmp_path)  # nothing a row writes lands in the repository
    result = CliRunner().invoke(app, r.args(files))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    err = result.stderr
    assert result.exit_code == r.code, err
    assert "Traceback" not in err + result.stdout
    assert expected_fragment(r, files) in " ".join(err.split()), err
    assert "this is a bug in attncli" not in err
    assert err.strip().count("\n") == 0, err
    assert err.startswith("error: ")
    assert result.stdout == ""


# ----------------------------------------------------------------------------- a real process


def attncli(*args: str, plugins: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ATTNCLI_PLUGINS"}
    if plugins is not None:
        env["ATTNCLI_PLUGINS"] = plugins
    return subprocess.run([sys.executable, "-m", "attncli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def assert_one_line(out: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    assert out.returncode == code, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and out.stderr.strip().count("\n") == 0, out.stderr
    assert fragment in out.stderr, out.stderr


def test_a_file_calling_sys_exit_at_import_does_not_end_attncli_quietly(files):
    out = attncli("info", f"{files}/exits_at_import.py:Net", "-s", "1,3,8,8")
    assert_one_line(out, 2, f"exits_at_import.py:{line_of(EXITS_AT_IMPORT, 'import-exits')}: SystemExit(0)")
    assert out.stdout == ""


def test_system_exit_in_forward_is_exit_2_not_0(files):
    out = attncli("info", f"{files}/models.py:FwdExits", "-s", "1,3,8,8")
    assert_one_line(out, 2, f"models.py:{line_of(MODELS, 'forward-exits')}: SystemExit(0)")


@pytest.mark.parametrize(
    "content, fragment",
    [("def broken(:\n", "SyntaxError"), (None, "No module named 'no_such_plugin_module_anywhere'")],
    ids=["syntax-error", "missing-module"],
)
def test_a_broken_plugin_is_one_line(tmp_path, content, fragment):
    if content is None:
        plugins = "no_such_plugin_module_anywhere"
    else:
        (tmp_path / "plugin.py").write_text(content)
        plugins = f"{tmp_path / 'plugin.py'},"
    assert_one_line(attncli("list", plugins=plugins), 2, fragment)


def test_a_trailing_comma_alone_in_attncli_plugins_is_harmless():
    out = attncli("list", "simam", plugins=",")
    assert out.returncode == 0 and "simam" in out.stdout, out.stderr


# ----------------------------------------------------------------------------- what is not a bad input


def test_whitespace_separated_axes_are_axes(cli):
    import json

    result = cli("info", "se", "-s", "1 64 8 8", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["input_shape"] == [1, 64, 8, 8]


@pytest.mark.parametrize(
    "name, shapes",
    [
        ("ReturnsTuple", {"output[0]": [2, 3, 4, 4], "output[1]": [2, 4, 4]}),
        ("ReturnsDict", {"output['features']": [2, 3, 4, 4], "output['pooled']": [2, 3]}),
    ],
)
def test_info_shows_every_output_of_a_tuple_or_dict(cli, files, name, shapes):
    import json

    result = cli("info", f"{files}/models.py:{name}", "-s", "2,3,4,4", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["output_shape"] is None and data["output_shapes"] == shapes
    table = cli("info", f"{files}/models.py:{name}", "-s", "2,3,4,4")
    assert all(path in table.stdout for path in shapes)


def test_the_example_input_is_left_as_it_was_by_an_in_place_forward(tmp_path):
    from attncli import api
    from attncli.modelspec import run_example

    (tmp_path / "inplace.py").write_text(
        "from torch import nn\n\nclass Doubles(nn.Module):\n    def forward(self, x):\n        return x.mul_(2)\n"
    )
    built = api.build(f"{tmp_path}/inplace.py:Doubles", input_shape="1,2,3,3")
    before = built.example.clone()
    assert torch.equal(run_example(built), 2 * before)
    assert torch.equal(built.example, before)


# ----------------------------------------------------------------------------- the rest of the policy


def test_debug_shows_the_traceback_of_the_users_error(files):
    out = attncli("info", f"{files}/models.py:FwdRaises", "-s", "1,3,8,8", "--debug")
    assert out.returncode != 0
    assert "Traceback" in out.stderr and "KeyError: 'oops'" in out.stderr and "models.py" in out.stderr


def test_a_bug_in_attncli_shows_its_traceback_and_asks_for_a_report(monkeypatch):
    import attncli.api

    # A bug of attncli's own making: the CLI calls a function that does not take its arguments (a
    # function defined here would be a file outside attncli, which the policy counts as the user's).
    monkeypatch.setattr(attncli.api, "describe", dict)
    result = CliRunner().invoke(app, ["info", "se"])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "cmd_info.py" in result.stderr and "TypeError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: this is a bug in attncli")


def test_ctrl_c_is_exit_130(monkeypatch):
    import attncli.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(attncli.api, "describe", interrupted)
    result = CliRunner().invoke(app, ["info", "se"])
    assert result.exit_code == 130 and "interrupted" in result.stderr
