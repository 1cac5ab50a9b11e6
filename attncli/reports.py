"""Writing reports: JSON that is always valid, and files that are whole or absent.

Every command's ``-o FILE`` and the gate's report files go through :func:`write_atomic`. JSON has no
NaN or infinity, so non-finite figures (an error that could not be measured) are written as null.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from attncli.errors import UsageError


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth of lists, tuples and dicts) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def json_text(data: Any) -> str:
    """Strict JSON (``allow_nan=False``), indented, ending in a newline."""
    return json.dumps(finite_or_none(data), indent=2, default=str, allow_nan=False) + "\n"


NAME_MAX = 255  # bytes in one file or folder name


def _short(text: object, limit: int = 96) -> str:
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-(limit // 2 - 1):]}"


def check_report_target(path: str | Path) -> Path:
    """Refuse a report path that cannot be written (before any work, and again at writing): a
    folder, a name too long, a missing folder, or a folder where no file can be created."""
    target = Path(path)
    shown = _short(path)
    for part in target.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise UsageError(
                f"cannot write {shown}: a file or folder name may be at most {NAME_MAX} bytes, and one here has"
                f" {len(os.fsencode(part))}.",
                option="output",
            )
    try:
        is_dir = stat.S_ISDIR(target.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        is_dir = False
    except OSError as exc:
        raise UsageError(f"cannot write {shown}: {exc.strerror or exc}.", option="output") from None
    if is_dir:
        raise UsageError(f"cannot write {shown}: it is a folder; give a file name.", option="output")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {shown}: folder {_short(target.parent)} does not exist.", option="output")
    try:  # a folder where nothing can be created (read-only, /proc) fails now, not after the work
        fd, probe = tempfile.mkstemp(prefix=".attncli-", suffix=".probe", dir=target.parent)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise UsageError(f"cannot write {shown}: no file can be created in {_short(target.parent)} ({reason}).", option="output") from None
    os.close(fd)
    os.unlink(probe)
    return target


def write_atomic(path: str | Path, text: str) -> None:
    """Write next to the target and rename, so a reader never sees half a report."""
    target = check_report_target(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".attncli-", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {_short(path)}: {exc.strerror or exc}.", option="output") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {_short(path)}: {exc.strerror or exc}.", option="output") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
