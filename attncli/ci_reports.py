"""The gate's reports across machines: read back, merged, and published on GitHub Actions.

A CI matrix runs ``attncli check --shard I/N`` on N machines, each writing its JSON report; one
more job merges them into the report of the whole plan, which renders in every format the gate
renders (``attncli.gate.report_text``). A merge refuses what would make the union lie: a shard
given twice or missing, shards that split different plans, a case in two shards.

On GitHub Actions each case that failed the gate becomes an error annotation (a workflow command
on the job's output) and the Markdown report is appended to the job's step summary.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from attncli.errors import EXIT_CHECK_FAILED, UsageError
from attncli.gate import STATUSES, CaseResult, CheckReport, markdown, parse_shard
from attncli.reports import check_report_target

# ----------------------------------------------------------------------------- reading a report


def _known_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def case_from_dict(data: Mapping[str, Any]) -> CaseResult:
    """A case of the JSON report as the ``CaseResult`` it was written from. Keys the dataclass does
    not know are dropped (a newer writer's), so every field it knows round-trips."""
    if not isinstance(data, Mapping):
        raise ValueError("a case is not an object")
    missing = [k for k in ("model", "opset", "status", "seconds") if k not in data]
    if missing:
        raise ValueError(f"a case has no {', '.join(missing)}")
    if data["status"] not in STATUSES:
        raise ValueError(f"case {data['model']}@opset{data['opset']} has an unknown status {data['status']!r}")
    known = _known_fields(CaseResult)
    return CaseResult(**{k: v for k, v in data.items() if k in known})


def _shard_from_json(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        value = f"{value[0]}/{value[1]}"
    try:
        return parse_shard(str(value))
    except UsageError:
        raise ValueError(f"its shard {value!r} is not I/N") from None


def report_from_dict(data: Any) -> CheckReport:
    """The ``CheckReport`` that ``CheckReport.as_dict`` wrote. ``passed``, ``completed`` and
    ``summary`` are derived, so they are recomputed rather than read."""
    if not isinstance(data, Mapping) or not {"cases", "planned", "opsets"} <= set(data):
        raise ValueError("it is not the JSON report of attncli check (no cases, planned and opsets)")
    known = _known_fields(CheckReport)
    values = {k: v for k, v in data.items() if k in known}
    if not isinstance(data["cases"], list):
        raise ValueError("its cases are not a list")
    values["cases"] = [case_from_dict(c) for c in data["cases"]]
    values["shard"] = _shard_from_json(data.get("shard"))
    values["opsets"] = sorted(int(o) for o in data["opsets"])
    values["seconds"] = float(data.get("seconds") or 0.0)
    values["not_run"] = list(data.get("not_run") or [])
    return CheckReport(**values)


def read_report(path: str | Path) -> CheckReport:
    """The JSON report written by ``attncli check`` at ``path``; a usage error names what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"cannot read {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON (line {exc.lineno}: {exc.msg}); give the JSON reports of attncli check.") from None
    try:
        return report_from_dict(data)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot merge {path}: {exc}.") from None


# ----------------------------------------------------------------------------- merging shards


def _ids(report: CheckReport) -> list[str]:
    """The report's cases in its plan's order, those that never finished last."""
    return [c.id for c in report.cases] + list(report.not_run)


def _round_robin(sequences: Sequence[Sequence[str]]) -> Iterator[str]:
    """``select_shard`` deals the plan round-robin (case k to shard k % N + 1), so dealing the
    shards back in turn restores the plan's order."""
    for k in range(max((len(s) for s in sequences), default=0)):
        for sequence in sequences:
            if k < len(sequence):
                yield sequence[k]


def merge_reports(reports: Sequence[CheckReport], sources: Sequence[str] | None = None) -> CheckReport:
    """One report of the whole plan from the reports of its N shards, each given once.

    ``sources`` names each report in messages (its file). The merged report has no shard; its
    ``planned`` is the shards' sum and its ``seconds`` their maximum (the shards run side by side,
    so the longest is the wall time of the matrix); it is interrupted when any shard was (with the
    first such shard's signal), and its cases are in the plan's order."""
    if not reports:
        raise UsageError("no report to merge.")
    names = list(sources) if sources is not None else [f"report {i + 1}" for i in range(len(reports))]
    shards = [r.shard or (1, 1) for r in reports]  # an unsharded report is the one shard of its plan
    total = shards[0][1]
    def shown(i: int) -> str:
        return f"shard {shards[i][0]}/{shards[i][1]}" + ("" if reports[i].shard else " (unsharded)")

    for i, (_, n) in enumerate(shards):
        if n != total:
            raise UsageError(f"cannot merge shards of different splits: {names[0]} is {shown(0)} and {names[i]} is {shown(i)}.")
    for report, name in zip(reports, names):
        if report.opsets != reports[0].opsets:
            shown = ", ".join(map(str, reports[0].opsets)) or "none"
            raise UsageError(
                f"cannot merge shards that checked different opsets: {names[0]} checked {shown} and {name} checked"
                f" {', '.join(map(str, report.opsets)) or 'none'}."
            )
        if len(_ids(report)) != report.planned:
            raise UsageError(f"cannot merge {name}: it plans {report.planned} cases but lists {len(_ids(report))}.")
    by_index: dict[int, int] = {}
    for i, ((index, _), name) in enumerate(zip(shards, names)):
        if index in by_index:
            raise UsageError(
                f"cannot merge: shard {index}/{total} is given twice ({names[by_index[index]]} and {name}), so its cases would overlap."
            )
        by_index[index] = i
    missing = [i for i in range(1, total + 1) if i not in by_index]
    if missing:
        which = ", ".join(f"{i}/{total}" for i in missing)
        given = ", ".join(f"{shards[i][0]}/{total} ({names[i]})" for i in sorted(by_index.values(), key=lambda i: shards[i][0]))
        raise UsageError(f"cannot merge: shard{'s' if len(missing) > 1 else ''} {which} {'are' if len(missing) > 1 else 'is'} missing; given {given}.")
    ordered = [reports[by_index[i]] for i in range(1, total + 1)]
    owner: dict[str, int] = {}
    for index, report in enumerate(ordered, start=1):
        for case_id in _ids(report):
            if case_id in owner:
                first = owner[case_id]
                raise UsageError(
                    f"cannot merge: case {case_id} is in shard {first}/{total} ({names[by_index[first]]}) and in shard"
                    f" {index}/{total} ({names[by_index[index]]}); the shards did not plan the same list."
                )
            owner[case_id] = index
    sizes = [report.planned for report in ordered]
    if max(sizes) - min(sizes) > 1:  # round-robin shards of one plan differ by one case at most
        listed = ", ".join(f"{i}/{total}: {n}" for i, n in enumerate(sizes, start=1))
        raise UsageError(f"cannot merge: the shards planned lists of different lengths ({listed} cases); they did not plan the same list.")

    results = {c.id: c for report in ordered for c in report.cases}
    not_run = {case_id for report in ordered for case_id in report.not_run}
    plan = list(_round_robin([_ids(report) for report in ordered]))
    interrupted = [report for report in ordered if report.interrupted]
    return CheckReport(
        cases=[results[case_id] for case_id in plan if case_id in results],
        opsets=list(reports[0].opsets),
        shard=None,
        seconds=max(report.seconds for report in ordered),
        planned=sum(sizes),
        interrupted=bool(interrupted),
        signal=interrupted[0].signal if interrupted else None,
        not_run=[case_id for case_id in plan if case_id in not_run],
        environment=dict(ordered[0].environment),  # the first shard's; each shard's file keeps its own
    )


def merge_files(paths: Sequence[str | Path]) -> CheckReport:
    """:func:`merge_reports` over the JSON reports at ``paths``."""
    return merge_reports([read_report(p) for p in paths], [str(p) for p in paths])


def merged_exit_code(report: CheckReport) -> int:
    """The verdict of the union: 0 when every planned case passed, else 1, an interrupted shard
    included (the merge itself was not interrupted, so it has no signal's exit status)."""
    return 0 if report.passed else EXIT_CHECK_FAILED


# ----------------------------------------------------------------------------- report files


def check_report_targets(targets: Mapping[str, str | Path | None]) -> dict[str, Path]:
    """The report files of one run, by the option that names each (``output``, ``junit``,
    ``markdown``, ``json``), each checked writable before any work, and no two the same file
    (the second would silently replace the first)."""
    chosen: dict[str, Path] = {}
    seen: dict[str, str] = {}
    for option, path in targets.items():
        if path is None:
            continue
        try:
            target = check_report_target(path)
        except UsageError as exc:
            raise UsageError(str(exc), option=option) from None
        key = os.path.normcase(os.path.realpath(target))
        if key in seen:
            raise UsageError(f"two reports would be written to {path}: give each report its own file.", option=option)
        seen[key] = option
        chosen[option] = target
    return chosen


# ----------------------------------------------------------------------------- GitHub Actions

GITHUB_OPT_OUT = "ATTNCLI_GITHUB"  # "0": no annotations and no step summary (e.g. on the shards of a matrix)


def on_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    """True on a GitHub Actions runner (``GITHUB_ACTIONS=true``) unless ``ATTNCLI_GITHUB=0``."""
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS") == "true" and env.get(GITHUB_OPT_OUT, "").strip().lower() not in ("0", "false", "no", "off")


def escape_data(text: str) -> str:
    """A workflow command's message: GitHub reads ``%``, CR and LF escaped as %25, %0D, %0A (in
    that order, so an escape is never escaped again)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``title=``): ``:`` and ``,`` end it unless escaped too
    (a model target such as ``models.py:Net`` has a colon)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: CheckReport) -> list[str]:
    """One ``::error`` workflow command per case that fails the gate (failed, error, timeout,
    xpassed), and one for an interruption."""
    lines = [
        f"::error title={escape_property(f'attncli check {c.id}')}::{escape_data(f'{c.status}: {c.message}')}"
        for c in report.cases
        if not c.passed
    ]
    if report.interrupted:
        message = f"the check was interrupted by {report.signal} after {len(report.cases)} of {report.planned} cases"
        lines.append(f"::error title=attncli check::{escape_data(message)}")
    return lines


def append_step_summary(report: CheckReport, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append the Markdown report to the file ``GITHUB_STEP_SUMMARY`` names; None when unset."""
    env = os.environ if environ is None else environ
    name = env.get("GITHUB_STEP_SUMMARY", "")
    if not name:
        return None
    path = Path(name)
    try:
        with open(path, "a", encoding="utf-8") as fh:
            if fh.tell():  # after another step's text: a blank line keeps the heading a heading
                fh.write("\n")
            fh.write(markdown(report))
    except OSError as exc:
        raise UsageError(f"cannot append the step summary to {name}: {exc.strerror or exc}.") from None
    return path


def publish_to_github(report: CheckReport, stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """On GitHub Actions, the annotations to ``stream`` and the step summary; False elsewhere.

    The runner reads workflow commands on both stdout and stderr of a ``run`` step, so ``stream``
    is stderr when stdout carries a report that must stay clean (JSON, JUnit)."""
    if not on_github_actions(environ):
        return False
    for line in github_annotations(report):
        stream.write(line + "\n")
    stream.flush()
    append_step_summary(report, environ)
    return True
