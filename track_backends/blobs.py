"""Content-addressed blobs: the bytes behind artifacts, cached values and recorded calls.

A store keeps each distinct content once, under the hex sha256 of its bytes, in the engine's
natural place (see each backend). The pieces every backend shares live here:

* :class:`BlobWriter`: a store's upload handle. It hashes and counts the bytes as they are
  written, so the content is never held whole, and makes the blob visible only in
  :meth:`BlobWriter.commit`: an upload that fails or is killed half-way leaves nothing visible
  (at most an invisible temporary that :func:`track_backends.gc.collect_garbage` removes).
* :class:`VerifiedReader`: a read stream that checks the bytes against their sha256 and size
  and raises :class:`~track_backends.errors.CorruptStoreError` at the end of a damaged blob.
* :func:`check_sha`, :data:`CHUNK_SIZE` and :data:`REFERENCES` (the collections whose documents
  hold blobs alive).
"""

from __future__ import annotations

import hashlib
import io
import queue
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import IO, Any, NamedTuple, Protocol, Self

from .errors import CorruptStoreError, QueryError
from .layout import ARTIFACTS, CACHE

CHUNK_SIZE = 1 << 20
"""Bytes per chunk when blobs are streamed (reads, uploads, copies)."""

REFERENCES = (ARTIFACTS, CACHE)
"""Collections whose documents reference blobs by their ``sha256`` field; ``gc`` keeps those."""

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobStat(NamedTuple):
    """A stored blob: its hex sha256, its size in bytes, and when it was stored (epoch seconds)."""

    sha256: str
    size: int
    created: float


def check_sha(sha256: Any) -> str:
    """Validate a blob address (64 lower-case hex digits).

    Raises:
        QueryError: It is not one.
    """
    if type(sha256) is not str or not _SHA_RE.match(sha256):
        raise QueryError(f"bad blob address {sha256!r:.80}: expected 64 lower-case hex digits of a sha256")
    return sha256


class _Hasher:
    """A running sha256 that hashes big chunks on a helper thread, beside the caller's writes.

    ``hashlib`` releases the GIL while it hashes a large buffer, so an upload hashes one chunk
    while the store writes it, and a read hashes one chunk while the caller uses the next,
    instead of one after the other. Chunks stay in order (one thread,
    one FIFO queue); a mutable buffer is copied first, since the caller may reuse it; at most
    :data:`_QUEUED` chunks wait, which bounds the memory held.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._queue: queue.Queue[bytes | memoryview | None] | None = None
        self._thread: threading.Thread | None = None

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._queue is None:
            if len(data) < _THREADED:
                self._sha.update(data)
                return
            self._queue = queue.Queue(_QUEUED)
            self._thread = threading.Thread(target=self._run, name="blob-sha256", daemon=True)
            self._thread.start()
        if not (type(data) is bytes or (isinstance(data, memoryview) and data.readonly)):
            data = bytes(data)
        self._queue.put(data)

    def _run(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._sha.update(chunk)

    def stop(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None

    def hexdigest(self) -> str:
        self.stop()
        return self._sha.hexdigest()


_THREADED = 256 << 10
"""Chunks this big (or bigger) are hashed on a helper thread."""
_QUEUED = 4


class BlobWriter(ABC):
    """An upload in progress. Write bytes, then :meth:`commit` (or :meth:`abort`).

    Used as a context manager, it commits when the block succeeds and aborts when it raises.
    Subclasses implement :meth:`_write`, :meth:`_commit` and :meth:`_abort`; the base class keeps
    the running sha256 and size, and makes each of commit and abort happen at most once.
    """

    def __init__(self) -> None:
        self._hash = _Hasher()
        self.size = 0
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append bytes to the blob; return how many were written."""
        if self._done:
            raise ValueError("write to a blob upload that was already committed or aborted")
        n = len(data)
        if n:
            self._hash.update(data)
            self.size += n
            self._write(data)
        return n

    def commit(self) -> BlobStat:
        """Make the blob visible under its sha256 (kept once if it is stored already)."""
        if self._done:
            raise ValueError("a blob upload is committed or aborted once")
        sha = self._hash.hexdigest()
        try:
            created = self._commit(sha, self.size)
        except BaseException:
            self._abort()
            raise
        finally:
            self._done = True
        return BlobStat(sha, self.size, created)

    def __del__(self) -> None:
        self._hash.stop()  # an upload dropped without commit or abort: end its hashing thread

    def abort(self) -> None:
        """Drop the upload; nothing of it becomes visible. Harmless after commit or abort."""
        if not self._done:
            self._done = True
            self._hash.stop()
            self._abort()

    @abstractmethod
    def _write(self, data: bytes | bytearray | memoryview) -> None:
        """Keep the next bytes (somewhere invisible until commit)."""

    @abstractmethod
    def _commit(self, sha256: str, size: int) -> float:
        """Publish the bytes under ``sha256``; return its store time.

        When the blob exists already, drop the new bytes and refresh the stored blob's time, so
        that ``gc``'s grace period protects it until the caller's reference is written.
        """

    @abstractmethod
    def _abort(self) -> None:
        """Forget the bytes written so far."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            if not self._done:
                self.commit()
        else:
            self.abort()


class VerifiedReader(io.RawIOBase):
    """A binary read stream over a blob that checks its sha256 and size at the end.

    The check happens when the last byte has been read: reading a damaged blob to its end
    raises :class:`~track_backends.errors.CorruptStoreError` (``read()`` with no size does), and
    so does :meth:`close` of a stream that was read to the end. A stream closed before its end
    is not checked.

    Args:
        raw: The store's stream of the blob's bytes (closed with this one).
        sha256: The address the bytes must hash to.
        size: The number of bytes expected.
        where: What to name in the error (e.g. the artifact and the store).
    """

    def __init__(self, raw: IO[bytes], sha256: str, size: int, where: str) -> None:
        super().__init__()
        self._raw = raw
        self._expect = sha256
        self._size = size
        self._where = where
        self._hash = _Hasher()
        self._read = 0
        self._ok = False

    def readable(self) -> bool:
        return True

    def _take(self, data: bytes) -> None:
        n = len(data)
        if n:
            self._hash.update(data)
            self._read += n
        if n == 0 or self._read >= self._size:
            self._verify()

    def read(self, size: int | None = -1, /) -> bytes:
        """Read at most ``size`` bytes (all that is left when ``size`` is negative or ``None``)."""
        if self.closed:
            raise ValueError("read of a closed artifact stream")
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        data = self._raw.read(size) or b""
        if type(data) is not bytes:
            data = bytes(data)
        self._take(data)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        chunks = []
        while True:
            data = self.read(CHUNK_SIZE)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def _verify(self) -> None:
        if self._ok and self._read == self._size:
            return
        got = self._hash.hexdigest()
        if self._read != self._size or got != self._expect:
            raise CorruptStoreError(
                f"{self._where} is damaged: read {self._read} bytes hashing to {got[:16]}..., "
                f"expected {self._size} bytes hashing to {self._expect[:16]}..."
            )
        self._ok = True

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._read >= self._size:
                self._verify()
        finally:
            self._hash.stop()
            self._raw.close()
            super().close()


class Readable(Protocol):
    """Anything with a binary ``read(size)``: files, sockets' streams, ``io.BytesIO``, HTTP bodies."""

    def read(self, size: int = -1, /) -> bytes | None:
        """Return at most ``size`` bytes; ``b""`` at the end."""


def iter_chunks(stream: Readable, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield a binary stream's bytes in chunks of at most ``size`` bytes."""
    while True:
        data = stream.read(size)
        if not data:
            return
        yield data


def copy_blob(source: Any, target: Any, sha256: str) -> bool:
    """Copy one blob from a store to another (streamed, verified); return False if it was there.

    Args:
        source: The :class:`~track_backends.store.Store` that holds the blob.
        target: The store to copy it into.
        sha256: The blob's address.

    Raises:
        NotFoundError: ``source`` has no such blob.
        CorruptStoreError: The source's bytes do not hash to ``sha256``.
    """
    if target.stat_blob(sha256) is not None:
        return False
    stat = source.stat_blob(sha256)
    if stat is None:
        from .errors import NotFoundError

        raise NotFoundError(f"no blob {sha256} in {source!r}")
    with VerifiedReader(source.open_blob(sha256), sha256, stat.size, f"blob {sha256} of {source!r}") as reader:
        writer = target.blob_writer()
        with writer:
            for chunk in iter_chunks(reader):
                writer.write(chunk)
    return True
