"""What the dashboard shows, read through the Store and Protocol APIs only (no web framework here).

Every function takes an open store (or the Protocol over it) and returns JSON-like dicts that
:func:`track_backends.ui.values.dumps` encodes. Counts come from ``store.count`` with queries
(the per-group ones go through the ``(group_id, status.name)`` index); the trials table reads one
page with ``find(query, sort=..., limit=(page + 1) * size)`` and slices it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import NotFoundError, QueryError
from ..model import PREDEFINED_STATUSES, Trial
from ..protocol import DocumentProtocol
from ..protocol.updates import and_query
from ..store import GROUPS, PROJECTS, TRIALS, Query, Store
from .values import flatten, get_path, number

STATUS_NAMES = [s.name for s in PREDEFINED_STATUSES]
"""The statuses counted one by one; any other (custom) status is counted as ``other``."""
ROW_FIELDS = ["uid", "name", "version", "revision", "status", "group_id", "project_id", "parameters"]
ROW_FIELDS += ["metric_summary", "lease"]
MAX_PAGE_SIZE = 500
COLUMN_SAMPLE = 100
"""Trials read (unsorted, cheap) to find the table's parameter and metric columns."""
MAX_SCATTER = 20_000
SCATTER_PREFIXES = ("parameters.", "metric_summary.")


class BadRequest(ValueError):
    """A request argument other than the query is unusable (page, size, direction, axis)."""


def parse_query(text: str | None) -> dict[str, Any] | None:
    """Parse the query box's text: the query language as a JSON object.

    Args:
        text: The text, or ``None``/blank for every trial.

    Returns:
        The filter, or ``None``.

    Raises:
        QueryError: The text is not JSON, or not a JSON object.
    """
    if text is None or not text.strip():
        return None
    try:
        query = json.loads(text)
    except json.JSONDecodeError as e:
        raise QueryError(f"the query is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(query, dict):
        raise QueryError(f'the query must be a JSON object like {{"status.name": "Completed"}}, got {text!r:.80}')
    return query or None


def int_arg(text: str | None, name: str, default: int, low: int, high: int | None = None) -> int:
    """Parse an integer request argument within ``[low, high]``.

    Raises:
        BadRequest: It is not an integer, or out of range.
    """
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {text!r:.40}") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{name} must be between {low} and {high if high is not None else 'any'}, got {value}")
    return value


def status_counts(store: Store, query: Query) -> dict[str, Any]:
    """``{"total": n, "by_status": {name: n, ..., "other": n}}`` for the trials matching ``query``.

    Statuses with no trial are left out; ``other`` counts custom statuses.
    """
    total = store.count(TRIALS, query)
    by: dict[str, int] = {}
    if total:
        for name in STATUS_NAMES:
            n = store.count(TRIALS, and_query(query, {"status.name": name}))
            if n:
                by[name] = n
        if total - sum(by.values()):
            by["other"] = total - sum(by.values())
    return {"total": total, "by_status": by}


def _add(into: dict[str, Any], counts: dict[str, Any]) -> None:
    into["total"] += counts["total"]
    for k, v in counts["by_status"].items():
        into["by_status"][k] = into["by_status"].get(k, 0) + v


def _empty() -> dict[str, Any]:
    return {"total": 0, "by_status": {}}


def overview(store: Store) -> dict[str, Any]:
    """Projects, their groups, and trial counts by status (per group, per project, overall).

    A project's counts are the sum of its groups'. Trials whose ``group_id`` names no stored
    group (or is missing) are counted apart, under ``outside``, with the query that lists them.
    """
    groups = sorted(store.find(GROUPS), key=lambda g: (str(g.get("name")), str(g.get("uid"))))
    names = {d.get("uid"): d for d in store.find(PROJECTS)}
    projects: dict[Any, dict[str, Any]] = {}
    for uid in sorted(names, key=str):
        projects[uid] = _project_row(uid, names[uid])
    everything = _empty()
    for g in groups:
        counts = status_counts(store, {"group_id": g.get("uid")})
        row = {"uid": g.get("uid"), "name": g.get("name"), "description": g.get("description", ""), **counts}
        pid = g.get("project_id")
        if pid not in projects:
            projects[pid] = _project_row(pid, names.get(pid))
        projects[pid]["groups"].append(row)
        _add(projects[pid], counts)
        _add(everything, counts)
    outside_query = {"group_id": {"$nin": [g.get("uid") for g in groups]}}
    outside = _empty()
    if store.count(TRIALS) > everything["total"]:
        outside = status_counts(store, outside_query)
        _add(everything, outside)
    return {
        "statuses": STATUS_NAMES,
        "all": everything,
        "projects": list(projects.values()),
        "outside": {**outside, "query": outside_query},
    }


def _project_row(uid: Any, doc: dict[str, Any] | None) -> dict[str, Any]:
    return {"name": uid, "description": (doc or {}).get("description", ""), "stored": doc is not None,
            "groups": [], **_empty()}  # fmt: skip


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    """One table row: flattened parameters, metric summaries, status name, lease owner."""
    status = doc.get("status")
    lease = doc.get("lease")
    summary = doc.get("metric_summary")
    return {
        "uid": doc.get("uid"),
        "name": doc.get("name"),
        "status": status.get("name") if isinstance(status, dict) else status,
        "group_id": doc.get("group_id"),
        "project_id": doc.get("project_id"),
        "owner": lease.get("owner") if isinstance(lease, dict) else None,
        "parameters": flatten(doc.get("parameters")),
        "metrics": summary if isinstance(summary, dict) else {},
    }


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    for r in rows:
        params.update(dict.fromkeys(r["parameters"]))
        metrics.update(dict.fromkeys(k for k, v in r["metrics"].items() if isinstance(v, dict)))
    return {"parameters": list(params), "metrics": list(metrics)}


def _sorted_page(store: Store, query: Query, sort: str, direction: int, skip: int, need: int) -> list[dict[str, Any]]:
    """Trials ``skip:need`` in ``sort`` order, with trials that lack the field (or hold null) last."""
    has = store.find(TRIALS, and_query(query, {sort: {"$ne": None}}), sort=[(sort, direction)], limit=need)
    if len(has) == need:
        return has[skip:]
    lacking = store.find(TRIALS, and_query(query, {sort: None}), limit=need - len(has))
    return (has + lacking)[skip:]


def trials_page(
    store: Store, query: Query, *, sort: str | None = None, direction: int = 1, page: int = 0, size: int = 50
) -> dict[str, Any]:
    """One page of the trials table.

    Args:
        store: The store.
        query: A filter in the query language.
        sort: A dotted path (``parameters.lr``, ``metric_summary.loss.min``) or ``None`` for the
            store's order. Trials without a value there come last in both directions.
        direction: 1 ascending, -1 descending.
        page: The page, from 0.
        size: Trials per page.

    Returns:
        ``{"total", "page", "size", "pages", "sort", "dir", "trials": [row, ...], "columns"}``.

    Raises:
        QueryError: The query or the sort path is malformed.
    """
    total = store.count(TRIALS, query)
    need = (page + 1) * size
    skip = page * size
    if sort:
        docs = _sorted_page(store, query, sort, direction, skip, need) if skip < total else []
    else:
        docs = store.find(TRIALS, query, limit=need)[skip:] if skip < total else []
    rows = [_row(d) for d in docs]
    sample = [
        _row(d) for d in store.find(TRIALS, query, limit=COLUMN_SAMPLE, projection=["parameters", "metric_summary"])
    ]
    return {
        "total": total,
        "page": page,
        "size": size,
        "pages": max(1, math.ceil(total / size)),
        "sort": sort,
        "dir": direction,
        "trials": rows,
        "columns": _columns(sample + rows),
    }


def _series(points: list[tuple[Any, Any]], max_points: int) -> dict[str, Any]:
    """A curve for uPlot: x sorted ascending (steps, or the index when a step is not a number)."""
    n = len(points)
    numeric = all(number(s) is not None for s, _ in points)
    order = sorted(range(n), key=lambda i: points[i][0]) if numeric else list(range(n))
    if n > max_points:
        stride = math.ceil(n / max_points)
        keep = order[::stride]
        if keep[-1] != order[-1]:
            keep.append(order[-1])
        order = keep
    values = [number(points[i][1]) for i in order]
    return {
        "count": n,
        "shown": len(order),
        "gaps": values.count(None),
        "x": "step" if numeric else "index",
        "steps": [float(points[i][0]) if numeric else i for i in order],
        "values": values,
    }


def trial_detail(proto: DocumentProtocol, uid: str, max_points: int = 10_000) -> dict[str, Any]:
    """One trial's document, its lease as seen by the store's clock, its curves and its artifacts.

    Args:
        proto: The Protocol over the store.
        uid: The trial's uid.
        max_points: Curves longer than this are thinned evenly (their last point kept).

    Raises:
        NotFoundError: No trial has this uid.
    """
    doc = proto.store.find_one(TRIALS, {"uid": uid})
    if doc is None:
        raise NotFoundError(f"no trial with uid {uid!r}")
    series = proto.fetch_metrics(Trial.from_doc(doc))
    curves = {name: _series(points, max_points) for name, points in series.items()}
    artifacts = [
        {"name": a.name, "size": a.size, "media_type": a.media_type, "sha256": a.sha256, "created": a.created}
        for a in proto.list_artifacts(uid)
    ]
    return {"trial": doc, "now": proto.store.now(), "metrics": curves, "artifacts": artifacts}


def group_view(store: Store, gid: str) -> dict[str, Any]:
    """A group's document (``None`` when trials name a group that is not stored), counts, and axes.

    ``axes`` lists the numeric parameters (``parameters.<path>``) and the metric summaries
    (``metric_summary.<name>.<stat>``) seen in a sample of the group's trials: the scatter's choices.
    """
    doc = store.find_one(GROUPS, {"uid": gid})
    query = {"group_id": gid}
    sample = store.find(TRIALS, query, limit=COLUMN_SAMPLE * 2, projection=["parameters", "metric_summary"])
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    for d in sample:
        params.update(dict.fromkeys(k for k, v in flatten(d.get("parameters")).items() if number(v) is not None))
        summary = d.get("metric_summary")
        if isinstance(summary, dict):
            metrics.update(dict.fromkeys(k for k, v in summary.items() if isinstance(v, dict)))
    return {
        "group": doc,
        "uid": gid,
        "query": query,
        **status_counts(store, query),
        "x_axes": [f"parameters.{p}" for p in params],
        "y_axes": [f"metric_summary.{m}.{s}" for m in metrics for s in ("min", "last", "max")],
    }


def _axis(path: str | None, name: str) -> str:
    if not path or not path.startswith(SCATTER_PREFIXES) or path.endswith("."):
        raise BadRequest(f"{name} must be a path under parameters. or metric_summary., got {path!r:.80}")
    return path


def scatter(store: Store, query: Query, x: str | None, y: str | None, limit: int = MAX_SCATTER) -> dict[str, Any]:
    """Points ``(x, y)`` of the trials matching ``query``, sorted by x, for a uPlot scatter.

    Trials where either value is not a finite number are counted in ``skipped``.

    Raises:
        BadRequest: An axis is not a path under ``parameters.`` or ``metric_summary.``.
        QueryError: The query or a path is malformed.
    """
    xp, yp = _axis(x, "x"), _axis(y, "y")
    docs = store.find(TRIALS, query, limit=limit, projection=list(dict.fromkeys(["uid", "status", xp, yp])))
    points = []
    for d in docs:
        xv, yv = number(get_path(d, xp)), number(get_path(d, yp))
        if xv is not None and yv is not None:
            points.append((xv, yv, d.get("uid"), get_path(d, "status.name")))
    points.sort(key=lambda p: p[0])
    return {
        "x": xp,
        "y": yp,
        "xs": [p[0] for p in points],
        "ys": [p[1] for p in points],
        "uids": [p[2] for p in points],
        "statuses": [p[3] for p in points],
        "skipped": len(docs) - len(points),
        "truncated": len(docs) == limit,
    }
