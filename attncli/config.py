"""The project's gate, as data: ``[tool.attncli]`` in ``pyproject.toml``, or ``attncli.toml``.

``attncli check`` with no model given, inside a project that has one, runs the models it lists,
each with its own options (docs/config.md is the reference, with a worked example)::

    [tool.attncli]
    opsets = [11, 17]

    [[tool.attncli.models]]
    target = "models.py:Net"          # or a registry name, or package.module:Name
    input_shape = [1, 3, 64, 64]
    params = { width = 32 }

Relative paths (a file target, ``attn`` from a file, ``weights``) are relative to the folder of
the configuration file, wherever ``attncli check`` is run from. Every key is checked: an unknown
one is an error naming the key and the file. Torch-free, like the registry.
"""

from __future__ import annotations

import difflib
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attncli.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILES = ("attncli.toml", "pyproject.toml")

# Keys of the top-level table, with what they hold. The model keys below may also appear here, as
# defaults for every model.
RUN_KEYS = {
    "opsets": "a list of opsets, e.g. [11, 17]",
    "dynamic": "one of batch, spatial, all, none",
    "allow_trace_warnings": "true or false",
    "jobs": "a whole number of worker processes",
    "timeout": "seconds per case",
    "models": "an array of tables, [[tool.attncli.models]]",
}
MODEL_KEYS = {
    "target": "a registry name, path/to/file.py:Name or package.module:Name",
    "name": "the case's name in reports (default: the target)",
    "params": "a table of constructor arguments, e.g. { channels = 64 }",
    "input_shape": "the example input shape, e.g. [1, 3, 224, 224]",
    "shapes": "more input shapes to verify, e.g. [[2, 3, 128, 128]]",
    "shapes_only": "true to verify at shapes only",
    "attn": "an attention block for a backbone: a registry name or path/to/block.py:Name",
    "attn_position": "where the block goes in each residual unit",
    "weights": "a state_dict saved with torch.save",
    "seed": "the seed of the weights and inputs",
    "opsets": "this model's opsets",
    "dynamic": "this model's dynamic axes",
    "atol": "absolute tolerance",
    "rtol": "relative tolerance",
    "allow_trace_warnings": "true or false",
    "xfail": "why this model is expected to fail (then failing passes the gate)",
    "quantize": "also quantize to int8 and judge it: dynamic or static",
}
DEFAULTABLE = ("opsets", "dynamic", "allow_trace_warnings", "atol", "rtol", "seed", "input_shape", "attn", "attn_position", "quantize")


@dataclass
class ProjectConfig:
    path: Path
    models: list[dict[str, Any]]  # each with every key resolved (defaults applied, paths absolute)
    jobs: int | None = None
    timeout: float | None = None
    opsets: list[int] = field(default_factory=list)


def find_config(start: str | Path | None = None) -> Path | None:
    """The nearest ``attncli.toml``, or ``pyproject.toml`` holding a ``[tool.attncli]`` table, in
    ``start`` (the current folder) or a folder above it."""
    folder = Path(start or Path.cwd()).resolve()
    for here in (folder, *folder.parents):
        for name in CONFIG_FILES:
            candidate = here / name
            if not candidate.is_file():
                continue
            if name == "attncli.toml":
                return candidate
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue  # not ours to judge a pyproject.toml without our table
            if "attncli" in data.get("tool", {}):
                return candidate
    return None


def load_config(path: str | Path) -> ProjectConfig:
    """Read and check a configuration file; every problem is a usage error naming the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such configuration file: {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}.") from None
    where = "[tool.attncli]" if path.name == "pyproject.toml" else "the top level"
    table = data.get("tool", {}).get("attncli") if path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise UsageError(f"{path} has no [tool.attncli] table.")
    _known(table, set(RUN_KEYS) | set(MODEL_KEYS) - {"target", "name", "xfail"}, path, where)
    models = table.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, dict) for m in models):
        raise UsageError(f"{path}: {where} needs at least one model: add a [[tool.attncli.models]] table with a target.")
    defaults = {k: table[k] for k in DEFAULTABLE if k in table}
    resolved = []
    for i, model in enumerate(models, 1):
        table_name = f"model {i} ([[models]] table {i})"
        _known(model, set(MODEL_KEYS), path, table_name)
        if not isinstance(model.get("target"), str) or not model["target"].strip():
            raise UsageError(f"{path}: {table_name} needs a target: {MODEL_KEYS['target']}.")
        entry = {**defaults, **model}
        resolved.append(_check_model(entry, path, table_name))
    names = [m["name"] for m in resolved]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"{path}: two models are named {twice[0]!r}; give each a distinct name.")
    return ProjectConfig(
        path=path, models=resolved,
        jobs=_typed(table, "jobs", int, path, where), timeout=_typed(table, "timeout", (int, float), path, where),
        opsets=[int(o) for o in table.get("opsets", [])],
    )


def _known(table: dict[str, Any], known: set[str], path: Path, where: str) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}."
            raise UsageError(f"{path}: unknown key {key!r} in {where}{hint}")


def _typed(table: dict[str, Any], key: str, kind: Any, path: Path, where: str) -> Any:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind) or (isinstance(value, float) and not math.isfinite(value)):
        raise UsageError(f"{path}: {key} in {where} must be {RUN_KEYS.get(key) or MODEL_KEYS[key]}, not {value!r}.")
    return value


def _check_model(entry: dict[str, Any], path: Path, where: str) -> dict[str, Any]:
    """Types checked, paths made absolute (relative to the configuration's folder)."""
    folder = path.parent.resolve()
    target = entry["target"].strip()
    entry["target"] = _relative_target(target, folder)
    entry.setdefault("name", target)
    if not isinstance(entry["name"], str) or not entry["name"].strip():
        raise UsageError(f"{path}: name in {where} must be a non-empty string.")
    if isinstance(entry.get("attn"), str) and ":" in entry["attn"]:
        entry["attn"] = _relative_target(entry["attn"], folder)
    if isinstance(entry.get("weights"), str) and entry["weights"].strip():
        entry["weights"] = str(folder / entry["weights"]) if not Path(entry["weights"]).is_absolute() else entry["weights"]
    checks = {
        "params": dict, "input_shape": (list, str), "shapes": list, "shapes_only": bool, "attn": str, "attn_position": str,
        "weights": str, "seed": int, "opsets": list, "dynamic": str, "atol": (int, float), "rtol": (int, float),
        "allow_trace_warnings": bool, "xfail": str, "quantize": str,
    }
    for key, kind in checks.items():
        value = entry.get(key)
        if value is None:
            continue
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int, float)))
        if key == "opsets" and not wrong:
            wrong = not value or not all(isinstance(o, int) and not isinstance(o, bool) for o in value)
        if wrong:
            raise UsageError(f"{path}: {key} in {where} must be {MODEL_KEYS[key]}, not {value!r}.")
    if "params" in entry:
        entry["params"] = {k: tuple(v) if isinstance(v, list) else v for k, v in entry["params"].items()}
    return entry


def _relative_target(target: str, folder: Path) -> str:
    """``models.py:Net`` relative to the configuration's folder; registry names and package targets as given."""
    file, sep, name = target.rpartition(":")
    if sep and file.endswith(".py") and not Path(file).is_absolute():
        return f"{folder / file}:{name}"
    return target
