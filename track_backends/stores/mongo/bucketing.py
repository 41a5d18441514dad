"""Bucket documents of metric points on MongoDB: their shape and how a batch is split among them.

Pure functions (no driver): :mod:`.series` sends what they build. See :mod:`.series` for the
bucket document and the write protocol.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from ...encoding import INT64_MAX, INT64_MIN, check_key
from ...errors import QueryError
from ..points import check_points

BUCKET_POINTS = 1000
"""At most this many points per bucket."""
BUCKET_BYTES = 4 * 1024 * 1024
"""At most about this many BSON bytes of points per bucket (a quarter of MongoDB's 16 MB limit)."""
BUCKET_INDEX: tuple[tuple[str, ...], bool] = (("trial", "attempt", "b"), False)
"""The index of every points collection (besides the unique ``uid``)."""

Head = tuple[int, int, int]
"""The newest bucket of a series as ``(b, n, s)``; ``b == -1`` when there is none."""
NO_BUCKET: Head = (-1, BUCKET_POINTS, BUCKET_BYTES)

_SIMPLE = (int, float, bool, type(None))


def bucket_uid(uid: str, attempt: int, b: int) -> str:
    """The ``uid`` of bucket ``b`` of a series (the same as the default bucket store's)."""
    return f"{uid}:{attempt}:{b}"


def _size(value: Any) -> int:
    """An upper bound of the BSON size of a validated value (without its element header)."""
    t = type(value)
    if t is str:
        return 5 + (len(value) if value.isascii() else len(value.encode()))
    if t is dict:
        return 5 + sum(2 + len(k.encode()) + _size(v) for k, v in value.items())
    if t is list:
        return 5 + sum(2 + len(str(i)) + _size(v) for i, v in enumerate(value))
    return 8


def prepare(points: Sequence[Any]) -> tuple[list[list[Any]], list[int], list[str]]:
    """Validate points as every store does, and size them for buckets.

    Returns:
        The points as ``[name, step, value]`` lists (as
        :func:`~track_backends.stores.points.check_points` makes them), an upper bound of each
        one's BSON size (:func:`point_sizes`), and the distinct names in order.

    Raises:
        QueryError: A point is not a ``(name, step, value)`` triple.
        EncodingError: A name, step or value cannot be stored.
    """
    fast = _prepare_plain(points)
    if fast is not None:
        return fast
    pts = check_points(points)
    return pts, point_sizes(pts), list(dict.fromkeys([p[0] for p in pts]))


def _plain(value: Any) -> tuple[bool, Any]:
    t = type(value)
    if t is float:
        return True, value if value else 0.0  # as encode(): -0.0 is stored as 0.0
    if t is int:
        return INT64_MIN <= value <= INT64_MAX, value
    return value is None or t is bool, value


def _prepare_plain(points: Sequence[Any]) -> tuple[list[list[Any]], list[int], list[str]] | None:
    """:func:`prepare` in one pass for points of numbers, booleans and nulls; ``None`` for others."""
    out: list[list[Any]] = []
    sizes: list[int] = []
    names: dict[str, int] = {}
    for p in points:
        if (type(p) is not tuple and type(p) is not list) or len(p) != 3 or type(p[0]) is not str:
            return None
        name = p[0]
        n = names.get(name)
        if n is None:
            check_key(name, "metric_summary")
            n = names[name] = 32 + _size(name)
        ok_step, step = _plain(p[1])
        ok_value, value = _plain(p[2])
        if not (ok_step and ok_value):
            return None
        out.append([name, step, value])
        sizes.append(n)
    return out, sizes, list(names)


def point_sizes(points: Sequence[list[Any]]) -> list[int]:
    """An upper bound of each ``[name, step, value]`` point's BSON size inside a bucket's array."""
    names: dict[str, int] = {}
    out = []
    for name, step, value in points:
        n = names.get(name)
        if n is None:
            n = names[name] = 32 + _size(name)
        if type(step) in _SIMPLE and type(value) in _SIMPLE:
            out.append(n)
        else:
            out.append(n + _size(step) + _size(value))
    return out


def _take(sums: Sequence[int], i: int, room_n: int, room_s: int) -> tuple[int, int]:
    """How many points from ``i`` fit in ``room_n`` points and ``room_s`` bytes, and their bytes.

    ``sums`` are the prefix sums of the points' sizes (``sums[j]``: the first ``j`` points).
    """
    end = min(len(sums) - 1, i + room_n)
    j = bisect_right(sums, sums[i] + room_s, i, end + 1) - 1
    return j - i, sums[j] - sums[i]


def _number(step: Any) -> bool:
    t = type(step)
    return (t is int or t is float) and not math.isnan(step)


def _extras(chunk: Sequence[list[Any]]) -> tuple[list[str], Any, Any]:
    """The distinct names of a chunk and the bounds of its numeric steps (``None`` without any)."""
    names = list(dict.fromkeys([p[0] for p in chunk]))
    steps = [p[1] for p in chunk]
    types = set(map(type, steps))
    if types == {int}:
        pass
    elif types <= {int, float}:
        steps = [x for x in steps if x == x]  # NaN bounds nothing
    else:
        steps = [x for x in steps if _number(x)]
    return (names, min(steps), max(steps)) if steps else (names, None, None)


def new_bucket(uid: str, attempt: int, b: int, chunk: list[list[Any]], size: int) -> dict[str, Any]:
    """A bucket document holding ``chunk``."""
    names, lo, hi = _extras(chunk)
    doc: dict[str, Any] = {"uid": bucket_uid(uid, attempt, b), "trial": uid, "attempt": attempt, "b": b}
    doc.update(n=len(chunk), s=size, names=names)
    if lo is not None:
        doc.update(lo=lo, hi=hi)
    doc["p"] = chunk
    return doc


def _fill(uid: str, attempt: int, b: int, chunk: list[list[Any]], size: int) -> tuple[dict[str, Any], ...]:
    """The guarded upsert that appends ``chunk`` to bucket ``b`` (filter, update)."""
    k = len(chunk)
    filt = {"uid": bucket_uid(uid, attempt, b), "n": {"$lte": BUCKET_POINTS - k}, "s": {"$lte": BUCKET_BYTES - size}}
    names, lo, hi = _extras(chunk)
    update: dict[str, Any] = {
        "$setOnInsert": {"trial": uid, "attempt": attempt, "b": b},
        "$inc": {"n": k, "s": size},
        "$addToSet": {"names": {"$each": names}},
        "$push": {"p": {"$each": chunk}},
    }
    if lo is not None:
        update["$min"] = {"lo": lo}
        update["$max"] = {"hi": hi}
    return filt, update


@dataclass(frozen=True, slots=True)
class Plan:
    """How a batch is written, given the newest bucket.

    Attributes:
        fill: ``(filter, update)`` of the guarded upsert that fills the newest bucket, or ``None``.
        k: Points the fill appends.
        size: Their bytes.
        docs: The new buckets for the rest, in order.
    """

    fill: tuple[dict[str, Any], ...] | None
    k: int
    size: int
    docs: list[dict[str, Any]]


def plan(uid: str, attempt: int, pts: list[list[Any]], sizes: list[int], head: Head) -> Plan:
    """Split validated points between the newest bucket ``head`` and new buckets after it."""
    b, n, s = head
    sums = [0, *accumulate(sizes)]
    fill, k, size = None, 0, 0
    if b >= 0 and n < BUCKET_POINTS:
        k, size = _take(sums, 0, BUCKET_POINTS - n, BUCKET_BYTES - s)
        if k:
            fill = _fill(uid, attempt, b, pts[:k], size)
    docs = []
    i = k
    while i < len(pts):
        b += 1
        m, used = _take(sums, i, BUCKET_POINTS, BUCKET_BYTES)
        if not m:  # one point larger than a bucket's bound: a bucket of its own
            m, used = 1, sizes[i]
        docs.append(new_bucket(uid, attempt, b, pts[i : i + m], used))
        i += m
    return Plan(fill, k, size, docs)


def keep_attempts(uids: list[str], attempts: Any) -> dict[str, set[int]] | None:
    """Which attempts of each document a read keeps (``None``: all)."""
    if attempts is None:
        return None
    if not isinstance(attempts, dict):
        raise QueryError(f"attempts maps uids to attempts, got {attempts!r:.80}")
    keep = {}
    for uid in uids:
        a = attempts.get(uid, 0)
        if type(a) is not int:
            raise QueryError(f"the attempt of {uid!r} is an int, got {a!r:.80}")
        keep[uid] = {0, a}
    return keep


def bucket_filter(
    uids: list[str], names: list[str] | None, start: Any, stop: Any, keep: dict[str, set[int]] | None
) -> dict[str, Any]:
    """The buckets that can hold points a read asks for (the caller filters attempts exactly)."""
    q: dict[str, Any] = {"trial": uids[0] if len(uids) == 1 else {"$in": uids}}
    if keep is not None:
        q["attempt"] = {"$in": sorted(set().union(*keep.values()))}
    if names is not None:
        q["names"] = {"$in": names}
    if start is not None:
        q["hi"] = {"$gte": start}
    if stop is not None:
        q["lo"] = {"$lt": stop}
    return q
