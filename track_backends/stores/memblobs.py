"""Blobs of the in-memory engine (``ephemeral:``): bytes in a dict of this process."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import IO

from ..blobs import BlobStat, BlobWriter, check_sha
from ..errors import NotFoundError


class _Blob:
    __slots__ = ("data", "created")

    def __init__(self, data: bytes, created: float) -> None:
        self.data = data
        self.created = created


class _MemoryWriter(BlobWriter):
    def __init__(self, owner: MemoryBlobs) -> None:
        super().__init__()
        self._owner = owner
        self._parts: list[bytes] = []

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._parts.append(bytes(data))

    def _commit(self, sha256: str, size: int) -> float:
        with self._owner._blob_lock:
            blob = self._owner._blob_data.get(sha256)
            if blob is None:
                blob = self._owner._blob_data[sha256] = _Blob(b"".join(self._parts), time.time())
            else:  # stored again: young again, so gc's grace period covers the new reference
                blob.created = time.time()
        self._parts = []
        return blob.created

    def _abort(self) -> None:
        self._parts = []


class MemoryBlobs:
    """Blob primitives for :class:`~track_backends.stores.memory.MemoryStore` (a mixin)."""

    _blob_lock = threading.Lock()

    @property
    def _blob_data(self) -> dict[str, _Blob]:
        data: dict[str, _Blob] | None = self.__dict__.get("_blobs")
        if data is None:
            data = self.__dict__.setdefault("_blobs", {})
        return data

    def blob_writer(self) -> BlobWriter:
        """Start an upload; the bytes are kept in this process."""
        return _MemoryWriter(self)

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a blob's bytes (a view of the stored bytes, not a copy)."""
        blob = self._blob_data.get(check_sha(sha256))
        if blob is None:
            raise NotFoundError(f"no blob {sha256} is stored")
        return io.BytesIO(blob.data)

    def stat_blob(self, sha256: str) -> BlobStat | None:
        """Return the blob's address, size and store time, or ``None``."""
        blob = self._blob_data.get(check_sha(sha256))
        return None if blob is None else BlobStat(sha256, len(blob.data), blob.created)

    def delete_blob(self, sha256: str) -> bool:
        """Forget a blob; return whether it existed."""
        with self._blob_lock:
            return self._blob_data.pop(check_sha(sha256), None) is not None

    def list_blobs(self) -> Iterator[BlobStat]:
        """Yield every blob."""
        with self._blob_lock:
            items = list(self._blob_data.items())
        for sha, blob in items:
            yield BlobStat(sha, len(blob.data), blob.created)
