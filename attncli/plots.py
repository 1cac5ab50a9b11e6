"""Figures for papers: latency against batch size (``bench --plot``) and cost against latency
overhead (``compare --plot``), as PNG, PDF or SVG (any format matplotlib writes, by the suffix).

matplotlib is the optional extra ``plot``: importing this module does not import it, and without it
the first call is a usage error naming the extra. Figures are drawn on a ``matplotlib.figure.Figure``
of their own, never through pyplot, so a caller's pyplot state and backend are left alone.

Every figure carries, in small print at its foot, the environment it was measured in
(``attncli.environment.one_line``: versions, CPU or GPU, threads): a latency means little without it.
Axes whose values span more than a decade are logarithmic; tick labels are plain numbers
(0.5, 20, 1,000), never 2^n or 10^k.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attncli.errors import UsageError

INSTALL_HINT = "plotting needs matplotlib: pip install 'attncli[plot]'."
# a range wider than this (largest / smallest) gets a logarithmic axis
LOG_SPAN = 10.0
# the environment line: small, grey, wrapped to the figure's width
FOOTER_FONTSIZE = 6.0


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise UsageError(INSTALL_HINT, option="plot") from None
    return matplotlib


def check_plot_target(path: str | Path) -> None:
    """Fail before any slow work when the plot cannot be drawn or written: no matplotlib, a folder,
    a missing folder, or a suffix matplotlib cannot write."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(INSTALL_HINT, option="plot")
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; give a file name.", option="plot")
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {target.parent} does not exist.", option="plot")
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = target.suffix.lower().lstrip(".")
    if suffix not in formats:
        known = ", ".join(f".{f}" for f in ("png", "pdf", "svg"))
        raise UsageError(f"cannot plot to {path}: give a file ending in {known} (or another format matplotlib writes).", option="plot")


def plain_number(value: float) -> str:
    """A tick label as a person writes it: 1,000 / 250 / 12.5 / 1.5 / 0.02 / 0.00005."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 1000:
        text = f"{v:,.0f}"
    elif v >= 1:
        text = f"{v:.3g}"
    else:
        text = f"{v:.8f}".rstrip("0").rstrip(".")
    return sign + text


def spans_decades(values: Iterable[float]) -> bool:
    """True when the positive ``values`` span more than a decade (and there are no others)."""
    values = list(values)
    if not values or min(values) <= 0:
        return False
    return max(values) / min(values) > LOG_SPAN


def _plain_ticks(axis: Any, suffix: str = "", minor: bool = True) -> None:
    """Plain numbers on an axis's ticks; on a log axis spanning less than about a decade and a half,
    the 2 and 5 minor ticks are labelled too (else a short log axis shows one label or none)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: plain_number(v) + suffix))
    if axis.get_scale() != "log":
        return
    low, high = sorted(axis.get_view_interval())
    if minor and low > 0 and high / low < 10**1.5:

        def minor(v: float, _pos: Any) -> str:
            leading = f"{v:e}"[0]
            return plain_number(v) + suffix if leading in "25" else ""

        axis.set_minor_formatter(FuncFormatter(minor))
    else:
        axis.set_minor_formatter(NullFormatter())


def _figure(figsize: tuple[float, float] = (7.0, 4.5)) -> Any:
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _footer(fig: Any, environment: dict[str, Any] | None) -> None:
    """The environment line, small and grey, wrapped to the figure's width."""
    from attncli.environment import describe, one_line

    text = one_line(environment if environment else describe())
    # about 0.55 em per character: the characters that fit across the figure at this size
    width = int(fig.get_figwidth() * 72 / (FOOTER_FONTSIZE * 0.55))
    fig.supxlabel("\n".join(textwrap.wrap(text, width)) or text, fontsize=FOOTER_FONTSIZE, color="0.35", ha="center")


def _save(fig: Any, path: str | Path) -> Path:
    """Write the figure under a temporary name in the same folder, then move it into place: a
    failure leaves no half-written file."""
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    fd, tmp = tempfile.mkstemp(prefix=".attncli-", suffix=f".{fmt}.part", dir=target.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=fmt, dpi=150)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def plot_latency(result: Any, path: str | Path) -> Path:
    """Latency of each runtime (p50, whisker to p90) against batch size, log-log, one line per
    runtime; ``result`` is an ``attncli.bench.BenchResult``. Returns the path written."""
    check_plot_target(path)
    return _save(latency_figure(result), path)


def latency_figure(result: Any) -> Any:
    """The figure of :func:`plot_latency` (a ``matplotlib.figure.Figure``), not yet written."""
    fig = _figure()
    ax = fig.subplots()
    batches = [row.batch_size for row in result.rows]
    runtimes = list(dict.fromkeys(lat.runtime for row in result.rows for lat in row.runtimes))
    p50_all = []
    for name in runtimes:
        xs, p50, p90 = [], [], []
        for row in result.rows:
            lat = next((r for r in row.runtimes if r.runtime == name), None)
            if lat is not None:
                xs.append(row.batch_size)
                p50.append(lat.p50_ms)
                p90.append(lat.p90_ms)
        p50_all += p50
        ax.errorbar(xs, p50, yerr=[[0] * len(p50), [max(b - a, 0.0) for a, b in zip(p50, p90)]], marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sorted(set(batches)))
    ax.set_xlabel("batch size")
    ax.set_ylabel("latency p50 (ms), whisker to p90")
    threads = f", {result.threads} threads" if getattr(result, "threads", None) else ""
    ax.set_title(f"{result.model} on {result.device}{threads}")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend()
    # the view is final once the data is drawn: the tick labels are chosen for it
    ax.autoscale_view()
    _plain_ticks(ax.xaxis, minor=False)  # the ticks are the batch sizes themselves
    _plain_ticks(ax.yaxis)
    _footer(fig, getattr(result, "environment", None))
    return fig


_UNITS = ((1e9, "G", "10^9"), (1e6, "M", "10^6"), (1e3, "k", "10^3"))


def _scale(values: Sequence[float]) -> tuple[float, str]:
    """A divisor and its label for an axis of counts: millions for ResNet parameters, 10^9 for their MACs."""
    top = max((abs(v) for v in values), default=0)
    for div, prefix, power in _UNITS:
        if top >= div:
            return div, f"{prefix}, {power}"
    return 1.0, ""


def plot_compare(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    x: str = "params",
    *,
    environment: dict[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Parameters (``x="params"``) or MACs (``x="macs"``) against latency overhead over the
    baseline, one labelled point per model. ``rows`` are dicts with ``name``, ``params``, ``macs``,
    ``latency_overhead_rel`` (a fraction, None when not timed) and ``latency_within_noise`` (the
    intervals overlap: drawn hollow). Axes whose values span more than a decade are logarithmic
    (symmetric-log for an overhead with both signs). Returns the path written."""
    check_plot_target(path)
    return _save(compare_figure(rows, x, environment=environment, title=title), path)


def compare_figure(
    rows: Sequence[dict[str, Any]], x: str = "params", *, environment: dict[str, Any] | None = None, title: str | None = None
) -> Any:
    """The figure of :func:`plot_compare` (a ``matplotlib.figure.Figure``), not yet written."""
    if x not in ("params", "macs"):
        raise UsageError(f"the x axis is params or macs, not {x!r}.", option="plot")
    timed = [r for r in rows if r.get("latency_overhead_rel") is not None]
    if not timed:
        raise UsageError("nothing to plot: no model has a latency overhead (was latency measured?).", option="plot")
    untimed = [str(r["name"]) for r in rows if r.get("latency_overhead_rel") is None]

    fig = _figure()
    ax = fig.subplots()
    div, unit = _scale([float(r[x]) for r in timed])
    xs = [float(r[x]) / div for r in timed]
    ys = [float(r["latency_overhead_rel"]) * 100 for r in timed]
    noise = [bool(r.get("latency_within_noise")) for r in timed]
    for within in (False, True):
        points = [(a, b) for a, b, n in zip(xs, ys, noise) if n is within]
        if not points:
            continue
        ax.scatter(
            [p[0] for p in points], [p[1] for p in points], s=36, zorder=3,
            facecolors="none" if within else "C0", edgecolors="C0",
            label="within noise (intervals overlap)" if within else "measured overhead",
        )
    for row, a, b in zip(timed, xs, ys):
        ax.annotate(str(row["name"]), (a, b), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.axhline(0, color="0.5", linewidth=0.8, zorder=1)

    if spans_decades(xs):
        ax.set_xscale("log")
    nonzero = [abs(v) for v in ys if v != 0]
    if spans_decades(ys):
        ax.set_yscale("log")
    elif nonzero and max(nonzero) / min(nonzero) > LOG_SPAN:
        ax.set_yscale("symlog", linthresh=min(nonzero))
    what = "parameters" if x == "params" else "MACs"
    ax.set_xlabel(f"{what} ({unit})" if unit else what)
    ax.set_ylabel("latency overhead over the baseline (%)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    if any(noise):
        ax.legend(fontsize=8)
    if untimed:
        ax.text(0.01, 0.99, f"not timed: {', '.join(untimed)}", transform=ax.transAxes, fontsize=7, va="top", color="0.35")
    ax.autoscale_view()
    _plain_ticks(ax.xaxis)
    _plain_ticks(ax.yaxis, "%")
    _footer(fig, environment)
    return fig


__all__ = ["check_plot_target", "compare_figure", "latency_figure", "plain_number", "plot_compare", "plot_latency", "spans_decades"]
