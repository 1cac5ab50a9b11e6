"""The Typer app, its global options, and the one place where errors become a message and an exit
code. Command modules import `command` from here.

The policy (exit codes in attncli.errors): a user mistake is one line on stderr and exit 2, and an
exception raised inside the user's own code is one line naming their file:line, exit 2; a failed
check is exit 1; Ctrl-C is 130. Anything else is a bug in attncli: its traceback, a line asking for
a report, and exit 3. --debug shows the traceback of every error.
"""

import functools
import inspect
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer import Abort
from typer.core import TyperGroup

from attncli.version import __version__
from attncli.cli.options import FLAGS, DebugOpt
from attncli.errors import EXIT_BROKEN_PIPE, EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE, AttncliError, exception_text, user_location

# The parser's errors derive from Click's ClickException, which Typer bundles privately: reach it
# through the public BadParameter rather than importing a private module.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _OneLineUsageErrors(TyperGroup):
    """Typer's group, with its parse errors (an unknown option, a missing argument, a value of the
    wrong type) as one line and exit 2, like every other usage error, instead of a framed block."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                from attncli.cli import render

                ctx = getattr(exc, "ctx", None)
                if ctx is not None:
                    where = ctx.command_path
                else:  # the parser raises some errors without a context: the first command name given
                    words = list(sys.argv[1:] if args is None else args)
                    where = " ".join([self.name or "attncli", *[w for w in words if w in self.commands][:1]])
                message = " ".join(exc.format_message().split())
                render.error(f"{message.rstrip('.')}; see {where} -h.")
            sys.exit(exc.exit_code)
        except Abort:
            print("aborted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineUsageErrors,
    name="attncli",
    help="Build, profile, export and verify attention modules for CNNs.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion SHELL: Typer's standard
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "Exit codes: 0 done; 1 a check failed; 2 a usage error, or an exception raised in your own"
        " model's code (its file:line is named; --debug shows the traceback); 3 a bug in attncli"
        " (its traceback is shown: please report it); 130 interrupted.\n\n"
        "Examples: attncli list 'eca*' · attncli profile eca_resnet50 · attncli export cbam --opset 17"
        " · attncli check -j 2. Each command's -h ends with its own."
    ),
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


def error_line(exc: AttncliError) -> str:
    """The one line of a known error, with the flag that sets the value it is about."""
    message = str(exc)
    flag = FLAGS.get(exc.option or "")
    if not flag or re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", message):
        return message
    return f"{flag}: {message}"


def _broken_pipe(exc: BaseException) -> bool:
    """The reader of stdout went away (`attncli info X | head`): not an error, a stop, as the
    shell's own tools do (exit 128 + SIGPIPE). Rich turns the BrokenPipeError into SystemExit(1);
    stdout is pointed at /dev/null so that the interpreter's last flush does not fail again."""
    if not (isinstance(exc, BrokenPipeError) or (isinstance(exc, SystemExit) and isinstance(exc.__context__, BrokenPipeError))):
        return False
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return True


def report_bug(exc: BaseException) -> None:
    """A bug in attncli: the traceback, then what to do with it."""
    from attncli.cli import render

    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()
    render.error(f"this is a bug in attncli {__version__}; please report it, with the traceback above.")


def examples_epilog(examples: Sequence[tuple[str, str]]) -> str:
    """The end of a command's --help: each example as a comment line (what it does) over the
    command line. Typer's rich help keeps single line breaks in an epilog and reads it as rich
    markup, so the brackets of a command line (attncli[plot]) are escaped."""
    from rich.markup import escape

    lines = ["[bold]Examples[/]"]
    for line, what in examples:
        lines += ["", f"[dim]# {escape(what)}[/]", escape(line)]
    return "\n".join(lines)


def command(
    name: str, group: typer.Typer | None = None, examples: Sequence[tuple[str, str]] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as command ``name`` (of ``group``, a sub-app such as ``report``; default
    the app), under the error policy of this module. It also takes --debug (tracebacks for every error).
    ``examples``, (command line, what it does) pairs, end its --help."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)
        if {"debug", "ctx"} & set(signature.parameters):
            raise TypeError(f"command {name}: 'debug' and 'ctx' are the app's parameters")

        @functools.wraps(func)
        def wrapper(*args: Any, ctx: typer.Context, debug: bool = False, **kwargs: Any) -> Any:
            from attncli.cli import render

            debugging = _debug_requested(ctx, debug)
            try:
                # the library's slow steps on stderr; taken down before an error is printed
                with render.Reporter():
                    return func(*args, **kwargs)
            except (typer.Exit, typer.Abort, typer.BadParameter):
                raise  # Typer's own ways out
            except AttncliError as exc:
                if debugging:
                    raise
                render.error(error_line(exc))
                raise typer.Exit(exc.exit_code) from None
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            except (Exception, SystemExit) as exc:
                if _broken_pipe(exc):
                    raise typer.Exit(EXIT_BROKEN_PIPE) from None
                # Not classified by the library. Raised while the user's code was running (a frame of
                # theirs is on the traceback): theirs to fix, one line. Otherwise a bug of ours.
                location = user_location(exc)
                if debugging:
                    if isinstance(exc, SystemExit):  # raising it would exit quietly with its code
                        traceback.print_exception(exc, file=sys.stderr)
                        raise typer.Exit(EXIT_USAGE) from None
                    raise
                if location is not None:
                    render.error(f"your code failed at {location}: {exception_text(exc)}")
                    raise typer.Exit(EXIT_USAGE) from None
                report_bug(exc)
                raise typer.Exit(EXIT_BUG) from None

        # Typer reads the parameters from the signature: the command's own, then ctx and --debug.
        extra = [
            inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
            inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOpt),
        ]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
        wrapper.__signature__ = signature.replace(parameters=params + extra)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**func.__annotations__, "ctx": typer.Context, "debug": DebugOpt}
        (group or app).command(name, epilog=examples_epilog(examples) if examples else None)(wrapper)
        return func

    return decorate
