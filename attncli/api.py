"""The Python API: the same operations as the CLI, returning plain objects.

Each function imports torch (and onnx, fvcore...) only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from attncli.modelspec import BuiltModel, ModelRequest
from attncli.modelspec import build as _build


def build(
    model: str,
    params: Iterable[str] | dict[str, Any] | None = None,
    input_shape: str | Iterable[int] | None = None,
    attn: str | None = None,
    seed: int = 0,
    weights: str | Path | None = None,
) -> BuiltModel:
    """Build a registry name or ``file.py:Name`` with its example input (eval mode, seeded)."""
    return _build(ModelRequest.make(model, params, input_shape, attn, seed, weights))
