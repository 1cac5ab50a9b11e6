"""Attention blocks, one file per family. Nothing is imported here: the registry reads them lazily."""

from __future__ import annotations

from typing import Any


def make_block(name: str, channels: int, **kwargs: Any) -> Any:
    """Build the registered block ``name`` for ``channels`` channels (used by the backbones)."""
    from attncli import registry

    spec = registry.get(name)
    if spec.kind != "block":
        raise ValueError(f"{spec.name} is a {spec.kind}, not an attention block")
    return spec.load_factory()(channels=channels, **kwargs)
