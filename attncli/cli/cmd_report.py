import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from attncli.cli import render
from attncli.cli.app import app, command
from attncli.cli.options import JsonOpt, JunitOpt, MarkdownOpt, OutputOpt, ReportFormat, ReportFormatOpt

report_app = typer.Typer(help="The gate's reports across machines: merge the shards of one plan.", no_args_is_help=True)
app.add_typer(report_app, name="report")


def emit_check_report(report: Any, format: ReportFormat, output: Path | None, extra: dict[str, Path]) -> None:
    """The gate's report (``check``, ``report merge``): ``format`` on stdout or to ``output``, one more
    file per format in ``extra`` (``junit``, ``markdown``, ``json`` -> path), then, on GitHub Actions,
    the annotations and the step summary. The summary table always reaches the terminal: on stderr
    when the report itself takes stdout, and so do the annotations (the runner reads both streams)."""
    from attncli import ci_reports, gate

    summary = partial(render.check_summary, report)
    report_on_stdout = output is None and format is not ReportFormat.table
    if format is ReportFormat.table:
        summary(render.out)
        text = render.plain_text(summary)
    else:
        text = gate.report_text(report, format.value)
        summary(render.err if report_on_stdout else render.out)
    if output is not None:
        render.write_report(output, text)
    elif report_on_stdout:
        print(text, end="")
    for fmt, path in extra.items():
        render.write_report(path, gate.report_text(report, fmt))
    sys.stdout.flush()
    ci_reports.publish_to_github(report, sys.stderr if report_on_stdout else sys.stdout)


@command(
    "merge",
    group=report_app,
    examples=[
        ('attncli report merge shard-*.json', 'the summary of every shard, as one table'),
        ('attncli report merge shard-*.json -f junit -o all.xml', 'one JUnit file for CI'),
        ('attncli report merge shard-*.json --markdown summary.md --json all.json', 'several formats at once'),
    ],
)
def merge_reports(
    reports: Annotated[
        list[Path],
        typer.Argument(metavar="REPORTS", help="JSON reports written by `attncli check --shard I/N --json FILE` (or -f json -o FILE).", show_default=False),
    ],
    format: ReportFormatOpt = ReportFormat.table,
    output: OutputOpt = None,
    junit: JunitOpt = None,
    markdown: MarkdownOpt = None,
    json_file: JsonOpt = None,
) -> None:
    """Combine the JSON reports of the N shards of one plan, each shard once: `attncli report merge shard-*.json -f junit -o all.xml`.

    It refuses (exit 2) a shard given twice or missing, shards of different splits or opsets, and
    a case in two shards. Exit 0 when every case of the plan passed, 1 when any did not (an
    interrupted shard included). Under GitHub Actions it annotates each failed case and appends the
    Markdown report to the step summary, as check does.
    """
    from attncli import ci_reports

    targets = ci_reports.check_report_targets({"output": output, "junit": junit, "markdown": markdown, "json": json_file})
    merged = ci_reports.merge_files(reports)
    emit_check_report(merged, format, targets.pop("output", None), targets)
    code = ci_reports.merged_exit_code(merged)
    if code:
        raise typer.Exit(code)
