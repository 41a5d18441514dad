"""One in-memory collection: documents by uid plus hash indexes, with no locking of its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..errors import DuplicateKeyError, QueryError
from ..query.analysis import choose_index, index_keys, pins
from ..query.ast import Node
from ..query.predicate import Predicate, predicate_for
from ..store import DEFAULT_INDEXES
from .indexes import HashIndex, value_key
from .points import PointTable

Document = dict[str, Any]


def _unique(ix: HashIndex) -> bool:
    return ix.unique


class CompiledQuery:
    """A parsed query with its predicate and the pins an index can answer."""

    __slots__ = ("node", "pred", "pins", "exact")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.pred: Predicate = predicate_for(node)
        p = pins(node, key=value_key)
        self.pins, self.exact = p.paths, p.exact


class Collection:
    """Documents keyed by ``uid`` and the hash indexes over them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.docs: dict[str, Document] = {}
        self.indexes: list[HashIndex] = []
        for paths, unique in DEFAULT_INDEXES.get(name, ()):
            self.indexes.append(HashIndex(paths, unique))
        self.has_unique = False  # any unique index besides uid
        self.points = PointTable()  # the metric points of this collection's documents

    # -- reading -----------------------------------------------------------------------------
    def matching(self, cq: CompiledQuery, oldest_first: bool = False) -> Iterator[Document]:
        """Yield the stored (not copied) documents that match, through an index when one applies.

        Args:
            cq: The compiled query.
            oldest_first: Visit index buckets in insertion order (for claims).
        """
        docs, pred, pins = self.docs, cq.pred, cq.pins
        uids = pins.get("uid")
        if uids is not None:
            for u in uids:
                d = docs.get(u)
                if d is not None and pred(d):
                    yield d
            return
        ix = choose_index(self.indexes, pins, unique=_unique) if pins else None
        if ix is None:
            for d in docs.values():
                if pred(d):
                    yield d
            return
        keys = index_keys(ix.paths, pins)
        exact = cq.exact is not None and cq.exact == frozenset(ix.paths)
        for k in keys:
            b = ix.buckets.get(k)
            if b is None:
                continue
            members = b.fifo() if oldest_first else b.members
            if exact:
                for u in members:
                    yield docs[u]
            else:
                for u in members:
                    d = docs[u]
                    if pred(d):
                        yield d
        for u in ix.overflow.members:
            d = docs[u]
            if pred(d):
                yield d

    def find_index(self, paths: tuple[str, ...]) -> HashIndex | None:
        for ix in self.indexes:
            if ix.paths == paths:
                return ix
        return None

    # -- checks before a write -----------------------------------------------------------------
    def check_new(self, docs: list[Document]) -> None:
        """Raise DuplicateKeyError if inserting ``docs`` would break a unique key."""
        batch: set[str] = set()
        for d in docs:
            uid = d["uid"]
            if uid in self.docs or uid in batch:
                raise DuplicateKeyError(f"duplicate uid {uid!r} in collection {self.name!r}")
            batch.add(uid)
        for ix in self.indexes:
            if ix.unique:
                seen: dict[Any, str] = {}
                for d in docs:
                    k = ix.key(d)
                    other = ix.conflict(k, d["uid"]) or seen.get(k)
                    if other is not None:
                        raise DuplicateKeyError(
                            f"unique index {list(ix.paths)} of {self.name!r}: {d['uid']!r} collides with {other!r}"
                        )
                    seen[k] = d["uid"]

    def check_replace(self, changes: list[tuple[Document, Document]]) -> None:
        """Raise DuplicateKeyError if replacing documents (old, new) would break a unique index."""
        for ix in self.indexes:
            if not ix.unique:
                continue
            moved = {old["uid"] for old, _ in changes}
            seen: dict[Any, str] = {}
            for _, new in changes:
                k, uid = ix.key(new), new["uid"]
                owner = ix.owner.get(k)
                other = seen.get(k) or (owner if owner is not None and owner != uid and owner not in moved else None)
                if other is not None:
                    raise DuplicateKeyError(
                        f"unique index {list(ix.paths)} of {self.name!r}: {uid!r} would collide with {other!r}"
                    )
                seen[k] = uid

    # -- writes (inputs already validated and checked) -----------------------------------------
    def add(self, doc: Document) -> None:
        uid = doc["uid"]
        self.docs[uid] = doc
        for ix in self.indexes:
            ix.add(ix.key(doc), uid)

    def replace(self, old: Document, new: Document, touched: frozenset[str] | None = None) -> None:
        """Put ``new`` in place of ``old``; ``touched``: the top-level fields that may differ (None: any)."""
        uid = old["uid"]
        for ix in self.indexes:
            if touched is not None and ix.tops.isdisjoint(touched):
                continue
            ko, kn = ix.key(old), ix.key(new)
            if ko != kn or type(ko) is not type(kn):
                ix.remove(ko, uid)
                ix.add(kn, uid)
        self.docs[uid] = new

    def remove(self, uid: str) -> None:
        doc = self.docs.pop(uid)
        for ix in self.indexes:
            ix.remove(ix.key(doc), uid)

    def add_index(self, paths: tuple[str, ...], unique: bool) -> bool:
        """Create an index; return False if an identical one exists.

        Raises:
            QueryError: An index on the same paths exists with another ``unique`` flag.
            DuplicateKeyError: ``unique`` and the stored documents already collide.
        """
        existing = self.find_index(paths)
        if existing is not None:
            if existing.unique != unique:
                raise QueryError(f"an index on {list(paths)} of {self.name!r} exists with unique={existing.unique}")
            return False
        ix = HashIndex(paths, unique)
        for uid, doc in self.docs.items():
            k = ix.key(doc)
            other = ix.conflict(k, uid)
            if other is not None:
                raise DuplicateKeyError(
                    f"cannot build unique index {list(paths)} of {self.name!r}: {uid!r} and {other!r} collide"
                )
            ix.add(k, uid)
        self.indexes.append(ix)
        self.has_unique = self.has_unique or unique
        return True
