"""A persistent cache of what ``attncli profile`` counts for a registry model: parameters, MACs and
FLOPs (in total, per operator and per module), the attention blocks and the per-module table.

A repeated profile of the same model then skips the traced forward pass, and, when no latency is
asked for, building the model too (issue 13: building and tracing resnet50 and its attention
variant cost more than half a second each time).

A stale count would be a wrong published number, so an entry is only ever used for exactly the
computation that made it. Its key is a sha256 over the canonical request (the registry name, the
``-p`` arguments as given and as resolved into constructor arguments, the input shape, the block,
its position and the seed), the torch, fvcore and attncli versions, a digest of every ``.py`` file
of the attncli package (any change to the code is a miss) and the registry's rows (name, kind,
target): a plugin that registers a block changes which modules count as attention. Only models
built wholly from attncli's own code are cached: not a user's file or package, not a plugin's
model or block, not ``--weights``, and nothing at all while a rule added with
``attncli.counting.register_rule`` is in force.

Where: ``$ATTNCLI_CACHE_DIR``, else ``$XDG_CACHE_HOME/attncli``, else ``~/.cache/attncli``;
``ATTNCLI_NO_CACHE=1`` turns it off. Entries are small JSON files written atomically; an entry
that cannot be read or does not hold what its key says is ignored (and rewritten), and a
directory that cannot be written is skipped without a word: the cache never fails a command.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from attncli import registry
from attncli.counting import CostCount, OpCost
from attncli.errors import AttncliError
from attncli.modelspec import ModelRequest, is_user_model
from attncli.version import __version__

FORMAT = 1  # bump when the entry's layout changes
NO_CACHE_ENV = "ATTNCLI_NO_CACHE"
CACHE_DIR_ENV = "ATTNCLI_CACHE_DIR"


@dataclass
class CountedModel:
    """What profile takes from a model's build and trace when it does not time it."""

    name: str
    kwargs: dict[str, Any]  # the constructor arguments, JSON-ready (describe.jsonable)
    params: int
    trainable_params: int
    costs: CostCount
    attention: list[str]  # outermost attention blocks by module path ("" for the root)
    attention_params: int | None  # their parameters, shared tensors once; None without attention
    modules: list[dict[str, Any]]  # profiling.ModuleCost rows of every depth, as dicts

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["costs"]["by_module"] = {path: [c.macs, c.flops] for path, c in self.costs.by_module.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CountedModel:
        costs = dict(data["costs"])
        costs["by_module"] = {path: OpCost(int(m), int(f)) for path, (m, f) in costs["by_module"].items()}
        return cls(**{**data, "costs": CostCount(**costs)})


def cache_dir() -> Path | None:
    """The cache's directory, or None when ``ATTNCLI_NO_CACHE`` turns it off."""
    if os.environ.get(NO_CACHE_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return None
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attncli"


@functools.cache
def code_digest() -> str:
    """sha256 over the path and contents of every .py file in the attncli package."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _own_code(spec: registry.Spec) -> bool:
    return spec.target.partition(":")[0].partition(".")[0] == "attncli"


def entry_key(request: ModelRequest) -> str | None:
    """The request's key, or None when its counts must not be cached (see the module's docstring)."""
    from attncli import counting

    if cache_dir() is None or counting._REGISTERED_RULES or request.weights is not None or is_user_model(request.model):
        return None
    if request.attn is not None and is_user_model(request.attn):
        return None
    try:
        spec = registry.get(request.model)
        block = request.attn or spec.attn
        block_spec = registry.get(block) if block else None
        kwargs, shape = request.resolved()
    except (AttncliError, LookupError, ValueError):
        return None  # left to the build to say what is wrong
    if not _own_code(spec) or (block_spec is not None and not _own_code(block_spec)):
        return None
    rows = sorted((s.name, s.kind, s.target) for s in registry.list_specs())
    # repr, not JSON: it tells 1 from 1.0 and True, and a tuple from a list
    canonical = repr(
        (
            FORMAT, spec.name, sorted(request.params.items()), kwargs, tuple(shape),
            block_spec.name if block_spec is not None else None, request.attn_position, request.seed,
            _version("torch"), _version("fvcore"), __version__, platform.python_version(), code_digest(), rows,
        )
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _path(key: str) -> Path | None:
    root = cache_dir()
    return None if root is None else root / "counts" / f"{key}.json"


def load(key: str | None) -> CountedModel | None:
    """The entry under ``key``; None when there is none or it cannot be read as one."""
    path = _path(key) if key else None
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("key") != key:
            return None
        return CountedModel.from_json(data["counts"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def store(key: str | None, counted: CountedModel) -> None:
    """Write the entry atomically (a temporary file, then os.replace); any failure skips it."""
    path = _path(key) if key else None
    if path is None:
        return
    counts = counted.to_json()
    try:
        text = json.dumps({"format": FORMAT, "key": key, "counts": counts}, sort_keys=True, separators=(",", ":"))
        if json.loads(text)["counts"] != counts:  # an argument JSON cannot hold as it is (a tuple, an int key)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, TypeError, ValueError):
        return
