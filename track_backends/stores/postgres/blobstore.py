"""Blobs (the bytes behind artifacts) in two tables of the namespace.

``<prefix>tb$blobs`` names each stored content and ``<prefix>tb$blob_chunks`` holds its bytes::

    tb$blobs        (sha256 text PRIMARY KEY, size bigint, created float8, id bigint UNIQUE)
    tb$blob_chunks  (id bigint, seq integer, data bytea, PRIMARY KEY (id, seq))

A blob's rows hold its bytes in order, by ``seq``: 1 MiB rows on PostgreSQL (:data:`CHUNK_SIZE`),
256 KiB rows on CockroachDB (:data:`ROW_SIZE`, since CockroachDB advises values under 1 MB).

An upload is one transaction on a connection of its own, outside the pool, opened when the first
full row is ready: its rows go under a fresh random id (on PostgreSQL through
``COPY ... FROM STDIN (FORMAT BINARY)`` statements of :data:`COPY_BATCH` rows, with the
statement timeout lifted for the upload, since a ``COPY`` lasts as long as its producer; on
CockroachDB as one ``INSERT`` per row), then the ``tb$blobs`` row is upserted and the
transaction commits. When the content was stored already, the upsert refreshes its ``created``
time and the new rows are deleted before the commit. A process that dies half-way leaves
nothing: the server aborts the open transaction. A blob smaller than one row is written in one
short transaction through the pool. Times come from the server's ``clock_timestamp()``.

Reads fetch about 1 MiB per query (one row on PostgreSQL, four on CockroachDB), by
``(id, seq)``, through the pool.

Serialization failures: the short transactions are retried like every other. An upload cannot
be replayed from its stream, so a serialization failure at its commit (the same content being
committed at the same moment) is settled by checking whether the content is now stored (then
its time is refreshed); otherwise the upload fails with :class:`~track_backends.errors.StoreError`.

CockroachDB: a whole upload is one transaction, whatever its size; this module sets no limit.
A long or large transaction is more exposed to being aborted (contention, the cluster's
``transaction_timeout`` or transaction size settings), and an aborted upload fails (its stream
cannot be replayed): the caller uploads again. This path has been run only on PostgreSQL at
SERIALIZABLE (the tests force it there), not against a CockroachDB server; how large a blob a
given cluster accepts in one transaction is not measured.
"""

from __future__ import annotations

import contextlib
import io
import secrets
from collections.abc import Callable, Iterator
from typing import IO, Any

import psycopg
from psycopg import sql

from ...blobs import CHUNK_SIZE, BlobStat, BlobWriter, check_sha
from ...errors import NotFoundError, StoreError
from ...uri import mask_password
from .connection import RETRY_SQLSTATES, wrap_error
from .core import StoreCore

USE_COPY = True
"""Whether PostgreSQL takes its own path (``COPY`` of 1 MiB rows); ``False`` sends it CockroachDB's
(``INSERT`` of :data:`ROW_SIZE` rows, read four per query), which the tests run on PostgreSQL."""
ROW_SIZE = CHUNK_SIZE // 4
"""Bytes per row on the ``INSERT`` path (CockroachDB)."""
_FETCH_ROWS_COCKROACH = CHUNK_SIZE // ROW_SIZE
_FETCH_ROWS = 4
"""Rows (1 MiB each) a read fetches per query on PostgreSQL."""
"""Rows read per query on CockroachDB (one row on PostgreSQL): about 1 MiB either way."""
COPY_BATCH = 8
"""Rows per ``COPY`` statement: PostgreSQL holds the rows of a binary ``COPY`` in memory (up to
1,000 of them) before writing them, so each ``COPY`` of an upload is kept to 8 MiB."""

_NOW = "extract(epoch FROM clock_timestamp())::float8"


class _Sql:
    """The statements over one namespace's blob tables."""

    def __init__(self, blobs: sql.Identifier, chunks: sql.Identifier) -> None:
        def text(template: str) -> str:
            return sql.SQL(template).format(blobs=blobs, chunks=chunks).as_string(None)

        self.upsert = text(
            "INSERT INTO {blobs} (sha256, size, created, id) VALUES (%s, %s, " + _NOW + ", %s)"
            " ON CONFLICT (sha256) DO UPDATE SET created = excluded.created RETURNING id, created"
        )
        self.refresh = text("UPDATE {blobs} SET created = " + _NOW + " WHERE sha256 = %s RETURNING created")
        self.insert_chunk = text("INSERT INTO {chunks} (id, seq, data) VALUES (%s, %s, %b)")
        self.copy_chunks = text("COPY {chunks} (id, seq, data) FROM STDIN (FORMAT BINARY)")
        self.drop_chunks = text("DELETE FROM {chunks} WHERE id = %s")
        self.find = text("SELECT id, size FROM {blobs} WHERE sha256 = %s")
        self.chunks = text("SELECT seq, data FROM {chunks} WHERE id = %s AND seq >= %s AND seq < %s ORDER BY seq")
        self.stat = text("SELECT size, created FROM {blobs} WHERE sha256 = %s")
        self.list = text("SELECT sha256, size, created FROM {blobs}")
        self.delete = text(
            "WITH gone AS (DELETE FROM {blobs} WHERE sha256 = %s RETURNING id),"
            " parts AS (DELETE FROM {chunks} c WHERE c.id IN (SELECT id FROM gone))"
            " SELECT count(*) FROM gone"
        )


class _Aborted(Exception):
    """Ends a ``COPY`` whose upload was aborted."""


class _Upload(BlobWriter):
    """An upload: full chunks on a connection of its own, in one transaction (see the module docstring)."""

    def __init__(self, store: BlobsMixin) -> None:
        super().__init__()
        self._store = store
        self._sql = store._blob_sql()
        self._id = secrets.randbits(63) or 1
        self._buf = bytearray()
        self._seq = 0
        self._conn: psycopg.Connection | None = None
        self._copying: contextlib.AbstractContextManager[Any] | None = None
        self._copy: Any = None
        self._by_copy = not store._cockroach_path()
        self._row = CHUNK_SIZE if self._by_copy else ROW_SIZE

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._buf += data
        row = self._row
        while len(self._buf) >= row:
            chunk = bytes(memoryview(self._buf)[:row])
            del self._buf[:row]
            self._send(chunk)

    def _begin(self) -> psycopg.Connection:
        conn = self._conn = self._store._conns.connect()
        if self._by_copy:
            try:
                conn.execute("SET LOCAL statement_timeout = 0")  # a COPY lasts as long as its producer
            except psycopg.Error as e:
                raise wrap_error(e, self._store.opts) from e
        return conn

    def _send(self, chunk: bytes) -> None:
        conn = self._conn or self._begin()
        try:
            if not self._by_copy:
                conn.execute(self._sql.insert_chunk, (self._id, self._seq, chunk))
            else:
                if self._copy is None:
                    self._copying = conn.cursor().copy(self._sql.copy_chunks)
                    self._copy = self._copying.__enter__()
                    self._copy.set_types(["int8", "int4", "bytea"])
                self._copy.write_row((self._id, self._seq, chunk))
                if self._seq % COPY_BATCH == COPY_BATCH - 1:
                    self._end_copy()
        except psycopg.Error as e:
            raise wrap_error(e, self._store.opts) from e
        self._seq += 1

    def _end_copy(self) -> None:
        """End the current ``COPY`` (the server writes the rows it holds)."""
        copying, self._copying, self._copy = self._copying, None, None
        if copying is not None:
            copying.__exit__(None, None, None)

    def _commit(self, sha256: str, size: int) -> float:
        if self._conn is None:  # at most one chunk: one short transaction, retried if need be
            return float(self._store._run(lambda conn: self._commit_small(conn, sha256, size)))
        if self._buf:
            self._send(bytes(self._buf))
            self._buf = bytearray()
        conn = self._conn
        try:
            self._end_copy()
            row = conn.execute(self._sql.upsert, (sha256, size, self._id)).fetchone()
            assert row is not None
            if row[0] != self._id:  # stored already: its time is refreshed, these chunks go
                conn.execute(self._sql.drop_chunks, (self._id,))
            conn.commit()
            return float(row[1])
        except psycopg.Error as e:
            if getattr(e, "sqlstate", None) not in RETRY_SQLSTATES:
                raise wrap_error(e, self._store.opts) from e
            return self._settle(sha256, e)
        finally:
            self._close()

    def _commit_small(self, conn: psycopg.Connection, sha256: str, size: int) -> float:
        with conn.transaction():
            row = conn.execute(self._sql.upsert, (sha256, size, self._id)).fetchone()
            assert row is not None
            if row[0] == self._id and self._buf:
                conn.execute(self._sql.insert_chunk, (self._id, 0, bytes(self._buf)))
            return float(row[1])

    def _settle(self, sha256: str, e: psycopg.Error) -> float:
        """After a serialization failure at commit: the content's refreshed time if it is stored now."""
        row = self._store._run(lambda conn: conn.execute(self._sql.refresh, (sha256,)).fetchone())
        if row is None:
            raise StoreError(
                f"the upload of blob {sha256} hit a serialization failure at its commit and cannot be replayed"
                f" from its stream: upload it again ({mask_password(str(e)).strip()})"
            ) from e
        return float(row[0])

    def _abort(self) -> None:
        self._buf = bytearray()
        copying, self._copying, self._copy = self._copying, None, None
        if copying is not None:
            with contextlib.suppress(psycopg.Error):
                copying.__exit__(_Aborted, _Aborted("upload aborted"), None)
        self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # an open transaction is rolled back by the server


class _ChunkReader(io.RawIOBase):
    """A blob's bytes, fetched a few rows per query as they are read.

    ``fetch(seq)`` returns the rows from ``seq`` on that follow each other (an empty list past
    the end or at a missing row: the stream then ends early, and the verifier sees it short).
    """

    def __init__(self, fetch: Callable[[int], list[bytes]], size: int) -> None:
        super().__init__()
        self._fetch = fetch
        self._left = size
        self._seq = 0
        self._pending: list[bytes] = []
        self._chunk = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        """Move to the next row, fetching more if need be; False at the end."""
        if not self._pending:
            got = self._fetch(self._seq) if self._left > 0 else []
            if not got:
                self._left = 0
                return False
            self._seq += len(got)
            self._left -= sum(len(d) for d in got)
            self._pending = got[::-1]
        self._chunk, self._pos = self._pending.pop(), 0
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        """Up to ``size`` bytes of the current row (a whole row is handed over without a copy)."""
        if size is None or size < 0:
            return self.readall()
        while self._pos >= len(self._chunk):
            if not size or not self._next():
                return b""
        if self._pos == 0 and size >= len(self._chunk):
            data, self._chunk = self._chunk, b""
            return data
        data = self._chunk[self._pos : self._pos + size]
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not view:
            return 0
        while self._pos >= len(self._chunk):
            if not self._next():
                return 0
        n = min(len(view), len(self._chunk) - self._pos)
        view[:n] = self._chunk[self._pos : self._pos + n]
        self._pos += n
        return n

    def readall(self) -> bytes:
        parts = [self._chunk[self._pos :]]
        self._chunk, self._pos = b"", 0
        while self._next():
            parts.append(self._chunk)
            self._chunk = b""
        return b"".join(parts)

    def close(self) -> None:
        self._chunk, self._pending = b"", []
        super().close()


class BlobsMixin(StoreCore):
    """The blob primitives of :class:`~.store.PostgresStore` (see the module docstring)."""

    def _blob_sql(self) -> _Sql:
        found: _Sql | None = self.__dict__.get("_blob_statements")
        if found is None:
            found = self.__dict__["_blob_statements"] = _Sql(self._layout.blobs, self._layout.chunks)
        return found

    def _cockroach_path(self) -> bool:
        return self.cockroach or not USE_COPY

    def blob_writer(self) -> BlobWriter:
        """Start an upload: one transaction, committed with the blob's row (see the module docstring).

        Raises:
            StoreUnavailableError: The server cannot be reached, or the store is closed (when
                the first chunk is written or at commit).
            StoreError: Any other failure of the server.
        """
        return _Upload(self)

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a blob's bytes, fetched about 1 MiB per query as they are read.

        Raises:
            QueryError: ``sha256`` is not 64 lower-case hex digits.
            NotFoundError: No blob has that address.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
        """
        q = self._blob_sql()
        row = self._run(lambda conn: conn.execute(q.find, (check_sha(sha256),)).fetchone(), read=True)
        if row is None:
            raise NotFoundError(f"no blob {sha256} in {self!r}")
        blob_id, size = int(row[0]), int(row[1])

        rows = _FETCH_ROWS_COCKROACH if self._cockroach_path() else _FETCH_ROWS

        def fetch(seq: int) -> list[bytes]:
            def some(conn: psycopg.Connection) -> list[bytes]:
                got = conn.execute(q.chunks, (blob_id, seq, seq + rows), binary=True).fetchall()
                out: list[bytes] = []
                for s, data in got:
                    if s != seq + len(out):
                        break
                    out.append(bytes(data))
                return out

            return self._run(some, read=True)

        return io.BufferedReader(_ChunkReader(fetch, size), buffer_size=CHUNK_SIZE)

    def stat_blob(self, sha256: str) -> BlobStat | None:
        """Return the blob's address, size and store time (server clock), or ``None``.

        Raises:
            QueryError: ``sha256`` is not 64 lower-case hex digits.
        """
        q = self._blob_sql()
        row = self._run(lambda conn: conn.execute(q.stat, (check_sha(sha256),)).fetchone(), read=True)
        return None if row is None else BlobStat(sha256, int(row[0]), float(row[1]))

    def delete_blob(self, sha256: str) -> bool:
        """Delete a blob and its chunks in one statement; return whether it existed.

        Raises:
            QueryError: ``sha256`` is not 64 lower-case hex digits.
        """
        q = self._blob_sql()
        row = self._run(lambda conn: conn.execute(q.delete, (check_sha(sha256),)).fetchone())
        return bool(row and row[0])

    def list_blobs(self) -> Iterator[BlobStat]:
        """Yield every stored blob (uploads in progress are invisible: they are not committed)."""
        q = self._blob_sql()
        rows = self._run(lambda conn: conn.execute(q.list).fetchall(), read=True)
        for sha, size, created in rows:
            yield BlobStat(sha, int(size), float(created))
