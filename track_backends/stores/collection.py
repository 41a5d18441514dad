"""One in-memory collection: documents by uid plus hash indexes, with no locking of its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import DuplicateKeyError, QueryError
from ..query.ast import Node
from ..query.predicate import Predicate
from ..store import DEFAULT_INDEXES
from .indexes import HashIndex, plan, uid_keys

Document = dict[str, Any]


class Collection:
    """Documents keyed by ``uid`` and the hash indexes over them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.docs: dict[str, Document] = {}
        self.indexes: list[HashIndex] = []
        for paths, unique in DEFAULT_INDEXES.get(name, ()):
            self.indexes.append(HashIndex(paths, unique))

    # -- reading -----------------------------------------------------------------------------
    def candidates(self, node: Node) -> Iterable[Document]:
        """Documents that may match ``node``: an index lookup when one applies, else all."""
        uids = uid_keys(node)
        docs = self.docs
        if uids is not None:
            return [docs[u] for u in dict.fromkeys(uids) if u in docs]
        chosen = plan(node, self.indexes)
        if chosen is not None:
            ix, keys = chosen
            return (docs[u] for u in ix.candidates(keys))
        return docs.values()

    def matching(self, node: Node, pred: Predicate) -> Iterator[Document]:
        """Yield the stored (not copied) documents that match."""
        for doc in self.candidates(node):
            if pred(doc):
                yield doc

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

    def replace(self, old: Document, new: Document) -> None:
        uid = old["uid"]
        for ix in self.indexes:
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
                raise DuplicateKeyError(f"cannot build unique index {list(paths)} of {self.name!r}: {uid!r} and {other!r} collide")
            ix.add(k, uid)
        self.indexes.append(ix)
        return True
