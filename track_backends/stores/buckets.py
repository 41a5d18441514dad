"""Metric points as bounded bucket documents: the Store's default points primitives.

A store that has no native form for series (MongoDB, a plugin) keeps each trial's points in a
second collection, ``<collection>_points``, as bucket documents of at most :data:`BUCKET_POINTS`
points (MongoDB's bucket pattern)::

    {"uid": "<trial uid>:<attempt>:<bucket>", "trial": "<trial uid>", "attempt": 0, "b": 7,
     "n": 812, "p": [[name, step, value], ...]}

Appending costs one single-document update while the newest bucket has room, and one insert
when it is full, however long the series is; a bucket stays far below MongoDB's 16 MB document
limit, so a trial may hold millions of points. The summary update and the points are two
writes, in that order: a crash between them leaves a summary that counts points which are not
stored (the points of a fenced-out writer are never written, because its summary update fails).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DuplicateKeyError
from .points import Point, check_points, check_range, check_strings, select

if TYPE_CHECKING:
    from ..store import Query, Store

BUCKET_POINTS = 1000
"""Points per bucket document."""

_LAST: dict[tuple[int, str, str, int], int] = {}
"""(store id, collection, trial uid, attempt) -> the newest bucket this process wrote to."""
_LOCK = threading.Lock()


def points_collection(collection: str) -> str:
    """The collection that holds the buckets of ``collection``'s documents."""
    return f"{collection}_points"


def _bucket_uid(uid: str, attempt: int, b: int) -> str:
    return f"{uid}:{attempt}:{b}"


def _newest(store: Store, coll: str, uid: str, attempt: int) -> tuple[int, int]:
    """The newest bucket's number and size (``(-1, 0)`` when there is none)."""
    docs = store.find(coll, {"trial": uid, "attempt": attempt}, sort=[("b", -1)], limit=1, projection=["b", "n"])
    return (docs[0]["b"], docs[0]["n"]) if docs else (-1, 0)


def append_points(
    store: Store,
    collection: str,
    uid: str,
    points: Sequence[Point],
    *,
    attempt: int = 0,
    query: Query = None,
    update: dict[str, Any] | None = None,
) -> bool:
    """:meth:`Store.append_points` over documents (see the module docstring)."""
    pts = check_points(points)
    if update is not None and not store.update(collection, query if query is not None else {"uid": uid}, update):
        return False
    coll = points_collection(collection)
    store.ensure_index(coll, ("trial", "attempt"))
    key = (id(store), collection, uid, attempt)
    b: int | None
    with _LOCK:
        b = _LAST.get(key)
    while pts:
        if b is None:
            b, n = _newest(store, coll, uid, attempt)
        else:
            n = None
        if b >= 0:
            room = BUCKET_POINTS - n if n is not None else None
            chunk = pts[: room if room is not None else BUCKET_POINTS]
            k = len(chunk)
            if k and store.update(
                coll,
                {"uid": _bucket_uid(uid, attempt, b), "n": {"$lte": BUCKET_POINTS - k}},
                {"$push": {"p": {"$each": chunk}}, "$inc": {"n": k}},
            ):
                pts = pts[k:]
                continue
        b += 1
        chunk = pts[:BUCKET_POINTS]
        doc = {
            "uid": _bucket_uid(uid, attempt, b),
            "trial": uid,
            "attempt": attempt,
            "b": b,
            "n": len(chunk),
            "p": chunk,
        }
        try:
            store.insert(coll, doc)
        except DuplicateKeyError:
            b = None  # another writer made it: look again
            continue
        pts = pts[len(chunk) :]
    if b is not None:
        with _LOCK:
            _LAST[key] = b
    return True


def fetch_points(
    store: Store,
    collection: str,
    uids: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    start: Any = None,
    stop: Any = None,
    last: int | None = None,
    attempts: dict[str, int] | None = None,
) -> dict[str, dict[str, list[tuple[Any, Any]]]]:
    """:meth:`Store.fetch_points` over documents: one query for every trial asked about."""
    check_range(start, stop, last)
    wanted, names = check_strings(uids, "uid"), None if names is None else check_strings(names, "metric name")
    if not wanted:
        return {}
    coll = points_collection(collection)
    raw: dict[str, list[tuple[int, list[Any]]]] = {}
    query: dict[str, Any] = {"trial": {"$in": wanted}}
    for d in store.find(coll, query, sort=[("trial", 1), ("attempt", 1), ("b", 1)]):
        raw.setdefault(d["trial"], []).append((d["attempt"], d["p"]))
    out = {}
    for uid, buckets in raw.items():
        keep = None if attempts is None else {0, attempts.get(uid, 0)}
        flat = [tuple(p) for a, ps in buckets if keep is None or a in keep for p in ps]
        out[uid] = select(flat, names=names, start=start, stop=stop, last=last)  # type: ignore[arg-type]
    return out


def delete_points(store: Store, collection: str, uids: Sequence[str]) -> int:
    """:meth:`Store.delete_points` over documents; returns the number of buckets deleted."""
    wanted = check_strings(uids, "uid")
    if not wanted:
        return 0
    with _LOCK:
        for k in [k for k in _LAST if k[0] == id(store) and k[1] == collection and k[2] in set(wanted)]:
            del _LAST[k]
    return store.delete(points_collection(collection), {"trial": {"$in": wanted}})
