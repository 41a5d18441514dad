"""``plot``: one metric's curve for each matching trial, drawn with matplotlib.

matplotlib is imported at the first call (``pip install 'track-backends[plot]'``), and the figure
is drawn through its object API (``matplotlib.figure.Figure``, rendered by the Agg, SVG or PDF
canvas that the file's extension names), so no global backend is switched and no window opens.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import NotFoundError
from ..layout import attempt_of
from ..protocol.updates import and_query
from ..store import TRIALS, Store
from .extras import OutputError, require
from .select import store_of, trial_pages

PLOT_FORMATS = ("png", "svg", "pdf")
"""The file formats ``plot`` writes (named by the output's extension)."""

LEGEND_MAX = 20
"""Curves beyond which the legend is left out (it would hide the plot)."""


def plot_format(path: str) -> str:
    """The format ``path``'s extension names.

    Raises:
        OutputError: The extension is not one of :data:`PLOT_FORMATS`.
    """
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in PLOT_FORMATS:
        raise OutputError(f"cannot draw to {path!r}: the file name must end in .{', .'.join(PLOT_FORMATS)}")
    return ext


def _label(doc: dict[str, Any], width: int = 40) -> str:
    params = doc.get("parameters")
    text = ", ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) if isinstance(params, dict) else ""
    text = text if len(text) <= width else text[: width - 3] + "..."
    return f"{str(doc.get('uid'))[:8]} {text}".rstrip()


def _xy(points: list[tuple[Any, Any]]) -> tuple[list[float], list[float]]:
    """Numeric points of a series; a step that is not a number is replaced by the point's index."""
    xs, ys = [], []
    for i, (step, value) in enumerate(points):
        if type(value) not in (int, float):
            continue
        xs.append(step if type(step) in (int, float) else i)
        ys.append(value)
    return xs, ys


def plot_curves(
    source: Any,
    metric: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    limit: int | None = None,
    logy: bool = False,
    title: str | None = None,
) -> int:
    """Draw ``metric`` against step, one line per matching trial, and write the figure to ``path``.

    Args:
        source: A Protocol or a Store.
        metric: The metric to draw.
        path: The output file; its extension (``.png``, ``.svg``, ``.pdf``) names the format.
        query: A filter on trials (default: all that logged ``metric``).
        limit: Draw at most this many trials (in uid order).
        logy: A logarithmic y axis.
        title: The figure's title (default: the metric's name).

    Returns:
        The number of curves drawn.

    Raises:
        OutputError: The extension names no format that ``plot`` writes.
        ExtraNotInstalledError: matplotlib is not installed (the ``plot`` extra).
        NotFoundError: No matching trial logged ``metric``.
    """
    fmt = plot_format(path)
    figure = require("matplotlib.figure", "plot")
    fig = figure.Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.add_subplot()
    logged = and_query(query, {f"metric_summary.{metric}": {"$exists": True}})
    drawn = _draw(ax, store_of(source), metric, logged, limit)
    if not drawn:
        raise NotFoundError(f"no matching trial logged the metric {metric!r}; nothing to plot")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.set_title(title if title is not None else f"{metric} ({drawn} trial{'s' if drawn != 1 else ''})")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if drawn <= LEGEND_MAX:
        ax.legend(fontsize="small", loc="best")
    fig.savefig(path, format=fmt, dpi=100)
    return drawn


def _draw(ax: Any, store: Store, metric: str, query: dict[str, Any], limit: int | None) -> int:
    """Draw the curves of the matching trials page by page (one bulk points read per page); return how many."""
    drawn = 0
    for page in trial_pages(store, query, fields=["uid", "parameters", "lease"]):
        page = page[: None if limit is None else limit - drawn]
        attempts = {d["uid"]: attempt_of(d) for d in page}
        got = store.fetch_points(TRIALS, list(attempts), names=[metric], attempts=attempts)
        for doc in page:
            xs, ys = _xy(got.get(doc["uid"], {}).get(metric, []))
            ax.plot(xs, ys, linewidth=1, label=_label(doc))
            drawn += 1
        if limit is not None and drawn >= limit:
            break
    return drawn
