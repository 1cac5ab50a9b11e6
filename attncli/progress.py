"""Named steps of slow work, announced to whoever shows progress: the CLI's spinner, or nobody.

The library marks a wait that can take more than a second with ``progress.step``::

    with progress.step(f"building {name}"):
        module = factory(**kwargs)

A reporter, installed for the whole process with :func:`set_reporter`, is told when each step
starts and ends; by default there is none, and a step costs one global read. Steps nest (building
a model inside exporting it); a reporter sees them in order, innermost ending first. A step that
raises still ends, so a reporter's display never keeps a step that is over.

This module imports nothing: the library uses it without knowing how (or whether) progress is shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    """What a reporter implements. ``start`` and ``end`` are called from the thread running the step."""

    def start(self, label: str) -> None: ...

    def end(self, label: str, seconds: float) -> None: ...


_reporter: Reporter | None = None

# The label of the first import of torch (seconds): a wait worth a spinner on a terminal, not a
# line in a log, where every run would start with it.
IMPORTING_TORCH = "importing torch"


def set_reporter(reporter: Reporter | None) -> Reporter | None:
    """Install ``reporter`` for the whole process (None: silence) and return the one it replaces,
    for the caller to put back when done."""
    global _reporter
    previous, _reporter = _reporter, reporter
    return previous


def reporter() -> Reporter | None:
    """The reporter installed now, or None."""
    return _reporter


@contextmanager
def step(label: str) -> Iterator[None]:
    """Announce ``label`` (what is being done, e.g. "tracing", "exporting at opset 17") for the
    duration of the block. The reporter is read when the step starts: one installed meanwhile sees
    the steps that start after it."""
    current = _reporter
    if current is None:
        yield
        return
    current.start(label)
    started = time.perf_counter()
    try:
        yield
    finally:
        current.end(label, time.perf_counter() - started)


__all__ = ["IMPORTING_TORCH", "Reporter", "reporter", "set_reporter", "step"]
