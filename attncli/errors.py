"""One family of errors for user mistakes, each with the line a person should read and an exit code.

Exit codes: 2 for usage (bad name, bad value, missing file), 1 for a check that ran and failed.
Anything that is not an ``AttncliError`` is a bug in attncli and surfaces as one.
"""

from __future__ import annotations


class AttncliError(Exception):
    """A user-facing error: ``str(err)`` is one line saying what is wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(AttncliError):
    """The command was asked for something that cannot be done as asked (exit 2)."""

    exit_code = 2


class UnknownModelError(UsageError):
    """A model name that is neither registered nor an alias."""


class DuplicateNameError(Exception):
    """Two registrations claim one name: a programming error, raised at import."""


class CheckFailed(AttncliError):
    """A check ran to the end and its verdict is negative (exit 1)."""

    exit_code = 1
