"""Putting an attention block into a backbone: which block, where, with which arguments per stage.

Shared by every backbone. The block is a registry name or a class (or function) returning a module
(a user's own block: ``attncli.modelspec`` imports it from ``file.py:Name`` and passes the class);
its position comes from the class (see :mod:`attncli.blocks`) unless ``attn_position`` overrides
it, and each backbone says which positions its units have.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

import torch
from torch import nn

from attncli.blocks import POSITIONS, block_factory, block_position, canonical_args, check_block_factory, make_block


@dataclass
class Insertion:
    """A resolved ``attn``: the factory, its position and its arguments for each stage."""

    name: str
    factory: Any
    position: str
    stage_args: list[dict[str, Any]]
    rank: int | None  # the rank of the block's registered example input; None for a class given directly

    @property
    def norm_after(self) -> bool:
        """For ``replace_3x3``: whether the BN (+ activation) after the replaced convolution stays."""
        return bool(getattr(self.factory, "norm_after", True))

    def make(self, stage: int, channels: int, **extra: Any) -> nn.Module:
        block = make_block(self.factory, channels, **extra, **self.stage_args[stage])
        if not isinstance(block, nn.Module):  # a function given as the block may return anything
            raise ValueError(f"{self.name} returned {type(block).__name__}, not a torch.nn.Module")
        return block


def check_backbone_args(
    num_classes: int, attn: Any, attn_args: dict[str, Any] | None, attn_position: str | None = None
) -> None:
    """The arguments every backbone shares: a positive class count, block arguments only with a block."""
    if attn_args and not attn:
        raise ValueError(f"attention arguments {sorted(attn_args)} were given without an attention block (attn)")
    if attn_position and not attn:
        raise ValueError(f"attn_position={attn_position!r} was given without an attention block (attn)")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be at least 1, not {num_classes}")


def stage_block_args(factory: Any, name: str, args: dict[str, Any] | None, num_stages: int) -> list[dict[str, Any]]:
    """Split a block's arguments into one dict per stage.

    A tuple (or list) with one value per stage is spread over the stages, unless the block's own
    default for that argument is a tuple (PSA's ``kernels``): then it is passed whole to every stage.
    """
    args = canonical_args(factory, dict(args or {}))
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    stages: list[dict[str, Any]] = [{} for _ in range(num_stages)]
    for key, value in args.items():
        if isinstance(value, list):
            value = tuple(value)
        default = params[key].default if key in params else None
        if isinstance(value, tuple) and not isinstance(default, tuple):
            if len(value) != num_stages:
                raise ValueError(
                    f"{name} argument {key}={value} has {len(value)} values: give one, or one per stage ({num_stages})"
                )
            for stage, item in zip(stages, value):
                stage[key] = item
        else:
            for stage in stages:
                stage[key] = value
    return stages


def plan_insertion(
    attn: Any,
    attn_args: dict[str, Any] | None,
    attn_position: str | None,
    num_stages: int,
    positions: Sequence[str],
    backbone: str,
) -> Insertion | None:
    """Resolve ``attn`` for a backbone whose units offer ``positions``; None without a block."""
    if not attn:
        return None
    if isinstance(attn, str):
        from attncli import registry

        factory, name, rank = block_factory(attn), registry.get(attn).name, len(registry.get(attn).input_shape)
    else:
        factory, name, rank = attn, getattr(attn, "__name__", type(attn).__name__), None
    position = block_position(factory, attn_position)
    if position not in positions:
        offered = ", ".join(p for p in POSITIONS if p in positions)
        raise ValueError(f"{backbone} has no place '{position}' for {name}; its units offer: {offered}")
    check_block_factory(factory, name, position)
    return Insertion(name, factory, position, stage_block_args(factory, name, attn_args, num_stages), rank)


def check_insertable(ins: Insertion, module: nn.Module, channels: int, rank: int = 4, stride: int = 1) -> None:
    """Refuse a block that cannot sit in a residual branch: wrong rank, or output of the wrong shape.

    A block at ``replace_3x3`` must map (N, C, H, W) to (N, C, H/stride, W/stride); any other
    position must return the reweighted input, shaped like its input.
    """
    if ins.rank is not None and ins.rank != rank:
        raise ValueError(
            f"{ins.name} cannot go into this backbone: it is registered for rank-{ins.rank} inputs,"
            f" and the backbone's features have rank {rank}"
        )
    probe = torch.zeros(2, channels, *([8] * (rank - 2)))
    expected = (2, channels, *([8 // stride] * (rank - 2)))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(probe)
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        what = (
            "a block replacing the 3x3 convolution must return its output, with the same channels"
            if ins.position == "replace_3x3"
            else "an inserted block must return the reweighted input, shaped like its input"
        )
        raise ValueError(
            f"{ins.name} cannot go into a residual branch: for an input of shape {tuple(probe.shape)} it returns"
            f" {got}, and {what}"
        )
