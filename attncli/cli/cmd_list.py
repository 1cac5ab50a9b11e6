from typing import List, Optional

import typer
from typing_extensions import Annotated

from attncli import registry
from attncli.cli import render
from attncli.cli.main import command
from attncli.cli.options import Format, FormatOpt, Kind


@command("list")
def list_models(
    patterns: Annotated[Optional[List[str]], typer.Argument(help="Shell wildcards, e.g. 'eca*'.", show_default=False)] = None,
    kind: Annotated[Optional[Kind], typer.Option("--kind", "-k", help="Only blocks or only backbones.", show_default=False)] = None,
    format: FormatOpt = Format.table,
) -> None:
    """List every buildable block and backbone (no torch import: instant)."""
    specs = registry.list_specs(patterns or (), kind.value if kind else None)
    if format is Format.json:
        render.print_json([s.as_dict() for s in specs])
    else:
        render.out.print(render.spec_table(specs))
