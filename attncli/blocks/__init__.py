"""Attention blocks, one file per family, and where a block goes in a residual unit.

Nothing here imports torch: the registry points at the block classes and they are imported when
built. A block class says where its paper and official code put it with a ``position`` class
attribute, one of :data:`POSITIONS` (``branch_end`` when it has none), and the backbones honour it
unless ``--attn-position`` says otherwise. A block that replaces the 3x3 convolution sets
``norm_after = False`` when it ends in its own BN + activation (SK), so the backbone drops the BN
that followed the convolution; PSA keeps it, as the official EPSANet does.

Old argument names stay accepted: a class lists them in ``arg_aliases`` (``{"rate": "reduction"}``).

A user's own block (``--attn file.py:Name``) follows the same rules: the backbones build it as
``Name(channels=C, **args)`` for each unit's channel count C (plus ``out_channels`` and ``stride`` in
place of the 3x3 convolution), at its ``position`` or ``branch_end``.
"""

from __future__ import annotations

import inspect
from typing import Any

POSITIONS = {
    "branch_end": "after the last BN of the residual branch, before the addition (SE, ECA, CBAM, CoordAtt, GAM)",
    "after_3x3": "right after the 3x3 convolution, before its BN (SimAM, as the official SimAM ResNet)",
    "after_3x3_act": "after the 3x3 convolution's BN and activation (CoordAtt in the official MobileNetV2)",
    "replace_3x3": "in place of the 3x3 convolution, carrying its stride (PSA, SK)",
}
DEFAULT_POSITION = "branch_end"
# The arguments a backbone gives every block it builds; ``replace_3x3`` adds the convolution's own.
BUILT_BY_BACKBONE = ("channels", "out_channels", "stride")


def block_position(factory: Any, override: str | None = None) -> str:
    """Where ``factory``'s blocks go: ``override`` when given, else the class's own ``position``."""
    position = override or getattr(factory, "position", DEFAULT_POSITION)
    if position not in POSITIONS:
        raise ValueError(f"attention position must be one of {', '.join(POSITIONS)}, not {position!r}")
    return position


def canonical_args(factory: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with old argument names (``factory.arg_aliases``) renamed to the current ones."""
    aliases: dict[str, str] = getattr(factory, "arg_aliases", {})
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        new = aliases.get(key, key)
        if new in out:  # both the old and the new name
            old = key if new != key else next(k for k, v in aliases.items() if v == new and k in kwargs)
            raise ValueError(f"{old} is the old name of {new}: give one of them")
        out[new] = value
    return out


def block_factory(name: str) -> Any:
    """The class (or function) of the registered block ``name``."""
    from attncli import registry

    spec = registry.get(name)
    if spec.kind != "block":
        raise ValueError(f"{spec.name} is a {spec.kind}, not an attention block")
    return spec.load_factory()


def make_block(factory: Any, channels: int, **kwargs: Any) -> Any:
    """Build a block for ``channels`` channels (the backbones call this)."""
    return factory(channels=channels, **canonical_args(factory, kwargs))


def check_block_factory(factory: Any, name: str, position: str | None = None) -> None:
    """Refuse a block the backbones cannot build: its constructor must take ``channels`` (and, at
    ``replace_3x3``, ``out_channels`` and ``stride``) by name."""
    needed = BUILT_BY_BACKBONE if position == "replace_3x3" else BUILT_BY_BACKBONE[:1]
    init = getattr(factory, "__init__", None) if isinstance(factory, type) else None
    if init is not None and getattr(init, "__module__", "").partition(".")[0] == "torch":
        # no constructor of its own: nn.Module's takes *args, **kwargs only to refuse them
        named: list[str] = []
    else:
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            return  # a builtin or a C extension: its call will say
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [n for n in needed if n not in named]
    if missing:
        call = ", ".join(f"{n}={n[0].upper()}" for n in needed)
        short_name = getattr(factory, "__name__", name)
        raise ValueError(
            f"{name} takes no {' or '.join(missing)} argument (it takes: {', '.join(named) or 'none'}); a backbone"
            f" builds one block per residual unit as {short_name}({call}, ...), C the unit's channel count"
        )
