"""The newest buckets of a series and its last points, found with index lookups only.

A sort on ``b`` is one index walk on MongoDB, but a MongoDB-wire server may sort every candidate
document in memory (SecantusDB does), which costs the whole series. So both questions here are
answered with lookups of the unique ``uid`` (buckets are numbered 0, 1, 2, ..., so their uids
are known) and with ranges of ``b`` after the ``(trial, attempt)`` prefix of the bucket index:

* the newest bucket: one query probes ``b`` = 0, 1, 2, 4, 8, ...; queries of 32 probes narrow
  down between the last power of two found and the next; a range query then confirms that no
  bucket lies beyond (which also catches gaps that deletions may leave): four queries for a
  thousand buckets, five for a million;
* the last points: windows of buckets, newest first, until every wanted metric has them.

A read that names no metric takes the names from the series' *registry*: bucket ``-1`` of each
``(document, attempt)``, which holds no point and lists every name the series ever had. Writers
add a name to it before they write any point of that name (see :mod:`.series`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..points import in_range
from .bucketing import BUCKET_BYTES, BUCKET_POINTS, NO_BUCKET, Head, bucket_uid

Find = Callable[[dict[str, Any], dict[str, Any]], list[dict[str, Any]]]
"""Runs a query on the points collection and returns the documents (errors wrapped)."""
Series = dict[str, list[tuple[Any, Any]]]

REGISTRY = -1
"""The bucket number of a series' registry of metric names."""
_PROBES = 32
_FIRST_WINDOW = 4
_HEAD = {"_id": 0, "b": 1, "n": 1, "s": 1}
_BACK = {"_id": 0, "b": 1, "names": 1, "p": 1}


def registry_doc(uid: str, attempt: int, names: list[str]) -> dict[str, Any]:
    """The registry of a series that holds ``names``."""
    doc = {"uid": bucket_uid(uid, attempt, REGISTRY), "trial": uid, "attempt": attempt, "b": REGISTRY}
    doc.update(n=0, s=0, names=names, p=[])
    return doc


def registry_update(uid: str, attempt: int, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The upsert (filter, update) that adds ``names`` to the registry of a series."""
    seed = {"trial": uid, "attempt": attempt, "b": REGISTRY, "n": 0, "s": 0, "p": []}
    return {"uid": bucket_uid(uid, attempt, REGISTRY)}, {"$setOnInsert": seed, "$addToSet": {"names": {"$each": names}}}


def newest(find: Find, uid: str, attempt: int) -> Head:
    """The newest bucket of a series as ``(b, n, s)`` (``NO_BUCKET`` when it has none)."""
    found: dict[int, dict[str, Any]] = {}

    def probe(bs: Sequence[int]) -> set[int]:
        got = find({"uid": {"$in": [bucket_uid(uid, attempt, b) for b in bs]}}, _HEAD)
        found.update((d["b"], d) for d in got)
        return {d["b"] for d in got}

    hit = probe([0, *(1 << k for k in range(48))])
    lo = max(hit, default=-1)
    hi = lo * 2 if lo > 0 else lo + 1  # the next power of two, which was probed and is missing
    while hi - lo > 1:
        step = -(-(hi - lo) // (_PROBES + 1))
        bs = list(range(lo + step, hi, step))
        hit = probe(bs)
        lo = max([b for b in hit if b > lo], default=lo)
        hi = min([b for b in bs if b > lo and b not in hit], default=hi)
    while True:  # nothing beyond? (a gap fooled the probes, or another writer went on meanwhile)
        rest = find({"trial": uid, "attempt": attempt, "b": {"$gt": lo}}, _HEAD)
        if not rest:
            break
        found.update((d["b"], d) for d in rest)
        lo = max(d["b"] for d in rest)
    if lo < 0:
        return NO_BUCKET
    d = found[lo]
    return lo, d.get("n", BUCKET_POINTS), d.get("s", BUCKET_BYTES)


def last_points(
    find: Find,
    uid: str,
    attempts: list[int],
    wanted: list[str] | None,
    last: int,
    bounds: tuple[Any, Any],
) -> Series | None:
    """The last ``last`` points of each wanted metric of one document, read newest bucket first.

    Args:
        find: Runs a query on the points collection.
        uid: The document.
        attempts: The attempts whose points count, in any order.
        wanted: The metrics asked for (``None``: every one).
        last: How many points of each metric.
        bounds: ``(start, stop)`` of the steps, or ``None`` for either.

    Returns:
        ``{name: [(step, value), ...]}``, or ``None`` when the buckets do not carry what this
        read needs (a series without registry, or a bucket without ``names``): then read it all.
    """
    registries = [bucket_uid(uid, a, REGISTRY) for a in attempts]
    regs = find({"uid": {"$in": registries}}, {"_id": 0, "attempt": 1, "names": 1})
    known = {n for d in regs for n in d.get("names", ())}
    registered = {d["attempt"] for d in regs}
    names = sorted(known) if wanted is None else [n for n in wanted if n in known]
    got: Series = {n: [] for n in names}
    pending = set(names)
    for a in sorted(attempts, reverse=True):  # the newest attempt's points come last
        if not pending:
            break
        b = newest(find, uid, a)[0]
        if b >= 0 and a not in registered:
            return None
        window = _FIRST_WINDOW
        while b >= 0 and pending:
            lo = max(0, b - window + 1)
            docs = find({"trial": uid, "attempt": a, "b": {"$gte": lo, "$lte": b}}, _BACK)
            docs.sort(key=lambda d: d["b"], reverse=True)
            if not _collect(docs, got, pending, known, max(last, 1), bounds):
                return None
            b, window = lo - 1, window * 2
    return {n: (v[::-1] if last else []) for n, v in got.items() if v}


def _collect(
    docs: list[dict[str, Any]],
    got: Series,
    pending: set[str],
    known: set[str],
    need: int,
    bounds: tuple[Any, Any],
) -> bool:
    """Collect, newest first, up to ``need`` in-range points per pending name into ``got``.

    Returns:
        ``False`` when a bucket lacks ``names`` or holds a name its registry lacks.
    """
    start, stop = bounds
    ranged = start is not None or stop is not None
    for d in docs:
        names = d.get("names")
        if not isinstance(names, list) or not known.issuperset(names):
            return False
        if pending.isdisjoint(names):
            continue
        for name, step, value in reversed(d["p"]):
            if name in pending and (not ranged or in_range(step, start, stop)):
                into = got[name]
                into.append((step, value))
                if len(into) >= need:
                    pending.discard(name)
                    if not pending:
                        return True
    return True
