from functools import partial
from typing import Annotated

import typer

from attncli import registry
from attncli.cli import render
from attncli.cli.app import command
from attncli.cli.options import Format, FormatOpt, KindOpt, OutputOpt, choice_value


@command("list")
def list_models(
    patterns: Annotated[list[str] | None, typer.Argument(help="Shell wildcards, e.g. 'eca*'.", show_default=False)] = None,
    kind: KindOpt = None,
    format: FormatOpt = Format.table,
    output: OutputOpt = None,
) -> None:
    """List every buildable block and backbone (no torch import: instant)."""
    render.check_target(output)
    specs = registry.list_specs(patterns or (), choice_value(kind))
    render.emit(format.value, [s.as_dict() for s in specs], partial(render.list_report, specs), output)
