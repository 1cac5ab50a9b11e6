"""One family of errors for user mistakes, each with the line a person should read and an exit code,
and the one policy every command follows.

Exit codes:

- 0: done.
- 1 (:data:`EXIT_CHECK_FAILED`): a check ran to the end and its verdict is negative.
- 2 (:data:`EXIT_USAGE`): a user mistake (a bad name, value, shape, file, weights or plugin), or an
  exception raised inside the user's own code (its import, its constructor, its forward), which
  :class:`UserCodeError` reports as one line naming the user's ``file:line`` and the exception.
- 3 (:data:`EXIT_BUG`): anything else is a bug in attncli. The CLI shows the traceback and asks for
  a report; 3 keeps a crash apart from a failed check (1) in CI.
- 130 (:data:`EXIT_INTERRUPTED`): Ctrl-C.

Library messages name values in the API's words (``input_shape``, ``seed``); an error may say which
parameter it is about (``option``), and the CLI names that parameter's flag.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from dataclasses import dataclass
from collections.abc import Iterable
from pathlib import Path

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`attncli list | head`)


class AttncliError(Exception):
    """A user-facing error: ``str(err)`` is one line saying what is wrong and what to do.

    ``option`` is the API parameter the message is about (``"input_shape"``, ``"params"``,
    ``"seed"``...), or None; the CLI shows the flag that sets it.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, exit_code: int | None = None, option: str | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        self.option = option


class UsageError(AttncliError):
    """The command was asked for something that cannot be done as asked (exit 2)."""

    exit_code = EXIT_USAGE


class UnknownModelError(UsageError):
    """A model name that is neither registered nor an alias."""


class UserCodeError(UsageError):
    """An exception raised inside the user's own code (import, constructor, forward): exit 2, one
    line naming the user's ``file:line`` (``location``) and the exception (``__cause__``)."""

    def __init__(self, message: str, *, location: CodeLocation | None = None, option: str | None = None) -> None:
        super().__init__(message, option=option)
        self.location = location


class DuplicateNameError(Exception):
    """Two registrations claim one name: a programming error, raised at import."""


class CheckFailed(AttncliError):
    """A check ran to the end and its verdict is negative (exit 1)."""

    exit_code = EXIT_CHECK_FAILED


# ----------------------------------------------------------------------------- the user's code


@dataclass(frozen=True)
class CodeLocation:
    """A line of the user's code: ``path:line`` as an editor or a terminal opens it."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{display_path(self.path)}:{self.line}"


def display_path(path: str | Path) -> str:
    """``path`` relative to the working folder when it lies under it, else as it is."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith(os.pardir) else rel


def first_line(text: object, limit: int = 400) -> str:
    """The first non-blank line of ``text``, cut to ``limit`` characters ("" when there is none)."""
    for line in str(text).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def exception_text(exc: BaseException) -> str:
    """``Type: first line of the message`` (``SystemExit(0)`` for an exit)."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r})"
    message = first_line(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _library_roots() -> tuple[str, ...]:
    """Folders whose code is not the user's: attncli, Python's standard library, installed packages."""
    paths = sysconfig.get_paths()
    roots = {str(Path(__file__).resolve().parent)}
    roots.update(os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k))
    return tuple(sorted(roots))


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def is_library_file(filename: str) -> bool:
    """True for attncli's own files, the standard library, installed packages and ``<frozen ...>``."""
    if not filename or filename.startswith("<"):
        return True
    return _under(os.path.realpath(filename), _library_roots())


def user_location(exc: BaseException, prefer: Iterable[str | Path] = ()) -> CodeLocation | None:
    """The innermost line of the traceback that is the user's: in ``prefer`` (the user's model
    file, its package) first, else outside attncli, the standard library and installed packages.
    A SyntaxError points at its own line. None when no frame is the user's."""
    if isinstance(exc, SyntaxError) and exc.filename and not is_library_file(exc.filename):
        return CodeLocation(exc.filename, exc.lineno or 0)
    frames = traceback.extract_tb(exc.__traceback__)
    preferred = [os.path.realpath(p) for p in prefer]
    if preferred:
        for frame in reversed(frames):
            if frame.filename and not frame.filename.startswith("<") and _under(os.path.realpath(frame.filename), preferred):
                return CodeLocation(frame.filename, frame.lineno or 0)
    for frame in reversed(frames):
        if not is_library_file(frame.filename):
            return CodeLocation(frame.filename, frame.lineno or 0)
    return None


def raised_at(exc: BaseException, location: CodeLocation) -> bool:
    """True when ``exc`` was raised on the user's line itself, not in code it called (torch's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    return os.path.realpath(last.filename) == os.path.realpath(location.path) and last.lineno == location.line


def user_code_error(what: str, exc: BaseException, prefer: Iterable[str | Path] = (), *, option: str | None = None) -> UserCodeError:
    """``{what} failed at file.py:12: ValueError: ...``: the user's code raised ``exc``."""
    location = user_location(exc, prefer)
    where = f" at {location}" if location is not None else ""
    return UserCodeError(f"{what} failed{where}: {exception_text(exc)}", location=location, option=option)
