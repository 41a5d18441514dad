"""Blobs over HTTP: uploads streamed from a background thread, reads streamed from the answer.

An upload (:meth:`HttpBlobs.blob_writer`) is one ``POST /v1/blobs`` whose body is what the caller
writes: a thread sends the request and takes the body's chunks from a small bounded queue that
the caller's writes fill, so a few chunks of :data:`~track_backends.blobs.CHUNK_SIZE` bytes at most
are ever held, whatever the blob's size. The server commits the blob only once the body is
complete: ``commit()`` ends the body and returns the server's :class:`~track_backends.blobs.BlobStat`
(checked against the sha256 and size counted here), while ``abort()``, a failure, or the caller's
process dying cuts the body short, so that the server aborts its writer and nothing becomes
visible. An upload is retried only while no connection could be made (nothing was sent).

Reads are retried like the other reads. :meth:`HttpBlobs.open_blob` returns a stream that reads the
answer lazily; when the connection breaks half-way it resumes at the byte it stopped at
(``Range: bytes=N-``), as many times as the store's ``retries``. :meth:`HttpBlobs.list_blobs`
streams the server's listing, one JSON line per blob, ended by an end line.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import httpx

from ...blobs import CHUNK_SIZE, BlobStat, BlobWriter, check_sha
from ...errors import CorruptStoreError, QueryError, StoreError, StoreUnavailableError, TrackBackendsError
from .errors import RequestTooLargeError, error_from
from .transport import NOT_SENT, describe
from .wire import loads, to_wire

BINARY = "application/octet-stream"
_QUEUED = 4  # chunks waiting to be sent, at most
_END: Any = object()
_CANCEL: Any = object()


class _Cancelled(Exception):
    """Raised inside the request body to cut it short (the connection is then closed)."""


class _Upload:
    """The request of one upload: a thread sends it, taking the body's chunks from a queue.

    It holds no reference to its writer, so a writer dropped without commit or abort is collected
    and its finalizer cancels the request.
    """

    def __init__(self, client: httpx.Client, retries: int, backoff: float) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=_QUEUED)
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.taken = False
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        self._client = client
        self._retries = retries
        self._backoff = backoff

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="track-backends-upload", daemon=True)
            self.thread.start()

    def cancel(self) -> None:
        self.cancelled.set()
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(_CANCEL)

    def _body(self) -> Iterator[bytes]:
        while True:
            try:
                item = self.queue.get(timeout=1.0)
            except queue.Empty:
                item = None
            if self.cancelled.is_set() or item is _CANCEL:
                raise _Cancelled
            if item is _END:
                return
            if item is not None:
                self.taken = True
                yield item

    def _run(self) -> None:
        delay = self._backoff
        try:
            for attempt in range(self._retries + 1):
                if attempt:
                    if self.cancelled.wait(delay):
                        raise _Cancelled
                    delay = min(delay * 2, 2.0)
                try:
                    self.response = self._client.post(
                        "/v1/blobs", content=self._body(), headers={"content-type": BINARY}
                    )
                    return
                except NOT_SENT as e:
                    if self.taken:
                        raise
                    self.error = e
        except BaseException as e:  # noqa: BLE001 - reported to the writer, which raises it
            self.error = e
        finally:
            self.done.set()


class _HttpWriter(BlobWriter):
    """An upload in progress: written chunks go to the server as they are written."""

    def __init__(self, store: HttpBlobs) -> None:
        super().__init__()
        self._label = store.label
        self._store_error = store._error
        self._limit = store._max_blob
        self._upload = _Upload(store._client, store._retries, store._backoff)
        self._buffer = bytearray()
        self._finalizer = weakref.finalize(self, self._upload.cancel)

    def _failure(self) -> Exception:
        up = self._upload
        if up.response is not None:
            if up.response.status_code == 200:
                return StoreError(f"{self._label} answered before the upload ended")
            return self._store_error("blob_writer", up.response)
        e = up.error
        if isinstance(e, TrackBackendsError):
            return e
        if isinstance(e, NOT_SENT):
            return StoreUnavailableError(f"{self._label} cannot be reached for an upload: {describe(e)}")
        if isinstance(e, httpx.TransportError):
            return StoreUnavailableError(
                f"{self._label}: the connection broke during an upload ({describe(e)}); "
                "the blob was not stored, unless its whole body had been sent"
            )
        if isinstance(e, _Cancelled):
            return StoreError("the upload was aborted")
        return StoreError(f"{self._label}: the upload failed ({type(e).__name__})")

    def _put(self, item: Any) -> None:
        up = self._upload
        up.start()
        while True:
            if up.done.is_set():
                raise self._failure()
            try:
                up.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if self._limit is not None and self.size > self._limit:
            raise RequestTooLargeError(f"the blob is over the server's limit of {self._limit} bytes")
        view = memoryview(data).cast("B")
        while len(view):
            room = CHUNK_SIZE - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) >= CHUNK_SIZE:
                self._put(bytes(self._buffer))
                self._buffer.clear()

    def _commit(self, sha256: str, size: int) -> float:
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        self._put(_END)
        self._upload.done.wait()
        self._finalizer.detach()
        resp = self._upload.response
        if resp is None or resp.status_code != 200:
            raise self._failure()
        try:
            got = loads(resp.content)
            stat = BlobStat(got["sha256"], got["size"], float(got["created"]))
        except (QueryError, KeyError, TypeError, ValueError):
            raise StoreError(f"{self._label}: unreadable answer to an upload") from None
        if (stat.sha256, stat.size) != (sha256, size):
            raise CorruptStoreError(
                f"{self._label} stored {stat.size} bytes hashing to {str(stat.sha256)[:16]}... for an upload of "
                f"{size} bytes hashing to {sha256[:16]}..."
            )
        return stat.created

    def _abort(self) -> None:
        self._buffer.clear()
        self._finalizer.detach()
        self._upload.cancel()
        if self._upload.thread is not None:
            self._upload.thread.join(timeout=10.0)


class _BlobStream(io.RawIOBase):
    """A blob's bytes, read lazily from the server's answer (resumed when the connection breaks)."""

    def __init__(self, store: HttpBlobs, sha256: str, resp: httpx.Response) -> None:
        super().__init__()
        self._store = store
        self._path = f"/v1/blobs/{sha256}"
        self._resp = resp
        self._chunks = resp.iter_raw(CHUNK_SIZE)
        self._left = memoryview(b"")
        self._pos = 0
        self._resumes = store._retries

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes:
        delay = self._store._backoff
        while True:
            try:
                return next(self._chunks, b"")
            except httpx.TransportError as e:
                self._resp.close()
                if self._resumes <= 0:
                    raise StoreUnavailableError(
                        f"{self._store.label}: the connection broke while reading a blob ({describe(e)})"
                    ) from None
            self._resumes -= 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            self._resp = self._store._open_read("open_blob", self._path, self._pos)
            self._chunks = self._resp.iter_raw(CHUNK_SIZE)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        if not len(self._left):
            self._left = memoryview(self._next())
        n = min(len(view), len(self._left))
        view[:n] = self._left[:n]
        self._left = self._left[n:]
        self._pos += n
        return n

    def readall(self) -> bytes:
        parts = [bytes(self._left)]
        self._pos += len(self._left)
        self._left = memoryview(b"")
        while chunk := self._next():
            parts.append(chunk)
            self._pos += len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
            super().close()


class HttpBlobs:
    """The blob primitives of :class:`~track_backends.stores.http.HttpStore` (a mixin)."""

    if TYPE_CHECKING:
        label: str
        _client: httpx.Client
        _retries: int
        _backoff: float
        _checked: bool
        _max_blob: int | None

        def _check_server(self) -> None: ...

        def _send(
            self,
            name: str,
            method: str,
            path: str,
            content: bytes | None,
            *,
            stream: bool = False,
            headers: dict[str, str] | None = None,
        ) -> httpx.Response: ...

        def _json(self, name: str, method: str, path: str, body: dict[str, Any] | None) -> Any: ...

        def _error(self, name: str, resp: httpx.Response) -> Exception: ...

    def _open_read(self, name: str, path: str, offset: int = 0) -> httpx.Response:
        """A streamed GET (from byte ``offset``); the caller reads and closes the answer."""
        if not self._checked:
            self._check_server()
        headers = {"accept": "*/*"}
        if offset:
            headers["range"] = f"bytes={offset}-"
        resp = self._send(name, "GET", path, None, stream=True, headers=headers)
        if resp.status_code == (206 if offset else 200):
            return resp
        try:
            resp.read()
        except httpx.HTTPError:
            pass
        finally:
            resp.close()
        if resp.status_code == 200:
            raise StoreError(f"{self.label} cannot resume a blob read (it ignored the range)")
        raise self._error(name, resp)

    def blob_writer(self) -> BlobWriter:
        """Start an upload: its bytes are streamed to the server as they are written.

        Raises:
            StoreUnavailableError: The server cannot be reached.
        """
        if not self._checked:
            self._check_server()
        return _HttpWriter(self)

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a blob's bytes, read from the server as the stream is read (close it when done).

        Raises:
            NotFoundError: No blob has that address.
            QueryError: ``sha256`` is not 64 lower-case hex digits.
            StoreUnavailableError: The server cannot be reached.
        """
        sha = check_sha(sha256)
        resp = self._open_read("open_blob", f"/v1/blobs/{sha}")
        return io.BufferedReader(_BlobStream(self, sha, resp), CHUNK_SIZE)

    def stat_blob(self, sha256: str) -> BlobStat | None:
        """Return a blob's address, size and store time (the server's clock), or ``None``.

        Raises:
            QueryError: ``sha256`` is not 64 lower-case hex digits.
            StoreUnavailableError: The server cannot be reached.
        """
        got = self._json("stat_blob", "GET", f"/v1/blobs/{check_sha(sha256)}/stat", None)["blob"]
        return None if got is None else BlobStat(got["sha256"], int(got["size"]), float(got["created"]))

    def delete_blob(self, sha256: str) -> bool:
        """Delete a blob whatever references it; needs an ``admin`` token.

        Raises:
            PermissionDeniedError: The token's role is not ``admin``.
            StoreUnavailableError: The server cannot be reached.
        """
        return bool(self._json("delete_blob", "DELETE", f"/v1/blobs/{check_sha(sha256)}", None)["deleted"])

    def list_blobs(self) -> Iterator[BlobStat]:
        """Yield every blob, streamed from the server's listing.

        Raises:
            StoreUnavailableError: The server cannot be reached, or the listing was cut short.
        """
        resp = self._open_read("list_blobs", "/v1/blobs")
        try:
            for line in resp.iter_lines():
                if not line.strip():
                    continue
                item = loads(line)
                if not isinstance(item, dict):
                    raise StoreError(f"{self.label}: unreadable blob listing")
                if "sha256" in item:
                    yield BlobStat(item["sha256"], int(item["size"]), float(item["created"]))
                elif item.get("end") is True:
                    return
                else:
                    raise error_from(item.get("error"), item.get("message"))
            raise StoreUnavailableError(f"{self.label}: the blob listing was cut short")
        except httpx.TransportError as e:
            broke = f"{self.label}: the connection broke during list_blobs ({describe(e)})"
            raise StoreUnavailableError(broke) from None
        finally:
            resp.close()

    def clean_uploads(self, older_than: float) -> int:
        """Ask the server's store to remove leftovers of dead uploads; needs an ``admin`` token.

        Raises:
            QueryError: ``older_than`` is not a number.
            StoreUnavailableError: The server cannot be reached.
        """
        body = {"older_than": to_wire(older_than, QueryError)}
        return int(self._json("clean_uploads", "POST", "/v1/blobs/clean_uploads", body)["removed"])
