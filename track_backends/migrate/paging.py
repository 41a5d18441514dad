"""Reading a store page by page, and choosing what a migration copies.

Pages are read by keyset pagination on ``uid`` (``{"uid": {"$gt": last}}``, sorted by ``uid``),
so memory holds one page at a time on every backend.

Selection:

* without a query, every project, group and trial is copied;
* with a query (a MongoDB-style filter), the trials matching it are copied, together with the
  groups they reference (``group_id``) and the projects that those trials and groups reference
  (``project_id``). Finding the references takes one extra pass over the matching trials that
  reads only ``uid``, ``group_id`` and ``project_id``; it holds the *distinct* referenced ids in
  memory, and the uids of the matching trials, not the trials.
* the documents of the collections beside trials (:data:`REFERENCE_COLLECTIONS`: artifacts,
  cache entries, recorded calls, traces) follow the trial they name in their ``trial`` field; one
  that names no trial (a cache entry) follows the group it names in ``group``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import StoreError
from ..layout import BESIDE_TRIALS
from ..store import GROUPS, PROJECTS, TRIALS, Document, Store

COLLECTIONS: tuple[str, ...] = (PROJECTS, GROUPS, TRIALS)
"""The data model's collections, copied first, in this order (parents first)."""

REFERENCE_COLLECTIONS: tuple[str, ...] = BESIDE_TRIALS
"""The collections beside trials (artifacts, cache, history, traces), copied after the blobs they
reference."""

ALL_COLLECTIONS: tuple[str, ...] = COLLECTIONS + REFERENCE_COLLECTIONS
"""Every collection a migration copies, in the order it copies them."""

DEFAULT_BATCH = 500
"""Documents per page read and per ``insert_many`` written."""

Filters = dict[str, list[dict[str, Any] | None]]
"""Per collection, the source filters whose union is the selection (``None``: everything)."""


def _and(base: dict[str, Any] | None, extra: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [base, extra]} if base else extra


def _snapshot_uids(store: Store, collection: str) -> list[str] | None:
    """The sorted uids of an in-process engine's collection, or ``None`` for other stores.

    The ``ephemeral:``, ``pickled:`` and ``file:`` engines hold their documents in this process
    and index them by hash only, so a ``{"uid": {"$gt": last}}`` page scans and sorts the whole
    collection. For them a sorted list of the uids (one reference per document, no copies) is
    taken once, and pages are read by ``uid $in``, which their uid index answers directly.
    """
    from ..stores.memory import MemoryStore

    return store.uids(collection) if isinstance(store, MemoryStore) else None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def iter_pages(
    store: Store,
    collection: str,
    query: dict[str, Any] | None = None,
    batch: int = DEFAULT_BATCH,
    projection: list[str] | None = None,
) -> Iterator[list[Document]]:
    """Yield the documents matching ``query`` in pages of at most ``batch``, in ``uid`` order.

    Keyset pagination: each page is ``find({"$and": [query, {"uid": {"$gt": last}}]},
    sort=[("uid", 1)], limit=batch)``, one indexed query on server stores, and memory holds one
    page. In-process engines are paged over a sorted snapshot of their uids instead (see
    :func:`_snapshot_uids`); documents they gain meanwhile are not visited.

    Args:
        store: The store to read.
        collection: The collection.
        query: A filter, or ``None`` for every document.
        batch: The page size.
        projection: Fields to read (``uid`` is always included), or ``None`` for whole documents.

    Yields:
        Lists of at most ``batch`` documents, in ``uid`` order.

    Raises:
        StoreError: The store returned uids out of order (pagination would not end).
    """
    fields = None if projection is None else ["uid", *(f for f in projection if f != "uid")]
    uids = _snapshot_uids(store, collection)
    if uids is not None:
        for chunk in _chunks(uids, batch):
            page = store.find(collection, _and(query, {"uid": {"$in": chunk}}), projection=fields)
            if page:
                page.sort(key=lambda d: d["uid"])
                yield page
        return
    last: str | None = None
    while True:
        q = query if last is None else _and(query, {"uid": {"$gt": last}})
        page = store.find(collection, q or None, sort=[("uid", 1)], limit=batch, projection=fields)
        if not page:
            return
        first, end = page[0].get("uid"), page[-1].get("uid")
        if type(end) is not str or (last is not None and not (type(first) is str and first > last)):
            raise StoreError(f"{collection}: the source returned uids out of order after {last!r}; cannot page")
        yield page
        if len(page) < batch:
            return
        last = end


def selection(src: Store, query: dict[str, Any] | None, batch: int) -> Filters:
    """The source filters of each collection that select what a migration copies.

    Args:
        src: The source store.
        query: A filter on trials, or ``None`` for everything.
        batch: The page size of the reference pass, and the size of each ``uid $in`` filter.

    Returns:
        For each of :data:`ALL_COLLECTIONS`, filters whose union is the selection (see the
        module docstring).
    """
    if query is None:
        return {c: [None] for c in ALL_COLLECTIONS}
    groups: set[str] = set()
    projects: set[str] = set()
    trials: list[str] = []
    for page in iter_pages(src, TRIALS, query, batch, ["group_id", "project_id"]):
        trials += [d["uid"] for d in page]
        for d in page:
            if type(d.get("group_id")) is str:
                groups.add(d["group_id"])
            if type(d.get("project_id")) is str:
                projects.add(d["project_id"])
    for chunk in _chunks(sorted(groups), batch):
        for page in iter_pages(src, GROUPS, {"uid": {"$in": chunk}}, batch, ["project_id"]):
            projects.update(d["project_id"] for d in page if type(d.get("project_id")) is str)
    references: list[dict[str, Any] | None] = [{"trial": {"$in": c}} for c in _chunks(trials, batch)]
    references += [
        {"$and": [{"trial": {"$exists": False}}, {"group": {"$in": c}}]} for c in _chunks(sorted(groups), batch)
    ]
    return {
        PROJECTS: [{"uid": {"$in": c}} for c in _chunks(sorted(projects), batch)],
        GROUPS: [{"uid": {"$in": c}} for c in _chunks(sorted(groups), batch)],
        TRIALS: [query],
        **{c: list(references) for c in REFERENCE_COLLECTIONS},
    }
