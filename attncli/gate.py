"""The registry-wide gate: build, count, export and verify every selected model at every opset.

Each model runs in a fresh process, so a case starts from a clean interpreter: a model that changes
torch's global state (default dtype, grad mode, threads, RNG) or the registry cannot change the
next model's verdict, and a crash, a hang or an out-of-memory kill is that model's failure while the
run goes on. A fresh process would cost a torch import (seconds) if it were spawned; instead each is
forked from a server process that has imported torch, onnx and onnxruntime once and has run
nothing (``multiprocessing``'s forkserver with preloaded modules). A model's opsets share its
process, so it is built, counted and run once for all of them.

Each process leads its own process group, which is killed as a whole when its time is up, so a
child process the model started dies with it; its stdout and stderr go to a log that becomes the
case's ``log``, never to the report. SIGINT, SIGTERM and SIGHUP end every process and return the
report of what finished, marked as interrupted. The temporary folder of the run (exports, logs,
and the ``TMPDIR`` of every model process) is removed on every way out but SIGKILL.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from attncli import registry
from attncli.errors import UsageError
from attncli.reports import json_text

DEFAULT_CHECK_OPSETS = (11, 17)
# xfailed: a case expected to fail (its reason given) that failed, which passes the gate;
# xpassed: one expected to fail that passed, which fails it (the expectation is out of date).
STATUSES = ("passed", "failed", "error", "timeout", "xfailed", "xpassed")
DEFAULT_TIMEOUT_S = 300.0
LOG_TAIL_CHARS = 4000  # of a case's captured output, kept in the report

# What the fork server imports before it forks a model's process: everything a case uses on the
# common path (the first `import onnx` alone costs over a second). It imports nothing that reads
# the registry, so no plugin runs in the server, and it runs no model.
PRELOAD = (
    "numpy", "torch", "torch.onnx", "torch.onnx._internal.torchscript_exporter.utils", "onnx",
    "onnx.shape_inference", "onnx.checker", "onnxruntime", "fvcore.nn",
    "attncli.modelspec", "attncli.counting", "attncli.onnx_export", "attncli.parity",
    "attncli.blocks", "attncli.backbones",
)

# The exit status of an interrupted run, as the shell reports a process that the signal ended.
INTERRUPT_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s)


@dataclass(frozen=True)
class Case:
    """One model at one opset, and how to check it. ``model`` names the case (unique in a run);
    ``request`` (an ``attncli.modelspec.ModelRequest``) says what to build when it is not the
    registry model of that name: a user's file or package target, -p arguments, input shape,
    block, weights. ``shapes``, ``shapes_only``, ``atol`` and ``rtol`` are verification's;
    ``xfail`` is the reason the case is expected to fail (then failing passes the gate, passing
    does not)."""

    model: str
    opset: int
    dynamic: str = "all"
    allow_trace_warnings: bool = False
    request: Any = field(default=None, compare=False)
    shapes: tuple[tuple[int, ...], ...] = ()
    shapes_only: bool = False
    atol: float | None = None
    rtol: float | None = None
    xfail: str | None = None
    quantize: str | None = None  # "dynamic" or "static": also quantize to int8 and judge it (attncli.quantize)
    provider: str | None = None  # onnxruntime's execution provider for verification (None: the CPU one)

    @property
    def id(self) -> str:
        return f"{self.model}@opset{self.opset}"

    def model_request(self) -> Any:
        from attncli.modelspec import ModelRequest

        return self.request if self.request is not None else ModelRequest(self.model)


@dataclass
class CaseResult:
    model: str
    opset: int
    status: str  # passed | failed | error | timeout
    seconds: float
    message: str = ""
    max_abs: float | None = None
    dynamic: str = ""
    exporter: str | None = None
    shapes: list[list[int]] = field(default_factory=list)
    macs: int | None = None
    # build and count run once for a model's opsets: their times are in its first case's stages
    stages: dict[str, float] = field(default_factory=dict)
    log: str = ""  # what the model's process wrote on stdout and stderr during this case (the tail)
    # the exporter's TracerWarnings from the model's code, "file:line: message", allowed or not
    trace_warnings: list[str] = field(default_factory=list)
    # the int8 file's figures (QuantReport.as_dict()) when the case quantizes, else None
    quantization: dict[str, Any] | None = None

    @classmethod
    def for_case(cls, case: Case, status: str, seconds: float, message: str = "") -> CaseResult:
        return cls(case.model, case.opset, status, seconds, message, dynamic=case.dynamic)

    @property
    def id(self) -> str:
        return f"{self.model}@opset{self.opset}"

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "xfailed")


@dataclass
class CheckReport:
    cases: list[CaseResult]
    opsets: list[int]
    shard: tuple[int, int] | None
    seconds: float
    planned: int
    interrupted: bool = False
    signal: str | None = None  # SIGINT, SIGTERM or SIGHUP when interrupted
    not_run: list[str] = field(default_factory=list)  # ids of planned cases that never finished
    # where it ran (attncli.environment.describe): versions, platform, CPU, threads, GPU
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.interrupted and len(self.cases) == self.planned and all(c.passed for c in self.cases)

    @property
    def exit_code(self) -> int:
        """0 passed, 1 failed, 128 + the signal's number when interrupted (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
        if self.interrupted:
            return 128 + int(getattr(signal, self.signal or "SIGINT", signal.SIGINT))
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.cases) for s in STATUSES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "planned": self.planned,
            "completed": len(self.cases),
            "interrupted": self.interrupted,
            "signal": self.signal,
            "opsets": self.opsets,
            "shard": f"{self.shard[0]}/{self.shard[1]}" if self.shard else None,
            "seconds": round(self.seconds, 3),
            "summary": self.counts(),
            "cases": [asdict(c) for c in self.cases],
            "not_run": self.not_run,
            "environment": self.environment,
        }


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``: shard 2 of 4, counted from 1."""
    if not text:
        return None
    index, sep, total = text.partition("/")
    try:
        i, n = int(index), int(total)
    except ValueError:
        i = n = 0
    if not sep or n < 1 or not 1 <= i <= n:
        raise UsageError(f"bad shard {text!r}: write I/N with 1 <= I <= N, e.g. 1/4 for the first of four.", option="shard")
    return i, n


def check_timeout(seconds: float) -> float:
    """A case's time limit: a finite number of seconds above zero (0 is not "no limit", NaN is not a number)."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        shown = f"{value:g}" if isinstance(seconds, (int, float)) else repr(seconds)
        raise UsageError(f"a case's time limit must be a finite number of seconds above 0, not {shown}.", option="timeout")
    return value


def check_jobs(jobs: int) -> int:
    """How many models run at once: a whole number, at least 1."""
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise UsageError(f"the number of models run at once must be a whole number of at least 1, not {jobs}.", option="jobs")
    return jobs


def plan_cases(
    patterns: Iterable[str] = (), opsets: Iterable[int] = DEFAULT_CHECK_OPSETS, kind: str | None = None, dynamic: str = "all",
    allow_trace_warnings: bool = False, options: dict[str, Any] | None = None,
) -> list[Case]:
    """Every (model, opset) pair, in a fixed order, so that every machine of a CI matrix plans the
    same list. ``patterns`` are registry wildcards and model targets (``path/to/file.py:Name``,
    ``package.module:Name``), which are not looked up in the registry. ``options`` are the model
    options every selected model is built and checked with (``params``, ``input_shape``, ``attn``,
    ``attn_position``, ``seed``, ``weights``, and verification's ``shapes``, ``shapes_only``,
    ``atol``, ``rtol``), checked here, before anything runs."""
    from attncli.modelspec import is_user_model

    patterns = list(patterns)
    targets = [p for p in patterns if is_user_model(p)]
    wildcards = [p for p in patterns if not is_user_model(p)]
    for pattern in wildcards:  # a pattern that selects nothing is a typo hiding a model from the gate
        if not registry.list_specs([pattern], kind):
            raise UsageError(f"no registered model matches {pattern!r}; see `attncli list`.")
    names = [s.name for s in registry.list_specs(wildcards, kind)] if wildcards or not targets else []
    names += list(dict.fromkeys(targets))
    opsets = sorted({int(o) for o in opsets})
    return [case for name in names for case in model_cases(name, name, opsets, dynamic, allow_trace_warnings, options or {})]


# the model options a case takes (plan_cases, the project config), and what builds the model
REQUEST_OPTIONS = ("params", "input_shape", "attn", "attn_position", "seed", "weights")
VERIFY_OPTIONS = ("shapes", "shapes_only", "atol", "rtol", "quantize")


def model_cases(
    name: str, target: str, opsets: Iterable[int], dynamic: str = "all", allow_trace_warnings: bool = False,
    options: dict[str, Any] | None = None, xfail: str | None = None,
) -> list[Case]:
    """The cases of one model, ``target`` (a registry name or a model target) built with ``options``
    and named ``name``; every option is checked now (a usage error names the first bad one)."""
    from attncli.modelspec import ModelRequest, parse_shape
    from attncli.parity import check_shapes_only, check_tolerances, parse_shape_arg

    options = dict(options or {})
    unknown = sorted(set(options) - set(REQUEST_OPTIONS) - set(VERIFY_OPTIONS))
    if unknown:
        raise ValueError(f"unknown model options: {', '.join(unknown)}")
    given = {k: options[k] for k in REQUEST_OPTIONS if options.get(k) not in (None, (), [], {})}
    request = None
    if given or target != name or ":" in target:
        request = ModelRequest.make(target, **given)
        if request.spec() is None and request.input_shape is None:
            raise UsageError(f"{target} is your own module: give its input shape.", option="input_shape")
    else:
        registry.get(target)  # an unknown name: the usage error, with suggestions
    shapes = []
    for item in options.get("shapes") or ():
        shapes.append(parse_shape_arg(item)[1] if isinstance(item, str) else parse_shape(item))
    shapes_only = bool(options.get("shapes_only"))
    check_shapes_only(shapes, shapes_only)
    atol, rtol = options.get("atol"), options.get("rtol")
    if atol is not None or rtol is not None:
        from attncli.parity import DEFAULT_ATOL, DEFAULT_RTOL

        check_tolerances(DEFAULT_ATOL if atol is None else atol, DEFAULT_RTOL if rtol is None else rtol)
    quantize = options.get("quantize")
    if quantize is not None:
        from attncli.quantize import check_options

        for o in sorted({int(o) for o in opsets}):
            check_options(quantize, o)
    return [
        Case(name, int(o), dynamic, allow_trace_warnings, request, tuple(shapes), shapes_only, atol, rtol, xfail, quantize)
        for o in sorted({int(o) for o in opsets})
    ]


def plan_config(
    config: Any, opsets: Iterable[int] | None = None, dynamic: str | None = None, allow_trace_warnings: bool = False
) -> list[Case]:
    """The cases of a project configuration (``attncli.config.ProjectConfig``), in its order.
    ``opsets``, ``dynamic`` and ``allow_trace_warnings`` given here apply to every model."""
    cases: list[Case] = []
    for model in config.models:
        options = {k: model[k] for k in (*REQUEST_OPTIONS, *VERIFY_OPTIONS) if k in model}
        try:
            cases += model_cases(
                model["name"], model["target"], opsets or model.get("opsets") or DEFAULT_CHECK_OPSETS,
                dynamic or model.get("dynamic") or "all", allow_trace_warnings or bool(model.get("allow_trace_warnings")),
                options, model.get("xfail"),
            )
        except UsageError as exc:
            raise UsageError(f"{config.path}: model {model['name']!r}: {exc}") from exc
    return cases


def select_shard(cases: list[Case], shard: tuple[int, int] | None) -> list[Case]:
    """Round-robin over the sorted plan: shards are disjoint, cover every case and differ by at most one."""
    if shard is None:
        return list(cases)
    index, total = shard
    return [c for i, c in enumerate(cases) if i % total == index - 1]


# ----------------------------------------------------------------------------- one model's cases


def _failure(stage: str, exc: BaseException) -> tuple[str, str]:
    """(status, one-line message) for an exception at ``stage``: a failed check, or an error that
    names the model's line that raised it (else the innermost line: then it may be attncli's bug)."""
    from attncli.errors import AttncliError, exception_text, user_location

    if isinstance(exc, AttncliError):
        return ("failed" if exc.exit_code == 1 else "error"), f"{stage}: {exc}"
    location = user_location(exc)
    if location is not None:
        return "error", f"{stage}: the model's code failed at {location}: {exception_text(exc)}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return "error", f"{stage}: {exception_text(exc)}{where}"


def run_model_cases(cases: Sequence[Case], workdir: str | Path, on_built: Callable[[], None] | None = None) -> Iterator[CaseResult]:
    """Build and count one model once, then export and verify it at each case's opset, in this
    process: one result per case, in order. Never raises for the model's own faults (an exception,
    ``sys.exit``), which become its cases' errors. ``on_built`` is called once the shared part
    (build, count, the spatial-size probe) has succeeded."""
    if not cases or len({c.model for c in cases}) != 1:
        raise ValueError("run_model_cases takes the cases of one model")
    stages: dict[str, float] = {}
    start = time.perf_counter()
    stage = "build"
    try:
        from attncli.counting import count_costs
        from attncli.modelspec import build, run_example
        from attncli.onnx_export import accepts_other_spatial_sizes, model_prints_to_stderr

        t = time.perf_counter()
        built = build(cases[0].model_request())
        stages["build"] = time.perf_counter() - t

        stage = "count"
        t = time.perf_counter()
        counts = count_costs(built.module, built.example)
        stages["count"] = time.perf_counter() - t
        spatial = accepts_other_spatial_sizes(built)
        stage = "export"  # the example's forward pass, which every opset's export starts from
        with model_prints_to_stderr():
            outputs = run_example(built)
        shared_error = None
        if counts.uncounted_ops:
            ops = ", ".join(f"{op} x{n}" for op, n in sorted(counts.uncounted_ops.items()))
            shared_error = ("failed", f"uncounted operations: {ops}")
    except (Exception, SystemExit) as exc:  # a model that breaks is its cases' error, not the run's
        built, counts, spatial, outputs = None, None, False, None
        shared_error = _failure(stage, exc)
    shared_seconds = time.perf_counter() - start
    shared_stages = {k: round(v, 3) for k, v in stages.items()}

    if shared_error is not None:
        for case in cases:
            result = CaseResult.for_case(case, shared_error[0], shared_seconds, shared_error[1])
            result.stages = dict(shared_stages)
            result.macs = counts.macs if counts is not None else None
            yield result
        return
    if on_built:
        on_built()
    references: dict[Any, list[Any]] = {}  # PyTorch's outputs, computed once for all opsets
    for i, case in enumerate(cases):
        result = _export_and_verify(built, case, spatial, Path(workdir), references, outputs)
        result.macs = counts.macs
        if i == 0:  # the shared work is charged to the first case
            result.seconds += shared_seconds
            result.stages = {**shared_stages, **result.stages}
        yield result


def _expected(case: Case, result: CaseResult) -> CaseResult:
    """A case expected to fail: its failure (any but a timeout) passes as xfailed, a pass is xpassed."""
    if case.xfail is None or result.status == "timeout":
        return result
    if result.passed:
        result.status = "xpassed"
        result.message = f"expected to fail ({case.xfail}) but passed: remove the expectation ({result.message})"
    else:
        result.status = "xfailed"
        result.message = f"failed as expected ({case.xfail}): {result.message}"
    return result


def _export_and_verify(
    built: Any, case: Case, spatial: bool, workdir: Path, references: dict[Any, list[Any]], outputs: Any
) -> CaseResult:
    from attncli.onnx_export import export_onnx
    from attncli.parity import verify_onnx

    stages: dict[str, float] = {}
    start = time.perf_counter()
    result = CaseResult.for_case(case, "error", 0.0)
    stage = "export"
    path = workdir / f"{case.model}_opset{case.opset}.onnx"
    try:
        t = time.perf_counter()
        dynamic = case.dynamic if spatial or case.dynamic in ("batch", "none") else "batch"
        result.dynamic = dynamic
        exported = export_onnx(
            built, path, case.opset, dynamic, force=True, outputs=outputs, allow_trace_warnings=case.allow_trace_warnings
        )
        result.exporter = exported.exporter
        result.trace_warnings = [str(w) for w in exported.trace_warnings]
        stages["export"] = time.perf_counter() - t
        problem = getattr(exported, "trace_problem", "")
        if problem:
            result.status, result.message = "failed", f"export: {problem}"
            return result

        stage = "verify"
        t = time.perf_counter()
        tolerances = {k: v for k, v in (("atol", case.atol), ("rtol", case.rtol)) if v is not None}
        verdict = verify_onnx(
            built, path, example_outputs=exported.example_outputs, references=references,
            shapes=case.shapes, shapes_only=case.shapes_only, provider=case.provider or "cpu", **tolerances,
        )
        stages["verify"] = time.perf_counter() - t
        result.shapes = [list(s) for s in verdict.shapes]
        result.max_abs = verdict.max_abs
        if verdict.passed:
            result.status = "passed"
            note = "" if dynamic == case.dynamic else f" (fixed spatial size: dynamic {dynamic} only)"
            result.message = f"{len(verdict.shapes)} shapes, max abs {verdict.max_abs:.2e}{note}"
        else:
            result.status, result.message = "failed", verdict.message
        if case.quantize is not None and verdict.passed:
            stage = "quantize"
            t = time.perf_counter()
            _quantize_case(built, case, path, dynamic, result)
            stages["quantize"] = time.perf_counter() - t
    except (Exception, SystemExit) as exc:
        result.status, result.message = _failure(stage, exc)
    finally:
        path.unlink(missing_ok=True)
        result.seconds = time.perf_counter() - start
        result.stages = {k: round(v, 3) for k, v in stages.items()}
    return result


def _quantize_case(built: Any, case: Case, path: Path, dynamic: str, result: CaseResult) -> None:
    """The verified float file at ``path`` quantized (``case.quantize``) next to it, judged with the
    default thresholds and seeded calibration, into ``result`` (its figures join the message)."""
    from attncli.onnx_export import dynamic_axes_for
    from attncli.quantize import prepare_calibration, quantize_and_evaluate, quantized_path

    target = quantized_path(path)
    try:
        calibration = prepare_calibration(built, case.quantize, dynamic_axes=dynamic_axes_for(len(built.input_shape), dynamic))
        report = quantize_and_evaluate(built, path, case.quantize, target=target, calibration=calibration, force=True)
    finally:
        target.unlink(missing_ok=True)
    result.quantization = report.as_dict()
    top1 = f", top-1 {report.top1_agreement:.1%}" if report.top1_agreement is not None else ""
    figures = f"int8 {report.mode}: cosine {report.cosine_min:.4f}{top1}"
    if report.passed:
        result.message = f"{result.message}; {figures}"
    else:
        result.status, result.message = "failed", f"quantize: {report.message}"


# ----------------------------------------------------------------------------- a model's process


def _context() -> Any:
    """The fork server where there is one (Linux, macOS), else spawn (a torch import per model)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))  # no effect once the server runs: it keeps its modules
    return ctx


def _die_with_parent() -> None:
    """Linux: be killed when the fork server goes (it goes when the gate's process does, even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _model_process(conn: Any, cases: list[Case], folder: str, log: str, env: dict[str, str], cwd: str, path: list[str], threads: int) -> None:
    """The body of a model's process: a new session, output to ``log``, the gate's environment, then the cases."""
    if hasattr(os, "setsid"):
        os.setsid()  # a process group of its own, killed as a whole
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # stdin from nowhere, stdout and stderr to the log: descendants inherit these, not the gate's stdout
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.reconfigure(line_buffering=True)
            except (AttributeError, ValueError):
                pass
    # The fork server was started with the environment, folder and path of its first user; a model
    # (a plugin from ATTNCLI_PLUGINS, a relative path) must see this run's. Temporary files go to
    # the run's folder, which the gate removes whatever happens here.
    os.environ.clear()
    os.environ.update(env)
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = None
    try:
        os.chdir(cwd)
    except OSError:
        pass
    sys.path[:] = path

    import torch

    torch.set_num_threads(threads)
    offset = 0
    for result in run_model_cases(cases, folder, on_built=lambda: conn.send(("built",))):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        result.log, offset = _read_log(log, offset)
        conn.send(("result", result, offset))
    conn.close()
    # End what the model started (a server, a `sleep`) along with this process.
    if hasattr(os, "killpg") and os.getpgid(0) == os.getpid():
        os.killpg(0, signal.SIGKILL)


def _read_log(path: str | Path, offset: int) -> tuple[str, int]:
    """The tail of ``path`` from ``offset`` on, and the new offset."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(offset, size - 4 * LOG_TAIL_CHARS))
            data = fh.read()
            end = fh.tell()
    except OSError:
        return "", offset
    text = data.decode("utf-8", "replace")[-LOG_TAIL_CHARS:]
    return text, end


@contextlib.contextmanager
def _caller_main_hidden() -> Iterator[None]:
    """While a model's process starts, hide the caller's ``__main__`` from multiprocessing.

    A process started by multiprocessing re-imports the parent's main module to rebuild it (by
    path, or by name under ``python -m``): a script without an ``if __name__ == "__main__":``
    guard would run again in every model's process, and a program read from stdin or typed in a
    notebook has no file to import. The model's process runs ``_model_process`` from this module
    and never needs the caller's main module, so there is nothing to rebuild.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if hasattr(main, name)}
    try:
        if "__file__" in saved:
            del main.__file__
        main.__spec__ = None
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)
        if "__spec__" not in saved:
            with contextlib.suppress(AttributeError):
                del main.__spec__


class _ModelRun:
    """A model's process and the state of its cases, as the gate sees them."""

    def __init__(self, ctx: Any, cases: list[Case], root: Path, threads: int) -> None:
        self.cases = cases
        self.next = 0  # index of the case in progress
        self.built = False
        self.folder = Path(tempfile.mkdtemp(prefix=f"{cases[0].model[:40]}-", dir=root))
        self.log = self.folder / "output.log"
        self.offset = 0
        self.conn, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(
            target=_model_process,
            args=(child, cases, str(self.folder), str(self.log), dict(os.environ), os.getcwd(), list(sys.path), threads),
            daemon=True,
        )
        try:
            with _caller_main_hidden():
                self.proc.start()
        finally:
            child.close()
        self.started = time.monotonic()
        self.ended = False

    @property
    def case(self) -> Case | None:
        return self.cases[self.next] if self.next < len(self.cases) else None

    def end(self) -> None:
        """Kill the process group (the model's descendants too), reap, and remove the folder."""
        if self.ended:
            return
        self.ended = True
        pid = self.proc.pid
        if pid is not None and hasattr(os, "killpg"):
            try:
                os.killpg(pid, signal.SIGKILL)  # a group exists under this id only once the process ran setsid
            except (ProcessLookupError, PermissionError):
                pass
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        self.conn.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def output_tail(self) -> str:
        return _read_log(self.log, self.offset)[0]


def _death_message(exitcode: int | None, output: str) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
        message = f"the model's process died with {name}{hint}"
    else:
        message = f"the model's process exited with code {exitcode}"
    last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")
    return message + (f"; its last output: {last[:200]}" if last else "")


def _cost_rank(name: str) -> tuple[int, int]:
    """Start the biggest networks first, so that no worker is left with a ResNet-152 at the end
    while the others idle (longest-processing-time first). Without building the model, the kind
    and the depth in its name (resnet152) are the estimate at hand."""
    try:
        kind = registry.get(name).kind
    except UsageError:
        kind = "block"
    digits = [int(d) for d in re.findall(r"\d+", name)]
    return (kind != "backbone", -max(digits, default=0))


class _Interrupted(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _SignalsInterrupt:
    """Inside, SIGINT, SIGTERM and SIGHUP raise ``_Interrupted`` (main thread only; elsewhere Ctrl-C
    still raises KeyboardInterrupt), unless the signal was ignored on entry (``nohup``). Once
    ``cleaning`` is set, a further signal is remembered, not raised."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.cleaning = False
        self.holding = False
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
        if not self.cleaning and not self.holding:
            raise _Interrupted(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Delay a signal to the end of the block: starting a process must not be cut in half,
        or the process would run on unseen."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.received is not None and not self.cleaning:
            raise _Interrupted(self.received)

    def __enter__(self) -> _SignalsInterrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in INTERRUPT_SIGNALS:
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # nohup's SIGHUP, a background job's SIGINT: ignored by request
                try:
                    self._saved[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)


def run_check(
    cases: list[Case],
    *,
    jobs: int = 1,
    timeout: float = DEFAULT_TIMEOUT_S,
    fail_fast: bool = False,
    on_start: Callable[[Case], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
    opsets: Iterable[int] = (),
    shard: tuple[int, int] | None = None,
) -> CheckReport:
    """Run the cases, each model in a fresh process, ``jobs`` at a time. SIGINT, SIGTERM or SIGHUP
    return the report of what finished, with ``interrupted`` and ``signal`` set."""
    check_jobs(jobs)
    timeout = check_timeout(timeout)
    start = time.perf_counter()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.model, []).append(case)
    pending = sorted(groups.values(), key=lambda g: _cost_rank(g[0].model))
    results: dict[Case, CaseResult] = {}
    running: list[_ModelRun] = []
    stop = False
    signals = _SignalsInterrupt()
    root = Path(tempfile.mkdtemp(prefix="attncli-check-"))

    def finish(case: Case, result: CaseResult) -> None:
        nonlocal stop
        result = _expected(case, result)
        results[case] = result
        if on_result:
            on_result(result)
        if fail_fast and not result.passed:
            stop = True

    def begin(run: _ModelRun) -> None:
        run.started = time.monotonic()
        if on_start and run.case is not None:
            on_start(run.case)

    def drain(run: _ModelRun) -> None:
        while run.case is not None and run.conn.poll():
            try:
                message = run.conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "built":
                run.built = True
            elif message[0] == "result":
                _, result, run.offset = message
                finish(run.cases[run.next], result)
                run.next += 1
                if run.case is not None and not stop:
                    begin(run)

    def fail_rest(run: _ModelRun, status: str, message: str) -> None:
        """The case in progress gets ``message``; the model's other cases get it too when the shared
        build had not finished (they would fail the same way), else they run again in a new process."""
        seconds = time.monotonic() - run.started
        output = run.output_tail()
        result = CaseResult.for_case(run.case, status, seconds, message)
        result.log = output
        finish(run.case, result)
        rest = run.cases[run.next + 1:]
        if not rest:
            return
        if run.built:
            pending.insert(0, rest)
            return
        for case in rest:
            shared = CaseResult.for_case(case, status, 0.0, f"{message} (while building the model, which its opsets share)")
            finish(case, shared)

    try:
        with signals:
            try:
                while True:
                    while pending and not stop and len(running) < jobs:
                        with signals.held():
                            run = _ModelRun(_context(), pending.pop(0), root, threads)
                            running.append(run)
                        begin(run)
                    if not running:
                        break
                    wait([r.conn for r in running] + [r.proc.sentinel for r in running], timeout=0.2)
                    for run in list(running):
                        drain(run)
                        if run.case is None or stop:
                            running.remove(run)
                            run.end()
                            continue
                        alive = run.proc.is_alive()
                        over = time.monotonic() - run.started > timeout
                        if alive and not over:
                            continue
                        drain(run)  # a result sent just before the end
                        if run.case is None:
                            running.remove(run)
                            run.end()
                            continue
                        running.remove(run)
                        run.end()  # a dead process is reaped here, so its exit code is known below
                        if alive:
                            fail_rest(run, "timeout", f"no result after {timeout:g} s; the model's process group was killed")
                        else:
                            fail_rest(run, "error", _death_message(run.proc.exitcode, run.output_tail()))
            except _Interrupted as exc:
                signals.received = signals.received or exc.signum
            except KeyboardInterrupt:
                signals.received = signals.received or signal.SIGINT
            finally:
                signals.cleaning = True
                for run in running:
                    run.end()
                shutil.rmtree(root, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # were a signal to arrive in the cleanup above
    interrupted = signals.received is not None
    ordered = [results[c] for c in cases if c in results]
    from attncli.environment import describe

    environment = {**describe(device="cpu"), "torch_threads": threads}  # the model processes', not this one's
    return CheckReport(
        ordered, sorted(set(opsets)), shard, time.perf_counter() - start, len(cases), interrupted,
        signal=signal.Signals(signals.received).name if interrupted else None,
        not_run=[c.id for c in cases if c not in results], environment=environment,
    )


# ----------------------------------------------------------------------------- reports

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    """Text XML 1.0 can hold: a model's output may contain control characters (ANSI colours, NUL)."""
    return _XML_ILLEGAL.sub("?", text)


def _not_run_reason(report: CheckReport) -> str:
    if report.interrupted:
        return f"not run: the check was interrupted by {report.signal}"
    return "not run: the check stopped at the first failure"


def junit_xml(report: CheckReport) -> str:
    """JUnit XML: one testcase per model x opset; failed, timed-out and xpassed cases (expected to
    fail, they passed: the expectation is out of date) as <failure>, errors as <error>, xfailed
    cases as <skipped> (pytest's reading). Cases that never ran are <skipped>, and an interrupted
    run has one more testcase, an <error> that says so, so that no CI reads it as a passing suite."""
    counts = report.counts()
    extra = 1 if report.interrupted else 0
    suite = ET.Element(
        "testsuite",
        name="attncli check",
        tests=str(len(report.cases) + len(report.not_run) + extra),
        failures=str(counts["failed"] + counts["timeout"] + counts["xpassed"]),
        errors=str(counts["error"] + extra),
        skipped=str(len(report.not_run) + counts["xfailed"]),
        time=f"{report.seconds:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="interrupted", value=report.signal or "false")
    ET.SubElement(properties, "property", name="planned", value=str(report.planned))
    for case in report.cases:
        tc = ET.SubElement(suite, "testcase", classname=f"attncli.check.{case.model}", name=case.id, time=f"{case.seconds:.3f}")
        figures = f"max_abs={case.max_abs:.3e}" if case.max_abs is not None else "max_abs=n/a"
        details = _xml(json_text({k: v for k, v in asdict(case).items() if k != "log"}))
        if case.status in ("failed", "timeout", "xpassed"):
            el = ET.SubElement(tc, "failure", message=_xml(f"{case.status}: {case.message} ({figures})"), type=case.status)
            el.text = details
        elif case.status == "error":
            el = ET.SubElement(tc, "error", message=_xml(case.message), type="error")
            el.text = details
        elif case.status == "xfailed":
            ET.SubElement(tc, "skipped", message=_xml(case.message), type="xfailed")
        out = "" if case.status != "passed" else f"{case.message} ({figures}; exporter {case.exporter})\n"
        if out or case.log:
            ET.SubElement(tc, "system-out").text = _xml(out + case.log)
    reason = _not_run_reason(report)
    for case_id in report.not_run:
        model = case_id.rpartition("@")[0]
        tc = ET.SubElement(suite, "testcase", classname=f"attncli.check.{model}", name=case_id, time="0.000")
        ET.SubElement(tc, "skipped", message=reason)
    if report.interrupted:
        tc = ET.SubElement(suite, "testcase", classname="attncli.check", name="interrupted", time="0.000")
        ET.SubElement(
            tc, "error", type="interrupted",
            message=f"the check was interrupted by {report.signal} after {len(report.cases)} of {report.planned} cases",
        )
    root = ET.Element("testsuites", tests=suite.get("tests"), failures=suite.get("failures"), errors=suite.get("errors"), time=suite.get("time"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def markdown(report: CheckReport) -> str:
    """A table for a CI job summary."""
    counts = report.counts()
    verdict = "PASSED" if report.passed else (f"INTERRUPTED ({report.signal})" if report.interrupted else "FAILED")
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if report.not_run:
        tally += f"; {len(report.not_run)} not run"
    shard = f" (shard {report.shard[0]}/{report.shard[1]})" if report.shard else ""
    lines = [
        f"### attncli check{shard}: {verdict}",
        "",
        f"{len(report.cases)}/{report.planned} cases in {report.seconds:.1f} s: {tally}",
        "",
        "| case | status | opset | max abs error | seconds | message |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in report.cases:
        mark = {"passed": "✅", "failed": "❌", "error": "💥", "timeout": "⏱️", "xfailed": "☑️", "xpassed": "❗"}.get(c.status, "❔")
        err = f"{c.max_abs:.2e}" if c.max_abs is not None else "–"
        msg = c.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{c.model}` | {mark} {c.status} | {c.opset} | {err} | {c.seconds:.1f} | {msg} |")
    for case_id in report.not_run:
        model, _, opset = case_id.rpartition("@opset")
        lines.append(f"| `{model}` | ⏹️ not run | {opset} | – | – | {_not_run_reason(report)} |")
    if report.environment:
        from attncli.environment import one_line

        lines += ["", f"<sub>{one_line(report.environment)}</sub>"]
    return "\n".join(lines) + "\n"


def report_text(report: CheckReport, fmt: str) -> str:
    """The report as ``junit``, ``markdown`` or ``json`` text."""
    if fmt == "junit":
        return junit_xml(report)
    if fmt == "markdown":
        return markdown(report)
    if fmt == "json":
        return json_text(report.as_dict())
    raise UsageError(f"report format must be junit, markdown or json, not {fmt!r}.")
