"""Trials and their metric points as pandas DataFrames, with the same columns as ``export``.

>>> from track_backends import get_protocol
>>> from track_backends.analysis import trials_frame, series_frame
>>> with get_protocol("pickled:///tmp/experiments.pkl") as proto:  # doctest: +SKIP
...     df = trials_frame(proto, {"status.name": "Completed"})
...     best = df.sort_values("loss.min").head()
...     curves = series_frame(proto, {"uid": {"$in": list(best["uid"])}}, names=["loss"])

pandas is imported at the first call (``pip install 'track-backends[analysis]'``); without it
the functions raise :class:`~track_backends.see.ExtraNotInstalledError`, which names the extra.
Trials are read a page at a time; the frame itself of course holds them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .see.columns import FIXED, SERIES_COLUMNS, order_columns, trial_row
from .see.extras import ExtraNotInstalledError, require
from .see.select import series_batches, store_of, trial_pages

__all__ = ["ExtraNotInstalledError", "series_frame", "trials_frame"]


def trials_frame(proto: Any, query: dict[str, Any] | None = None, *, metrics: bool | Sequence[str] = True) -> Any:
    """One row per trial: ``uid, project, group, status, start_time, end_time``, the parameters, the summaries.

    The columns are those of ``track-backends export`` (see :mod:`track_backends.see.columns`):
    nested parameters get dotted names (``optimizer.lr``), summaries are ``<metric>.<stat>``
    (``loss.min``, ``loss.last``, ...). Values are the stored ones: a list parameter stays a list.
    Rows come in uid order.

    Args:
        proto: A Protocol (or a Store).
        query: A MongoDB-style filter on trials (default: all).
        metrics: ``True`` for every metric's summary, ``False`` for none, or the metric names to keep.

    Returns:
        A ``pandas.DataFrame``.

    Raises:
        ExtraNotInstalledError: pandas is not installed (the ``analysis`` extra).
        QueryError: The query is malformed.
    """
    pd = require("pandas", "trials_frame")
    store = store_of(proto)
    keep: bool | list[str] = metrics if isinstance(metrics, bool) else list(metrics)
    rows: list[dict[str, Any]] = []
    columns: set[str] = set(FIXED)
    for page in trial_pages(store, query):
        for doc in page:
            row = trial_row(doc, keep)
            columns.update(row)
            rows.append(row)
    return pd.DataFrame.from_records(rows, columns=order_columns(columns))


def series_frame(proto: Any, query: dict[str, Any] | None = None, names: Sequence[str] | None = None) -> Any:
    """Metric points in long form: ``trial_uid, name, step, value``, one row per point.

    Each trial shows its current attempt's points (as ``fetch_metrics`` does); trials come in uid
    order, metrics by name, points in logging order.

    Args:
        proto: A Protocol (or a Store).
        query: A MongoDB-style filter on trials (default: all).
        names: Only these metrics (default: all).

    Returns:
        A ``pandas.DataFrame``.

    Raises:
        ExtraNotInstalledError: pandas is not installed (the ``analysis`` extra).
        QueryError: The query is malformed.
    """
    pd = require("pandas", "series_frame")
    store = store_of(proto)
    wanted = None if names is None else list(names)
    rows: list[dict[str, Any]] = []
    for page in trial_pages(store, query, fields=["uid", "metric_summary", "lease"]):
        for batch in series_batches(store, page, wanted):
            rows.extend(batch)
    return pd.DataFrame.from_records(rows, columns=list(SERIES_COLUMNS))
