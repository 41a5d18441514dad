"""The in-memory engine: ``ephemeral:`` stores, and the state behind the journal stores.

Every write is planned first (validated, matched, computed on copies and checked against unique
indexes), then turned into a *record* and committed. The memory store commits by applying the
record; the journal store (:mod:`.journal`) appends it durably first. Replaying the same records
in order rebuilds the same state.

Records are lists: ``["insert", coll, docs]``, ``["update", coll, uids, update_ops]``,
``["delete", coll, uids]`` and ``["index", coll, paths, unique]``.
"""

from __future__ import annotations

import marshal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..encoding import clone, encode
from ..errors import EncodingError, QueryError
from ..query import (
    apply_update,
    parse,
    parse_projection,
    parse_sort,
    parse_update,
    predicate_for,
    project,
    sort_documents,
    upsert_seed,
)
from ..query.ast import Node
from ..query.predicate import Predicate
from ..query.update import Update
from ..store import Document, Query, Store, check_collection, check_index_keys, check_limit
from .collection import Collection

_QUERY_CACHE_SIZE = 512


def copy_out(docs: list[Document]) -> list[Document]:
    """Deep-copy documents for a caller (marshal is the fastest deep copy of JSON-like data)."""
    return marshal.loads(marshal.dumps(docs))


def prepare(doc: Any) -> Document:
    """Validate and copy a document for insertion."""
    if not isinstance(doc, dict):
        raise EncodingError(f"a document must be a dict, got {type(doc).__name__}")
    out = encode(doc)
    uid = out.get("uid")
    if type(uid) is not str or not uid:
        raise EncodingError(f"a document needs a non-empty string 'uid', got {uid!r:.80}")
    return out


class MemoryStore(Store):
    """A thread-safe, indexed, copy-isolated store held in process memory (``ephemeral:``)."""

    scheme = "ephemeral"

    def __init__(self) -> None:
        self._colls: dict[str, Collection] = {}
        self._lock = threading.RLock()
        self._queries: dict[str, tuple[Node, Predicate]] = {}
        self.closed = False

    # -- hooks for the journal engine ----------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:
            self._check_open()
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self._lock:
            self._check_open()
            yield

    def _commit(self, record: list[Any], planned: Any = None) -> None:
        """Make a planned write happen: the journal appends ``record`` first, then applies it."""
        self.apply_record(record, planned)

    def _check_open(self) -> None:
        if self.closed:
            from ..errors import StoreUnavailableError

            raise StoreUnavailableError(f"the {self.scheme}: store is closed")

    # -- state ---------------------------------------------------------------------------------
    def _coll(self, name: str) -> Collection:
        c = self._colls.get(name)
        if c is None:
            c = self._colls[check_collection(name)] = Collection(name)
        return c

    def apply_record(self, record: list[Any], planned: Any = None) -> None:
        """Apply a write record to the in-memory state (``planned`` skips recomputation)."""
        kind, name = record[0], record[1]
        c = self._coll(name)
        if kind == "insert":
            for d in record[2]:
                c.add(d)
        elif kind == "update":
            if planned is None:
                upd = Update.from_record(record[3])
                planned = []
                for uid in record[2]:
                    old = c.docs[uid]
                    new = clone(old)
                    apply_update(new, upd)
                    planned.append((old, new))
            for old, new in planned:
                c.replace(old, new)
        elif kind == "delete":
            for uid in record[2]:
                c.remove(uid)
        elif kind == "index":
            c.add_index(tuple(record[2]), bool(record[3]))
        else:
            raise ValueError(f"unknown record kind {kind!r}")

    def _query(self, query: Query) -> tuple[Node, Predicate]:
        """Parse and compile a query, caching by its exact text."""
        if query is None or query == {}:
            query = {}
        key = repr(query)
        hit = self._queries.get(key)
        if hit is None:
            node = parse(query)
            hit = (node, predicate_for(node))
            if len(self._queries) >= _QUERY_CACHE_SIZE:
                self._queries.clear()
            self._queries[key] = hit
        return hit

    # -- Store API -----------------------------------------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document (see :meth:`Store.insert`)."""
        self.insert_many(collection, (doc,))

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert documents, all or none (see :meth:`Store.insert_many`)."""
        check_collection(collection)
        prepared = [prepare(d) for d in docs]
        if not prepared:
            return 0
        with self._writing():
            c = self._coll(collection)
            c.check_new(prepared)
            self._commit(["insert", collection, prepared])
        return len(prepared)

    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Return copies of matching documents (see :meth:`Store.find`)."""
        check_collection(collection)
        node, pred = self._query(query)
        spec = parse_sort(sort)
        lim = check_limit(limit)
        proj = parse_projection(projection)
        with self._reading():
            c = self._colls.get(collection)
            if c is None:
                return []
            if spec:
                found = sort_documents(list(c.matching(node, pred)), spec)
                if lim is not None:
                    found = found[:lim]
            elif lim is not None:
                found = []
                for d in c.matching(node, pred):
                    found.append(d)
                    if len(found) >= lim:
                        break
            else:
                found = list(c.matching(node, pred))
            out = copy_out(found)
        if proj is not None:
            out = [project(d, proj) for d in out]
        return out

    def count(self, collection: str, query: Query = None) -> int:
        """Count matching documents (see :meth:`Store.count`)."""
        check_collection(collection)
        node, pred = self._query(query)
        with self._reading():
            c = self._colls.get(collection)
            if c is None:
                return 0
            if not query:
                return len(c.docs)
            return sum(1 for _ in c.matching(node, pred))

    def _plan_changes(self, c: Collection, docs: list[Document], upd: Update) -> list[tuple[Document, Document]]:
        changes = []
        for old in docs:
            new = clone(old)
            apply_update(new, upd)
            changes.append((old, new))
        c.check_replace(changes)
        return changes

    def _upsert(self, c: Collection, node: Node, upd: Update) -> Document:
        new = upsert_seed(node)
        apply_update(new, upd, inserting=True)
        new = prepare(new)
        if not predicate_for(node)(new):
            raise QueryError("the upserted document would not match its own query")
        c.check_new([new])
        self._commit(["insert", c.name, [new]])
        return new

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update the first or every match (see :meth:`Store.update`)."""
        check_collection(collection)
        node, pred = self._query(query)
        upd = parse_update(update)
        with self._writing():
            c = self._coll(collection)
            matches = c.matching(node, pred)
            targets = list(matches) if many else [d for d, _ in zip(matches, range(1))]
            if not targets:
                if upsert:
                    self._upsert(c, node, upd)
                    return 1
                return 0
            changes = self._plan_changes(c, targets, upd)
            self._commit(["update", collection, [d["uid"] for d in targets], upd.to_record()], changes)
            return len(targets)

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match and return it (see :meth:`Store.find_one_and_update`)."""
        check_collection(collection)
        node, pred = self._query(query)
        upd = parse_update(update)
        spec = parse_sort(sort)
        with self._writing():
            c = self._coll(collection)
            if spec:
                found = sort_documents(list(c.matching(node, pred)), spec)[:1]
            else:
                found = [d for d, _ in zip(c.matching(node, pred), range(1))]
            if not found:
                return None
            changes = self._plan_changes(c, found, upd)
            self._commit(["update", collection, [found[0]["uid"]], upd.to_record()], changes)
            return clone(changes[0][1])

    def delete(self, collection: str, query: Query) -> int:
        """Delete matching documents (see :meth:`Store.delete`)."""
        check_collection(collection)
        node, pred = self._query(query)
        with self._writing():
            c = self._colls.get(collection)
            if c is None:
                return 0
            uids = [d["uid"] for d in c.matching(node, pred)]
            if uids:
                self._commit(["delete", collection, uids])
            return len(uids)

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create a hash index (see :meth:`Store.ensure_index`)."""
        check_collection(collection)
        paths = check_index_keys(keys)
        if paths == ("uid",):
            return  # the primary key is always unique
        with self._writing():
            c = self._coll(collection)
            existing = c.find_index(paths)
            if existing is not None:
                c.add_index(paths, bool(unique))  # raises if the flags differ
                return
            probe = Collection(collection)
            probe.docs = c.docs
            probe.indexes = []
            probe.add_index(paths, bool(unique))  # raises DuplicateKeyError before logging
            self._commit(["index", collection, list(paths), bool(unique)])

    def close(self) -> None:
        """Mark the store closed; later calls raise StoreUnavailableError."""
        self.closed = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme}: {sum(len(c.docs) for c in self._colls.values())} documents>"


def from_uri(uri: Any) -> MemoryStore:
    """Registry factory for ``ephemeral:``."""
    return MemoryStore()
