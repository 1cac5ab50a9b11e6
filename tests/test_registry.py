import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from attncli import registry
from attncli.errors import DuplicateNameError, UnknownModelError

BLOCKS = ["cbam", "coordatt", "eca", "eca1d", "eca_ns", "gam", "psa", "se", "se_weight", "simam", "sk"]


def test_every_seed_block_is_registered_with_a_paper():
    names = [s.name for s in registry.list_specs(kind="block")]
    assert sorted(names) == sorted(BLOCKS)
    for spec in registry.list_specs(kind="block"):
        assert spec.paper.title
        assert spec.input_shape[0] == 1


def test_lookup_is_case_insensitive_and_resolves_aliases():
    assert registry.get("ECA").name == "eca"
    assert registry.get("  Se ").name == "se"
    assert registry.get("ca").name == "coordatt"
    assert registry.get("selective_kernel").name == "sk"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError, match="Did you mean eca"):
        registry.get("ecq")
    with pytest.raises(UnknownModelError) as info:
        registry.get("zzzzzz")
    assert "Did you mean" not in str(info.value)
    assert info.value.exit_code == 2


def test_wildcards_select_names_and_kinds():
    assert [s.name for s in registry.list_specs(["eca*"], kind="block")] == ["eca", "eca1d", "eca_ns"]
    assert [s.name for s in registry.list_specs(["s?"])] == ["se", "sk"]
    assert registry.list_specs(["nothing-like-this*"]) == []


def test_duplicate_name_is_an_error_at_registration():
    with pytest.raises(DuplicateNameError, match="'eca' is registered twice"):

        @registry.register("eca", input_shape=(1, 8, 4, 4), paper=("x",))
        def another_eca(channels=8):  # pragma: no cover - never built
            raise AssertionError

    with pytest.raises(DuplicateNameError, match="alias 'ca'"):

        @registry.register("brand_new_block", input_shape=(1, 8, 4, 4), paper=("x",), aliases=("ca",))
        def uses_taken_alias(channels=8):  # pragma: no cover - never built
            raise AssertionError


def test_every_target_imports_to_a_class_or_function():
    for spec in registry.list_specs():
        factory = spec.load_factory()
        assert callable(factory), spec.name
    assert {s.name for s in registry.list_specs()} >= set(BLOCKS)


def test_the_registry_module_needs_no_torch_and_reads_no_source():
    code = textwrap.dedent("""
        import sys
        from attncli import registry
        names = [s.name for s in registry.list_specs()]
        assert "eca_resnet50" in names and "sknet50" in names, names
        print(",".join(sorted(m for m in ("torch", "onnx", "fvcore", "numpy") if m in sys.modules)) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"
    assert "import ast" not in Path(registry.__file__).read_text()  # no reading of source files


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["list", "--format", "json"], ["list", "--kind", "backbone"]])
def test_help_and_list_do_not_import_torch(argv):
    code = textwrap.dedent(f"""
        import sys
        from typer.testing import CliRunner
        from attncli.cli.main import app
        result = CliRunner().invoke(app, {argv!r})
        assert result.exit_code == 0, result.output
        heavy = sorted(m for m in ("torch", "onnx", "onnxruntime", "fvcore", "numpy") if m in sys.modules)
        print(",".join(heavy) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"
