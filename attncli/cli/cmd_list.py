from functools import partial
from typing import Annotated

import typer

from attncli import registry
from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import Format, KindOpt, OutputOpt, choice_value, choices

# list's formats: the shared ones, and plain for shell scripts
ListFormat = choices("ListFormat", (*(f.value for f in Format), "plain"))


@command(
    "list",
    examples=[
        ("attncli list", "every registered block and backbone"),
        ("attncli list 'eca*' --kind backbone", "the ECA backbones"),
        ("attncli list -k block -f plain | xargs -n1 attncli profile --no-latency", "one name per line, for scripts"),
    ],
)
def list_models(
    patterns: Annotated[list[str] | None, typer.Argument(help="Shell wildcards, e.g. 'eca*'.", show_default=False)] = None,
    kind: KindOpt = None,
    format: Annotated[
        ListFormat,
        typer.Option("--format", "-f", help="table for people, json for programs, plain for shell scripts: one name per line."),
    ] = ListFormat.table,
    output: OutputOpt = None,
) -> None:
    """List every buildable block and backbone (no torch import: instant).

    The table wraps the paper titles to the terminal's width; on a narrow terminal each model's
    title and aliases go on the lines under it.
    """
    render.check_target(output)
    specs = registry.list_specs(patterns or (), choice_value(kind))
    if format.value == "plain":
        text = render.list_plain(specs)
        if output is not None:
            render.write_report(output, text)
        else:
            print(text, end="")
        return
    render.emit(format.value, [s.as_dict() for s in specs], partial(render.list_report, specs), output)
