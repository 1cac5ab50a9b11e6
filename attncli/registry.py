"""The registry of everything attncli can build: lookup with wildcards, aliases, suggestions, plugins.

Importable without torch. The built-in entries are the rows of :mod:`attncli.zoo`. Third-party
blocks and models come in two ways, the first being the one to publish:

- **Entry points** in the group ``attncli.plugins`` (the convention pytest and flake8 use)::

      [project.entry-points."attncli.plugins"]
      my_blocks = "my_package.attncli_zoo"

  The named module is imported when the registry is first used. It should be torch-free and
  declare its rows with :func:`add_spec` (targets as ``"module:Name"`` strings), so that
  ``attncli list`` stays instant; a module using the ``@register`` decorator works too, at the
  price of importing torch for ``list``.
- ``ATTNCLI_PLUGINS``: comma-separated module names or ``.py`` paths, imported the same way, for
  quick experiments (worker processes of ``check`` inherit it).

A plugin that fails to import is one line naming it and the reason (exit 2).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

from attncli.errors import DuplicateNameError, UnknownModelError, UsageError
from attncli.zoo import KINDS, SPECS, Paper, Reference, Spec

__all__ = [
    "ENTRY_POINT_GROUP", "KINDS", "Paper", "Reference", "Registry", "Spec",
    "add_spec", "get", "import_plugin", "list_specs", "register", "registry",
]

ENTRY_POINT_GROUP = "attncli.plugins"


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, Spec] = {}
        self._aliases: dict[str, str] = {}

    def add(self, spec: Spec) -> None:
        existing = self._specs.get(spec.name) or self._specs.get(self._aliases.get(spec.name, ""))
        if existing is not None:
            if existing.target == spec.target and existing.kind == spec.kind:
                return  # the same code declaring itself twice (a torch-free row, then its decorator)
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
            raise UsageError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}.", option="kind")
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


def _plugin_failure(what: str, exc: BaseException) -> UsageError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        reason = f"{exc.msg} ({exc.filename}, line {exc.lineno})"
    return UsageError(f"plugin {what} failed to load: {type(exc).__name__}: {reason}".rstrip(": "))


def import_plugin(ref: str) -> None:
    """Import a module (dotted name or ``.py`` path) so that its declarations run."""
    try:
        if ref.endswith(".py"):
            path = Path(ref).expanduser().resolve()
            if not path.is_file():
                raise UsageError(f"plugin file {ref} (from ATTNCLI_PLUGINS) does not exist.")
            mod_name = f"attncli_plugin_{path.stem}"
            if mod_name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            except BaseException:
                del sys.modules[mod_name]
                raise
        else:
            importlib.import_module(ref)
    except UsageError:
        raise
    except (Exception, SystemExit) as exc:
        raise _plugin_failure(repr(ref), exc) from exc


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            ep.load()
        except UsageError:
            raise
        except (Exception, SystemExit) as exc:
            raise _plugin_failure(f"{ep.name!r} ({ep.value})", exc) from exc


def registry() -> Registry:
    """The process-wide registry: the zoo, then entry-point plugins, then ``ATTNCLI_PLUGINS``."""
    global _loaded
    if not _loaded:
        _loaded = True
        for spec in SPECS:
            _REGISTRY.add(spec)
        _load_entry_points()
        for ref in os.environ.get("ATTNCLI_PLUGINS", "").split(","):
            if ref.strip():
                import_plugin(ref.strip())
    return _REGISTRY


def add_spec(
    name: str,
    target: str,
    *,
    kind: str = "block",
    input_shape: Iterable[int],
    paper: tuple[str, ...] | Paper,
    defaults: dict[str, Any] | None = None,
    aliases: Iterable[str] = (),
    reference: dict[str, Any] | Reference | None = None,
    baseline: str | None = None,
    takes_attn: bool = False,
    summary: str = "",
) -> Spec:
    """Declare a model without importing it: ``target`` is ``"package.module:Name"`` (torch-free)."""
    if ":" not in target:
        raise ValueError(f"target {target!r} must be 'package.module:Name'")
    spec = Spec(
        name=name.strip().lower(),
        kind=kind,
        target=target,
        input_shape=tuple(int(d) for d in input_shape),
        paper=paper if isinstance(paper, Paper) else Paper(*paper),
        defaults=dict(defaults or {}),
        aliases=tuple(a.strip().lower() for a in aliases),
        reference=reference if reference is None or isinstance(reference, Reference) else Reference(**reference),
        baseline=baseline,
        takes_attn=takes_attn,
        summary=summary,
    )
    registry().add(spec)
    return spec


def register(name: str, **kwargs: Any) -> Callable[[Any], Any]:
    """Decorator form of :func:`add_spec` for a class or a function returning an ``nn.Module``."""

    def decorate(obj: Any) -> Any:
        doc = (obj.__doc__ or "").strip().splitlines()
        kwargs.setdefault("summary", doc[0] if doc else "")
        add_spec(name, f"{obj.__module__}:{obj.__qualname__}", **kwargs)
        return obj

    return decorate


def get(name: str) -> Spec:
    return registry().get(name)


def list_specs(patterns: Iterable[str] = (), kind: str | None = None) -> list[Spec]:
    return registry().select(patterns, kind)
