"""Column names shared by ``ls``, ``best``, ``export`` and the analysis frames, and their rows.

A trial becomes one flat row:

* ``uid``, ``project``, ``group``, ``status`` (its name), ``start_time`` and ``end_time`` (from
  ``metadata``, seconds since the epoch);
* one column per parameter, named by its dotted path (``lr``, ``optimizer.momentum``); a
  parameter whose path would read as another column (``uid``, ``status``, a name ending in
  ``.min``...) is written ``parameters.<path>`` instead;
* ``<metric>.<stat>`` for each metric summary, with stat in ``count``, ``last``, ``last_step``,
  ``min``, ``max``.

Every column name maps back to one document path (:func:`field_path`), so any column can be
sorted on: ``loss.min`` is ``metric_summary.loss.min``, ``lr`` is ``parameters.lr``, ``group`` is
``group_id``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from ..errors import QueryError

FIXED: tuple[str, ...] = ("uid", "project", "group", "status", "start_time", "end_time")
"""The columns every trial row starts with."""

STATS: tuple[str, ...] = ("count", "last", "last_step", "min", "max")
"""The fields of a metric summary, in column order."""

SERIES_COLUMNS: tuple[str, ...] = ("trial_uid", "name", "step", "value")
"""The columns of metric points in long form."""

ALIASES: dict[str, str] = {
    "uid": "uid",
    "project": "project_id",
    "group": "group_id",
    "status": "status.name",
    "start_time": "metadata.start_time",
    "end_time": "metadata.end_time",
}
"""Column name -> document path, for the fixed columns."""

DOC_FIELDS = frozenset(
    "uid hash revision name version description project_id group_id parameters metadata "
    "metric_summary chronos status lease errors tags previous_attempts".split()
)
"""Top-level fields of a trial document: a name starting with one of them is a document path."""

PAGE = 1_000
"""Trials per page read."""


@lru_cache(maxsize=8192)
def field_path(name: str) -> str:
    """The document path a column name (or ``--sort`` key) stands for.

    >>> [field_path(n) for n in ("loss.min", "lr", "parameters.lr", "group", "status.value")]
    ['metric_summary.loss.min', 'parameters.lr', 'parameters.lr', 'group_id', 'status.value']

    Args:
        name: A column name: a fixed column, a document path, ``<metric>.<stat>``, or a parameter.

    Returns:
        The dotted document path.
    """
    if name in ALIASES:
        return ALIASES[name]
    head, _, tail = name.partition(".")
    if head in DOC_FIELDS:
        return name
    if tail and name.rsplit(".", 1)[1] in STATS:
        return f"metric_summary.{name}"
    return f"parameters.{name}"


@lru_cache(maxsize=8192)
def param_column(path: str) -> str:
    """The column of the parameter at dotted ``path``: the path, unless it would read as another column."""
    return path if field_path(path) == f"parameters.{path}" else f"parameters.{path}"


@lru_cache(maxsize=8192)
def metric_column(name: str, stat: str) -> str:
    """The column of one field of a metric's summary: ``<name>.<stat>``, or with ``metric_summary.`` when needed."""
    short = f"{name}.{stat}"
    return short if field_path(short) == f"metric_summary.{short}" else f"metric_summary.{short}"


def flatten(value: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flatten nested dicts to dotted paths (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); empty dicts stay values."""
    out = {} if out is None else out
    for key, v in value.items():
        if isinstance(v, dict) and v:
            flatten(v, f"{prefix}{key}.", out)
        else:
            out[f"{prefix}{key}"] = v
    return out


def trial_row(doc: dict[str, Any], metrics: bool | Sequence[str] = True) -> dict[str, Any]:
    """One trial document as a flat row (see the module docstring).

    Args:
        doc: A trial document (whole, or projected to :data:`ROW_FIELDS`).
        metrics: ``True`` for every metric's summary columns, ``False`` for none, or the metric names to keep.

    Returns:
        ``{column: value}``; values are the stored ones (lists stay lists).
    """
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    status = doc.get("status")
    row: dict[str, Any] = {
        "uid": doc.get("uid"),
        "project": doc.get("project_id"),
        "group": doc.get("group_id"),
        "status": status.get("name") if isinstance(status, dict) else status,
        "start_time": meta.get("start_time"),
        "end_time": meta.get("end_time"),
    }
    params = doc.get("parameters")
    if isinstance(params, dict):
        for path, value in flatten(params).items():
            row[param_column(path)] = value
    summary = doc.get("metric_summary")
    if metrics is not False and isinstance(summary, dict):
        keep = None if metrics is True else set(metrics)
        for name, s in summary.items():
            if (keep is None or name in keep) and isinstance(s, dict):
                for stat in STATS:
                    if stat in s:
                        row[metric_column(name, stat)] = s[stat]
    return row


ROW_FIELDS: list[str] = [
    "uid",
    "project_id",
    "group_id",
    "status",
    "metadata.start_time",
    "metadata.end_time",
    "parameters",
    "metric_summary",
    "lease",
]
"""The projection that reads what :func:`trial_row` needs (``lease`` picks the attempt whose points show)."""


def column_key(column: str) -> tuple[Any, ...]:
    """Sort key putting the fixed columns first, then parameters by name, then metrics by name and stat."""
    if column in FIXED:
        return (0, FIXED.index(column))
    path = field_path(column)
    if path.startswith("metric_summary."):
        name, _, stat = path[len("metric_summary.") :].rpartition(".")
        return (2, name, STATS.index(stat) if stat in STATS else len(STATS), stat)
    return (1, column)


def order_columns(columns: Iterable[str]) -> list[str]:
    """The columns in export order (see :func:`column_key`)."""
    return sorted(set(columns), key=column_key)


def parse_sort(text: str) -> list[tuple[str, int]]:
    """Parse a ``--sort`` argument: comma-separated column names, each with an optional leading ``-``.

    >>> parse_sort("-acc.max,lr")
    [('metric_summary.acc.max', -1), ('parameters.lr', 1)]

    Raises:
        QueryError: A key is empty.
    """
    out = []
    for part in text.split(","):
        key = part.strip()
        direction = -1 if key.startswith("-") else 1
        key = key.lstrip("+-").strip()
        if not key:
            raise QueryError(f"--sort takes column names such as loss.min or -acc.max, got {text!r}")
        out.append((field_path(key), direction))
    return out


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (strict JSON)."""
    if type(value) is float and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    return value
