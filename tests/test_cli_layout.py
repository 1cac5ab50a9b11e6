"""The shape of the CLI: imports run one way, and a shared option has one name, one default and one
set of choices on every command that takes it."""

import ast
from pathlib import Path

import pytest
import typer

import attncli
from attncli.cli.main import app

PACKAGE = Path(attncli.__file__).parent



def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def import_graph() -> dict[str, set[str]]:
    """Every attncli module -> the attncli modules it imports, at the top or inside a function
    (a lazy import hides a cycle; it does not remove it). ``from pkg import name`` is an import of
    ``pkg.name`` when that is a module, else of ``pkg`` itself."""
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in modules:
                        targets.add(sub)
                    elif base in modules:
                        targets.add(base)
        targets.discard(name)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per module found on one."""
    found, done = [], set()
    for start in sorted(graph):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append(path + [start])
                    stack.clear()
                    break
                if nxt not in seen and nxt not in done:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        done.add(start)
    return found


def test_the_cycle_finder_finds_a_cycle_and_passes_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "attncli.cli.app" in graph["attncli.cli.cmd_info"]
    assert "attncli.profiling" in graph["attncli.api"]  # imported inside api.profile


def test_no_module_imports_a_module_that_imports_it_back():
    assert cycles(import_graph()) == []


def test_the_cli_is_imported_by_nothing_outside_it():
    graph = import_graph()
    users = {m for m, targets in graph.items() if any(t.startswith("attncli.cli") for t in targets)}
    assert {m for m in users if not m.startswith("attncli.cli")} == {"attncli.__main__"}
    assert graph["attncli.cli.main"] >= {"attncli.cli.app"}
    assert not any("attncli.cli.main" in graph[m] for m in graph if m != "attncli.__main__")


def test_the_library_imports_neither_typer_nor_rich():
    for name, path in module_names().items():
        if name.startswith("attncli.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            roots = (
                [a.name.split(".")[0] for a in node.names] if isinstance(node, ast.Import)
                else [(node.module or "").split(".")[0]] if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            assert not {"typer", "rich", "click"} & set(roots), f"{name} imports {roots}"


def test_no_cli_module_imports_click():
    for path in (PACKAGE / "cli").glob("*.py"):
        assert "import click" not in path.read_text() and "from click" not in path.read_text(), path


# ----------------------------------------------------------------------------- shared options


def params_of(command: str) -> dict:
    """The parsed options of one command, by their long flag."""
    group = typer.main.get_command(app)
    cmd = group.commands[command]
    return {opt: p for p in cmd.params for opt in p.opts if opt.startswith("--")}


def choices_of(param) -> list[str]:
    """The choices of an Enum option (Typer 0.29 keeps the annotation; Click-based Typer a Choice type)."""
    from enum import Enum

    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [member.value for member in annotation]
    return list(getattr(getattr(param, "type", None), "choices", None) or [])


def default_of(param):
    default = param.default
    return getattr(default, "value", default)


@pytest.mark.parametrize(
    "flag, commands",
    [
        ("--device", ["profile", "bench", "verify", "export", "compare"]),
        ("--warmup", ["profile", "bench"]),
        ("--iters", ["profile", "bench"]),
        ("--threads", ["profile", "bench", "compare"]),
        ("--batch-size", ["profile", "bench"]),
        ("--opset", ["export", "bench"]),
        ("--atol", ["verify", "export", "check"]),
        ("--rtol", ["verify", "export", "check"]),
        ("--attn-position", ["info", "profile", "bench", "export", "verify", "compare"]),
        ("--format", ["info", "profile", "bench", "export", "verify", "providers"]),  # list: see below
        ("--output", ["list", "info", "profile", "bench", "verify", "check", "compare", "providers"]),
        ("--debug", ["list", "info", "profile", "bench", "export", "verify", "check", "compare", "providers"]),
        ("--provider", ["verify", "bench", "check", "export"]),
        ("--quantize", ["export", "check"]),
    ],
)
def test_a_shared_option_is_the_same_everywhere(flag, commands):
    params = [params_of(c)[flag] for c in commands]
    first = params[0]
    for param in params[1:]:
        assert default_of(param) == default_of(first)
        assert choices_of(param) == choices_of(first)
        assert param.help == first.help
        assert sorted(param.opts) == sorted(first.opts)


def test_list_format_is_the_shared_one_plus_plain_for_scripts():
    shared, listed = params_of("info")["--format"], params_of("list")["--format"]
    assert choices_of(listed) == choices_of(shared) + ["plain"]
    assert default_of(listed) == default_of(shared) and sorted(listed.opts) == sorted(shared.opts)
    assert listed.help.startswith(shared.help.rstrip("."))


def test_shared_defaults_come_from_the_library():
    from attncli.onnx_export import DEFAULT_DYNAMIC
    from attncli.blocks import POSITIONS
    from attncli.onnx_export import DEFAULT_OPSET, DYNAMIC_CHOICES

    profile, export = params_of("profile"), params_of("export")
    assert default_of(profile["--device"]) == "auto" and choices_of(profile["--device"]) == ["auto", "cpu", "cuda"]
    assert default_of(profile["--warmup"]) is None and default_of(profile["--iters"]) is None  # per device, in timing
    assert default_of(export["--opset"]) == DEFAULT_OPSET
    assert default_of(export["--dynamic"]) == DEFAULT_DYNAMIC == "all"
    assert choices_of(export["--dynamic"]) == list(DYNAMIC_CHOICES)
    # check's --dynamic has no default of its own: the project configuration's, else export's
    check = params_of("check")
    assert default_of(check["--dynamic"]) is None and choices_of(check["--dynamic"]) == list(DYNAMIC_CHOICES)
    assert choices_of(profile["--attn-position"]) == list(POSITIONS)


def test_every_report_command_writes_to_a_file_and_export_keeps_o_for_the_onnx_file():
    for command in ("list", "info", "profile", "bench", "verify", "check"):
        assert "-o" in params_of(command)["--output"].opts, command
    export = params_of("export")
    assert "-o" in export["--output"].opts and "--report" in export
    assert export["--output"].metavar == "PATH" and export["--report"].metavar == "FILE"


def test_provider_is_a_visible_option_beside_device_where_onnxruntime_runs():
    # --provider was verify's hidden alias of --device; it now names any execution provider
    for command in ("verify", "bench", "check", "export"):
        provider = params_of(command)["--provider"]
        assert not provider.hidden and default_of(provider) is None, command
