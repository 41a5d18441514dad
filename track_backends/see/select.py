"""Choosing trials (``--query``, ``--group``, ``--status``) and reading them page by page.

Pages come from :func:`~track_backends.migrate.iter_pages`: keyset pagination on ``uid``
(``{"uid": {"$gt": last}}`` sorted by ``uid``) on server stores, and a sorted snapshot of the
uids on the in-process engines, whose uid index answers ``uid $in`` directly. Memory holds one
page of trials (plus, on the in-process engines, one reference per uid).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import QueryError
from ..layout import attempt_of
from ..migrate import iter_pages
from ..protocol.updates import and_query
from ..store import GROUPS, TRIALS, Document, Store
from .columns import PAGE, ROW_FIELDS

MAX_POINTS = 100_000
"""Points read per ``fetch_points`` call when streaming series (a trial's series is never split)."""

ROWS_PER_BATCH = 10_000
"""Rows of points handed to a writer at once."""


def store_of(source: Any) -> Store:
    """The store behind a Protocol (its ``.store``), or the store itself.

    Raises:
        QueryError: ``source`` is neither.
    """
    if isinstance(source, Store):
        return source
    store = getattr(source, "store", None)
    if isinstance(store, Store):
        return store
    raise QueryError(f"expected a Protocol or a Store, got {type(source).__name__}")


def group_filter(store: Store, group: str) -> dict[str, Any]:
    """The filter on trials of a group given by uid or by name.

    A name may match groups of several projects; the filter takes all of them. The text is also
    taken as a raw ``group_id``, for trials whose group has no stored document.
    """
    uids = [d["uid"] for d in store.find(GROUPS, {"name": group}, projection=["uid"])]
    ids = [group, *(u for u in uids if u != group)]
    return {"group_id": ids[0] if len(ids) == 1 else {"$in": ids}}


def status_filter(status: str) -> dict[str, Any]:
    """The filter on ``status.name`` for ``Completed`` or a comma-separated list ``Created,Interrupted``."""
    names = [s.strip() for s in status.split(",") if s.strip()]
    if not names:
        raise QueryError(f"--status takes a status name such as Completed, got {status!r}")
    return {"status.name": names[0] if len(names) == 1 else {"$in": names}}


def trial_filter(
    store: Store, query: dict[str, Any] | None = None, *, group: str | None = None, status: str | None = None
) -> dict[str, Any] | None:
    """``query`` restricted to a group (uid or name) and/or status(es); ``None`` when nothing restricts."""
    if group is not None:
        query = and_query(query, group_filter(store, group))
    if status is not None:
        query = and_query(query, status_filter(status))
    return query or None


def trial_pages(
    store: Store, query: dict[str, Any] | None = None, *, batch: int = PAGE, fields: list[str] | None = None
) -> Iterator[list[Document]]:
    """Yield the matching trials in pages of at most ``batch``, in uid order.

    Server stores return them projected to ``fields`` (default :data:`ROW_FIELDS`). The in-process
    engines return whole documents: they copy documents whole anyway, and projecting the copies
    costs more than it saves.
    """
    from ..stores.memory import MemoryStore

    projection = None if isinstance(store, MemoryStore) else (ROW_FIELDS if fields is None else fields)
    yield from iter_pages(store, TRIALS, query, batch, projection)


def _point_count(doc: Document, names: Sequence[str] | None) -> int:
    summary = doc.get("metric_summary")
    if not isinstance(summary, dict):
        return 0
    counts = (s.get("count", 0) for n, s in summary.items() if isinstance(s, dict) and (names is None or n in names))
    return sum(c for c in counts if type(c) is int)


def _chunks_by_points(page: list[Document], names: Sequence[str] | None) -> Iterator[list[Document]]:
    chunk: list[Document] = []
    points = 0
    for doc in page:
        n = max(_point_count(doc, names), 1)
        if chunk and points + n > MAX_POINTS:
            yield chunk
            chunk, points = [], 0
        chunk.append(doc)
        points += n
    if chunk:
        yield chunk


def series_batches(
    store: Store, page: list[Document], names: Sequence[str] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The points of a page of trials as rows ``{trial_uid, name, step, value}``, in batches.

    Points are read with one ``fetch_points`` per chunk of trials holding at most
    :data:`MAX_POINTS` points (by their summaries' counts), and show each trial's current attempt,
    as ``fetch_metrics`` does. Within a trial, metrics come by name and points in logging order.
    """
    rows: list[dict[str, Any]] = []
    for chunk in _chunks_by_points(page, names):
        uids = [d["uid"] for d in chunk]
        got = store.fetch_points(TRIALS, uids, names=names, attempts={d["uid"]: attempt_of(d) for d in chunk})
        for uid in uids:
            series = got.get(uid, {})
            for name in sorted(series):
                for step, value in series[name]:
                    rows.append({"trial_uid": uid, "name": name, "step": step, "value": value})
                    if len(rows) >= ROWS_PER_BATCH:
                        yield rows
                        rows = []
    if rows:
        yield rows
