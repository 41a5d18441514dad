"""The in-memory engine: ``ephemeral:`` stores, and the state behind the journal stores.

Every write is planned first (validated, matched, computed on copies and checked against unique
indexes), then turned into a *record* and committed. The memory store commits by applying the
record; the journal store (:mod:`.journal`) appends it durably first. Replaying the same records
in order rebuilds the same state.

Records are lists: ``["insert", coll, docs]``, ``["update", coll, uids, update_ops]``,
``["delete", coll, uids]`` (a document's points go with it), ``["index", coll, paths, unique]``
and ``["points", coll, uid, attempt, points, update_ops or None]`` (an optional update of the
document and the points appended to its series, in one record).
"""

from __future__ import annotations

import marshal
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from itertools import islice
from typing import Any

from ..encoding import clone, prepare_document
from ..errors import QueryError
from ..layout import attempt_of, legacy_points
from ..query import (
    apply_update,
    parse,
    parse_projection,
    parse_sort,
    project,
    sort_documents,
    upsert_seed,
)
from ..query.ast import Node
from ..query.cache import UPDATES, ParseCache
from ..query.update import Update
from ..store import TRIALS, Document, Query, Store, check_collection, check_index_keys, check_limit
from .collection import Collection, CompiledQuery
from .gcpause import gc_paused
from .memblobs import MemoryBlobs
from .points import check_points, check_range, check_strings

_GC_PAUSE_DOCS = 256  # copying out this many documents pauses the cyclic GC


def copy_out(docs: list[Document]) -> list[Document]:
    """Deep-copy documents for a caller (marshal is the fastest deep copy of JSON-like data)."""
    with gc_paused(len(docs) >= _GC_PAUSE_DOCS):
        return marshal.loads(marshal.dumps(docs))


def updated(old: Document, upd: Update) -> tuple[Document, Document]:
    """Return ``(old, new)``: ``new`` is ``old`` after the update, sharing untouched subtrees.

    Stored documents are never modified in place, so only the containers on the updated paths
    are copied (copy-on-write); callers always receive deep copies.
    """
    new = dict(old)
    for _, parts, _ in upd.ops:
        cur: Any = new
        for p in parts:
            if type(cur) is dict:
                v = cur.get(p)
                if type(v) is dict or type(v) is list:
                    cur[p] = v = v.copy()
                else:
                    break
            elif type(cur) is list and p.isdigit() and int(p) < len(cur):
                v = cur[int(p)]
                if type(v) is dict or type(v) is list:
                    cur[int(p)] = v = v.copy()
                else:
                    break
            else:
                break
            cur = v
    apply_update(new, upd)
    return old, new


_COMPILED: ParseCache[CompiledQuery] = ParseCache(lambda q: CompiledQuery(parse(q or {})))
"""Queries compiled to predicates with their index pins, shared by every in-memory engine."""


def _tops(ops: list[list[Any]]) -> frozenset[str]:
    """The top-level fields a recorded update writes."""
    return frozenset(path.partition(".")[0] for _, path, _ in ops)


def upgrade_layout(colls: dict[str, Collection]) -> int:
    """Move layout-1 trials' in-document metrics beside them (see :mod:`track_backends.layout`).

    Returns:
        How many trials were converted (0 when every trial is in the current layout already).
    """
    c = colls.get(TRIALS)
    n = 0
    for old in list(c.docs.values()) if c is not None else ():
        got = legacy_points(old)
        if got is None:
            continue
        points, update = got
        _, new = updated(old, UPDATES.get(update))
        c.replace(old, new)  # type: ignore[union-attr]
        c.points.append(old["uid"], attempt_of(old), check_points(points))  # type: ignore[union-attr]
        n += 1
    return n


class MemoryStore(MemoryBlobs, Store):
    """A thread-safe, indexed, copy-isolated store held in process memory (``ephemeral:``)."""

    scheme = "ephemeral"

    def __init__(self) -> None:
        self._colls: dict[str, Collection] = {}
        self._lock = threading.RLock()
        self.closed = False

    # -- hooks for the journal engine ----------------------------------------------------------
    def _reading(self) -> AbstractContextManager[Any]:
        """Context in which reads see a consistent state (the journal also catches up)."""
        if self.closed:
            self._check_open()
        return self._lock

    def _writing(self) -> AbstractContextManager[Any]:
        """Context that serialises a write's plan and commit (the journal also takes the file lock)."""
        if self.closed:
            self._check_open()
        return self._lock

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
                planned = [updated(c.docs[uid], upd) for uid in record[2]]
            touched = _tops(record[3])
            for old, new in planned:
                c.replace(old, new, touched)
        elif kind == "delete":
            for uid in record[2]:
                c.remove(uid)
            c.points.delete(record[2])
        elif kind == "points":
            if record[5] is not None:
                if planned is None:
                    planned = [updated(c.docs[record[2]], Update.from_record(record[5]))]
                touched = _tops(record[5])
                for old, new in planned:
                    c.replace(old, new, touched)
            c.points.append(record[2], record[3], record[4])
        elif kind == "points_delete":
            c.points.delete(record[2])
        elif kind == "index":
            c.add_index(tuple(record[2]), bool(record[3]))
        else:
            raise ValueError(f"unknown record kind {kind!r}")

    def _query(self, query: Query) -> CompiledQuery:
        """Parse and compile a query (cached by its exact text)."""
        return _COMPILED.get(query)

    def _update(self, update: Any) -> Update:
        """Validate an update document (cached by its exact text)."""
        return UPDATES.get(update)

    # -- Store API -----------------------------------------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document (see :meth:`Store.insert`).

        Raises:
            DuplicateKeyError: The ``uid`` or a unique key is taken.
            EncodingError: The document cannot be stored.
            QueryError: The collection name is invalid.
            StoreUnavailableError: The store is closed.
        """
        prepared = prepare_document(doc)
        with self._writing():
            c = self._colls.get(collection) or self._coll(collection)
            if prepared["uid"] in c.docs or c.has_unique:
                c.check_new([prepared])
            self._commit(["insert", collection, [prepared]])

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert documents, all or none (see :meth:`Store.insert_many`).

        Raises:
            DuplicateKeyError: A document collides with a stored one or another one; none is inserted.
            EncodingError: A document cannot be stored; none is inserted.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        prepared = [prepare_document(d) for d in docs]
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
        """Return copies of matching documents (see :meth:`Store.find`).

        Raises:
            QueryError: The collection name, query, sort, limit or projection is invalid.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        cq = self._query(query)
        spec = parse_sort(sort)
        lim = check_limit(limit)
        proj = parse_projection(projection)
        with self._reading():
            c = self._colls.get(collection)
            if c is None:
                return []
            if spec:
                found = sort_documents(list(c.matching(cq)), spec)
                if lim is not None:
                    found = found[:lim]
            elif lim is not None:
                found = list(islice(c.matching(cq), lim))
            else:
                found = list(c.matching(cq))
            out = copy_out(found)
        if proj is not None:
            out = [project(d, proj) for d in out]
        return out

    def count(self, collection: str, query: Query = None) -> int:
        """Count matching documents (see :meth:`Store.count`).

        Raises:
            QueryError: The collection name or the query is invalid.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        cq = self._query(query)
        with self._reading():
            c = self._colls.get(collection)
            if c is None:
                return 0
            if not query:
                return len(c.docs)
            return sum(1 for _ in c.matching(cq))

    def _plan_changes(self, c: Collection, docs: list[Document], upd: Update) -> list[tuple[Document, Document]]:
        changes = [updated(old, upd) for old in docs]
        if c.has_unique:
            c.check_replace(changes)
        return changes

    def _upsert(self, c: Collection, node: Node, upd: Update) -> Document:
        new = upsert_seed(node)
        apply_update(new, upd, inserting=True)
        new = prepare_document(new)
        c.check_new([new])
        self._commit(["insert", c.name, [new]])
        return new

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update the first or every match (see :meth:`Store.update`).

        Raises:
            QueryError: The query or update is invalid, or does not fit a matched document; nothing changes.
            DuplicateKeyError: The update breaks a unique index; nothing changes.
            EncodingError: A value cannot be stored.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        cq = self._query(query)
        upd = self._update(update)
        with self._writing():
            c = self._colls.get(collection) or self._coll(collection)
            matches = c.matching(cq)
            targets = list(matches) if many else list(islice(matches, 1))
            if not targets:
                if upsert:
                    self._upsert(c, cq.node, upd)
                    return 1
                return 0
            changes = self._plan_changes(c, targets, upd)
            self._commit(["update", collection, [d["uid"] for d in targets], upd.to_record()], changes)
            return len(targets)

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match and return it (see :meth:`Store.find_one_and_update`).

        Raises:
            QueryError: The query, update or sort is invalid, or the update does not fit the document.
            DuplicateKeyError: The update breaks a unique index; nothing changes.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        cq = self._query(query)
        upd = self._update(update)
        spec = parse_sort(sort)
        with self._writing():
            c = self._colls.get(collection) or self._coll(collection)
            if spec:
                found = sort_documents(list(c.matching(cq)), spec)[:1]
            else:
                found = list(islice(c.matching(cq, oldest_first=True), 1))
            if not found:
                return None
            changes = self._plan_changes(c, found, upd)
            self._commit(["update", collection, [found[0]["uid"]], upd.to_record()], changes)
            return clone(changes[0][1])

    def delete(self, collection: str, query: Query) -> int:
        """Delete matching documents and their points (see :meth:`Store.delete`).

        Raises:
            QueryError: The collection name or the query is invalid.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        cq = self._query(query)
        with self._writing():
            c = self._colls.get(collection)
            if c is None:
                return 0
            uids = [d["uid"] for d in c.matching(cq)]
            if uids:
                self._commit(["delete", collection, uids])
            return len(uids)

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create a hash index (see :meth:`Store.ensure_index`).

        Raises:
            QueryError: The keys are invalid, or an index on them exists with another ``unique`` flag.
            DuplicateKeyError: ``unique`` and stored documents collide.
            StoreUnavailableError: The store is closed.
        """
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

    # -- metric points ---------------------------------------------------------------------------
    def append_points(
        self,
        collection: str,
        uid: str,
        points: Sequence[tuple[str, Any, Any]],
        *,
        attempt: int = 0,
        query: Query = None,
        update: Document | None = None,
    ) -> bool:
        """Append points, and apply ``update``, in one record (see :meth:`Store.append_points`).

        Raises:
            QueryError: A point, the query or the update is malformed; nothing changes.
            EncodingError: A name, step or value cannot be stored; nothing changes.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        pts = check_points(points)
        if type(attempt) is not int:
            raise QueryError(f"attempt must be an int, got {attempt!r:.80}")
        cq = self._query(query if query is not None else {"uid": uid}) if update is not None else None
        upd = self._update(update) if update is not None else None
        with self._writing():
            c = self._colls.get(collection) or self._coll(collection)
            changes = None
            if cq is not None and upd is not None:
                found = list(islice(c.matching(cq), 1))
                if not found or found[0]["uid"] != uid:
                    return False
                changes = self._plan_changes(c, found, upd)
            self._commit(["points", collection, uid, attempt, pts, upd.to_record() if upd else None], changes)
        return True

    def fetch_points(
        self,
        collection: str,
        uids: Sequence[str],
        *,
        names: Sequence[str] | None = None,
        start: Any = None,
        stop: Any = None,
        last: int | None = None,
        attempts: dict[str, int] | None = None,
    ) -> dict[str, dict[str, list[tuple[Any, Any]]]]:
        """Read many series at once (see :meth:`Store.fetch_points`).

        Raises:
            QueryError: ``start``, ``stop`` or ``last`` is malformed.
            StoreUnavailableError: The store is closed.
        """
        check_collection(collection)
        check_range(start, stop, last)
        wanted, names = check_strings(uids, "uid"), None if names is None else check_strings(names, "metric name")
        out = {}
        with self._reading():
            c = self._colls.get(collection)
            if c is None:
                return {}
            for uid in wanted:
                attempt = None if attempts is None else attempts.get(uid, 0)
                series = c.points.read(uid, attempt, names=names, start=start, stop=stop, last=last)
                if series:
                    out[uid] = series
        return out

    def delete_points(self, collection: str, uids: Sequence[str]) -> int:
        """Delete the points of the given documents (see :meth:`Store.delete_points`)."""
        check_collection(collection)
        with self._writing():
            c = self._colls.get(collection)
            gone = [u for u in check_strings(uids, "uid") if c is not None and u in c.points.trials]
            if gone:
                self._commit(["points_delete", collection, gone])
        return len(gone)

    def uids(self, collection: str) -> list[str]:
        """Return the sorted uids of a collection (no documents are copied)."""
        check_collection(collection)
        with self._reading():
            c = self._colls.get(collection)
            return sorted(c.docs) if c is not None else []

    def close(self) -> None:
        """Mark the store closed; later calls raise StoreUnavailableError."""
        self.closed = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme}: {sum(len(c.docs) for c in self._colls.values())} documents>"


def from_uri(uri: Any) -> MemoryStore:
    """Registry factory for ``ephemeral:``."""
    return MemoryStore()
