"""The Typer app, its global options, and the one place where known errors become a message and an
exit code (tracebacks only with --debug). Command modules import `command` from here."""

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

import typer

from attncli.version import __version__
from attncli.cli.options import DebugOpt
from attncli.errors import AttncliError

app = typer.Typer(
    name="attncli",
    help="Build, profile, export and verify attention modules for CNNs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"attncli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: DebugOpt = False,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Build, profile, export and verify attention modules for CNNs."""


def _debug_requested(ctx: typer.Context, debug: bool) -> bool:
    """--debug after the subcommand (this command's own option) or before it (the app's)."""
    root = ctx.find_root()
    return debug or bool(root.params.get("debug"))


def command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as command ``name``. It also takes --debug; an AttncliError it raises prints
    one line on stderr and exits with the error's code, Ctrl-C exits 130."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)
        if {"debug", "ctx"} & set(signature.parameters):
            raise TypeError(f"command {name}: 'debug' and 'ctx' are the app's parameters")

        @functools.wraps(func)
        def wrapper(*args: Any, ctx: typer.Context, debug: bool = False, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except AttncliError as exc:
                if _debug_requested(ctx, debug):
                    raise
                from attncli.cli import render

                render.error(str(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                raise typer.Exit(130) from None

        # Typer reads the parameters from the signature: the command's own, then ctx and --debug.
        extra = [
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
            inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOpt),
        ]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
        wrapper.__signature__ = signature.replace(parameters=params + extra)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**func.__annotations__, "ctx": typer.Context, "debug": DebugOpt}
        app.command(name)(wrapper)
        return func

    return decorate
