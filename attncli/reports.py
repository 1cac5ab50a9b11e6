"""Writing reports: JSON that is always valid, and files that are whole or absent.

Every command's ``-o FILE`` and the gate's report files go through :func:`write_atomic`. JSON has no
NaN or infinity, so non-finite figures (an error that could not be measured) are written as null.
"""

from __future__ import annotations

import json
import math
import os
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


def check_report_target(path: str | Path) -> Path:
    """Refuse a report path whose folder does not exist (before any work, and again at writing)."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; give a file name.")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {target.parent} does not exist.")
    return target


def write_atomic(path: str | Path, text: str) -> None:
    """Write next to the target and rename, so a reader never sees half a report."""
    target = check_report_target(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".attncli-", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
