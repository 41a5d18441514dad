"""MultiplexStore: a Store that writes to a primary and mirrors every touched document."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ...errors import InvalidURIError, StoreUnavailableError, TrackBackendsError
from ...query import Node, parse, parse_update, upsert_seed
from ...query.analysis import uid_pin
from ...query.cache import ParseCache
from ...store import Document, Query, Store, check_collection
from ...uri import mask_password
from ..journal import JournalStore
from ..memory import MemoryStore
from .blobs import MultiplexBlobs
from .mirroring import Mirroring
from .outbox import Outbox, open_outbox
from .points import append_points as mirror_append
from .points import delete_points as mirror_delete
from .state import (
    DEFAULT_BACKOFF,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_POLICY,
    Mirror,
    MirrorStatus,
    check_policy,
    check_seconds,
)
from .sync import RETRIES
from .uri import display_name

log = logging.getLogger("track_backends.multiplex")


def store_name(store: Store) -> str:
    """A password-free name for a store given as an object (not a URI).

    ``scheme://path`` for journal stores, ``ephemeral:`` for memory stores, else the store's
    ``repr`` with passwords masked (pass ``names=`` when that is not stable across runs).
    """
    if isinstance(store, JournalStore):
        return f"{store.scheme}://{store.path}"
    if type(store) is MemoryStore:
        return "ephemeral:"
    if isinstance(store, MultiplexStore):
        return store.name
    return mask_password(repr(store))


def _restrict(query: Query, uids: Sequence[str]) -> Document:
    return {"$and": [query or {}, {"uid": {"$in": list(uids)}}]}


def _mirrors(given: Sequence[Store | Mirror], names: Sequence[str] | None) -> list[Mirror]:
    """Wrap the stores as mirrors with names that differ (``name#2`` for a repeated one)."""
    if names is not None and len(names) != len(given):
        raise InvalidURIError(f"{len(names)} names for {len(given)} mirrors")
    seen: set[str] = set()
    out = []
    for i, m in enumerate(given):
        mirror = m if isinstance(m, Mirror) else Mirror(names[i] if names else store_name(m), m)
        base, n = mirror.name, 1
        while mirror.name in seen:
            n += 1
            mirror.name = f"{base}#{n}"
        seen.add(mirror.name)
        out.append(mirror)
    return out


class MultiplexStore(MultiplexBlobs, Store):
    """A store that writes to a primary and mirrors every touched document to other stores.

    See :mod:`track_backends.stores.multiplex` for the semantics. The multiplexer owns the
    stores: closing it closes them.

    Args:
        primary: The store that decides everything (reads, queries, claims).
        mirrors: Stores that receive a copy of every document the primary writes (or
            :class:`~.state.Mirror` objects wrapping them, as :mod:`.open` builds).
        policy: ``"best_effort"`` (default; failures go to the outbox and are retried) or
            ``"strict"`` (a mirror failure raises :class:`MirrorError`, after recording it).
        outbox: The outbox file; ``":memory:"`` for an outbox in memory; an
            :class:`~track_backends.stores.multiplex.outbox.Outbox`; or ``None`` for the default
            (see :func:`~track_backends.stores.multiplex.outbox.default_outbox`).
        close_timeout: Seconds :meth:`close` spends replaying the outbox at most.
        backoff: Seconds a failing best-effort mirror is left alone, doubled at each further
            failure up to ``backoff_max``.
        backoff_max: The longest backoff, in seconds.
        lock_timeout: Seconds to wait for the mirroring lock shared with other processes; after
            that the write's documents are only recorded in the outbox.
        names: Names of the mirrors for messages and the outbox (default: their masked URIs
            or ``repr``). They must stay the same across runs for the outbox to find its entries.
        primary_name: Name of the primary (default likewise).

    Raises:
        InvalidURIError: A bad policy, timeout or backoff.
        StoreError: The outbox cannot be opened.
    """

    scheme = "multiplex"

    def __init__(
        self,
        primary: Store,
        mirrors: Sequence[Store | Mirror] = (),
        *,
        policy: str = DEFAULT_POLICY,
        outbox: str | os.PathLike[str] | Outbox | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        backoff: float = DEFAULT_BACKOFF,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        names: Sequence[str] | None = None,
        primary_name: str | None = None,
    ) -> None:
        self.policy = check_policy(policy)
        self.close_timeout = check_seconds("close_timeout", close_timeout)
        self.backoff = check_seconds("backoff", backoff)
        self.backoff_max = max(check_seconds("backoff_max", backoff_max), self.backoff)
        self.lock_timeout = check_seconds("lock_timeout", lock_timeout)
        self.primary = primary
        self.primary_name = primary_name or store_name(primary)
        self.mirrors = _mirrors(list(mirrors), names)
        self.closed = False
        self._queries: ParseCache[Node] = ParseCache(parse)
        self.outbox = open_outbox(outbox, primary, self.primary_name, self.lock_timeout)
        self._mirroring = Mirroring(
            primary,
            self.primary_name,
            self.mirrors,
            self.outbox,
            policy=self.policy,
            backoff=self.backoff,
            backoff_max=self.backoff_max,
            lock_timeout=self.lock_timeout,
        )
        self.lock_path = self._mirroring.locked.path
        try:
            self._find_backlog()
        except BaseException:
            self.outbox.close()
            raise

    def _find_backlog(self) -> None:
        if self.mirrors:
            self.outbox.describe(self.primary_name, [m.name for m in self.mirrors])
        for m in self.mirrors:
            depth = self.outbox.depth(m.name)
            m.backlog = depth > 0
            if m.backlog:
                log.warning(
                    "multiplex: %d document(s) wait in the outbox %s for mirror %s",
                    depth,
                    self._mirroring.where,
                    m.name,
                )

    @property
    def name(self) -> str:
        """A password-free description: ``multiplex:?primary=...&mirror=...`` (inner URIs masked)."""
        return display_name(self.primary_name, [m.name for m in self.mirrors], self.policy)

    def __repr__(self) -> str:
        mirrors = ", ".join(m.name for m in self.mirrors)
        state = " closed" if self.closed else ""
        return f"<MultiplexStore{state} primary={self.primary_name} mirrors=[{mirrors}] policy={self.policy}>"

    def _check_open(self) -> None:
        if self.closed:
            raise StoreUnavailableError("the multiplex: store is closed")

    def _pinned_uid(self, query: Query) -> str | None:
        """The uid a query pins (so a write touches at most that document), else ``None``."""
        return uid_pin(self._queries.get(query))

    # -- reads on the primary ----------------------------------------------------------------------
    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Query the primary (see :meth:`Store.find`).

        Raises:
            StoreUnavailableError: The multiplexer is closed, or the primary cannot be reached.
            QueryError: The query, sort or projection is malformed.
        """
        self._check_open()
        return self.primary.find(collection, query, sort=sort, limit=limit, projection=projection)

    def find_one(self, collection: str, query: Query = None, *, sort: Any = None) -> Document | None:
        """Return the first match on the primary (see :meth:`Store.find_one`).

        Raises:
            StoreUnavailableError: The multiplexer is closed, or the primary cannot be reached.
            QueryError: The query or sort is malformed.
        """
        self._check_open()
        return self.primary.find_one(collection, query, sort=sort)

    def count(self, collection: str, query: Query = None) -> int:
        """Count on the primary (see :meth:`Store.count`).

        Raises:
            StoreUnavailableError: The multiplexer is closed, or the primary cannot be reached.
            QueryError: The query is malformed.
        """
        self._check_open()
        return self.primary.count(collection, query)

    # -- writes on the primary, then mirrored --------------------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert on the primary, then mirror the document (see :meth:`Store.insert`).

        Raises:
            DuplicateKeyError: The primary has a document with the same ``uid`` or unique key.
            EncodingError: The document cannot be stored.
            MirrorError: Under the strict policy, a mirror missed it (the primary has it).
        """
        self._check_open()
        self.primary.insert(collection, doc)
        self._mirroring.propagate(collection, [doc["uid"]], fresh=True)

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert on the primary, all or none, then mirror the documents (see :meth:`Store.insert_many`).

        Raises:
            DuplicateKeyError: One of them collides on the primary (nothing is inserted).
            MirrorError: Under the strict policy, a mirror missed them (the primary has them).
        """
        self._check_open()
        docs = list(docs)
        n = self.primary.insert_many(collection, docs)
        if n:
            self._mirroring.propagate(collection, [d["uid"] for d in docs], fresh=True)
        return n

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update on the primary, then mirror the touched documents (see :meth:`Store.update`).

        A query that pins no uid is run in two steps: find the matching uids, then update those
        that still match. A document that starts to match in between is left out, as if the
        update had run just before it changed.

        Raises:
            QueryError: The query or update is malformed (nothing is written).
            DuplicateKeyError: The update would break a unique index on the primary.
            MirrorError: Under the strict policy, a mirror missed the change.
        """
        self._check_open()
        uid = self._pinned_uid(query)
        if uid is not None:  # every Protocol write: the uid is known
            n = self.primary.update(collection, query, update, many=many, upsert=upsert)
            if n:
                self._mirroring.propagate(collection, [uid])
            return n
        check_collection(collection)
        parse_update(update)  # validation first, even when nothing matches
        for _ in range(RETRIES):
            found = [d["uid"] for d in self.primary.find(collection, query, limit=0 if many else 1, projection=["uid"])]
            if not found:
                if not upsert:
                    return 0
                break
            n = self.primary.update(collection, _restrict(query, found), update, many=many)
            if n:
                self._mirroring.propagate(collection, found)
                return n
        return self._update_as_given(collection, query, update, many, upsert)

    def _update_as_given(self, collection: str, query: Query, update: Document, many: bool, upsert: bool) -> int:
        """Run an upsert that inserts (or a query that kept changing) as given; mirror what it may touch."""
        n = self.primary.update(collection, query, update, many=many, upsert=upsert)
        touched: list[str] = []
        if upsert:
            with contextlib.suppress(TrackBackendsError):
                seed = upsert_seed(self._queries.get(query))
                if type(seed.get("uid")) is str:
                    touched.append(seed["uid"])
        touched += [d["uid"] for d in self.primary.find(collection, query, projection=["uid"])]
        self._mirroring.propagate(collection, touched)
        return n

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Claim on the primary only, then mirror the result (see :meth:`Store.find_one_and_update`).

        Raises:
            QueryError: The query, update or sort is malformed.
            MirrorError: Under the strict policy, a mirror missed the change (the claim holds).
        """
        self._check_open()
        doc = self.primary.find_one_and_update(collection, query, update, sort=sort)
        if doc is not None:
            self._mirroring.propagate(collection, [doc["uid"]])
        return doc

    def delete(self, collection: str, query: Query) -> int:
        """Delete on the primary, then on the mirrors (see :meth:`Store.delete`).

        Raises:
            QueryError: The query is malformed.
            MirrorError: Under the strict policy, a mirror missed the deletion.
        """
        self._check_open()
        uid = self._pinned_uid(query)
        if uid is not None:
            n = self.primary.delete(collection, query)
            if n:
                self._mirroring.propagate(collection, [uid])
            return n
        found = [d["uid"] for d in self.primary.find(collection, query, projection=["uid"])]
        if not found:
            return 0
        n = self.primary.delete(collection, _restrict(query, found))
        self._mirroring.propagate(collection, found)
        return n

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create the index on the primary, then on every mirror (see :meth:`Store.ensure_index`).

        Raises:
            DuplicateKeyError: ``unique`` and the primary's documents already collide.
            MirrorError: Under the strict policy, a mirror failed to create it.
        """
        self._check_open()
        self.primary.ensure_index(collection, keys, unique=unique)
        self._mirroring.ensure_index(collection, keys, unique)

    # -- metric points: appended on the primary (it decides), then on the mirrors ----------------------
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
        """Append on the primary with its fenced update, then mirror (see :mod:`.points`).

        When ``update`` matches nothing on the primary, nothing is written anywhere. Otherwise
        each mirror gets the primary's updated document and the same points.

        Returns:
            ``False`` when ``update`` matched nothing on the primary, else ``True``.

        Raises:
            StoreUnavailableError: The multiplexer is closed, or the primary cannot be reached.
            QueryError: A point, the query or the update is malformed (nothing is written).
            EncodingError: A name, step or value cannot be stored (nothing is written).
            MirrorError: Under the strict policy, a mirror missed the points (the primary has them).
        """
        self._check_open()
        return mirror_append(self._mirroring, collection, uid, points, attempt=attempt, query=query, update=update)

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
        """Read series from the primary (see :meth:`Store.fetch_points`).

        Raises:
            StoreUnavailableError: The multiplexer is closed, or the primary cannot be reached.
            QueryError: ``start``, ``stop`` or ``last`` is malformed.
        """
        self._check_open()
        return self.primary.fetch_points(
            collection, uids, names=names, start=start, stop=stop, last=last, attempts=attempts
        )

    def delete_points(self, collection: str, uids: Sequence[str]) -> int:
        """Delete the points on the primary, then on every mirror (see :meth:`Store.delete_points`).

        Returns:
            What the primary deleted (its own count).

        Raises:
            StoreUnavailableError: The multiplexer is closed, or the primary cannot be reached.
            MirrorError: Under the strict policy, a mirror missed the deletion.
        """
        self._check_open()
        return mirror_delete(self._mirroring, collection, uids)

    # -- the outbox ----------------------------------------------------------------------------------
    def status(self) -> dict[str, MirrorStatus]:
        """Report each mirror's outbox depth and health.

        Returns:
            Mirror name -> :class:`MirrorStatus`, in the order the mirrors were given.
        """
        return self._mirroring.status()

    def replay(self, timeout: float | None = None) -> dict[str, MirrorStatus]:
        """Replay the outbox to every mirror now, whatever their backoff.

        Each mirror's replay stops at its first failure (which is counted, and backs the mirror
        off again).

        Args:
            timeout: Stop after this many seconds (``None``: until done or failed).

        Returns:
            :meth:`status` afterwards: ``outbox_depth`` is 0 for every mirror that caught up.

        Raises:
            StoreUnavailableError: The primary cannot be read, or the multiplexer is closed.
        """
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mirroring.locked():
            for m in self.mirrors:
                self._mirroring.drain(m, deadline=deadline)
        return self.status()

    # -- lifecycle -----------------------------------------------------------------------------------
    def commit(self) -> None:
        """Commit the primary, then the mirrors, and replay the outbox to mirrors not backing off.

        Raises:
            MirrorError: Under the strict policy, a mirror failed to commit or to catch up.
        """
        self._check_open()
        self.primary.commit()
        self._mirroring.commit()

    def close(self, timeout: float | None = None) -> None:
        """Replay the outbox for at most ``timeout`` seconds, then close every store.

        Whatever is still in the outbox stays on disk for ``track-backends replay`` (a warning
        says how much). Never waits much longer than ``timeout``, even for a mirror that hangs:
        the replay and the mirrors' ``close`` run in a worker thread that is abandoned when time
        runs out. Closing twice is harmless.

        Args:
            timeout: Seconds to spend (default: ``close_timeout`` given at creation; 0 skips the
                replay).
        """
        if self.closed:
            return
        self.closed = True
        timeout = self.close_timeout if timeout is None else max(0.0, float(timeout))
        deadline = time.monotonic() + timeout
        finish = self._mirroring.finish
        worker = threading.Thread(target=finish, args=(timeout, deadline), name="multiplex-close", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()) + 0.05)
        if worker.is_alive():
            log.warning(
                "multiplex: close() gave up after %g s on a mirror that does not answer; the outbox keeps what is left",
                timeout,
            )
        try:
            self._mirroring.warn_left()
        finally:
            with contextlib.suppress(Exception):
                self.outbox.close()
            self._mirroring.locked.close()
            self.primary.close()


__all__ = ["MultiplexStore", "store_name"]
