"""Turn what a user typed into a built module and an example input.

A model is a registry name (``eca``), a file (``path/to/file.py:Name``) or an importable module
(``package.module:Name``), where ``Name`` is an ``nn.Module`` class or a function returning one.
Constructor arguments come from ``-p key=value``; ``--attn BLOCK`` puts a block into a backbone
that takes one, at the block's own position or at ``--attn-position``. The block is a registry name
or the user's own, ``file.py:Name`` or ``package.module:Name`` (imported as a model is), built per
residual unit as ``Name(channels=C, **attn_args)`` exactly as a registered block. A named network
of the zoo (``eca_resnet50``) is built exactly as its plain backbone with its block and arguments
(``resnet50 --attn eca -p attn.k_size=3,5,5,7``); on such a row ``-p k_size=...`` is short for
``-p attn.k_size=...`` when the backbone itself has no ``k_size``. Building is deterministic: weights are initialised under ``seed``, and the
example input is drawn from its own generator seeded the same way.

Every value is checked before it is used, and what goes wrong is classified here, once: a value
the model cannot take is a :class:`~attncli.errors.UsageError`; an exception raised inside the
user's own code (the import of their file, their constructor, their forward) is a
:class:`~attncli.errors.UserCodeError` naming their ``file:line``; anything else is left to rise
as the bug it is.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import math
import operator
import os
import pickle
import stat
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator

from attncli import progress, registry
from attncli.blocks import POSITIONS
from attncli.errors import (
    AttncliError,
    UsageError,
    UserCodeError,
    CodeLocation,
    display_path,
    exception_text,
    first_line,
    raised_at,
    user_code_error,
    user_location,
)
from attncli.zoo import ATTN_PREFIX

__all__ = [
    "ATTN_PREFIX", "BuiltModel", "ModelRequest", "build", "check_outputs", "check_seed", "forward_errors",
    "load_weights", "output_shapes", "parse_params", "parse_shape", "run_example",
]

MAX_SEED = 2**63 - 1  # torch seeds are 64-bit; below 2^63, seed + i (parity's extra seeds) still fits
MAX_INT_VALUE = 2**63 - 1  # a -p integer torch can receive at all (C int64)
NAME_MAX = 255  # bytes in one file or folder name on Linux, macOS and Windows file systems
SHAPE_ERRORS = (RuntimeError, ValueError, IndexError)  # what torch's layers raise for an input they cannot take


def short(text: object, limit: int = 96) -> str:
    """``text`` for a message: cut in the middle when longer than ``limit`` characters."""
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-(limit // 2 - 1):]}"


# ----------------------------------------------------------------------------- values


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


def _unusable_number(value: Any) -> str | None:
    """Why ``value`` (or an item of it) cannot reach a constructor: not finite, or beyond int64."""
    if isinstance(value, tuple):
        return next((why for why in map(_unusable_number, value) if why), None)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_VALUE:
        return f"{short(value, 40)} is beyond a 64-bit integer"
    return None


def parse_params(items: Iterable[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``["channels=64", "k_size=5"]`` -> ``{"channels": 64, "k_size": 5}``.

    Values that no constructor can take (inf, nan, integers beyond 64 bits) are refused here."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"bad parameter {short(repr(item))}: write key=value, e.g. channels=64.", option="params")
        value = parse_value(text)
        why = _unusable_number(value)
        if why:
            raise UsageError(f"bad parameter {short(repr(item))}: {why}.", option="params")
        out[key] = value
    return out


def check_seed(seed: Any) -> int:
    """The seed as an int from 0 to :data:`MAX_SEED`, or a usage error."""
    try:
        value = operator.index(seed) if not isinstance(seed, bool) else None
    except TypeError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise UsageError(f"seed must be an integer from 0 to {MAX_SEED}, not {short(seed, 40)}.", option="seed")
    return value


MAX_AXIS = 2**31 - 1  # onnxruntime and most kernels index an axis with int32
INPUT_BYTES_PER_ELEMENT = 4  # example inputs are float32
# What a model may take of the memory available before it runs: its input (and, for a registry model
# built with -p values, its parameters) must fit in this share; the forward's activations, and the
# copies that export and verification make, need at least as much again.
MEMORY_SHARE = 0.5


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
    """Refuse an input whose float32 tensor could not be allocated here, and run through a model,
    before trying to."""
    what = f"input shape {short(repr(text))}" if text is not None else f"input shape {','.join(map(str, shape))}"
    if any(d > MAX_AXIS for d in shape):
        raise UsageError(f"bad {what}: an axis may be at most {MAX_AXIS:,}.", option="input_shape")
    size = INPUT_BYTES_PER_ELEMENT * math.prod(shape)
    free = available_memory_bytes()
    if free is not None and size > MEMORY_SHARE * free:
        raise UsageError(
            f"{what} needs {size / 2**30:,.1f} GiB for its float32 input alone, and this machine has"
            f" {free / 2**30:,.1f} GiB available (a forward needs as much again); give a smaller shape.",
            option="input_shape",
        )


def parse_shape(text: str | Iterable[int] | None) -> tuple[int, ...] | None:
    """``"1,64,56,56"`` (or ``1x64x56x56``, ``1 64 56 56``) -> ``(1, 64, 56, 56)``.

    Every size is a positive integer, no axis exceeds :data:`MAX_AXIS`, and the float32 tensor must
    fit in the memory available (checked before anything is allocated).
    """
    if text is None:
        return None
    bad = f"bad input shape {short(repr(text))}: give positive integers, e.g. 1,64,56,56."
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
        raise UsageError(bad, option="input_shape") from None
    if not shape or any(d <= 0 for d in shape):
        raise UsageError(bad, option="input_shape")
    check_input_size(shape, text)
    return shape


def is_user_model(model: str) -> bool:
    return ":" in model


# ----------------------------------------------------------------------------- the request


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
        """The request, every value checked (a usage error names the first bad one)."""
        if not str(model).strip():
            raise UsageError("the model is empty: give a registry name, path/to/file.py:Name or package.module:Name.")
        if attn is not None and not attn.strip():
            raise UsageError(
                "the attention block is empty: give the name of a block (kind block in `attncli list`),"
                " path/to/file.py:Name or package.module:Name.",
                option="attn",
            )
        if attn_position is not None and attn_position not in POSITIONS:
            raise UsageError(f"bad attention position {attn_position!r}: give one of {', '.join(POSITIONS)}.", option="attn_position")
        if weights is not None and not str(weights).strip():
            raise UsageError("the weights path is empty: give the file saved with torch.save(model.state_dict()).", option="weights")
        return cls(
            model=model,
            params=parse_params(params),
            input_shape=parse_shape(input_shape),
            attn=attn,
            seed=check_seed(seed),
            weights=str(weights) if weights is not None else None,
            attn_position=attn_position,
        )

    def spec(self) -> registry.Spec | None:
        return None if is_user_model(self.model) else registry.get(self.model)

    @property
    def display_name(self) -> str:
        base = self.model if is_user_model(self.model) else registry.get(self.model).name
        if not self.attn:
            return base
        # the user's block by its own name, without the path: resnet50+TripletLite
        return f"{base}+{self.attn.rpartition(':')[2] if is_user_model(self.attn) else self.attn.lower()}"

    @property
    def changes_defaults(self) -> bool:
        """Whether the user changed anything of the model's own: arguments, input shape or block."""
        return bool(self.params or self.input_shape is not None or self.attn or self.attn_position)

    def given_keys(self) -> list[str]:
        """The constructor arguments the user gave, under the names :meth:`resolved` files them."""
        spec = self.spec()
        return [
            ATTN_PREFIX + key if spec is not None and key not in spec.defaults and ATTN_PREFIX + key in spec.defaults else key
            for key in self.params
        ]

    def resolved(self) -> tuple[dict[str, Any], tuple[int, ...]]:
        """Constructor kwargs and example input shape, defaults filled in (torch-free)."""
        spec = self.spec()
        kwargs = dict(spec.defaults) if spec else {}
        for key, value in self.params.items():
            if spec is not None and key in spec.fixed:
                raise UsageError(
                    f"{spec.name} fixes {key}={spec.fixed[key]!r}; pick the model with the {key} you want"
                    " (see `attncli list`).",
                    option="params",
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
                raise UsageError(f"{self.model} is your own module: give its input shape, e.g. 1,64,56,56.", option="input_shape")
            return kwargs, shape
        if spec.kind == "block" and "channels" in spec.defaults:
            # Keep the block and its example input consistent whichever of the two the user set.
            if shape is None and "channels" in self.params:
                channels = self.params["channels"]
                if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
                    raise UsageError(f"{spec.name} takes channels as a positive integer, not {short(repr(channels), 40)}.", option="params")
                shape = (spec.input_shape[0], channels, *spec.input_shape[2:])
            elif shape is not None and "channels" not in self.params and len(shape) >= 2:
                kwargs["channels"] = shape[1]
        return kwargs, shape or spec.input_shape


@dataclass
class BuiltModel:
    """A module in eval mode, with the example input it was built for.

    ``code_paths`` are the files of the user's own code (their model file, their package), where
    an error's ``file:line`` is looked for first."""

    name: str
    module: Any  # torch.nn.Module
    example: Any  # torch.Tensor
    input_shape: tuple[int, ...]
    kwargs: dict[str, Any]
    request: ModelRequest
    spec: registry.Spec | None
    code_paths: tuple[str, ...] = ()
    attn_files: tuple[str, ...] = ()  # the files of a user's --attn block (file.py:Name, package.module:Name)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


# ----------------------------------------------------------------------------- the user's code


def _is_module_path(location: str) -> bool:
    return all(part.isidentifier() for part in location.split("."))


def _user_file(location: str, attr: str, what: str = "model", option: str | None = None) -> Path:
    """The ``.py`` file named before the ':', checked: it exists, is a file, and its name is legal.

    ``what`` names the thing the file holds in messages (a model, an attention block); ``option`` is
    the parameter the file was given as."""
    path = Path(location).expanduser()
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UsageError(
                f"bad {what} file {short(repr(location))}: a file or folder name may be at most {NAME_MAX} bytes,"
                f" and one here has {len(os.fsencode(part))}.",
                option=option,
            )
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"no such file: {short(location)}. Check the path before the ':'.", option=option) from None
    except OSError as exc:
        raise UsageError(f"cannot read {short(location)}: {exc.strerror or exc}.", option=option) from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{short(location)} is a folder; give a Python file: path/to/file.py:{short(attr, 40)}.", option=option)
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{short(location)} is not a regular file; give a Python file: path/to/file.py:{short(attr, 40)}.", option=option
        )
    if path.suffix != ".py":
        raise UsageError(f"{short(location)} is not a .py file; give path/to/file.py:Name or package.module:Name.", option=option)
    return path.resolve()


def _import_file(path: Path, option: str | None = None) -> Any:
    mod_name = f"attncli_user_{path.stem}_{abs(hash(str(path))) & 0xFFFFFF:x}"
    module = sys.modules.get(mod_name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except (Exception, SystemExit) as exc:  # the user's file ran and raised (sys.exit included): theirs to fix
        del sys.modules[mod_name]
        raise user_code_error(f"importing {display_path(path)}", exc, [path], option=option) from exc
    return module


def _import_module(location: str, option: str | None = None) -> Any:
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as exc:
        if exc.name and (location == exc.name or location.startswith(exc.name + ".")):
            raise UsageError(f"could not import module {location!r}: {exc}. Is it on PYTHONPATH?", option=option) from exc
        raise user_code_error(f"importing {location}", exc, option=option) from exc  # the module imports something missing
    except (Exception, SystemExit) as exc:  # the user's module ran and raised
        raise user_code_error(f"importing {location}", exc, option=option) from exc


def _code_paths(module: Any) -> tuple[str, ...]:
    """The user's module file and, for a package module, the top package's folders."""
    paths = [module.__file__] if getattr(module, "__file__", None) else []
    top = sys.modules.get(module.__name__.partition(".")[0])
    if top is not None and top is not module:
        paths.extend(getattr(top, "__path__", []) or [])
    return tuple(str(p) for p in paths)


def _load_user_object(model: str, what: str = "model", option: str | None = None) -> tuple[Any, tuple[str, ...]]:
    """The class or function of ``file.py:Name`` / ``package.module:Name``, and its code paths.

    ``what`` names the object in messages (a model, an attention block); ``option`` is the
    parameter ``model`` was given as (None for the model itself)."""
    location, _, attr = model.rpartition(":")
    if not location or not attr:
        raise UsageError(f"bad {what} {short(repr(model))}: write path/to/file.py:Name or package.module:Name.", option=option)
    if location.endswith(".py") or "/" in location or os.sep in location or not _is_module_path(location):
        module = _import_file(_user_file(location, attr, what, option), option)
    else:
        module = _import_module(location, option)
    obj = module
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        raise UsageError(
            f"{short(location)} has no {short(repr(attr), 40)}; it defines: {', '.join(names[:12]) or 'nothing public'}.",
            option=option,
        ) from None
    return obj, _code_paths(module)


# ----------------------------------------------------------------------------- arguments


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "none"}
_TYPE_NAMES = {"bool": bool, "int": int, "float": float, "str": str, "None": type(None), "NoneType": type(None)}


def _signature(factory: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(factory, eval_str=True)
    except Exception:  # annotations that do not evaluate (the user's): read them as text below
        pass
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        return None


def _simple_types(annotation: Any) -> tuple[type, ...] | None:
    """The plain types an annotation allows (int, float, bool, str, None), or None when it allows
    anything else too (a tuple, a class...): then the value is not checked here."""
    if isinstance(annotation, str):
        optional = annotation.startswith("Optional[")
        parts = [p.strip() for p in annotation.removeprefix("Optional[").removesuffix("]" if optional else "").split("|")]
        found = [_TYPE_NAMES.get(p) for p in parts] + ([type(None)] if optional else [])
        return None if None in found else tuple(found)  # type: ignore[arg-type]
    if annotation is None:
        return (type(None),)
    if annotation in _TYPE_WORDS:
        return (annotation,)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        out: list[type] = []
        for arg in typing.get_args(annotation):
            sub = _simple_types(arg)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(out)
    return None


def _expected_types(param: inspect.Parameter) -> tuple[type, ...] | None:
    if param.annotation is not inspect.Parameter.empty:
        return _simple_types(param.annotation)
    default = param.default
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, (int, float)):
        return (float,)  # unannotated with a number default: any number
    return None


def _fits(value: Any, types_: tuple[type, ...]) -> bool:
    for t in types_:
        if t is bool and isinstance(value, bool):
            return True
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if t is str and isinstance(value, str):
            return True
        if t is type(None) and value is None:
            return True
    return False


def _check_arguments(
    factory: Any, kwargs: dict[str, Any], what: str, given: Iterable[str], *, prefix: str = "", complete: bool = True
) -> None:
    """Refuse, before calling ``factory``: arguments it does not take, required ones missing (when
    ``complete``), and a value given by the user of a type its annotation (or default) rules out."""
    sig = _signature(factory)
    if sig is None:
        return
    params = sig.parameters
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(named))
        if unknown:
            raise UsageError(
                f"{what} takes no parameter {', '.join(prefix + u for u in unknown)}; it takes: {', '.join(named) or 'none'}.",
                option="params",
            )
    if complete:
        missing = [n for n in named if params[n].default is inspect.Parameter.empty and n not in kwargs]
        if missing:
            raise UsageError(f"{what} needs a value for {', '.join(prefix + m for m in missing)}.", option="params")
    for key in given:
        if key not in params or key not in kwargs:
            continue
        expected = _expected_types(params[key])
        value = kwargs[key]
        per_stage = prefix and isinstance(value, tuple) and not isinstance(params[key].default, tuple)
        if expected is not None and not all(_fits(v, expected) for v in (value if per_stage else (value,))):
            words = " or ".join(dict.fromkeys(_TYPE_WORDS[t] for t in expected))
            raise UsageError(f"{what} takes {prefix}{key} as {words}, not {short(repr(value), 60)}.", option="params")


def _torch_root() -> str | None:
    torch = sys.modules.get("torch")
    return os.path.dirname(os.path.realpath(torch.__file__)) if torch is not None and getattr(torch, "__file__", None) else None


def _raised_in_torch(exc: BaseException) -> bool:
    """True when the innermost frame is torch's own code (torch refused a size or a value)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    root = _torch_root()
    return bool(frames and root and os.path.realpath(frames[-1].filename).startswith(root + os.sep))


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation the machine could not serve (CPU or CUDA)."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)
    )


def _fmt_kwargs(kwargs: dict[str, Any]) -> str:
    return short(", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments", 200)


def _construction_error(
    exc: BaseException, request: ModelRequest, spec: registry.Spec | None, kwargs: dict[str, Any], code_paths: Iterable[str]
) -> AttncliError | None:
    """What to tell the user when the constructor raised ``exc``; None when it is a bug in attncli."""
    location = user_location(exc, code_paths)
    given = _fmt_kwargs({k: request.params[k] for k in request.params}) if request.params else ""
    if is_out_of_memory(exc):
        return UsageError(
            f"building {request.model}{f' with {given}' if given else ''} needs more memory than this machine has:"
            f" {exception_text(exc)}",
            option="params" if given else None,
        )
    if location is not None or spec is None:  # the user's class (or a plugin's) raised
        return user_code_error(f"building {request.model}({_fmt_kwargs(kwargs)})", exc, code_paths)
    if not request.changes_defaults:
        return None  # a registry row fails as registered: a bug
    if isinstance(exc, (ValueError, TypeError, AssertionError)) or _raised_in_torch(exc):
        # our constructors validate their arguments with ValueError; torch refuses impossible sizes
        reason = first_line(exc) or type(exc).__name__
        option = "params" if request.params else "attn_position" if request.attn_position else "attn" if request.attn else None
        return UsageError(f"could not build {request.model} with {_fmt_kwargs(kwargs)}: {reason}", option=option)
    return None


def _check_parameter_memory(factory: Any, kwargs: dict[str, Any], request: ModelRequest, shape: tuple[int, ...]) -> None:
    """Build on the meta device (no memory) and refuse a model whose parameters and input do not
    fit in :data:`MEMORY_SHARE` of the memory available, before the real build starts filling it.
    Only for registry models: their constructors have no side effects, a user's class may."""
    import torch

    try:
        with torch.device("meta"):
            probe = factory(**kwargs)
        size = sum(t.numel() * t.element_size() for t in (*probe.parameters(), *probe.buffers()))
    except Exception:  # only a pre-check: the real build below raises the same error, and reports it
        return
    free = available_memory_bytes()
    total = size + INPUT_BYTES_PER_ELEMENT * math.prod(shape)
    if free is not None and total > MEMORY_SHARE * free:
        raise UsageError(
            f"{request.model} with {_fmt_kwargs(request.params)} has {size / 2**30:,.1f} GiB of parameters,"
            f" and this machine has {free / 2**30:,.1f} GiB available (a forward needs as much again);"
            " give smaller values.",
            option="params",
        )


def _check_forward_signature(module: Any, name: str) -> None:
    """attncli feeds one tensor: refuse a forward that needs more, or none."""
    sig = _signature(module.forward)
    if sig is None:
        return
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p.name for p in positional if p.default is inspect.Parameter.empty]
    required += [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is inspect.Parameter.empty]
    if len(required) > 1:
        raise UsageError(
            f"{name}'s forward takes {len(required)} inputs ({', '.join(required)}); attncli feeds one tensor:"
            " wrap the model in a module whose forward takes one."
        )
    if not positional:
        raise UsageError(f"{name}'s forward takes no input; attncli feeds it one tensor.")


def _attention_block(attn: str) -> tuple[Any, str, tuple[str, ...]]:
    """The block ``attn`` names: its class (or function), its name, and the user's code paths.

    A registry name gives the registered block (a plugin's code is the user's); ``file.py:Name`` or
    ``package.module:Name`` gives the user's own block, named as given."""
    if is_user_model(attn):
        factory, paths = _load_user_object(attn, "attention block", option="attn")
        if not callable(factory):
            raise UsageError(f"{attn} is not a class or function returning an nn.Module.", option="attn")
        return factory, attn, paths
    block = registry.get(attn)
    if block.kind != "block":
        raise UsageError(f"the attention block must be a block, and {block.name} is a {block.kind}.", option="attn")
    factory = block.load_factory()
    module_name = block.target.partition(":")[0]
    paths = _code_paths(sys.modules[module_name]) if module_name.partition(".")[0] != "attncli" else ()
    return factory, block.name, paths


def _defined_at(factory: Any) -> CodeLocation | None:
    """The line of the user's code that defines how ``factory`` is called: its ``__init__``, or the function."""
    func = vars(factory).get("__init__") if isinstance(factory, type) else factory
    code = getattr(func, "__code__", None)
    return CodeLocation(code.co_filename, code.co_firstlineno) if code is not None else None


def _check_block_arguments(
    factory: Any, name: str, args: dict[str, Any], given: Iterable[str], *, complete: bool
) -> None:
    """Refuse, before building, ``-p attn.*`` arguments the block cannot take, and (``complete``: the
    user's own block) a block the backbones cannot build as they build every block,
    ``factory(channels=C, **args)`` with each unit's channel count C."""
    from attncli.blocks import BUILT_BY_BACKBONE, check_block_factory

    if "channels" in args:
        raise UsageError(
            f"{ATTN_PREFIX}channels is set by the backbone: each block gets its residual unit's channel count.",
            option="params",
        )
    if complete:
        try:
            check_block_factory(factory, name)
        except ValueError as exc:
            where = _defined_at(factory)
            raise UsageError(f"{exc}{f' (at {where})' if where else ''}.", option="attn") from None
    sig = _signature(factory)
    # the arguments the backbone gives stand in for their values, so the rest is checked as a call would be
    stand_ins = dict.fromkeys(n for n in BUILT_BY_BACKBONE if sig is not None and n in sig.parameters)
    _check_arguments(factory, {**stand_ins, **args}, name, given, prefix=ATTN_PREFIX, complete=complete)


# ----------------------------------------------------------------------------- building


def build(request: ModelRequest) -> BuiltModel:
    """Build the module (eval mode, weights seeded) and its seeded example input."""
    if "torch" not in sys.modules:  # its first import takes seconds: a step of its own
        with progress.step(progress.IMPORTING_TORCH):
            import torch  # noqa: F401
    with progress.step(f"building {request.display_name}"):
        return _build_module(request)


def _build_module(request: ModelRequest) -> BuiltModel:
    import torch

    spec = request.spec()
    kwargs, shape = request.resolved()
    check_input_size(shape)
    given = request.given_keys()
    attn_args = {k[len(ATTN_PREFIX):]: kwargs.pop(k) for k in list(kwargs) if k.startswith(ATTN_PREFIX)}
    code_paths: tuple[str, ...] = ()
    if spec is None:
        factory, code_paths = _load_user_object(request.model)
        if not callable(factory):
            raise UsageError(f"{request.model} is not a class or function returning an nn.Module.")
    else:
        factory = spec.load_factory()
        module_name = spec.target.partition(":")[0]
        if module_name.partition(".")[0] != "attncli":  # a plugin: its code is the user's
            code_paths = _code_paths(sys.modules[module_name])
    attn = request.attn or (spec.attn if spec is not None else None)
    if request.attn and (spec is None or not spec.takes_attn):
        holds = f" ({spec.name} already holds {spec.attn})" if spec is not None and spec.attn else ""
        raise UsageError(
            f"an attention block goes into a backbone that takes one (resnet*, resnext*, mobilenetv2, cnn1d),"
            f" not {request.model}{holds}.",
            option="attn",
        )
    if (attn_args or "attn_position" in kwargs) and not attn:
        raise UsageError(
            f"attn.* parameters and attn_position need an attention block: name one (and {request.model} must take one).",
            option="attn",
        )
    from attncli.blocks import canonical_args

    attn_factory = None  # the user's own block (file.py:Name): the backbone gets the class itself
    attn_files: tuple[str, ...] = ()
    if attn:
        block_factory, block_name, block_paths = _attention_block(attn)
        code_paths = (*code_paths, *block_paths)
        kwargs["attn"] = block_name  # shown and recorded as given; a registry block by its own name
        if is_user_model(attn):
            attn_factory = block_factory
            attn_files = tuple(block_paths)
        try:
            canonical = canonical_args(block_factory, attn_args)
        except ValueError as exc:
            raise UsageError(f"{block_name}: {exc}.", option="params") from None
        given_attn = [k[len(ATTN_PREFIX):] for k in given if k.startswith(ATTN_PREFIX)]
        _check_block_arguments(
            block_factory, block_name, canonical, canonical_args(block_factory, dict.fromkeys(given_attn)),
            complete=attn_factory is not None,
        )
        if attn_args:
            kwargs["attn_args"] = attn_args
    if spec is not None and spec.kind == "block":
        try:  # the user's old argument names (rate=) override the row's defaults under the new ones
            user_args = canonical_args(factory, request.params)
        except ValueError as exc:
            raise UsageError(f"{request.model}: {exc}.", option="params") from None
        kwargs = {**canonical_args(factory, {k: v for k, v in kwargs.items() if k not in request.params}), **user_args}
        given = list(user_args)
    _check_arguments(factory, kwargs, request.model, [k for k in given if not k.startswith(ATTN_PREFIX)])

    with torch.random.fork_rng(devices=[]):
        if spec is not None and not code_paths and request.params:
            _check_parameter_memory(factory, kwargs, request, shape)
        torch.manual_seed(request.seed)
        try:
            module = factory(**kwargs) if attn_factory is None else factory(**{**kwargs, "attn": attn_factory})
        except AttncliError:
            raise
        except (Exception, SystemExit) as exc:
            error = _construction_error(exc, request, spec, kwargs, code_paths)
            if error is None:
                raise
            raise error from exc
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"{request.model} returned {type(module).__name__}, not a torch.nn.Module.")
    _check_forward_signature(module, request.display_name)
    if request.weights is not None:
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
        code_paths=code_paths,
        attn_files=attn_files,
    )


# The errors torch.load raises on a file that is not a readable checkpoint.
_UNREADABLE = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, OSError, KeyError, IndexError,
               AttributeError, ImportError, TypeError, UnicodeDecodeError)


def load_weights(module: Any, path: str | Path) -> None:
    """Load a saved state_dict (``weights_only``); any key or shape mismatch is a one-line error."""
    import torch

    if not str(path).strip():
        raise UsageError("the weights path is empty: give the file saved with torch.save(model.state_dict()).", option="weights")
    file = Path(path)
    try:
        info = file.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"no such weights file: {short(path)}.", option="weights") from None
    except OSError as exc:
        raise UsageError(f"cannot read weights file {short(path)}: {exc.strerror or exc}.", option="weights") from None
    if stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{short(path)} is a folder, not a weights file.", option="weights")
    if info.st_size == 0:
        raise UsageError(f"{short(path)} is empty (0 bytes), not a saved state_dict.", option="weights")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except _UNREADABLE as exc:
        raise UsageError(f"could not read {short(path)} as a saved state_dict: {exception_text(exc)}", option="weights") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UsageError(f"{short(path)} holds a {type(state).__name__}, not a state_dict; save model.state_dict().", option="weights")
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        first = state[not_tensors[0]]
        more = f" (+{len(not_tensors) - 4} more)" if len(not_tensors) > 4 else ""
        raise UsageError(
            f"{short(path)} is not a state_dict of tensors: {', '.join(map(str, not_tensors[:4]))}{more}"
            f" hold{'s' if len(not_tensors) == 1 else ''} {type(first).__name__} values, not tensors; save model.state_dict().",
            option="weights",
        )
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [str(k) for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched)):
        if keys:
            more = f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""
            problems.append(f"{label}: {', '.join(keys[:4])}{more}")
    if problems:
        raise UsageError(f"{short(path)} does not fit this model: {'; '.join(problems)}.", option="weights")
    module.load_state_dict(state, strict=True)


# ----------------------------------------------------------------------------- running


def _forward_error(
    built: BuiltModel, exc: BaseException, shape: tuple[int, ...], action: str, changed: bool
) -> AttncliError | None:
    """What to tell the user when running the model raised ``exc``; None when it is a bug in attncli."""
    shape_text = ",".join(map(str, shape))
    if is_out_of_memory(exc):
        return UsageError(f"{built.name} ran out of memory on an input of shape {shape_text}: {exception_text(exc)}", option="input_shape")
    location = user_location(exc, built.code_paths)
    if location is not None:
        if isinstance(exc, SHAPE_ERRORS) and not raised_at(exc, location):
            # torch's own layer refused what the user's line gave it: most likely the input's shape
            return UserCodeError(
                f"{built.name} rejects an input of shape {shape_text}: at {location}, {exception_text(exc)}",
                location=location, option="input_shape",
            )
        return user_code_error(f"{built.name}'s {action}", exc, built.code_paths)
    changed = changed or built.request.changes_defaults or tuple(shape) != tuple(built.input_shape)
    if isinstance(exc, SHAPE_ERRORS) and (built.spec is None or changed):
        reason = first_line(exc) or type(exc).__name__
        return UsageError(f"{built.name} rejects an input of shape {shape_text}: {reason}", option="input_shape")
    if built.spec is None:
        return UserCodeError(f"{built.name}'s {action} failed: {exception_text(exc)}")
    return None


@contextlib.contextmanager
def forward_errors(
    built: BuiltModel, shape: Iterable[int] | None = None, *, action: str = "forward", changed: bool = False
) -> Iterator[None]:
    """Run the model's code (a forward, a trace, a timing loop) under the error policy: an input it
    cannot take, or an exception of the user's own code, becomes one line (``file:line`` named);
    anything else rises as it is. ``changed``: the caller chose inputs other than the example
    (batch sizes, shapes), so torch refusing them is a usage error, not a bug."""
    try:
        yield
    except AttncliError:
        raise
    except (Exception, SystemExit) as exc:
        error = _forward_error(built, exc, tuple(shape or built.input_shape), action, changed)
        if error is None:
            raise
        raise error from exc


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}[{key!r}]")
    else:
        yield path, value


def check_outputs(built: BuiltModel, out: Any) -> None:
    """Refuse an output attncli cannot use: it takes a tensor, or a tuple, list or dict of tensors."""
    import torch

    def what(value: Any) -> str:
        return "None" if value is None else f"a {type(value).__name__}"

    if isinstance(out, torch.Tensor):
        return
    problem = None
    if not isinstance(out, (tuple, list, dict)):
        problem = what(out)
    elif any(not c for c in _containers(out)):
        problem = f"{what(out)} with an empty container in it" if out else f"an empty {type(out).__name__}"
    else:
        bad = next(((path, v) for path, v in _leaves(out, "output") if not isinstance(v, torch.Tensor)), None)
        if bad is not None:
            problem = f"{what(out)} holding {what(bad[1])} at {bad[0]}"
    if problem:
        raise UsageError(f"{built.name}'s forward returns {problem}; attncli needs a tensor, or a tuple, list or dict of tensors.")


def _containers(value: Any) -> Iterator[Any]:
    if isinstance(value, (tuple, list, dict)):
        yield value
        for item in value.values() if isinstance(value, dict) else value:
            yield from _containers(item)


def output_shapes(out: Any) -> dict[str, list[int]]:
    """Every tensor of an output by its path (``output``, ``output[0]``, ``output['logits']``)."""
    return {path: list(t.shape) for path, t in _leaves(out, "output")}


def run_example(built: BuiltModel, x: Any = None) -> Any:
    """One forward pass under inference mode, on a copy of the example (a forward that writes into
    its input leaves ``built.example`` as it was). Errors follow :func:`forward_errors`; an output
    that is not a tensor, or a tuple, list or dict of tensors, is refused."""
    import torch

    x = built.example.clone() if x is None else x
    with torch.inference_mode(), forward_errors(built, tuple(x.shape)):
        out = built.module(x)
    check_outputs(built, out)
    return out
