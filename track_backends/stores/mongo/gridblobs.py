"""Blobs on MongoDB: GridFS, one bucket named ``blobs`` (collections ``blobs.files`` and ``blobs.chunks``).

A blob is a standard GridFS file whose ``filename`` is its hex sha256, with ``length`` its size
and ``metadata.created`` its store time (the server's clock, epoch seconds); its bytes are chunks
of :data:`~track_backends.blobs.CHUNK_SIZE` bytes in ``blobs.chunks``. Any GridFS client reads
it (``GridFSBucket(db, "blobs").open_download_stream_by_name(sha256)``). Unique indexes on
``blobs.files.filename`` and ``blobs.chunks.(files_id, n)`` keep each content and chunk once.

An upload writes chunks under a fresh temporary file ``_id``, each as soon as it is full (one
``insert``; the writer holds at most one chunk). When the last byte is written the sha256 is
known: if that content is stored already, the upload's chunks are deleted and the stored file's
time is refreshed; otherwise the files document is written last, and only then is the blob
visible. Two uploads of the same bytes racing past that check collide on the unique index: the
loser deletes its own chunks and refreshes the winner's time. A process killed half-way leaves
chunks without a files document, which nothing lists; :meth:`GridBlobs.clean_uploads` deletes
them once their newest chunk is older than the cut-off. ``delete_blob`` deletes the files
document first, then the chunks, so a crash in between also leaves only such orphans.

Uploads do not go through pymongo's ``GridIn``: since pymongo 4.9 it holds up to 48 MB of chunks
and then encodes them into one ``insert`` message, about 92 MiB of memory per upload (measured
with tracemalloc on a 300 MiB upload), where writing the same layout chunk by chunk needs about
5 MiB. Reads go through pymongo's ``GridOut``, lazily, one cursor batch (at most 16 MB) at a
time; it checks each chunk's number and size (:class:`~track_backends.errors.CorruptStoreError`).
On ``mongomock://`` the same ``GridOut`` reads mongomock collections, after
``mongomock.gridfs.enable_gridfs_integration()`` (which patches the ``gridfs`` module's type
checks for the whole process), so reading blobs there needs pymongo installed.

Not atomic against everything: an upload that stalls between two chunks for longer than the
cut-off of a concurrent ``clean_uploads`` (gc's grace period, an hour by default) loses its
chunks, and its reads then fail with :class:`~track_backends.errors.CorruptStoreError`.
"""

from __future__ import annotations

import datetime
import io
import itertools
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, cast

from ...blobs import CHUNK_SIZE, BlobStat, BlobWriter, check_sha
from ...errors import CorruptStoreError, NotFoundError, StoreError, StoreUnavailableError, TrackBackendsError
from .drivers import import_driver

if TYPE_CHECKING:
    from ...clock import ServerClock

BUCKET = "blobs"
"""The GridFS bucket of a store's blobs."""

_IN_BATCH = 1000  # file ids per $in query of clean_uploads
_mongomock_enabled = False


class _GridWriter(BlobWriter):
    """An upload into GridFS chunks under a temporary ``_id``; published by writing its files document.

    It sends each chunk as soon as it is full, one ``insert`` each, and holds at most one chunk.
    """

    def __init__(self, store: GridBlobs, file_id: Any) -> None:
        super().__init__()
        self._store = store
        self._id = file_id
        self._buffer = bytearray()
        self._n = 0
        self._sent = False

    def _send(self, data: bytes) -> None:
        """Insert the next chunk (the caller holds the lock)."""
        _, chunks = self._store._grid("write a blob upload")
        self._sent = True  # even if the insert fails half-way: abort must look
        chunks.insert_one({"files_id": self._id, "n": self._n, "data": data})
        self._n += 1

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        s = self._store
        try:
            with s._lock:
                view = memoryview(data).cast("B")
                if not self._buffer and len(view) == CHUNK_SIZE:  # the common case: no copy into the buffer
                    self._send(bytes(view))
                    return
                self._buffer += view
                while len(self._buffer) >= CHUNK_SIZE:
                    self._send(bytes(self._buffer[:CHUNK_SIZE]))
                    del self._buffer[:CHUNK_SIZE]
        except TrackBackendsError:
            raise
        except s._blob_errors() as e:
            raise s._wrap(e, "write a blob upload", StoreError) from e

    def _commit(self, sha256: str, size: int) -> float:
        s = self._store
        now = s.now()
        files, _ = s._grid(f"store blob {sha256}")
        from bson.int64 import Int64  # installed with pymongo, which _gridfs() made sure of

        doc = {
            "_id": self._id,
            "length": Int64(size),  # the GridFS spec's type
            "chunkSize": CHUNK_SIZE,
            "uploadDate": datetime.datetime.fromtimestamp(now, datetime.UTC),
            "filename": sha256,
            "metadata": {"created": now},
        }
        try:
            with s._lock:
                if s._refresh(sha256, now):  # stored already: drop ours
                    self._drop()
                    return now
                if self._buffer:
                    self._send(bytes(self._buffer))
                    self._buffer = bytearray()
                try:
                    files.insert_one(doc)  # written last: from now on the blob is visible
                    return now
                except s._driver.duplicate:  # another upload of the same bytes won the race
                    if not s._refresh(sha256, now):
                        raise StoreError(
                            f"blob {sha256} was stored and deleted again by others during this upload "
                            f"({s._label}); upload it again"
                        ) from None
                    self._drop()
                    return now
        except TrackBackendsError:
            raise
        except s._blob_errors() as e:
            raise s._wrap(e, f"store blob {sha256}", StoreError) from e

    def _drop(self) -> None:
        """Delete the chunks sent so far (the caller holds the lock)."""
        self._buffer = bytearray()
        if self._sent:
            _, chunks = self._store._grid("drop a blob upload")
            chunks.delete_many({"files_id": self._id})
            self._sent = False

    def _abort(self) -> None:
        s = self._store
        if s.closed:
            return  # the chunks sent so far stay behind, invisible, until clean_uploads
        try:
            with s._lock:
                self._drop()
        except s._blob_errors():
            pass  # likewise (and the error that made the upload fail is the one to raise)


class _GridReader(io.RawIOBase):
    """A blob's bytes read lazily through a ``GridOut``, driver errors wrapped."""

    def __init__(self, store: GridBlobs, grid_out: Any, sha256: str) -> None:
        super().__init__()
        self._store = store
        self._out = grid_out
        self._sha = sha256

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        s = self._store
        if self.closed:
            raise ValueError("read of a closed blob stream")
        gridfs = s._gridfs()
        try:
            with s._lock:
                return cast(bytes, self._out.read(-1 if size is None else size))
        except gridfs.errors.CorruptGridFile as e:
            raise CorruptStoreError(f"blob {self._sha} in {s._label} is damaged: {s._text(e)}") from e
        except gridfs.errors.NoFile as e:
            raise NotFoundError(f"blob {self._sha} was deleted from {s._label} while it was read") from e
        except s._blob_errors() as e:
            raise s._wrap(e, f"read blob {self._sha}", CorruptStoreError) from e

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if self.closed:
            return
        s = self._store
        try:
            with s._lock:
                self._out.close()
        except s._blob_errors():
            pass  # closing a cursor of a lost connection: nothing left to release
        finally:
            super().close()


class GridBlobs:
    """Blob primitives of :class:`~.store.MongoStore` on GridFS (see the module docstring)."""

    _lock: Any
    _errors: tuple[type[BaseException], ...]
    _driver: Any
    _label: str
    _clock: ServerClock
    database: Any
    closed: bool
    scheme: str

    if TYPE_CHECKING:  # provided by MongoStore

        def _wrap(self, e: BaseException, what: str, bad_value: type[TrackBackendsError]) -> TrackBackendsError: ...
        def _text(self, e: BaseException) -> str: ...
        def now(self) -> float: ...

    # -- helpers -----------------------------------------------------------------------------------
    def _gridfs(self) -> Any:
        """The ``gridfs`` module of pymongo (enabled for mongomock collections on a mongomock store)."""
        global _mongomock_enabled
        mod = self.__dict__.get("_gridfs_module")
        if mod is None:
            mod = import_driver("gridfs", "mongo", self.scheme)
            if self._driver.name == "mongomock":
                with self._lock:
                    if not _mongomock_enabled:
                        import_driver("mongomock.gridfs", "mongomock", self.scheme).enable_gridfs_integration()
                        _mongomock_enabled = True
            self.__dict__["_gridfs_module"] = mod
        return mod

    def _blob_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's errors and pymongo's (GridFS raises pymongo's on mongomock too)."""
        errs: tuple[type[BaseException], ...] | None = self.__dict__.get("_blob_error_types")
        if errs is None:
            try:
                from pymongo.errors import PyMongoError

                errs = (*self._errors, PyMongoError)
            except ImportError:  # pragma: no cover - mongomock without pymongo (blob calls refuse to start)
                errs = self._errors
            self.__dict__["_blob_error_types"] = errs
        return errs

    def _grid(self, what: str) -> tuple[Any, Any]:
        """The ``blobs.files`` and ``blobs.chunks`` collections."""
        if self.closed:
            raise StoreUnavailableError(f"{what}: the {self.scheme}: store {self._label} is closed")
        return self.database[f"{BUCKET}.files"], self.database[f"{BUCKET}.chunks"]

    def _ensure_blob_indexes(self) -> None:
        """Create the bucket's unique indexes (once per store)."""
        files, chunks = self._grid("start a blob upload")
        if self.__dict__.get("_grid_indexed"):
            return
        try:
            with self._lock:
                files.create_index([("filename", 1)], unique=True)
                chunks.create_index([("files_id", 1), ("n", 1)], unique=True)
        except self._blob_errors() as e:
            raise self._wrap(e, f"create the indexes of the GridFS bucket {BUCKET!r}", StoreError) from e
        self.__dict__["_grid_indexed"] = True

    def _refresh(self, sha256: str, now: float) -> bool:
        """Make a stored blob young again; whether it exists (the caller holds the lock)."""
        files, _ = self._grid(f"store blob {sha256}")
        r = files.update_one({"filename": sha256}, {"$set": {"metadata.created": now}})
        return bool(r.matched_count)

    @staticmethod
    def _stat(doc: dict[str, Any]) -> BlobStat:
        created = (doc.get("metadata") or {}).get("created")
        if not isinstance(created, (int, float)):  # a file some other program put in the bucket
            when = doc.get("uploadDate")
            created = when.timestamp() if when is not None else 0.0
        return BlobStat(doc["filename"], int(doc.get("length", 0)), float(created))

    def _clean_upload(self, files: Any, chunks: Any, fid: Any, cutoff: float) -> bool:
        """Delete the chunks of file ``fid`` if it has no files document and its newest chunk is old."""
        with self._lock:
            newest = chunks.find_one({"files_id": fid}, {"_id": 1}, sort=[("n", -1)])
            when = getattr(newest and newest["_id"], "generation_time", None)
            if newest is None or (when is not None and when.timestamp() >= cutoff):
                return False  # gone meanwhile, or young (maybe still uploading)
            if files.find_one({"_id": fid}, {"_id": 1}) is not None:
                return False  # committed meanwhile
            chunks.delete_many({"files_id": fid})
        return True

    # -- Store API ---------------------------------------------------------------------------------
    def blob_writer(self) -> BlobWriter:
        """Start an upload into the GridFS bucket (invisible until its files document is written).

        Raises:
            DriverNotInstalledError: pymongo (its ``gridfs`` package) is missing (``mongomock://``),
                so the blob could not be read.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        self._gridfs()  # refuse up front what could not be read back
        self._ensure_blob_indexes()
        return _GridWriter(self, self._driver.object_id())

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a blob's bytes, read lazily chunk by chunk (unverified; see ``VerifiedReader``).

        Raises:
            NotFoundError: No blob has that address.
            QueryError: ``sha256`` is not 64 lower-case hex digits.
            DriverNotInstalledError: pymongo (its ``gridfs`` package) is missing (``mongomock://``).
            CorruptStoreError: A chunk is missing or of the wrong size (raised while reading).
            StoreUnavailableError: The server cannot be reached, or the store is closed.
        """
        check_sha(sha256)
        files, _ = self._grid(f"open blob {sha256}")
        gridfs = self._gridfs()
        try:
            with self._lock:
                doc = files.find_one({"filename": sha256})
                if doc is None:
                    raise NotFoundError(f"no blob {sha256} in {self._label}")
                grid_out = gridfs.GridOut(self.database[BUCKET], file_document=doc)
        except TrackBackendsError:
            raise
        except self._blob_errors() as e:
            raise self._wrap(e, f"open blob {sha256}", StoreError) from e
        return cast(IO[bytes], _GridReader(self, grid_out, sha256))

    def stat_blob(self, sha256: str) -> BlobStat | None:
        """Return the blob's address, size and store time, or ``None``.

        Raises:
            QueryError: ``sha256`` is not 64 lower-case hex digits.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
        """
        check_sha(sha256)
        files, _ = self._grid(f"stat blob {sha256}")
        try:
            with self._lock:
                doc = files.find_one({"filename": sha256}, {"filename": 1, "length": 1, "metadata": 1, "uploadDate": 1})
        except self._blob_errors() as e:
            raise self._wrap(e, f"stat blob {sha256}", StoreError) from e
        return None if doc is None else self._stat(doc)

    def delete_blob(self, sha256: str) -> bool:
        """Delete a blob: its files document (it is invisible from then on), then its chunks.

        Raises:
            QueryError: ``sha256`` is not 64 lower-case hex digits.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
        """
        check_sha(sha256)
        files, chunks = self._grid(f"delete blob {sha256}")
        try:
            with self._lock:
                doc = files.find_one_and_delete({"filename": sha256}, {"_id": 1})
                if doc is None:
                    return False
                chunks.delete_many({"files_id": doc["_id"]})
        except self._blob_errors() as e:
            raise self._wrap(e, f"delete blob {sha256}", StoreError) from e
        return True

    def list_blobs(self) -> Iterator[BlobStat]:
        """Yield every blob (uploads in progress and orphan chunks have no files document: not listed).

        Raises:
            StoreUnavailableError: The server cannot be reached, or the store is closed.
        """
        files, _ = self._grid("list blobs")
        try:
            with self._lock:
                docs = list(files.find({}, {"filename": 1, "length": 1, "metadata": 1, "uploadDate": 1}))
        except self._blob_errors() as e:
            raise self._wrap(e, "list blobs", StoreError) from e
        for doc in docs:
            name = doc.get("filename")
            if isinstance(name, str) and len(name) == 64:
                try:
                    check_sha(name)
                except TrackBackendsError:
                    continue
                yield self._stat(doc)

    def clean_uploads(self, older_than: float) -> int:
        """Delete the chunks of uploads that died (no files document) before ``older_than``.

        An upload's age is its newest chunk's ``_id`` time (written by the client, so the cut-off
        is moved onto the client's clock, with a second's margin for the ObjectId's rounding).

        Returns:
            How many dead uploads were removed.

        Raises:
            StoreUnavailableError: The server cannot be reached, or the store is closed.
        """
        files, chunks = self._grid("clean blob uploads")
        cutoff = older_than - self._clock.offset() - 1.0  # server time -> this client's clock
        removed = 0
        try:
            with self._lock:
                cursor = chunks.aggregate([{"$group": {"_id": "$files_id"}}], batchSize=_IN_BATCH)
            try:
                while True:
                    with self._lock:
                        batch = [d["_id"] for d in itertools.islice(cursor, _IN_BATCH)]
                        if not batch:
                            break
                        alive = {d["_id"] for d in files.find({"_id": {"$in": batch}}, {"_id": 1})}
                    for fid in batch:
                        if fid not in alive and self._clean_upload(files, chunks, fid, cutoff):
                            removed += 1
            finally:
                with self._lock:
                    cursor.close()
        except self._blob_errors() as e:
            raise self._wrap(e, "clean blob uploads", StoreError) from e
        return removed
