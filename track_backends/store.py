"""The Store interface: the collection-level primitives every backend implements.

Contract (every backend, checked by :mod:`track_backends.testing`):

* **Documents** are JSON-like dicts (see :mod:`track_backends.encoding`) with a string ``uid``
  that is unique within a collection. Collection names match ``[a-z][a-z0-9_]*``.
* **Validation first**: queries, updates, sorts, projections and values are validated before
  anything is written. Bad input raises a :class:`~track_backends.errors.QueryError` or
  :class:`~track_backends.errors.EncodingError` and leaves the store unchanged.
* **Isolation**: stores copy documents on the way in and on the way out. Mutating a document
  passed to, or returned by, a store never changes what is stored.
* **Atomicity**: each call is atomic. ``insert_many`` inserts all documents or none.
  ``update(many=True)`` applies to every match or, if applying fails for one, to none (backends
  without multi-document transactions document their exception). ``find_one_and_update``
  selects one document and updates it in one atomic step: with any number of processes
  calling it on the same query, each document is handed to exactly one caller.
* **Errors**: a broken unique index raises :class:`~track_backends.errors.DuplicateKeyError`;
  an unreachable server :class:`~track_backends.errors.StoreUnavailableError`; a lock wait that
  runs out :class:`~track_backends.errors.LockTimeoutError`; damaged files
  :class:`~track_backends.errors.CorruptStoreError`; any other failure of the engine
  :class:`~track_backends.errors.StoreError`. Driver exceptions never escape unwrapped.
* **Order**: ``find`` without ``sort`` returns documents in an unspecified order.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Self

from .errors import QueryError, StoreError
from .layout import ARTIFACTS, CACHE, HISTORY, TRACES

if TYPE_CHECKING:
    from .blobs import BlobStat, BlobWriter

Document = dict[str, Any]
Query = dict[str, Any] | None
_COLLECTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

PROJECTS = "projects"
GROUPS = "groups"
TRIALS = "trials"
DEFAULT_INDEXES: dict[str, list[tuple[tuple[str, ...], bool]]] = {
    TRIALS: [(("group_id", "status.name"), False), (("hash",), False)],
    ARTIFACTS: [(("trial",), False)],
    CACHE: [(("group", "name"), False)],
    HISTORY: [(("trial",), False)],
    TRACES: [(("trial",), False)],
}
"""Indexes every store creates on first use of a collection (``uid`` is always unique)."""


def check_collection(name: Any) -> str:
    """Validate a collection name.

    Raises:
        QueryError: The name does not match ``[a-z][a-z0-9_]*`` (at most 63 characters).
    """
    if type(name) is not str or not _COLLECTION_RE.match(name):
        raise QueryError(f"bad collection name {name!r}: use lower-case letters, digits and '_'")
    return name


def check_index_keys(keys: Any) -> tuple[str, ...]:
    """Validate and normalise the keys of an index to a tuple of dotted paths."""
    if isinstance(keys, str):
        keys = (keys,)
    if not isinstance(keys, (list, tuple)) or not keys:
        raise QueryError(f"index keys must be a path or a non-empty list of paths, got {keys!r:.80}")
    out = []
    for k in keys:
        if isinstance(k, (list, tuple)) and len(k) == 2:  # pymongo style (path, direction)
            k = k[0]
        if type(k) is not str or not k or k.startswith("$") or any(not p for p in k.split(".")):
            raise QueryError(f"bad index key {k!r}")
        out.append(k)
    return tuple(out)


class Store(ABC):
    """A document store with MongoDB-style queries; see the module docstring for the contract."""

    #: URI scheme the store was opened with (for messages and the registry).
    scheme: str = ""

    @abstractmethod
    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document.

        Raises:
            DuplicateKeyError: A document with the same ``uid`` (or unique key) exists.
            EncodingError: The document cannot be stored or has no string ``uid``.
        """

    @abstractmethod
    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert documents, all or none; return how many were inserted.

        Raises:
            DuplicateKeyError: One of them collides with a stored document or another one.
        """

    @abstractmethod
    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Return copies of the documents matching ``query``.

        Args:
            collection: Collection name.
            query: MongoDB-style filter; ``None`` or ``{}`` matches everything.
            sort: ``{path: 1 | -1}`` or a list of ``(path, direction)`` pairs.
            limit: At most this many documents (``None`` or 0 for no limit).
            projection: ``{path: 1}`` / ``{path: 0}`` or a list of paths to include.
        """

    def find_one(self, collection: str, query: Query = None, *, sort: Any = None) -> Document | None:
        """Return a copy of the first matching document, or ``None``."""
        found = self.find(collection, query, sort=sort, limit=1)
        return found[0] if found else None

    @abstractmethod
    def count(self, collection: str, query: Query = None) -> int:
        """Return the number of documents matching ``query``."""

    @abstractmethod
    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Apply an update document to the first (or every) match.

        With ``upsert`` and no match, a document built from the query's equality fields, then the
        update (including ``$setOnInsert``), is inserted; it must end up with a ``uid``.

        Returns:
            The number of documents matched, or 1 when one was upserted.
        """

    @abstractmethod
    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match (in ``sort`` order) and return it after the update.

        Returns:
            A copy of the updated document, or ``None`` when nothing matches.
        """

    @abstractmethod
    def delete(self, collection: str, query: Query) -> int:
        """Delete every matching document; return how many were deleted."""

    @abstractmethod
    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create an index on one or more dotted paths if it does not exist yet.

        Raises:
            DuplicateKeyError: ``unique`` is asked for and stored documents already collide.
        """

    # -- metric points (defaults: bucket documents in "<collection>_points", see stores.buckets) --
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
        """Append ``(name, step, value)`` points to the series of document ``uid``.

        With ``update``, the document matching ``query`` (default ``{"uid": uid}``) is updated
        first, and the points are appended only if it matched; stores that can (memory,
        journals, PostgreSQL) do both in one atomic step, the others document the order.

        Args:
            collection: The documents' collection (points live beside it).
            uid: The document the points belong to.
            points: ``(name, step, value)`` triples in logging order.
            attempt: The attempt (reservation token) the points belong to; 0 outside one.
            query: Which document ``update`` applies to (it must pin ``uid``).
            update: An update document applied with the append (e.g. the metric summary).

        Returns:
            ``False`` when ``update`` matched nothing (nothing was written), else ``True``.

        Raises:
            QueryError: A point, the query or the update is malformed.
            EncodingError: A name, step or value cannot be stored.
        """
        from .stores.buckets import append_points

        return append_points(self, collection, uid, points, attempt=attempt, query=query, update=update)

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
        """Read the series of many documents at once: ``{uid: {name: [(step, value), ...]}}``.

        Each series lists attempt 0's points first, then each later attempt's in increasing
        order, each in logging order (the multiplexer and migration rely on it to split a
        merged read by attempt).

        Args:
            collection: The documents' collection.
            uids: Whose series to read (one bulk read, not one per document).
            names: Only these metrics.
            start: Only points whose step is a number ``>= start``.
            stop: Only points whose step is a number ``< stop``.
            last: Only the last ``last`` points of each series.
            attempts: ``{uid: attempt}``: only that attempt's points and those of attempt 0
                (default: every attempt's).

        Raises:
            QueryError: ``start``, ``stop`` or ``last`` is malformed.
        """
        from .stores.buckets import fetch_points

        return fetch_points(self, collection, uids, names=names, start=start, stop=stop, last=last, attempts=attempts)

    def delete_points(self, collection: str, uids: Sequence[str]) -> int:
        """Delete every point of the given documents (``delete`` of a document does it too)."""
        from .stores.buckets import delete_points

        return delete_points(self, collection, uids)

    # -- blobs (content-addressed bytes behind artifacts; see track_backends.blobs) -------------
    def blob_writer(self) -> BlobWriter:
        """Start an upload of a blob; its bytes become visible under their sha256 on commit.

        Raises:
            StoreError: The store keeps no blobs (the default for plugin stores).
        """
        raise StoreError(f"{type(self).__name__} keeps no blobs (artifacts are not supported)")

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a stored blob's bytes for reading (unverified: wrap it in a ``VerifiedReader``).

        Raises:
            NotFoundError: No blob has that address.
            QueryError: ``sha256`` is not 64 lower-case hex digits.
        """
        raise StoreError(f"{type(self).__name__} keeps no blobs (artifacts are not supported)")

    def stat_blob(self, sha256: str) -> BlobStat | None:
        """Return a stored blob's address, size and store time, or ``None`` if it is absent."""
        raise StoreError(f"{type(self).__name__} keeps no blobs (artifacts are not supported)")

    def delete_blob(self, sha256: str) -> bool:
        """Delete a blob whatever references it (``gc`` decides); return whether it existed."""
        raise StoreError(f"{type(self).__name__} keeps no blobs (artifacts are not supported)")

    def list_blobs(self) -> Iterator[BlobStat]:
        """Yield every stored blob, in no particular order (uploads in progress are not listed)."""
        raise StoreError(f"{type(self).__name__} keeps no blobs (artifacts are not supported)")

    def clean_uploads(self, older_than: float) -> int:
        """Remove leftovers of uploads that died before ``older_than`` (epoch seconds); return how many.

        Stores whose uploads leave nothing behind when they fail (a transaction, memory) return 0.
        """
        return 0

    def now(self) -> float:
        """The store's clock, in seconds since the epoch: it decides when leases expire.

        Memory and journal stores use this machine's clock. Server stores return the server's
        clock (see :class:`~track_backends.clock.ServerClock`), so that a client whose clock is
        wrong neither takes a live lease nor keeps a dead one.

        Raises:
            StoreUnavailableError: A server store cannot be reached to read its clock.
        """
        return time.time()

    def commit(self) -> None:  # noqa: B027 - optional hook
        """Make every returned write durable (a no-op for stores that are durable per write)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections, file handles and locks. Closing twice is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_limit(limit: Any) -> int | None:
    """Validate a ``limit`` argument; 0 and ``None`` mean no limit."""
    if limit is None or limit == 0:
        return None
    if type(limit) is not int or limit < 0:
        raise QueryError(f"limit must be a non-negative int, got {limit!r}")
    return limit
