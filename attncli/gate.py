"""The registry-wide gate: build, count, export and verify every selected model at every opset.

Each case runs in a worker process, so a crash, a hang or an out-of-memory kill in one case is
that case's failure and the run goes on. Workers are reused across cases (importing torch costs
seconds); a worker that dies or outlives ``timeout`` is killed and replaced.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

from attncli import registry
from attncli.errors import UsageError
from attncli.onnx_export import accepts_other_spatial_sizes
from attncli.reports import json_text

DEFAULT_CHECK_OPSETS = (11, 17)
STATUSES = ("passed", "failed", "error", "timeout")
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Case:
    model: str
    opset: int
    dynamic: str = "all"

    @property
    def id(self) -> str:
        return f"{self.model}@opset{self.opset}"


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
    stages: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_case(cls, case: Case, status: str, seconds: float, message: str = "") -> CaseResult:
        return cls(case.model, case.opset, status, seconds, message, dynamic=case.dynamic)

    @property
    def id(self) -> str:
        return f"{self.model}@opset{self.opset}"

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class CheckReport:
    cases: list[CaseResult]
    opsets: list[int]
    shard: tuple[int, int] | None
    seconds: float
    planned: int
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        return not self.interrupted and len(self.cases) == self.planned and all(c.passed for c in self.cases)

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.cases) for s in STATUSES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "planned": self.planned,
            "completed": len(self.cases),
            "interrupted": self.interrupted,
            "opsets": self.opsets,
            "shard": f"{self.shard[0]}/{self.shard[1]}" if self.shard else None,
            "seconds": round(self.seconds, 3),
            "summary": self.counts(),
            "cases": [asdict(c) for c in self.cases],
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
        raise UsageError(f"bad --shard {text!r}: write I/N with 1 <= I <= N, e.g. --shard 1/4.")
    return i, n


def plan_cases(
    patterns: Iterable[str] = (), opsets: Iterable[int] = DEFAULT_CHECK_OPSETS, kind: str | None = None, dynamic: str = "all"
) -> list[Case]:
    """Every (model, opset) pair, sorted, so that every machine of a CI matrix plans the same list."""
    patterns = list(patterns)
    for pattern in patterns:  # a pattern that selects nothing is a typo hiding a model from the gate
        if not registry.list_specs([pattern], kind):
            raise UsageError(f"no registered model matches {pattern!r}; see `attncli list`.")
    specs = registry.list_specs(patterns, kind)
    return [Case(s.name, int(o), dynamic) for s in specs for o in sorted(set(opsets))]


def select_shard(cases: list[Case], shard: tuple[int, int] | None) -> list[Case]:
    """Round-robin over the sorted plan: shards are disjoint, cover every case and differ by at most one."""
    if shard is None:
        return list(cases)
    index, total = shard
    return [c for i, c in enumerate(cases) if i % total == index - 1]


# ----------------------------------------------------------------------------- one case


def run_case(case: Case, workdir: str) -> CaseResult:
    """Build, count, export and verify one case in this process. Never raises."""
    from attncli.errors import AttncliError

    stages: dict[str, float] = {}
    start = time.perf_counter()
    result = CaseResult.for_case(case, "error", 0.0)
    stage = "build"
    try:
        from attncli.counting import count_costs
        from attncli.modelspec import ModelRequest, build
        from attncli.onnx_export import export_onnx
        from attncli.parity import verify_onnx

        t = time.perf_counter()
        built = build(ModelRequest(case.model))
        stages["build"] = time.perf_counter() - t

        stage = "count"
        t = time.perf_counter()
        counts = count_costs(built.module, built.example)
        stages["count"] = time.perf_counter() - t
        result.macs = counts.macs
        if counts.uncounted_ops:
            ops = ", ".join(f"{op} x{n}" for op, n in sorted(counts.uncounted_ops.items()))
            result.status, result.message = "failed", f"uncounted operations: {ops}"
            return result

        stage = "export"
        t = time.perf_counter()
        dynamic = case.dynamic if accepts_other_spatial_sizes(built) or case.dynamic in ("batch", "none") else "batch"
        result.dynamic = dynamic
        path = Path(workdir) / f"{case.model}_opset{case.opset}.onnx"
        exported = export_onnx(built, path, case.opset, dynamic, force=True)
        result.exporter = exported.exporter
        stages["export"] = time.perf_counter() - t

        stage = "verify"
        t = time.perf_counter()
        verdict = verify_onnx(built, path, example_outputs=exported.example_outputs)
        stages["verify"] = time.perf_counter() - t
        result.shapes = [list(s) for s in verdict.shapes]
        result.max_abs = verdict.max_abs
        if verdict.passed:
            result.status = "passed"
            note = "" if dynamic == case.dynamic else f" (fixed spatial size: dynamic {dynamic} only)"
            result.message = f"{len(verdict.shapes)} shapes, max abs {verdict.max_abs:.2e}{note}"
        else:
            result.status, result.message = "failed", verdict.message
        path.unlink(missing_ok=True)
    except AttncliError as exc:
        result.status = "failed" if exc.exit_code == 1 else "error"
        result.message = f"{stage}: {exc}"
    except Exception as exc:  # a model that breaks is this case's error, not the run's
        last = traceback.extract_tb(exc.__traceback__)[-1]
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        result.message = f"{stage}: {type(exc).__name__}: {first} ({Path(last.filename).name}:{last.lineno})"
    finally:
        result.seconds = time.perf_counter() - start
        result.stages = {k: round(v, 3) for k, v in stages.items()}
    return result


# ----------------------------------------------------------------------------- the worker pool


def _worker_main(conn: Any, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends us
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="attncli-check-") as workdir:
        while True:
            try:
                case = conn.recv()
            except EOFError:
                return
            if case is None:
                return
            conn.send(run_case(case, workdir))


class _Worker:
    def __init__(self, ctx: Any, threads: int) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, threads), daemon=True)
        self.proc.start()
        child.close()
        self.case: Case | None = None
        self.started = 0.0

    def submit(self, case: Case) -> None:
        self.case, self.started = case, time.monotonic()
        self.conn.send(case)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


def _death_message(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        hint = " (killed: out of memory?)" if name == "SIGKILL" else ""
        return f"worker process died with {name}{hint}"
    return f"worker process exited with code {exitcode}"


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
    """Run the cases on ``jobs`` worker processes. Ctrl-C returns the report of what finished."""
    if jobs < 1:
        raise UsageError(f"-j must be at least 1, not {jobs}.")
    if timeout <= 0:
        raise UsageError(f"--timeout must be positive, not {timeout}.")
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pending = list(cases)
    results: dict[Case, CaseResult] = {}
    workers = [_Worker(ctx, threads) for _ in range(min(jobs, len(cases)))]
    interrupted = stop = False

    def finish(case: Case, result: CaseResult) -> None:
        nonlocal stop
        results[case] = result
        if on_result:
            on_result(result)
        if fail_fast and not result.passed:
            stop = True

    try:
        while True:
            for w in workers:
                if w.case is None and pending and not stop:
                    case = pending.pop(0)
                    if on_start:
                        on_start(case)
                    w.submit(case)
            busy = [w for w in workers if w.case is not None]
            if not busy:
                break
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=0.2)
            now = time.monotonic()
            for i, w in enumerate(workers):
                if w.case is None:
                    continue
                case = w.case
                if w.conn in ready or w.conn.poll():
                    try:
                        result = w.conn.recv()
                    except (EOFError, OSError):
                        result = None
                    if result is not None:
                        w.case = None
                        finish(case, result)
                        continue
                died = not w.proc.is_alive()
                if not died and now - w.started <= timeout:
                    continue
                w.kill()  # a dead worker is joined here, so its exit code is known below
                message = _death_message(w.proc.exitcode) if died else f"no result after {timeout:g} s; the worker was killed"
                finish(case, CaseResult.for_case(case, "error" if died else "timeout", now - w.started, message))
                workers[i] = _Worker(ctx, threads)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for w in workers:
            if w.case is None and w.proc.is_alive():
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            w.kill()
    ordered = [results[c] for c in cases if c in results]
    return CheckReport(ordered, sorted(set(opsets)), shard, time.perf_counter() - start, len(cases), interrupted)


# ----------------------------------------------------------------------------- reports


def junit_xml(report: CheckReport) -> str:
    """JUnit XML: one testcase per model x opset; failed and timed-out cases as <failure>, errors as <error>."""
    counts = report.counts()
    suite = ET.Element(
        "testsuite",
        name="attncli check",
        tests=str(len(report.cases)),
        failures=str(counts["failed"] + counts["timeout"]),
        errors=str(counts["error"]),
        skipped="0",
        time=f"{report.seconds:.3f}",
    )
    for case in report.cases:
        tc = ET.SubElement(suite, "testcase", classname=f"attncli.check.{case.model}", name=case.id, time=f"{case.seconds:.3f}")
        figures = f"max_abs={case.max_abs:.3e}" if case.max_abs is not None else "max_abs=n/a"
        if case.status in ("failed", "timeout"):
            el = ET.SubElement(tc, "failure", message=f"{case.status}: {case.message} ({figures})", type=case.status)
            el.text = json_text(asdict(case))
        elif case.status == "error":
            el = ET.SubElement(tc, "error", message=case.message, type="error")
            el.text = json_text(asdict(case))
        else:
            ET.SubElement(tc, "system-out").text = f"{case.message} ({figures}; exporter {case.exporter})"
    root = ET.Element("testsuites", tests=suite.get("tests"), failures=suite.get("failures"), errors=suite.get("errors"), time=suite.get("time"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def markdown(report: CheckReport) -> str:
    """A table for a CI job summary."""
    counts = report.counts()
    verdict = "PASSED" if report.passed else ("INTERRUPTED" if report.interrupted else "FAILED")
    lines = [
        f"### attncli check: {verdict}",
        "",
        f"{len(report.cases)}/{report.planned} cases in {report.seconds:.1f} s: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
        "",
        "| case | status | opset | max abs error | seconds | message |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in report.cases:
        mark = {"passed": "✅", "failed": "❌", "error": "💥", "timeout": "⏱️"}[c.status]
        err = f"{c.max_abs:.2e}" if c.max_abs is not None else "–"
        msg = c.message.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{c.model}` | {mark} {c.status} | {c.opset} | {err} | {c.seconds:.1f} | {msg} |")
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
