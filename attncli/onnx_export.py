"""ONNX export at exactly the opset asked for, written atomically, with its provenance in the file.

Two exporters ship with torch and neither is honest on its own about opsets:
- the TorchScript exporter (``dynamo=False``) converts operators for opsets 7 to 20; asked for a
  higher one it only stamps the header;
- the dynamo exporter (the default of ``torch.onnx.export``) builds at opset 18 or newer; asked for
  a lower one it tries the ONNX version converter, and when that fails (as it does for every
  registered block at 11) it logs a warning and writes an opset-18 file anyway.
So ``auto`` takes TorchScript below 18 and dynamo from 18 on, and whatever the exporter, the opset is
read back from the written file's ``opset_import``: a file that is not at the requested opset is
deleted and the export fails.

This module imports torch and onnx only inside functions, so the CLI can read its constants cheaply.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from attncli.errors import CheckFailed, UsageError

# 17 is the default because the common deployment runtimes all take it (ONNX Runtime >= 1.13,
# TensorRT >= 8.6, OpenVINO), the TorchScript exporter covers it fully, and it has every operator
# the registered models need (LayerNormalization arrived in 17).
DEFAULT_OPSET = 17
# Below 11, Slice (before 10) and Pad/Resize (before 11) take their sizes as attributes, not tensors,
# so a graph cannot follow a dynamic height or width (the TorchScript exporter refuses coordatt's
# slice at 9); 11 is also the oldest opset that the deployment runtimes still test.
MIN_OPSET = 11
TORCHSCRIPT_MAX_OPSET = 20  # above 20 the TorchScript exporter stamps the header without converting
DYNAMO_MIN_OPSET = 18  # the dynamo exporter's operator library starts at 18
EXPORTERS = ("auto", "torchscript", "dynamo")
# How a file was made: one exporter at the asked opset, or the dynamo exporter at DYNAMO_MIN_OPSET
# and then onnx's version converter down to the asked one (auto's last resort below 18, for a model
# the TorchScript exporter cannot convert, or converts wrongly).
ROUTES = ("torchscript", "dynamo", "dynamo+version-converter")
LOWEST_OPSET = "min"  # opset="min": the lowest opset from MIN_OPSET up that exports (and verifies)
DYNAMIC_CHOICES = ("batch", "spatial", "all", "none")
# The file's precision: float32, or float16 (weights and activations; the inputs and outputs too
# unless keep_io_types). PyTorch stays the float32 reference of verification either way.
DTYPES = ("float32", "float16")
# Every axis a model can take dynamic, by default in export and check alike: a file that accepts any
# batch and spatial size is what deployment wants. Models whose own forward fixes the spatial size
# (they flatten into a Linear) fall back to a dynamic batch, and say so (resolve_dynamic).
DEFAULT_DYNAMIC = "all"
INPUT_NAME = "input"
_SPATIAL_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
# The temporary file's name: short, so that a target name of NAME_MAX (255 bytes) still works;
# recognisable, so that a later export into the folder can find what a killed run left; and it says
# which machine (a hash of the host name) and which process wrote it, so that only files whose
# writer is gone are ever removed.
TEMP_PREFIX = ".attncli-"
TEMP_SUFFIX = ".part"
_TEMP_NAME = re.compile(r"\.attncli-([0-9a-f]{8})-([0-9]+)-[0-9a-f]{8}\.part")


# ----------------------------------------------------------------------------- opsets and exporters


@functools.cache
def max_opset() -> int:
    """The newest opset attncli can export and verify: known to onnx, onnxscript and onnxruntime."""
    import onnx
    import onnxscript.onnx_opset as opsets

    versions = [int(n[5:]) for n in dir(opsets) if n.startswith("opset") and n[5:].isdigit()]
    newest = min(max(versions), onnx.defs.onnx_opset_version())
    while newest > TORCHSCRIPT_MAX_OPSET and not _onnxruntime_loads_opset(newest):
        newest -= 1
    return newest


def _onnxruntime_loads_opset(opset: int) -> bool:
    """onnxruntime has no API for its newest opset: try to load a one-node model stamped with it."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [value],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


def validate_opset(opset: int, exporter: str = "auto") -> None:
    """Reject an opset outside the supported range, or one the chosen exporter cannot honour (exit 2)."""
    if exporter not in EXPORTERS:
        raise UsageError(f"--exporter must be one of {', '.join(EXPORTERS)}, not {exporter!r}.")
    if opset < MIN_OPSET or (opset > TORCHSCRIPT_MAX_OPSET and opset > max_opset()):
        raise UsageError(
            f"opset {opset} is not supported: attncli exports opsets {MIN_OPSET}-{TORCHSCRIPT_MAX_OPSET} with the"
            f" TorchScript exporter and {DYNAMO_MIN_OPSET}-{max_opset()} with the dynamo exporter."
        )
    if exporter == "torchscript" and opset > TORCHSCRIPT_MAX_OPSET:
        raise UsageError(
            f"the TorchScript exporter converts up to opset {TORCHSCRIPT_MAX_OPSET} (above it only the header changes):"
            f" use --exporter dynamo (or auto) for opset {opset}."
        )


def choose_exporter(opset: int, exporter: str = "auto") -> str:
    """``auto``: TorchScript below opset 18, where the dynamo exporter cannot go; dynamo from 18 on."""
    validate_opset(opset, exporter)
    if exporter != "auto":
        return exporter
    return "torchscript" if opset < DYNAMO_MIN_OPSET else "dynamo"


def dynamic_axes_for(rank: int, dynamic: str, channels_axis: int = 1) -> dict[int, str]:
    """Named dynamic axes of an input (N, C, *spatial): ``batch``, ``height``/``width`` or ``length``.

    ``channels_axis``: where the channels are (1, or the last axis of a channels-last model); the
    spatial axes are the others after the batch."""
    if dynamic not in DYNAMIC_CHOICES:
        raise UsageError(f"--dynamic must be one of {', '.join(DYNAMIC_CHOICES)}, not {dynamic!r}.")
    channels = check_channels_axis(channels_axis, rank)
    axes: dict[int, str] = {}
    if dynamic in ("batch", "all") and rank >= 1:
        axes[0] = "batch"
    if dynamic in ("spatial", "all"):
        if rank < 3:
            raise UsageError(f"--dynamic {dynamic}: a rank-{rank} input has no spatial axes; use --dynamic batch.")
        spatial = spatial_axes(rank, channels)
        names = _SPATIAL_NAMES.get(len(spatial), tuple(f"dim{i}" for i in spatial))
        axes.update(dict(zip(spatial, names)))
    return axes


def check_channels_axis(channels_axis: int, rank: int) -> int:
    """The channel axis as a non-negative index (``-1`` is the last); the batch axis 0 cannot be it."""
    axis = int(channels_axis)
    if rank >= 2 and axis < 0:
        axis += rank
    if rank >= 2 and not 1 <= axis < rank:
        raise UsageError(
            f"the channel axis must be one of 1-{rank - 1} (or -1) for a rank-{rank} input, not {channels_axis}.",
            option="channels_axis",
        )
    return axis


def spatial_axes(rank: int, channels_axis: int = 1) -> list[int]:
    """The axes of a rank-``rank`` input that are neither the batch (0) nor the channels."""
    return [a for a in range(1, rank) if a != channels_axis]


def default_path(name: str, opset: int) -> Path:
    """``./<name>_opset<N>.onnx``; a user model ``dir/file.py:Net`` is named ``Net``, ``resnet50+cbam`` ``resnet50_cbam``."""
    base = name.rpartition(":")[2] if ":" in name else name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "model"
    return Path(f"{safe}_opset{opset}.onnx")


def check_destination(path: str | Path | None, name: str, opset: int, force: bool = False) -> Path:
    """The file to write (``path`` or the default), refused early when it cannot or must not be written.

    This is an early courtesy, not the guarantee: another process may create the file meanwhile,
    and the write itself refuses to replace it (see ``_put_in_place``).
    """
    target = Path(path) if path is not None else default_path(name, opset)
    folder = target.parent
    try:
        if target.is_dir():
            raise UsageError(f"{target} is a folder: give a file name, e.g. -o {target / default_path(name, opset)}.")
        if target.exists() and not force:
            raise UsageError(f"{target} already exists: pass --force to overwrite it, or choose another path with -o.")
        if not folder.is_dir():
            raise UsageError(f"cannot write {target}: {folder} is not an existing folder.")
    except OSError as exc:  # a name over NAME_MAX, a loop of symbolic links...
        raise UsageError(f"cannot write {_shorten(str(target))}: {exc.strerror or exc}.") from None
    if not os.access(folder, os.W_OK):  # root passes this whatever the mode; the write itself still checks
        raise UsageError(f"cannot write to folder {folder}: Permission denied.")
    return target


def _shorten(text: str, keep: int = 120) -> str:
    return text if len(text) <= keep else f"{text[:keep // 2]}...{text[-keep // 2:]}"


# ----------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class TraceWarning:
    """A TracerWarning raised while the exporter traced the model: where in the model's code, and what.

    Each says that a Python value computed from a tensor (a branch on ``x.mean() > 0``, a loop over
    ``x.size(0)`` turned into an int) was frozen into the graph at its traced value: the file may
    hold one branch of the model only.
    """

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.summary}"

    @property
    def summary(self) -> str:
        """The warning's first sentence (torch's messages go on to explain tracing in general)."""
        first = self.message.strip().split(". ", 1)[0].rstrip(".")
        return first + "."


@dataclass
class ExportResult:
    path: str
    model: str
    opset: int
    exporter: str
    dynamic: str
    input_name: str
    input_shape: tuple[int, ...]
    dynamic_axes: dict[int, str]
    output_names: list[str]
    num_params: int
    file_bytes: int
    export_seconds: float
    metadata: dict[str, str] = field(default_factory=dict)
    parity: Any = None  # attncli.parity.ParityReport once verified
    # PyTorch's outputs for the example input, {output name: array}: verification reuses them
    # for its first case instead of running a deep net once more.
    example_outputs: dict[str, Any] = field(default_factory=dict, repr=False)
    # The exporter's TracerWarnings from the model's own code; they fail the export unless allowed.
    trace_warnings: list[TraceWarning] = field(default_factory=list)
    allow_trace_warnings: bool = False
    # Temporary files of killed exports (their writer is gone) removed from the folder before writing.
    removed_stale: list[str] = field(default_factory=list)
    seed: int | None = None  # the request's: the weights' and the example's
    # Which route made the file (one of ROUTES): the exporter alone, or the dynamo exporter at
    # DYNAMO_MIN_OPSET then onnx's version converter down to ``opset``.
    route: str = "torchscript"
    # Routes tried before the one that made the file, and why each was not taken: "route: reason".
    rejected_routes: list[str] = field(default_factory=list)
    # The file's graph at a glance (as `attncli inspect` counts it): nodes of the main graph, and
    # the five most frequent operators with their counts (every node at every depth).
    node_count: int | None = None
    top_operators: list[tuple[str, int]] = field(default_factory=list)
    # the file's precision (one of DTYPES), and whether its inputs and outputs stayed float32
    dtype: str = "float32"
    keep_io_types: bool = False
    # export --quantize: the int8 file's judgement (an attncli.quantize.QuantReport), None when not asked
    quantization: Any = None
    # export --simplify: onnxscript's optimizer on the verified model, None when not asked:
    # {"tool", "nodes_before", "nodes_after", "applied", "problem", "seconds"}; applied False means
    # the unsimplified (verified) model was written, and "problem" says why
    simplify: dict[str, Any] | None = None

    @property
    def trace_problem(self) -> str:
        """One line when the trace warned and that was not allowed, else ''."""
        if not self.trace_warnings or self.allow_trace_warnings:
            return ""
        n = len(self.trace_warnings)
        more = f" (and {n - 1} more)" if n > 1 else ""
        first = self.trace_warnings[0]
        return (
            f"the exporter's trace warned at {first.file}:{first.line} that the file may not follow the model on other"
            f" inputs: {first.summary.rstrip('.')}{more}"
        )

    @property
    def passed(self) -> bool:
        """No disallowed trace warning, and verification (when it ran) passed."""
        return (not self.trace_problem and (self.parity is None or bool(self.parity))
                and (self.quantization is None or bool(self.quantization)))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["dynamic_axes"] = {str(k): v for k, v in self.dynamic_axes.items()}
        data["parity"] = self.parity.as_dict() if self.parity is not None else None
        data["passed"] = self.passed
        data["trace_problem"] = self.trace_problem or None
        del data["example_outputs"]
        data["top_operators"] = [{"op": op, "count": n} for op, n in self.top_operators]
        data["quantization"] = self.quantization.as_dict() if self.quantization is not None else None
        # one environment object, at the top: the verification's (it ran on a device), else this process's
        if data["parity"] is not None and "environment" in data["parity"]:
            data["environment"] = data["parity"].pop("environment")
        else:
            from attncli.environment import describe

            data["environment"] = describe(seed=self.seed)
        return data


# ----------------------------------------------------------------------------- export


def export_onnx(
    built: Any,
    path: str | Path | None = None,
    opset: int | str = DEFAULT_OPSET,
    dynamic: str = "batch",
    exporter: str = "auto",
    force: bool = False,
    *,
    allow_trace_warnings: bool = False,
    outputs: Any = None,
    verify: Any = None,
    channels_axis: int = 1,
    dtype: str = "float32",
    keep_io_types: bool = False,
    simplify: bool = False,
) -> ExportResult:
    """Export ``built`` (a BuiltModel) to ``path``, check the file, and only then put it in place.

    The file is written to a temporary name in the destination folder and moved to ``path`` once
    the checker, shape inference and the opset check have passed, so an error, Ctrl-C or SIGTERM
    never leaves a half-written or wrong-opset model behind. Without ``force`` the move never
    replaces a file, even one that another process created during the export.

    Routes (``ROUTES``): ``exporter="auto"`` tries TorchScript below opset 18, then the dynamo
    exporter at 18 converted down by onnx's version converter; from 18 on, dynamo then TorchScript.
    Each route runs in memory, and its model is taken only when the checker passes, its
    ``opset_import`` is ``opset``, and ``verify`` (a function ``(path, example_outputs) ->
    ParityReport``, called on a private copy of the candidate) passes when given. When every
    route that made a model failed verification, the first such model is written (for
    inspection) with its failed report in ``parity``. ``opset="min"``: the lowest opset from
    ``MIN_OPSET`` up that a route takes. When no route works the error names the operator and the
    lowest opset, found by trying a few upward, at which the model does export.

    The exporter's TracerWarnings from the model's code are returned in ``trace_warnings``; unless
    ``allow_trace_warnings``, they make ``passed`` False (the file is still written, for inspection).
    The model runs on copies of its example input: a forward that writes into its input leaves
    ``built.example`` as it was. ``outputs``: the model's outputs for its example (as
    ``modelspec.run_example`` gives them) when the caller has them, which saves a forward pass.
    ``channels_axis``: the input's channel axis, never dynamic (1; the last for channels-last models).
    ``dtype="float16"``: each route's model converted to half (``to_float16``), its inputs and
    outputs too unless ``keep_io_types``; the metadata records ``attncli.dtype``.
    ``simplify``: once a route's model is accepted, its float32 model goes through onnxscript's
    optimizer (``simplify_model``; then to half for float16), is checked and verified again, and is
    written instead only when all of that passes (the result's ``simplify`` says what happened; the
    metadata records ``attncli.simplified``). It needs ``verify``.
    """
    check_dtype(dtype, keep_io_types)
    if simplify and verify is None:
        raise UsageError("--simplify writes a simplified file only once it verifies: drop --no-verify or --simplify.", option="simplify")
    lowest = isinstance(opset, str) and opset == LOWEST_OPSET
    if lowest:
        validate_opset(MIN_OPSET, exporter)
        target = check_destination(path, built.name, MIN_OPSET, force) if path is not None else None
    else:
        choose_exporter(int(opset), exporter)
        target = check_destination(path, built.name, int(opset), force)

    rank = len(built.input_shape)
    axes = dynamic_axes_for(rank, dynamic, channels_axis)
    if outputs is None:
        outputs = _run_model(built)
    output_names, output_axes, tensors = _output_axes(outputs, built.input_shape, axes)
    example_outputs = {n: t.detach().cpu().numpy() for n, t in zip(output_names, tensors)}
    attempt = _RouteAttempts(built, exporter, axes, output_names, output_axes, verify, example_outputs)
    channels = check_channels_axis(channels_axis, rank)
    if channels != 1:  # verify FILE.onnx alone plans its shapes around the same channel axis
        attempt.extra_metadata["attncli.channels_axis"] = str(channels)
    attempt.dtype, attempt.keep_io_types, attempt.simplify = dtype, keep_io_types, simplify
    attempt.extra_metadata["attncli.dtype"] = dtype  # verification's default tolerances follow it
    if dtype != "float32":
        attempt.extra_metadata["attncli.keep_io_types"] = str(keep_io_types).lower()

    start = time.perf_counter()
    if lowest:
        chosen = attempt.lowest()
    else:
        chosen = attempt.at(int(opset))
        if chosen is None:
            raise attempt.failure(int(opset))
    seconds = time.perf_counter() - start
    simplified = None
    if simplify:
        written, simplified = attempt.simplified(chosen)
    else:
        written = chosen
    if target is None:
        target = check_destination(path, built.name, chosen.opset, force)
    folder = target.parent
    removed = remove_stale_temp_files(folder)
    _write_checked(written.data, target, folder, written.opset, written.exporter, force)
    if written.parity is not None:
        written.parity.file = str(target)
    node_count, top_operators = _graph_counts(written.data)
    result = ExportResult(
        path=str(target),
        model=built.name,
        opset=chosen.opset,
        exporter=chosen.exporter,
        dynamic=dynamic,
        input_name=INPUT_NAME,
        input_shape=tuple(built.input_shape),
        dynamic_axes=axes,
        output_names=output_names,
        num_params=built.num_params,
        file_bytes=target.stat().st_size,
        export_seconds=seconds,
        metadata=written.metadata,
        parity=written.parity,
        example_outputs=example_outputs,
        trace_warnings=chosen.trace_warnings,
        allow_trace_warnings=allow_trace_warnings,
        removed_stale=[str(p) for p in removed],
        seed=built.request.seed,
        route=chosen.route,
        rejected_routes=[f"{c.route} at opset {c.opset}: {c.problem}" for c in attempt.rejected(chosen)],
        node_count=node_count,
        top_operators=top_operators,
        dtype=dtype,
        keep_io_types=keep_io_types,
        simplify=simplified,
    )
    if chosen.error is not None:  # onnxruntime could not load the only model made: the file stays, for inspection
        raise chosen.error
    return result


def check_dtype(dtype: str, keep_io_types: bool = False) -> None:
    """A dtype export makes (``DTYPES``); ``keep_io_types`` means something for a half file only."""
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.", option="dtype")
    if keep_io_types and dtype == "float32":
        raise UsageError("--keep-io-types keeps a float16 file's inputs and outputs float32: give --dtype float16 with it.",
                         option="keep_io_types")


def _graph_counts(data: bytes, top: int = 5) -> tuple[int, list[tuple[str, int]]]:
    """The written model's node count and its ``top`` most frequent operators, from the bytes in
    hand (the file was just written from them)."""
    import onnx

    from attncli.inspect_onnx import count_operators

    nodes, _, histogram = count_operators(onnx.load_model_from_string(data).graph)
    return nodes, histogram[:top]


def recorded_channels_axis(path: str | Path) -> int:
    """The channel axis an attncli export recorded in ``path`` (1 when it recorded none)."""
    try:
        spec = spec_from_file(path)
    except UsageError:  # a missing or broken file: verification says so
        return 1
    value = ((spec or {}).get("metadata") or {}).get("attncli.channels_axis", "1")
    return int(value) if value.lstrip("-").isdigit() else 1


def routes_for(opset: int, exporter: str = "auto") -> list[str]:
    """The routes tried, in order, for ``opset`` with ``exporter`` (see ``export_onnx``)."""
    which = choose_exporter(opset, exporter)
    if exporter != "auto":
        return [which]
    if opset < DYNAMO_MIN_OPSET:
        return ["torchscript", "dynamo+version-converter"]
    return ["dynamo"] + (["torchscript"] if opset <= TORCHSCRIPT_MAX_OPSET else [])


@dataclass
class _Candidate:
    """One route's attempt at one opset: its model (bytes, metadata appended) or why it has none."""

    route: str
    opset: int
    data: bytes = b""
    metadata: dict[str, str] = field(default_factory=dict)
    trace_warnings: list[TraceWarning] = field(default_factory=list)
    parity: Any = None
    problem: str = ""  # no model, or a model that failed verification: why, in one line
    error: CheckFailed | None = None  # onnxruntime could not load the model (verification's error)
    added_in: int | None = None  # the opset an operator the exporter lacked arrived in, when it said
    raw: bytes = b""  # with simplify: the exporter's float32 model, before any dtype conversion and metadata

    @property
    def exporter(self) -> str:
        return "torchscript" if self.route == "torchscript" else "dynamo"

    @property
    def made(self) -> bool:
        return bool(self.data)

    @property
    def accepted(self) -> bool:
        return self.made and self.error is None and (self.parity is None or bool(self.parity))


class _RouteAttempts:
    """The routes of one export, tried in memory; the dynamo exporter's opset-18 model is made once
    and converted to each lower opset from there."""

    # the file's precision (one of DTYPES): a float16 route model is converted from the float32 one
    dtype = "float32"
    keep_io_types = False
    simplify = False  # keep each route's float32 model (``_Candidate.raw``) for ``simplified``

    def __init__(self, built: Any, exporter: str, axes: dict[int, str], output_names: list[str],
                 output_axes: list[dict[int, str]], verify: Any, example_outputs: dict[str, Any]) -> None:
        self.built, self.exporter, self.axes = built, exporter, axes
        self.output_names, self.output_axes = output_names, output_axes
        self.verify, self.example_outputs = verify, example_outputs
        self.tried: dict[int, list[_Candidate]] = {}
        self.extra_metadata: dict[str, str] = {}
        self._dynamo18: tuple[Any, list[TraceWarning]] | CheckFailed | None = None

    def at(self, opset: int) -> _Candidate | None:
        """The first route that gives an accepted model at ``opset``; None when none does."""
        if opset not in self.tried:
            self.tried[opset] = []
            for route in routes_for(opset, self.exporter):
                candidate = self._attempt(route, opset)
                self.tried[opset].append(candidate)
                if candidate.accepted:
                    break
        candidates = self.tried[opset]
        if candidates and candidates[-1].accepted:
            return candidates[-1]
        if self.verify is not None:  # no route verifies: the first model made is written, for inspection
            return next((c for c in candidates if c.made), None)
        return None

    def rejected(self, chosen: _Candidate) -> list[_Candidate]:
        return [c for c in self.tried.get(chosen.opset, []) if c is not chosen]

    def lowest(self) -> _Candidate:
        """The lowest opset from MIN_OPSET up with an accepted model; an operator's own 'added in
        opset N' skips the opsets below N."""
        opset = MIN_OPSET
        newest = TORCHSCRIPT_MAX_OPSET if self.exporter == "torchscript" else max_opset()
        while opset <= newest:
            chosen = self.at(opset)
            if chosen is not None and chosen.accepted:
                return chosen
            hints = [c.added_in for c in self.tried[opset] if c.added_in]
            opset = max([opset + 1, *hints])
        raise CheckFailed(f"{self.built.name} does not export at any opset from {MIN_OPSET} to {newest}: {self._reason(MIN_OPSET)}.",
                          option="opset")

    def failure(self, opset: int) -> CheckFailed:
        """Why nothing works at ``opset``, and the lowest opset a few tries upward that does."""
        candidates = self.tried.get(opset, [])
        if len(candidates) == 1 and not candidates[0].made:  # one route, as asked: its own words
            return CheckFailed(candidates[0].problem, option="opset")
        hints = sorted({c.added_in for c in candidates if c.added_in and c.added_in > opset})
        upward = [o for o in dict.fromkeys([*hints, DYNAMO_MIN_OPSET, opset + 1]) if opset < o <= max_opset()]
        found = None
        for other in upward[:3]:
            chosen = self.at(other)
            if chosen is not None and chosen.accepted:
                found = chosen
                break
        line = f"{self.built.name} does not export at opset {opset}: {self._reason(opset)}"
        if found is not None:
            does = "exports and verifies" if self.verify is not None else "exports"
            line += f"; opset {found.opset} {does} (the {found.route} route)"
        return CheckFailed(line + ".", option="opset")

    def _reason(self, opset: int) -> str:
        candidates = self.tried.get(opset, [])
        for c in candidates:
            if c.added_in and c.added_in > opset:
                op = c.problem.split("operator ", 1)[1].split(" ", 1)[0] if "operator " in c.problem else "an operator"
                return f"{op} has no form below opset {c.added_in}"
        prefix = f"{self.built.name} does not export at opset "
        reasons = []
        for c in candidates:
            text = c.problem.split(": ", 1)[1] if c.problem.startswith(prefix) and ": " in c.problem else c.problem
            reasons.append(f"{c.route}: {text.rstrip('.')}")
        return "; ".join(reasons) or "no route"

    def _attempt(self, route: str, opset: int) -> _Candidate:
        candidate = _Candidate(route, opset)
        try:
            data, candidate.trace_warnings = self._model_bytes(route, opset)
            if self.simplify:
                candidate.raw = data
            if self.dtype == "float16":
                data = to_float16(data, self.built.name, self.keep_io_types)
            _check_in_memory(data, opset, candidate.exporter)
        except CheckFailed as exc:
            candidate.problem = str(exc)
            cause = exc.__cause__
            added = _TS_ADDED.search(_ANSI.sub("", str(cause))) if cause is not None else None
            candidate.added_in = int(added.group(1)) if added else None
            return candidate
        candidate.metadata = provenance(self.built, candidate.exporter, self.axes)
        candidate.metadata.update(self.extra_metadata)
        if route != candidate.exporter:
            candidate.metadata["attncli.route"] = route
        candidate.data = data + _metadata_message(candidate.metadata)
        if self.verify is not None:
            self._verify(candidate)
        return candidate

    def simplified(self, chosen: _Candidate) -> tuple[_Candidate, dict[str, Any]]:
        """``chosen``'s model through onnxscript's optimizer (before the float16 conversion), checked
        as a route's model is (full checker, opset read back) and verified again at every shape:
        the simplified candidate when all of that passes, else ``chosen``; and what happened."""
        start = time.perf_counter()
        info: dict[str, Any] = {"tool": simplifier_name(), "nodes_before": _graph_counts(chosen.data)[0],
                                "nodes_after": None, "applied": False, "problem": None, "seconds": 0.0}
        if not chosen.accepted:
            info["problem"] = "not tried: the exported model did not verify"
            return chosen, info
        candidate = _Candidate(chosen.route, chosen.opset, trace_warnings=chosen.trace_warnings)
        try:
            data = simplify_model(chosen.raw, self.built.name)
            if self.dtype == "float16":
                data = to_float16(data, self.built.name, self.keep_io_types)
            info["nodes_after"] = _graph_counts(data)[0]
            written = _opset_in(data, len(data))
            if written != chosen.opset:
                raise CheckFailed(f"the simplified model is at opset {written}, not the asked {chosen.opset}")
            try:
                import onnx

                onnx.checker.check_model(data, full_check=True)
            except Exception as exc:
                raise CheckFailed(f"the ONNX checker rejects the simplified model: {str(exc).strip().splitlines()[0]}") from exc
        except CheckFailed as exc:
            info["problem"], info["seconds"] = str(exc), time.perf_counter() - start
            return chosen, info
        candidate.metadata = dict(chosen.metadata, **{"attncli.simplified": info["tool"]})
        candidate.data = data + _metadata_message(candidate.metadata)
        self._verify(candidate)
        info["seconds"] = time.perf_counter() - start
        if not candidate.accepted:
            info["problem"] = f"the simplified model fails: {candidate.problem}"
            return chosen, info
        info["applied"] = True
        return candidate, info

    def _model_bytes(self, route: str, opset: int) -> tuple[bytes, list[TraceWarning]]:
        args = (self.axes, self.output_names, self.output_axes)
        if route != "dynamo+version-converter":
            return _run_exporter(self.built, route, opset, *args)
        if self._dynamo18 is None:
            try:
                data, warns = _run_exporter(self.built, "dynamo", DYNAMO_MIN_OPSET, *args)
                self._dynamo18 = (data, warns)
            except CheckFailed as exc:
                self._dynamo18 = exc
        if isinstance(self._dynamo18, CheckFailed):
            raise self._dynamo18
        data, warns = self._dynamo18
        return _convert_down(data, opset, self.built.name), warns

    def _verify(self, candidate: _Candidate) -> None:
        """Verification of a model not yet in place: a private copy in a temporary folder of its own."""
        with tempfile.TemporaryDirectory(prefix="attncli-") as folder:
            copy = Path(folder) / f"{candidate.route.replace('+', '-')}_opset{candidate.opset}.onnx"
            copy.write_bytes(candidate.data)
            try:
                candidate.parity = self.verify(str(copy), self.example_outputs)
            except CheckFailed as exc:
                candidate.error, candidate.problem = exc, str(exc)
                return
        if not candidate.parity:
            candidate.problem = f"verification failed ({candidate.parity.message})"


def simplifier_name() -> str:
    """``onnxscript.optimizer <version>``: what ``simplify_model`` runs, as the metadata records it."""
    import onnxscript

    return f"onnxscript.optimizer {onnxscript.__version__}"


def simplify_model(data: bytes, name: str) -> bytes:
    """A model's bytes through onnxscript's optimizer (``onnxscript.optimizer.optimize``): constant
    folding, shape arithmetic on known shapes folded, dead nodes removed, functions inlined. The
    opset and the dynamic axes are kept (the caller checks the opset and verifies the result)."""
    import onnx
    import onnxscript.optimizer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimized = onnxscript.optimizer.optimize(onnx.load_model_from_string(data))
    except Exception as exc:
        text = _ANSI.sub("", str(exc)).strip().splitlines()
        raise CheckFailed(f"onnxscript's optimizer fails on {name}: {(text[0] if text else type(exc).__name__)[:300]}") from exc
    # it leaves the shapes it inferred in value_info; the exporters' files carry none, and
    # onnxruntime's quantizer rewrites nodes under them and then fails its own shape inference
    del optimized.graph.value_info[:]
    return _serialize(optimized, name)


def _convert_down(data: bytes, opset: int, name: str) -> bytes:
    """The dynamo exporter's opset-18 model converted to ``opset`` by onnx's version converter."""
    import onnx
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(onnx.load_from_string(data), opset)
    except Exception as exc:
        text = _ANSI.sub("", str(exc)).strip().splitlines()
        raise CheckFailed(f"onnx's version converter cannot take {name} from opset {DYNAMO_MIN_OPSET} to {opset}:"
                          f" {(text[0] if text else type(exc).__name__)[:300]}") from exc
    _drop_reduce_noop_attribute(converted.graph, opset)
    return _serialize(converted, name)


# Opset 18 gave every Reduce* operator ``noop_with_empty_axes`` (only ReduceSum had it, from 13).
# onnx's converter (1.x) turns their ``axes`` input back into an attribute going down from 18 but
# leaves that attribute on, and the checker rejects the node. At its default 0 it means what the
# older operator does anyway (empty axes reduce over all of them), so it is dropped; a 1 is kept,
# and the checker refuses the model as it should.
_REDUCE_WITHOUT_NOOP = {"ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


def _drop_reduce_noop_attribute(graph: Any, opset: int) -> None:
    if opset >= DYNAMO_MIN_OPSET:
        return
    for node in graph.node:
        without = node.op_type in _REDUCE_WITHOUT_NOOP or (node.op_type == "ReduceSum" and opset < 13)
        if node.domain in ("", "ai.onnx") and without:
            keep = [a for a in node.attribute if not (a.name == "noop_with_empty_axes" and a.i == 0)]
            if len(keep) != len(node.attribute):
                del node.attribute[:]
                node.attribute.extend(keep)
        for attribute in node.attribute:  # subgraphs (If, Loop, Scan) hold nodes too
            if attribute.g is not None and attribute.HasField("g"):
                _drop_reduce_noop_attribute(attribute.g, opset)
            for sub in attribute.graphs:
                _drop_reduce_noop_attribute(sub, opset)


def _check_opset(written: int | None, opset: int, which: str) -> None:
    """A model that is not at the requested opset is refused, whoever wrote it."""
    if written != opset:
        hint = (f" (it builds at opset {DYNAMO_MIN_OPSET} or newer and could not convert down);"
                f" use --exporter auto or torchscript below opset {DYNAMO_MIN_OPSET}") if which == "dynamo" else ""
        raise CheckFailed(f"the {which} exporter wrote opset {written}, not the requested {opset}{hint}; no file was written.")


def to_float16(data: bytes, name: str, keep_io_types: bool = False) -> bytes:
    """A float32 model's bytes converted to float16 by onnxruntime's own converter
    (``onnxruntime.transformers.float16``): weights and activations in half, the inputs and outputs
    too unless ``keep_io_types`` (then Cast nodes at the graph's edges). The opset is left as it
    is: the converter changes element types and adds Casts, which every opset has.

    The float32 model is exported and converted rather than a half copy of the model exported:
    PyTorch's CPU half kernels are incomplete and slow, and its exporters would trace them."""
    import onnx

    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16
    except ImportError as exc:  # a minimal onnxruntime build without its transformers tools
        raise UsageError(f"--dtype float16 needs onnxruntime's float16 converter (onnxruntime.transformers.float16): {exc}.") from exc
    model = onnx.load_model_from_string(data)
    with warnings.catch_warnings():  # it warns of each value it clamps into half's range
        warnings.simplefilter("ignore")
        try:
            half = convert_float_to_float16(model, keep_io_types=keep_io_types, disable_shape_infer=False)
        except Exception as exc:
            raise CheckFailed(f"onnxruntime's float16 converter fails on {name}: {str(exc).strip().splitlines()[0][:300]}") from exc
    _sort_topologically(half.graph)
    return _serialize(half, name)


def _sort_topologically(graph: Any) -> None:
    """Put ``graph``'s nodes in an order where each comes after the nodes whose outputs it reads, as
    the checker requires: with keep_io_types the float16 converter appends the Casts of the graph's
    inputs at the end. Otherwise the order is kept (a stable Kahn sort)."""
    nodes = list(graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    needs = [{producer[name] for name in node.input if name in producer and producer[name] != i} for i, node in enumerate(nodes)]
    done: set[int] = set()
    order: list[int] = []
    while len(order) < len(nodes):
        ready = [i for i in range(len(nodes)) if i not in done and needs[i] <= done]
        if not ready:  # a cycle: leave the order to the checker's judgement
            return
        done.add(ready[0])
        order.append(ready[0])
    if order != list(range(len(nodes))):
        del graph.node[:]
        graph.node.extend(nodes[i] for i in order)


def _check_in_memory(data: bytes, opset: int, which: str) -> None:
    """The checks ``_write_checked`` makes on the file, made on a route's bytes before any is written."""
    import onnx

    _check_opset(_opset_in(data, len(data)), opset, which)
    try:  # the bytes as they are: parsing them into Python and back costs more than the check
        onnx.checker.check_model(data, full_check=True)
    except Exception as exc:
        raise CheckFailed(f"the {which} exporter wrote a model the ONNX checker rejects: {str(exc).strip().splitlines()[0]}") from exc


def _run_model(built: Any) -> Any:
    """The model's outputs for a copy of its example input, its prints sent to stderr."""
    from attncli.modelspec import run_example

    with model_prints_to_stderr():
        return run_example(built, built.example.clone())


@contextlib.contextmanager
def model_prints_to_stderr() -> Iterator[None]:
    """Run a model's forward with whatever it prints sent to stderr, at the Python level and at the
    file-descriptor level (a C extension's printf): stdout carries attncli's JSON, and a model that
    prints must not break it."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    saved = None
    try:
        try:
            saved = os.dup(1)
            os.dup2(2, 1)
        except OSError:
            saved = None
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _output_axes(outputs: Any, input_shape: tuple[int, ...], axes: dict[int, str]) -> tuple[list[str], list[dict[int, str]], list[Any]]:
    """Output names, and which output axes follow a dynamic input axis (same rank, same size at export)."""
    import torch

    if isinstance(outputs, torch.Tensor):
        tensors = [outputs]
    elif isinstance(outputs, (tuple, list)) and outputs and all(isinstance(t, torch.Tensor) for t in outputs):
        tensors = list(outputs)
    else:
        raise UsageError(f"the model returns {type(outputs).__name__}; attncli exports models returning a tensor or a tuple of tensors.")
    names = ["output"] if len(tensors) == 1 else [f"output_{i}" for i in range(len(tensors))]
    out_axes = []
    for t in tensors:
        follow = {}
        for axis, name in axes.items():
            same = axis == 0 or t.dim() == len(input_shape)
            if axis < t.dim() and same and t.shape[axis] == input_shape[axis]:
                follow[axis] = name
        out_axes.append(follow)
    return names, out_axes, tensors


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[list[warnings.WarningMessage]]:
    """Silence the exporters: warnings, progress logs, and the TorchScript exporter's C++ dump of
    the whole graph on stdout when it fails (its log switch is left on by a bug in torch 2.x).

    One kind of warning is kept, in the list it yields: the tracer's TracerWarnings from the model's
    own code. They are the only sign that a Python branch or loop on a tensor's value was frozen.
    Those raised inside torch's own modules stay ignored, as torch itself ignores them.
    """
    import logging

    from torch.jit import TracerWarning

    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    saved = []
    sink = tempfile.TemporaryFile()
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            except OSError:
                pass
        # the model's prints go to the sink too when sys.stdout is not file descriptor 1
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sys.stderr):
            # the last filter added is the first tried
            warnings.simplefilter("ignore")
            warnings.filterwarnings("always", category=TracerWarning)
            warnings.filterwarnings("ignore", category=TracerWarning, module="torch.(?!jit)")
            yield caught
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        sink.close()
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _trace_warnings(caught: list[warnings.WarningMessage]) -> list[TraceWarning]:
    from torch.jit import TracerWarning

    found = [TraceWarning(w.filename, int(w.lineno or 0), str(w.message)) for w in caught if issubclass(w.category, TracerWarning)]
    return list(dict.fromkeys(found))  # one per place and message, in order


def _run_exporter(
    built: Any, which: str, opset: int, axes: dict[int, str], output_names: list[str], output_axes: list[dict[int, str]]
) -> tuple[bytes, list[TraceWarning]]:
    """Run one exporter in memory: the serialized ONNX model (no file, no external-data side files)
    and the TracerWarnings from the model's code."""
    import io

    import torch

    example = built.example.clone()  # a forward that writes into its input must not change the example
    try:
        with _quiet_exporters() as caught, torch.no_grad():
            if which == "torchscript":
                buffer = io.BytesIO()
                dynamic_axes = {INPUT_NAME: axes} if axes else None
                if axes:
                    dynamic_axes.update({n: a for n, a in zip(output_names, output_axes) if a})
                torch.onnx.export(
                    built.module, (example,), buffer, dynamo=False, opset_version=opset,
                    input_names=[INPUT_NAME], output_names=output_names, dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                )
                return buffer.getvalue(), _trace_warnings(caught)
            # Named string axes become Dim.DYNAMIC and keep their names in the file; unlike a named
            # torch.export.Dim they do not refuse an example of batch size 1.
            shapes = (dict(axes),) if axes else None
            program = torch.onnx.export(
                built.module, (example,), None, dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=output_names, dynamic_shapes=shapes,
                external_data=False, verbose=False, optimize=True, report=False,
            )
            return _serialize(program.model_proto, built.name), _trace_warnings(caught)
    except (UsageError, CheckFailed):
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        raise CheckFailed(f"{built.name} does not export at opset {opset} with the {which} exporter: {explain_export_error(exc, opset)}") from exc


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TS_UNSUPPORTED = re.compile(r"Exporting the operator '([^']+)' to ONNX opset version (\d+) is not supported")
_TS_ADDED = re.compile(r"Support for this operator was added in version (\d+)")
_DYNAMO_NO_FUNCTION = re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)'")
_STATIC_DIM = re.compile(r"inferred a static shape of (\d+) for dimension inputs\[[^\]]*\]\.shape\[(\d+)\]")


def explain_export_error(exc: BaseException, opset: int) -> str:
    """One line out of an exporter's exception: the operator and the opset that has it when known."""
    text = _ANSI.sub("", str(exc))
    match = _TS_UNSUPPORTED.search(text)
    if match:
        added = _TS_ADDED.search(text)
        where = f"; it needs opset {added.group(1)} or newer" if added else \
            f"; no opset of the TorchScript exporter has it (the dynamo exporter builds from opset {DYNAMO_MIN_OPSET})"
        return f"operator {match.group(1)} has no ONNX form at opset {match.group(2)}{where}."
    match = _DYNAMO_NO_FUNCTION.search(text)
    if match:
        op = match.group(1).replace(".", "::", 1)
        return f"operator {op} has no ONNX translation in the dynamo exporter at opset {opset}."
    match = _STATIC_DIM.search(text)
    if match:
        return (f"the model fixes input axis {match.group(2)} to {match.group(1)}, so that axis cannot be dynamic;"
                " export with a dynamic batch only (or no dynamic axis).")
    if "## Exception summary" in text:
        summary = text.split("## Exception summary", 1)[1].split("(Refer to the full stack trace", 1)[0]
        text = summary
    lines = [ln.strip(" -|") for ln in text.strip().splitlines() if ln.strip(" -|")]
    line = " ".join(lines[:3]) if lines else type(exc).__name__
    line = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>:", r"\1:", line).split(" [Caused by", 1)[0]
    line = line.split(" Please feel free to request support", 1)[0].replace("..", ".")
    return line[:400]


def provenance(built: Any, which: str, axes: dict[int, str]) -> dict[str, str]:
    """What the file records about its making (``metadata_props``): the model spec that rebuilds it
    (``attncli.request``: the target, params, input shape, attention block and position, seed,
    weights file and its sha256), the resolved arguments, the exporter, the example shape, the
    dynamic axes and the versions.

    Paths in the request (a ``file.py:Name`` target or block, the weights file) are recorded
    absolute, resolved against the current folder at export, so that ``verify FILE.onnx`` rebuilds
    the model from any folder; ``attncli.request_as_given`` keeps them as they were typed."""
    import torch

    from attncli.version import __version__

    req = built.request
    request = {
        "model": _absolute_target(req.model), "params": req.params,
        "input_shape": list(req.input_shape) if req.input_shape else None,
        "attn": _absolute_target(req.attn) if req.attn else None, "attn_position": req.attn_position,
        "seed": req.seed, "weights": os.path.abspath(req.weights) if req.weights else None,
        "weights_sha256": weights_sha256(req.weights) if req.weights else None,
    }
    as_given = {"model": req.model, "attn": req.attn, "weights": req.weights}
    return {
        "attncli.version": __version__,
        "attncli.model": built.name,
        "attncli.arguments": json.dumps(built.kwargs, sort_keys=True, default=str),
        "attncli.request": json.dumps(request, sort_keys=True, default=str),
        "attncli.request_as_given": json.dumps(as_given, sort_keys=True),
        "attncli.exporter": which,
        "attncli.example_input_shape": ",".join(str(d) for d in built.input_shape),
        "attncli.dynamic_axes": json.dumps({INPUT_NAME: {str(k): v for k, v in axes.items()}}),
        "attncli.parameters": str(built.num_params),
        "torch.version": torch.__version__,
    }


def _absolute_target(target: str) -> str:
    """``dir/file.py:Name`` with the file's absolute path; a registry name or ``package.module:Name`` as it is."""
    from attncli.modelspec import is_user_model

    location, _, attr = target.rpartition(":")
    if not is_user_model(target) or not location or not (location.endswith(".py") or "/" in location or os.sep in location):
        return target
    return f"{os.path.abspath(os.path.expanduser(location))}:{attr}"


def weights_sha256(path: str | Path) -> str:
    """The sha256 of a weights file, read in 1 MiB blocks (a checkpoint can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def spec_from_file(path: str | Path) -> dict[str, Any] | None:
    """The model spec an attncli export recorded in ``path``: the ``attncli.request`` metadata as a
    dict (model, params, input_shape, attn, attn_position, seed, weights, weights_sha256; keys an
    older attncli did not record are None), with ``as_given`` (the paths as typed at export) and
    ``metadata`` (every ``attncli.*`` entry as written). None when the file has no attncli metadata.

    Only the file's top-level fields are read (``metadata_props`` is field 14 of ModelProto, each
    entry a ``key`` (1) and ``value`` (2)): the graph and its weights are not parsed. A later entry
    of a key wins, as when protobuf merges.
    """
    import mmap

    file = Path(path)
    if not file.is_file():  # the messages of parity.load_onnx, which verification gives for these files
        raise UsageError(f"no such file: {path}." if not file.exists() else f"{path} is not a file.")
    metadata: dict[str, str] = {}
    with open(file, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise UsageError(f"{path} is not a valid ONNX model: it is empty.")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                for field_no, value in _wire_fields(buf, 0, size):
                    if field_no == 14 and isinstance(value, tuple):
                        entry = dict(_wire_fields(buf, *value))
                        key, val = entry.get(1), entry.get(2)
                        if isinstance(key, tuple):
                            text = bytes(buf[slice(*val)]).decode() if isinstance(val, tuple) else ""
                            metadata[bytes(buf[slice(*key)]).decode()] = text
            except (IndexError, ValueError, UnicodeDecodeError):
                raise UsageError(f"{path} is not a valid ONNX model: it is not a protobuf message.") from None
    if "attncli.request" not in metadata:
        return None
    try:
        request = json.loads(metadata["attncli.request"])
        as_given = json.loads(metadata.get("attncli.request_as_given", "{}"))
    except ValueError:
        raise UsageError(f"{path}: its attncli.request metadata is not valid JSON; give the model to verify against.") from None
    keys = ("model", "params", "input_shape", "attn", "attn_position", "seed", "weights", "weights_sha256")
    spec = {key: request.get(key) for key in keys}
    # JSON has no tuples: a comma value of -p (k_size=3,5,5,7) comes back as a list
    spec["params"] = {k: _as_tuples(v) for k, v in (spec["params"] or {}).items()}
    spec["seed"] = 0 if spec["seed"] is None else spec["seed"]
    spec["as_given"] = {key: as_given.get(key, request.get(key)) for key in ("model", "attn", "weights")}
    spec["metadata"] = {k: v for k, v in metadata.items() if k.startswith("attncli.")}
    return spec


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def spec_differences(recorded: dict[str, Any], request: Any) -> list[str]:
    """How ``request`` (a ModelRequest) differs from the spec ``spec_from_file`` read: one sentence
    per field, in the order model, params, input shape, attention block, its position, seed,
    weights; empty when they agree. File targets and weights compare by absolute path, input shapes
    as resolved (the model's default shape given explicitly is no difference)."""
    from attncli.modelspec import ModelRequest

    def shown(value: Any, none: str = "none") -> str:
        if value is None or value == {}:
            return none
        if isinstance(value, dict):
            return " ".join(f"{k}={_shown_value(v)}" for k, v in sorted(value.items()))
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        return str(value)

    given = recorded.get("as_given") or {}
    differences = []
    if _absolute_target(request.model) != recorded["model"]:
        differences.append(f"the file was exported from model {given.get('model') or recorded['model']}; you gave {request.model}")
    if {k: _as_tuples(v) for k, v in request.params.items()} != recorded["params"]:
        differences.append(f"the file was exported with params {shown(recorded['params'])}; you gave {shown(request.params)}")
    mine = _resolved_shape(lambda: request)
    theirs = recorded["input_shape"]
    if theirs is None:  # not given at export: the model's default, resolved the same way
        theirs = _resolved_shape(lambda: ModelRequest.make(recorded["model"], recorded["params"], None, recorded["attn"]))
    if mine is not None and theirs is not None and list(mine) != list(theirs):
        differences.append(f"the file was exported with input shape {shown(theirs)}; you gave {shown(mine)}")
    if (_absolute_target(request.attn) if request.attn else None) != recorded["attn"]:
        differences.append(
            f"the file was exported with attention block {given.get('attn') or recorded['attn'] or 'none'}; you gave {request.attn or 'none'}"
        )
    if request.attn_position != recorded["attn_position"]:
        differences.append(
            f"the file was exported with attention position {recorded['attn_position'] or 'the default'};"
            f" you gave {request.attn_position or 'the default'}"
        )
    if request.seed != recorded["seed"]:
        differences.append(f"the file was exported with seed {recorded['seed']}; you gave {request.seed}")
    mine_weights = os.path.abspath(request.weights) if request.weights else None
    if mine_weights != recorded["weights"]:
        differences.append(
            f"the file was exported with weights {given.get('weights') or recorded['weights'] or 'none (seeded initialisation)'};"
            f" you gave {request.weights or 'none'}"
        )
    elif mine_weights and recorded.get("weights_sha256") and os.path.isfile(mine_weights):
        if weights_sha256(mine_weights) != recorded["weights_sha256"]:
            differences.append(f"{request.weights} has changed since the export: its sha256 differs from the one recorded in the file")
    return differences


def _shown_value(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _resolved_shape(make_request: Any) -> tuple[int, ...] | None:
    """The example input shape of the request ``make_request()`` returns, or None when it cannot be
    told without building."""
    try:
        return make_request().resolved()[1]
    except Exception:  # an unknown name, or a user model without a shape: the build says so
        return None


def _metadata_message(metadata: dict[str, str]) -> bytes:
    """A serialized ModelProto holding only ``metadata_props``. Appended to an exported model's bytes
    it adds these entries to the model (protobuf merges concatenated messages, appending repeated
    fields): a deep net's weights are not parsed and serialized again to add a few strings."""
    import onnx

    extra = onnx.ModelProto()
    for key, value in metadata.items():
        extra.metadata_props.add(key=key, value=value)
    return extra.SerializeToString()


def _serialize(model: Any, name: str) -> bytes:
    try:
        return model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GiB
        raise UsageError(f"{name} is larger than 2 GB as ONNX; attncli writes single-file models only ({exc}).") from exc


def _write_checked(data: bytes, target: Path, folder: Path, opset: int, which: str, force: bool = False) -> None:
    """Temp file in the destination folder, checker (the structural check: the same bytes had the
    full one, strict type and shape inference, in memory), opset read back, then put in place.

    The temporary name is chosen before the file exists, so that a Ctrl-C or SIGTERM landing at
    any point after its creation finds the name to delete.
    """
    import onnx

    tmp = folder / temp_name()
    ours = True  # from before os.open: a signal may land between its return and the next line
    with _termination_unwinds():
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
            except FileExistsError:  # 32 random bits collided with another file of this process: leave it alone
                ours = False
                raise
            except OSError as exc:
                raise UsageError(f"cannot write to folder {folder}: {exc.strerror or exc}.") from exc
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:  # the file as written; its bytes had the full check (strict shape inference) in memory
                onnx.checker.check_model(str(tmp), full_check=False)
            except Exception as exc:
                raise CheckFailed(f"the {which} exporter wrote a model the ONNX checker rejects: {str(exc).strip().splitlines()[0]}") from exc
            _check_opset(file_opset(tmp), opset, which)
            _put_in_place(tmp, target, force)
        finally:
            if ours:  # after a rename it is gone already; after a link, this name is a second one
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _put_in_place(tmp: Path, target: Path, force: bool) -> None:
    """``tmp`` becomes ``target``: replacing it with ``force``, else only if no file has that name.

    Without ``force``, a hard link is the test and the creation in one step (link(2) fails when the
    name exists), so of two exports racing to one new path exactly one wins and the other is told.
    A file system without hard links gets the same guarantee from an O_EXCL creation that reserves
    the name, then a rename over the (empty) reservation.
    """
    if force:
        os.replace(tmp, target)
        return
    taken = UsageError(
        f"{target} already exists (another process created it during this export): pass --force to overwrite it,"
        " or choose another path with -o."
    )
    try:
        os.link(tmp, target)
        return
    except FileExistsError:
        raise taken from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.EACCES):
            raise UsageError(f"cannot write {_shorten(str(target))}: {exc.strerror or exc}.") from exc
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise taken from None
    os.replace(tmp, target)


def temp_name() -> str:
    """``.attncli-<host>-<pid>-<random>.part``: at most 45 bytes, whatever the target's name."""
    return f"{TEMP_PREFIX}{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


@functools.cache
def _host_tag() -> str:
    # process ids are per machine: a folder shared between machines holds other machines' live files
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files that exports killed outright (SIGKILL, a power cut) left in ``folder``.

    Only names of the form ``temp_name`` gives are considered, written on this machine by a process
    that is no longer running: a live export's file, another machine's and any other file are left
    alone. A process id reused since is taken as alive, which errs on the side of keeping the file.
    Returns the files removed.
    """
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return []
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if not match or match.group(1) != _host_tag():
            continue
        pid = int(match.group(2))
        try:
            if pid == os.getpid() or _process_alive(pid) or not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:  # removed meanwhile by another export, or not ours to remove
            continue
        removed.append(Path(entry.path))
    return removed


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process id a writer can have: keep its file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, and belongs to another user
        return True
    try:  # a zombie (killed, not yet reaped by its parent) writes nothing any more
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class _Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the program is so that cleanup code runs on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _termination_unwinds() -> Iterator[None]:
    """Inside, SIGTERM and SIGHUP unwind the stack as Ctrl-C does, so the temporary file is deleted;
    then the process ends by the same signal, as it would have without this.

    Only signals left at their default action are taken over (a handler someone installed, or
    ``nohup``'s ignored SIGHUP, is kept), and only in the main thread, where Python runs handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum: int, frame: Any) -> None:
        raise _Terminated(signum)

    taken = []
    try:
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, unwind)
                taken.append(sig)
        yield
    except _Terminated as exc:
        for sig in taken:
            signal.signal(sig, signal.SIG_DFL)
        taken = []
        signal.raise_signal(exc.signum)  # to this thread, synchronously: the default action ends the process here
        raise SystemExit(128 + exc.signum) from None  # were the signal blocked
    finally:
        for sig in taken:
            signal.signal(sig, signal.SIG_DFL)


def read_opset(model: Any) -> int | None:
    """The default-domain (ai.onnx) opset of a ModelProto."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def file_opset(path: str | Path) -> int | None:
    """The default-domain (ai.onnx) opset that an ONNX file imports, read from the file's top-level
    protobuf fields without parsing its graph (a deep net's weights are most of the file).

    ModelProto's field 8 is ``opset_import``, each an OperatorSetIdProto of ``domain`` (field 1) and
    ``version`` (field 2); the last entry for a domain wins, as when protobuf merges. A file that is
    not a well-formed message gives None.
    """
    import mmap

    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _opset_in(buf, size)


def _opset_in(buf: Any, size: int) -> int | None:
    """``file_opset`` of a buffer (an mmap, or a model's bytes) of ``size`` bytes."""
    try:
        found = None
        for field_no, value in _wire_fields(buf, 0, size):
            if field_no == 8 and isinstance(value, tuple):
                entry = dict(_wire_fields(buf, *value))
                domain = bytes(buf[slice(*entry[1])]).decode() if isinstance(entry.get(1), tuple) else ""
                if domain in ("", "ai.onnx") and isinstance(entry.get(2), int):
                    found = entry[2]
        return found
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def _wire_fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int | tuple[int, int]]]:
    """(field number, value) of a protobuf message in ``buf[start:end]``: an int for a varint, and
    (start, end) of the bytes for a length-delimited field; fixed-width fields are skipped."""

    def varint(pos: int) -> tuple[int, int]:
        result = shift = 0
        while True:
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    pos = start
    while pos < end:
        key, pos = varint(pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(pos)
            yield number, value
        elif wire == 2:
            length, pos = varint(pos)
            if pos + length > end:
                raise ValueError("field runs past the message")
            yield number, (pos, pos + length)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")
    if pos != end:
        raise ValueError("field runs past the message")


def accepts_other_spatial_sizes(built: Any, channels_axis: int = 1, multiple: int = 1) -> bool:
    """Does the PyTorch model itself run at a spatial size other than its example's?

    A net that flattens into a Linear (the 1-D ECA CNN) takes one length only: its spatial axes
    cannot be dynamic, whatever the exporter does. ``multiple``: the stride the model's spatial
    sizes must be a multiple of (a window-4 pixel_unshuffle takes multiples of 4 only).
    """
    import torch

    shape = list(built.input_shape)
    if len(shape) < 3:
        return False
    channels = check_channels_axis(channels_axis, len(shape))
    step = max(1, int(multiple))
    other = list(shape)
    for axis in spatial_axes(len(shape), channels):
        size = max(8, shape[axis] // 2 + 3)
        other[axis] = max(step, -(-size // step) * step) if step > 1 else size
    try:
        with torch.inference_mode(), model_prints_to_stderr():
            built.module(torch.zeros(other))
        return True
    except Exception:
        return False


def resolve_dynamic(built: Any, dynamic: str, channels_axis: int = 1, multiple: int = 1) -> str:
    """``dynamic``, or ``batch`` for ``all`` on a model whose forward fixes its spatial size;
    ``spatial`` on such a model is a usage error (the file could never be verified)."""
    if dynamic not in ("spatial", "all") or len(built.input_shape) < 3:
        return dynamic  # a rank-2 input has no spatial axes: the exporter says so
    if accepts_other_spatial_sizes(built, channels_axis, multiple):
        return dynamic
    if dynamic == "all":
        return "batch"
    raise UsageError(
        f"{built.name} runs at one spatial size only (its own forward fixes it), so --dynamic spatial cannot"
        " be honoured; use --dynamic batch or none."
    )
