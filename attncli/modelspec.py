"""Turn what a user typed into a built module and an example input.

A model is a registry name (``eca``), a file (``path/to/file.py:Name``) or an importable module
(``package.module:Name``), where ``Name`` is an ``nn.Module`` class or a function returning one.
Constructor arguments come from ``-p key=value``; ``--attn NAME`` puts a registry block into a
backbone that takes one, at the block's own position or at ``--attn-position``. A named network
of the zoo (``eca_resnet50``) is built exactly as its plain backbone with its block and arguments
(``resnet50 --attn eca -p attn.k_size=3,5,5,7``); on such a row ``-p k_size=...`` is short for
``-p attn.k_size=...`` when the backbone itself has no ``k_size``. Building is deterministic: weights are initialised under ``seed``, and the
example input is drawn from its own generator seeded the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from attncli import registry
from attncli.blocks import POSITIONS
from attncli.errors import UsageError
from attncli.zoo import ATTN_PREFIX

__all__ = ["ATTN_PREFIX", "BuiltModel", "ModelRequest", "build", "load_weights", "parse_params", "parse_shape"]


def parse_value(text: str) -> Any:
    """Parse a ``-p`` value: int, float, bool, none, or a comma-separated tuple of those."""
    text = text.strip()
    if "," in text:
        return tuple(parse_value(part) for part in text.strip("()[]").split(",") if part.strip())
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_params(items: Iterable[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``["channels=64", "k_size=5"]`` -> ``{"channels": 64, "k_size": 5}``."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"bad -p value {item!r}: write key=value, e.g. -p channels=64.")
        out[key] = parse_value(value)
    return out


MAX_AXIS = 2**31 - 1  # onnxruntime and most kernels index an axis with int32
INPUT_BYTES_PER_ELEMENT = 4  # example inputs are float32


def available_memory_bytes() -> int | None:
    """Memory the system can still give this process (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_input_size(shape: tuple[int, ...], text: object = None) -> None:
    """Refuse an input whose float32 tensor could not be allocated here, before trying to."""
    what = f"input shape {text!r}" if text is not None else f"input shape {','.join(map(str, shape))}"
    if any(d > MAX_AXIS for d in shape):
        raise UsageError(f"bad {what}: an axis may be at most {MAX_AXIS:,}.")
    size = INPUT_BYTES_PER_ELEMENT * math.prod(shape)
    free = available_memory_bytes()
    if free is not None and size > free:
        raise UsageError(
            f"{what} needs {size / 2**30:,.1f} GiB for its float32 input alone, and this machine has"
            f" {free / 2**30:,.1f} GiB available; give a smaller shape."
        )


def parse_shape(text: str | Iterable[int] | None) -> tuple[int, ...] | None:
    """``"1,64,56,56"`` (or ``1x64x56x56``, ``1 64 56 56``) -> ``(1, 64, 56, 56)``.

    Every size is a positive integer, no axis exceeds :data:`MAX_AXIS`, and the float32 tensor must
    fit in the memory available (checked before anything is allocated).
    """
    if text is None:
        return None
    bad = f"bad input shape {text!r}: give positive integers, e.g. 1,64,56,56."
    if isinstance(text, str):
        body = text.strip().strip("()[]").strip()
        if "," in body:
            parts = [p.strip() for p in body.split(",")]
            if parts and parts[-1] == "":  # a trailing comma, as in "(1, 64,)"
                parts.pop()
        elif "x" in body.lower():
            parts = [p.strip() for p in body.lower().split("x")]
        else:
            parts = body.split()
    else:
        parts = list(text)
    try:
        shape = tuple(int(p) for p in parts)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(bad) from None
    if not shape or any(d <= 0 for d in shape):
        raise UsageError(bad)
    check_input_size(shape, text)
    return shape


def is_user_model(model: str) -> bool:
    return ":" in model


@dataclass(frozen=True)
class ModelRequest:
    """Everything needed to build a model, as plain data (picklable, torch-free)."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    attn: str | None = None
    seed: int = 0
    weights: str | None = None
    attn_position: str | None = None

    @classmethod
    def make(
        cls,
        model: str,
        params: Iterable[str] | dict[str, Any] | None = None,
        input_shape: str | Iterable[int] | None = None,
        attn: str | None = None,
        seed: int = 0,
        weights: str | Path | None = None,
        attn_position: str | None = None,
    ) -> ModelRequest:
        if attn_position is not None and attn_position not in POSITIONS:
            raise UsageError(f"bad --attn-position {attn_position!r}: give one of {', '.join(POSITIONS)}.")
        return cls(
            model=model,
            params=parse_params(params),
            input_shape=parse_shape(input_shape),
            attn=attn,
            seed=seed,
            weights=str(weights) if weights is not None else None,
            attn_position=attn_position,
        )

    def spec(self) -> registry.Spec | None:
        return None if is_user_model(self.model) else registry.get(self.model)

    @property
    def display_name(self) -> str:
        base = self.model if is_user_model(self.model) else registry.get(self.model).name
        return f"{base}+{self.attn.lower()}" if self.attn else base

    def resolved(self) -> tuple[dict[str, Any], tuple[int, ...]]:
        """Constructor kwargs and example input shape, defaults filled in (torch-free)."""
        spec = self.spec()
        kwargs = dict(spec.defaults) if spec else {}
        for key, value in self.params.items():
            if spec is not None and key in spec.fixed:
                raise UsageError(
                    f"{spec.name} fixes {key}={spec.fixed[key]!r}; pick the model with the {key} you want"
                    " (see `attncli list`)."
                )
            if spec is not None and key not in spec.defaults and ATTN_PREFIX + key in spec.defaults:
                key = ATTN_PREFIX + key  # -p k_size=... on eca_resnet50: the row's block argument
            kwargs[key] = value
        if self.attn_position is not None:
            kwargs["attn_position"] = self.attn_position
        if spec is not None:
            kwargs.update(spec.fixed)
        shape = self.input_shape
        if spec is None:
            if shape is None:
                raise UsageError(f"{self.model} is your own module: give --input-shape, e.g. --input-shape 1,64,56,56.")
            return kwargs, shape
        if spec.kind == "block" and "channels" in spec.defaults:
            # Keep the block and its example input consistent whichever of the two the user set.
            if shape is None and "channels" in self.params:
                shape = (spec.input_shape[0], int(kwargs["channels"]), *spec.input_shape[2:])
            elif shape is not None and "channels" not in self.params and len(shape) >= 2:
                kwargs["channels"] = shape[1]
        return kwargs, shape or spec.input_shape


@dataclass
class BuiltModel:
    """A module in eval mode, with the example input it was built for."""

    name: str
    module: Any  # torch.nn.Module
    example: Any  # torch.Tensor
    input_shape: tuple[int, ...]
    kwargs: dict[str, Any]
    request: ModelRequest
    spec: registry.Spec | None

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def _load_user_object(model: str) -> Any:
    location, _, attr = model.rpartition(":")
    if not location or not attr:
        raise UsageError(f"bad model {model!r}: write path/to/file.py:Name or package.module:Name.")
    if location.endswith(".py"):
        path = Path(location).expanduser().resolve()
        if not path.is_file():
            raise UsageError(f"no such file: {location}. Check the path before the ':'.")
        mod_name = f"attncli_user_{path.stem}_{abs(hash(str(path))) & 0xFFFFFF:x}"
        module = sys.modules.get(mod_name)
        if module is None:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            except Exception as exc:
                del sys.modules[mod_name]
                raise UsageError(f"could not import {location}: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as exc:
            raise UsageError(f"could not import module {location!r}: {exc}. Is it on PYTHONPATH?") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise UsageError(f"{location} has no {attr!r}; it defines: {', '.join(names[:12]) or 'nothing public'}.") from None


def _check_kwargs(factory: Any, kwargs: dict[str, Any], what: str) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = [n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UsageError(
            f"{what} takes no parameter {', '.join(unknown)}; it takes: {', '.join(accepted) or 'none'}."
        )


def build(request: ModelRequest) -> BuiltModel:
    """Build the module (eval mode, weights seeded) and its seeded example input."""
    import torch

    spec = request.spec()
    kwargs, shape = request.resolved()
    attn_args = {k[len(ATTN_PREFIX):]: kwargs.pop(k) for k in list(kwargs) if k.startswith(ATTN_PREFIX)}
    if spec is None:
        factory = _load_user_object(request.model)
        if not callable(factory):
            raise UsageError(f"{request.model} is not a class or function returning an nn.Module.")
    else:
        factory = spec.load_factory()
    attn = request.attn or (spec.attn if spec is not None else None)
    if request.attn and (spec is None or not spec.takes_attn):
        holds = f" ({spec.name} already holds {spec.attn})" if spec is not None and spec.attn else ""
        raise UsageError(
            f"--attn needs a backbone that takes an attention block (resnet*, resnext*, mobilenetv2, cnn1d),"
            f" not {request.model}{holds}."
        )
    if (attn_args or "attn_position" in kwargs) and not attn:
        raise UsageError(
            f"-p attn.*/--attn-position need an attention block: add --attn BLOCK (and {request.model} must take one)."
        )
    if attn:
        block = registry.get(attn)
        if block.kind != "block":
            raise UsageError(f"--attn takes an attention block, and {block.name} is a {block.kind}.")
        kwargs["attn"] = block.name
        if attn_args:
            kwargs["attn_args"] = attn_args
    if spec is not None and spec.kind == "block":
        from attncli.blocks import canonical_args

        try:  # the user's old argument names (rate=) override the row's defaults under the new ones
            given = canonical_args(factory, request.params)
        except ValueError as exc:
            raise UsageError(f"{request.model}: {exc}.") from None
        kwargs = {**canonical_args(factory, {k: v for k, v in kwargs.items() if k not in request.params}), **given}
    _check_kwargs(factory, kwargs, request.model)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(request.seed)
        try:
            module = factory(**kwargs)
        except (TypeError, ValueError, AssertionError) as exc:
            raise UsageError(f"could not build {request.model} with {_fmt_kwargs(kwargs)}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"{request.model} returned {type(module).__name__}, not a torch.nn.Module.")
    if request.weights:
        load_weights(module, request.weights)
    module.eval()
    gen = torch.Generator().manual_seed(request.seed)
    example = torch.randn(shape, generator=gen)
    return BuiltModel(
        name=request.display_name,
        module=module,
        example=example,
        input_shape=shape,
        kwargs=kwargs,
        request=request,
        spec=spec,
    )


def _fmt_kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"


def load_weights(module: Any, path: str) -> None:
    """Load a saved state_dict (``weights_only``); any key or shape mismatch is a one-line error."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such weights file: {path}.")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(f"could not read {path} as a saved state_dict: {str(exc).splitlines()[0]}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UsageError(f"{path} holds a {type(state).__name__}, not a state_dict; save model.state_dict().")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched)):
        if keys:
            more = f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""
            problems.append(f"{label}: {', '.join(keys[:4])}{more}")
    if problems:
        raise UsageError(f"{path} does not fit this model: {'; '.join(problems)}.")
    module.load_state_dict(state, strict=True)


def run_example(built: BuiltModel, x: Any = None) -> Any:
    """One forward pass under inference mode; an input the model rejects is a usage error."""
    import torch

    with torch.inference_mode():
        try:
            return built.module(built.example if x is None else x)
        except (RuntimeError, ValueError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shape = tuple(built.example.shape if x is None else x.shape)
            raise UsageError(
                f"{built.name} rejects an input of shape {','.join(map(str, shape))}: {first}."
                " Give --input-shape to match the model."
            ) from exc
