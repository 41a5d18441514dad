"""Hash indexes for the in-memory engine (the planner that picks one is :mod:`track_backends.query.analysis`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from ..query.paths import MISSING

OVERFLOW: Any = object()  # the document's value cannot be a hash key (an array on the path)
_BOOL = "\x00bool"
_NAN = ("\x00nan",)


def _component(doc: Any, parts: tuple[str, ...], unique: bool) -> Any:
    cur = doc
    for i, p in enumerate(parts):
        if type(cur) is not dict:
            if type(cur) is list:
                return ("\x00via", _key_of(cur, True), parts[i:]) if unique else OVERFLOW
            return None if unique else MISSING
        cur = cur.get(p, MISSING)
    return _key_of(cur, unique)


def _key_of(v: Any, unique: bool) -> Any:
    t = type(v)
    if t is str or t is int:
        return v
    if t is float:
        return v if v == v else _NAN  # every NaN is one key
    if v is None or v is MISSING:
        return None if unique else v
    if t is bool:
        return (_BOOL, v)
    if not unique:
        return OVERFLOW
    if t is list:
        return ("\x00list", tuple(_key_of(x, True) for x in v))
    return ("\x00dict", tuple((k, _key_of(x, True)) for k, x in v.items()))


def value_key(v: Any) -> Any:
    """The hash key a query value looks up, or ``None`` when an index cannot answer it alone.

    Only scalars other than null are looked up: null also matches missing fields, and arrays
    and documents match element-wise.
    """
    k = _key_of(v, False)
    return None if k is OVERFLOW else k


class Bucket:
    """The uids sharing one key: a set with a FIFO order that survives removals cheaply."""

    __slots__ = ("members", "order")

    def __init__(self) -> None:
        self.members: dict[str, None] = {}
        self.order: deque[str] = deque()

    def add(self, uid: str) -> None:
        self.members[uid] = None
        self.order.append(uid)

    def discard(self, uid: str) -> None:
        self.members.pop(uid, None)
        if len(self.order) > 2 * len(self.members) + 32:
            self.order = deque(self.members)

    def fifo(self) -> Iterator[str]:
        """Yield members oldest first, dropping stale entries at the front as it goes."""
        order, members = self.order, self.members
        while order and order[0] not in members:
            order.popleft()
        seen: set[str] = set()
        for uid in order:
            if uid in members and uid not in seen:
                seen.add(uid)
                yield uid


class HashIndex:
    """An index from the values at one or more paths to the uids of the documents holding them."""

    def __init__(self, paths: tuple[str, ...], unique: bool) -> None:
        self.paths = paths
        self.parts = tuple(tuple(p.split(".")) for p in paths)
        self.tops = frozenset(p[0] for p in self.parts)  # top-level fields the key depends on
        self.unique = unique
        self.buckets: dict[Any, Bucket] = {}
        self.owner: dict[Any, str] = {}  # unique indexes: key -> uid
        self.overflow = Bucket()

    def key(self, doc: dict[str, Any]) -> Any:
        """Compute the key of ``doc`` (``OVERFLOW`` when it holds an array on an indexed path)."""
        if len(self.parts) == 1:
            return _component(doc, self.parts[0], self.unique)
        comps = tuple(_component(doc, p, self.unique) for p in self.parts)
        return OVERFLOW if OVERFLOW in comps else comps

    def conflict(self, key: Any, uid: str) -> str | None:
        """Return the uid that already owns ``key`` in a unique index, if not ``uid``."""
        if not self.unique:
            return None
        other = self.owner.get(key)
        return other if other is not None and other != uid else None

    def add(self, key: Any, uid: str) -> None:
        if self.unique:
            self.owner[key] = uid
            return
        if key is OVERFLOW:
            self.overflow.add(uid)
            return
        b = self.buckets.get(key)
        if b is None:
            b = self.buckets[key] = Bucket()
        b.add(uid)

    def remove(self, key: Any, uid: str) -> None:
        if self.unique:
            if self.owner.get(key) == uid:
                del self.owner[key]
            return
        if key is OVERFLOW:
            self.overflow.discard(uid)
            return
        b = self.buckets.get(key)
        if b is not None:
            b.discard(uid)
            if not b.members:
                del self.buckets[key]
