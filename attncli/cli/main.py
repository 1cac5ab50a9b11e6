"""Wires the commands. Known errors become one line and an exit code here; tracebacks only with --debug."""

import functools
import sys
from typing import Any, Callable

import typer

from attncli import __version__
from attncli.errors import AttncliError

app = typer.Typer(
    name="attncli",
    help="Build, profile, export and verify attention modules for CNNs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        print(f"attncli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Build, profile, export and verify attention modules for CNNs."""
    _state["debug"] = debug


def command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose AttncliErrors print one line and exit with their code."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except AttncliError as exc:
                if _state["debug"]:
                    raise
                from attncli.cli import render

                render.error(str(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                raise typer.Exit(130) from None

        app.command(name)(wrapper)
        return func

    return decorate


# Each module registers its command(s) with @command on import.
from attncli.cli import cmd_bench, cmd_check, cmd_export, cmd_info, cmd_list, cmd_profile, cmd_verify  # noqa: E402,F401


def run() -> None:
    app()
