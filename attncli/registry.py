"""The registry of everything attncli can build, importable without torch.

Built-in entries are declared with ``@register(...)`` next to their code in ``attncli/blocks`` and
``attncli/backbones``. Those files import torch, so listing cannot import them: instead the
decorators are read statically (``ast``) from the source files, which takes milliseconds. When a
module is later imported to build a model, its decorators run for real and must agree with what
was read; a second, different registration of a name is an error at import.

Third-party and test code registers the same way at run time; modules named in the environment
variable ``ATTNCLI_PLUGINS`` (comma-separated module names or ``.py`` paths) are imported when the
registry is first used, so worker processes see the same entries.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from attncli.errors import DuplicateNameError, UnknownModelError, UsageError

KINDS = ("block", "backbone")
_PACKAGE_DIR = Path(__file__).resolve().parent
_BUILTIN_PACKAGES = ("blocks", "backbones")


@dataclass(frozen=True)
class Paper:
    title: str
    arxiv: str | None = None

    def __str__(self) -> str:
        return f"{self.title} (arXiv {self.arxiv})" if self.arxiv else self.title


@dataclass(frozen=True)
class Reference:
    """Figures a paper or official repository published for a model.

    ``units`` is ``"binary"`` when the source divides by 2^20 (params) and 2^30 (MACs), as ECA-Net's
    tables (thop) do, or ``"decimal"`` for 10^6 / 10^9. ``macs_g`` counts multiply-accumulates
    ("multiply-adds"), which is what these papers call FLOPs.
    """

    source: str
    units: str = "decimal"
    params_m: float | None = None
    macs_g: float | None = None
    exact_params: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "units": self.units,
            "params_m": self.params_m,
            "macs_g": self.macs_g,
            "exact_params": self.exact_params,
        }


@dataclass(frozen=True)
class Spec:
    """One buildable thing: a name, how to build it, and what to feed it."""

    name: str
    kind: str
    target: str  # "package.module:qualname" of the factory (a class or a function)
    input_shape: tuple[int, ...]
    paper: Paper
    defaults: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    reference: Reference | None = None
    baseline: str | None = None  # registry name of the plain counterpart, for overhead figures
    takes_attn: bool = False  # a backbone that accepts ``attn=<block name>``
    summary: str = ""

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]

    def load_factory(self) -> Callable[..., Any]:
        """Import the module that defines the factory (this imports torch) and return it."""
        module_name, qualname = self.target.split(":", 1)
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "paper": {"title": self.paper.title, "arxiv": self.paper.arxiv},
            "aliases": list(self.aliases),
            "defaults": {k: list(v) if isinstance(v, tuple) else v for k, v in self.defaults.items()},
            "reference": self.reference.as_dict() if self.reference else None,
            "baseline": self.baseline,
            "takes_attn": self.takes_attn,
            "summary": self.summary,
        }


def _make_spec(name: str, target: str, kwargs: dict[str, Any], summary: str = "") -> Spec:
    kind = kwargs.get("kind", "block")
    if kind not in KINDS:
        raise ValueError(f"{target}: kind must be one of {KINDS}, not {kind!r}")
    paper = kwargs.get("paper")
    if not (isinstance(paper, tuple) and len(paper) in (1, 2)):
        raise ValueError(f"{target}: paper must be a (title, arxiv_id) tuple")
    ref = kwargs.get("reference")
    return Spec(
        name=name.lower(),
        kind=kind,
        target=target,
        input_shape=tuple(int(d) for d in kwargs["input_shape"]),
        paper=Paper(*paper),
        defaults=dict(kwargs.get("defaults") or {}),
        aliases=tuple(a.lower() for a in kwargs.get("aliases", ())),
        reference=Reference(**ref) if ref else None,
        baseline=kwargs.get("baseline"),
        takes_attn=bool(kwargs.get("takes_attn", False)),
        summary=summary,
    )


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, Spec] = {}
        self._aliases: dict[str, str] = {}

    def add(self, spec: Spec) -> None:
        existing = self._specs.get(spec.name) or self._specs.get(self._aliases.get(spec.name, ""))
        if existing is not None:
            if existing.target == spec.target:
                return  # the same code registering again (static read, then real import)
            raise DuplicateNameError(
                f"model name {spec.name!r} is registered twice: {existing.target} and {spec.target}"
            )
        for alias in spec.aliases:
            if alias in self._specs or alias in self._aliases:
                other = self._specs.get(alias) or self._specs[self._aliases[alias]]
                raise DuplicateNameError(
                    f"alias {alias!r} of {spec.target} is already taken by {other.target}"
                )
        self._specs[spec.name] = spec
        for alias in spec.aliases:
            self._aliases[alias] = spec.name

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> Spec:
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key in self._specs:
            return self._specs[key]
        choices = list(self._specs) + list(self._aliases)
        close = difflib.get_close_matches(key, choices, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Run `attncli list` to see every name,"
            " or give a file: path/to/file.py:ClassName."
        )

    def __contains__(self, name: str) -> bool:
        key = name.strip().lower()
        return key in self._specs or key in self._aliases

    def select(self, patterns: Iterable[str] = (), kind: str | None = None) -> list[Spec]:
        """Entries whose name or alias matches any shell wildcard (all when none), sorted by name."""
        if kind is not None and kind not in KINDS:
            raise UsageError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}.")
        pats = [p.lower() for p in patterns] or ["*"]
        out = []
        for name in self.names():
            spec = self._specs[name]
            if kind and spec.kind != kind:
                continue
            if any(fnmatch.fnmatchcase(n, p) for p in pats for n in (name, *spec.aliases)):
                out.append(spec)
        return out


_REGISTRY = Registry()
_loaded = False


def _literal(node: ast.AST, where: str, constants: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise ValueError(f"{where}: @register arguments must be literals ({exc})") from None


def _scan_file(path: Path, module: str) -> list[Spec]:
    """Read the ``@register(...)`` decorators of one source file without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    specs = []
    constants: dict[str, Any] = {}  # module-level NAME = <literal>, usable in @register(...)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        doc = (ast.get_docstring(node) or "").strip().splitlines()
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "register"):
                continue
            where = f"{path.name}:{node.lineno}"
            name = _literal(deco.args[0], where, constants)
            kwargs = {kw.arg: _literal(kw.value, where, constants) for kw in deco.keywords}
            specs.append(_make_spec(name, f"{module}:{node.name}", kwargs, doc[0] if doc else ""))
    return specs


def _load_builtins() -> None:
    for package in _BUILTIN_PACKAGES:
        for path in sorted((_PACKAGE_DIR / package).glob("*.py")):
            if path.name.startswith("_"):
                continue
            for spec in _scan_file(path, f"attncli.{package}.{path.stem}"):
                _REGISTRY.add(spec)


def import_plugin(ref: str) -> None:
    """Import a module (dotted name or ``.py`` path) so that its ``@register`` calls run."""
    if ref.endswith(".py"):
        path = Path(ref).resolve()
        if not path.is_file():
            raise UsageError(f"plugin file {ref} does not exist.")
        mod_name = f"attncli_plugin_{path.stem}"
        if mod_name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        importlib.import_module(ref)


def registry() -> Registry:
    """The process-wide registry, built-ins read on first use."""
    global _loaded
    if not _loaded:
        _loaded = True
        _load_builtins()
        for ref in filter(None, os.environ.get("ATTNCLI_PLUGINS", "").split(",")):
            import_plugin(ref.strip())
    return _REGISTRY


def register(
    name: str,
    *,
    kind: str = "block",
    input_shape: tuple[int, ...],
    paper: tuple[str, ...],
    defaults: dict[str, Any] | None = None,
    aliases: tuple[str, ...] = (),
    reference: dict[str, Any] | None = None,
    baseline: str | None = None,
    takes_attn: bool = False,
) -> Callable[[Any], Any]:
    """Register a class or function returning an ``nn.Module``.

    Built-in modules must pass literals only, so that ``list`` can read them without importing.
    """

    def decorate(obj: Any) -> Any:
        doc = (obj.__doc__ or "").strip().splitlines()
        spec = _make_spec(
            name,
            f"{obj.__module__}:{obj.__qualname__}",
            dict(
                kind=kind,
                input_shape=input_shape,
                paper=paper,
                defaults=defaults,
                aliases=aliases,
                reference=reference,
                baseline=baseline,
                takes_attn=takes_attn,
            ),
            doc[0] if doc else "",
        )
        registry().add(spec)
        return obj

    return decorate


def get(name: str) -> Spec:
    return registry().get(name)


def list_specs(patterns: Iterable[str] = (), kind: str | None = None) -> list[Spec]:
    return registry().select(patterns, kind)
