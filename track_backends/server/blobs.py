"""The blob routes' handlers: uploads streamed into the store's blob writer, reads streamed out of it.

An upload (``POST /v1/blobs``) reads the request body chunk by chunk into the store's
:class:`~track_backends.blobs.BlobWriter` and commits it only once the body is complete: a client
that goes away half-way (killed, its connection dropped) or a body over the server's blob limit
aborts the writer, so nothing becomes visible. Reads (``GET /v1/blobs/{sha256}``) stream the
store's blob in chunks of :data:`~track_backends.blobs.CHUNK_SIZE` bytes with its length declared,
so that a client notices a cut answer; ``Range: bytes=N-`` resumes a read at byte N. The listing
streams one JSON line per blob, then an end line, so that a cut listing is noticed too. Store
calls run in worker threads (an upload's calls in order, on one thread of its own, so that a
writer tied to its thread works); the stream a read opened is closed when the answer ends,
however it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import IO, Any

import anyio
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from ..blobs import CHUNK_SIZE, BlobStat, check_sha
from ..errors import NotFoundError, QueryError, TrackBackendsError
from ..store import Store
from ..stores.http.errors import RequestTooLargeError
from ..stores.http.wire import dumps
from .routes import BINARY, JSON_MEDIA, NDJSON

DEFAULT_MAX_BLOB = 1 << 40
"""Largest blob upload accepted, in bytes (1 TiB: uploads are streamed, never held whole)."""
DRAIN_LIMIT = 64 * 1024 * 1024
"""Past this many bytes, a refused body is not read to its end (the connection is closed instead)."""
_LIST_BATCH = 1000
_RANGE_RE = re.compile(r"^bytes=(\d{1,19})-$")
log = logging.getLogger("track_backends.server")

Handler = Callable[[Request, Store, int], Awaitable[Response]]


def _stat(stat: BlobStat) -> dict[str, Any]:
    return {"sha256": stat.sha256, "size": stat.size, "created": stat.created}


def _json(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type=JSON_MEDIA)


def _sha(request: Request) -> str:
    return check_sha(request.path_params["sha256"])


async def drain(request: Request) -> bool:
    """Read a refused upload's body to its end, up to :data:`DRAIN_LIMIT`; return whether it ended.

    A client sends its whole body before it reads the answer: answering before the body is read
    and closing the connection could lose the answer. Past the limit, the connection is closed.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > DRAIN_LIMIT):
        return False
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN_LIMIT:
                return False
    except ClientDisconnect:
        return False
    return True


def check_upload(request: Request, max_blob: int) -> None:
    """Refuse an upload by its headers: the media type, and a declared length over the limit.

    Raises:
        QueryError: The body is not sent as ``application/octet-stream``.
        RequestTooLargeError: The declared length is over ``max_blob``.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != BINARY:
        raise QueryError(f"send a blob as {BINARY} (got {media[:60] or 'no content type'})")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_blob):
        raise RequestTooLargeError(f"the blob is over the server's limit of {max_blob} bytes")


class UploadRefused(Exception):
    """The upload was refused before its body was read (the body is drained before the answer)."""

    def __init__(self, error: TrackBackendsError) -> None:
        super().__init__(str(error))
        self.error = error


class _Pinned:
    """Runs one upload's store calls in order, on one thread of its own."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="track-backends-upload")

    async def __call__(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self._pool.submit(func, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=False)


async def blob_writer(request: Request, store: Store, max_blob: int) -> Response:
    """``POST /v1/blobs``: stream the body into a blob writer; commit once the body is complete."""
    check_upload(request, max_blob)
    pinned = _Pinned()
    try:
        return await _upload(request, store, max_blob, pinned)
    finally:
        pinned.close()


async def _upload(request: Request, store: Store, max_blob: int, run: _Pinned) -> Response:
    try:
        writer = await run(store.blob_writer)
    except TrackBackendsError as e:
        raise UploadRefused(e) from None
    try:
        pending: list[bytes] = []
        held = size = 0
        async for chunk in request.stream():  # raises ClientDisconnect when the body is cut short
            if not chunk:
                continue
            size += len(chunk)
            if size > max_blob:
                raise RequestTooLargeError(f"the blob is over the server's limit of {max_blob} bytes")
            pending.append(chunk)
            held += len(chunk)
            if held >= CHUNK_SIZE:
                data, pending, held = b"".join(pending), [], 0
                await run(writer.write, data)
        if pending:
            await run(writer.write, b"".join(pending))
        stat = await run(writer.commit)
    except BaseException:
        with anyio.CancelScope(shield=True):  # after any call still running: the thread takes them in order
            await run(writer.abort)
        raise
    return _json(_stat(stat))


async def _chunks(stream: IO[bytes], size: int) -> AsyncIterator[bytes]:
    """At most ``size`` bytes of ``stream``, in chunks (a shorter stream ends the answer short)."""
    left = size
    while left > 0:
        data = await run_in_threadpool(stream.read, min(CHUNK_SIZE, left))
        if not data:
            log.error(json.dumps({"event": "blob_short", "missing": left}))
            return
        left -= len(data)
        yield data


def _skip(stream: IO[bytes], offset: int) -> None:
    """Move a blob stream to ``offset`` (seek when it can, else read and drop)."""
    if offset <= 0:
        return
    try:
        if stream.seekable():
            stream.seek(offset)
            return
    except (OSError, ValueError):
        pass
    left = offset
    while left > 0:
        data = stream.read(min(CHUNK_SIZE, left))
        if not data:
            return
        left -= len(data)


def _open_from(store: Store, sha: str, offset: int) -> IO[bytes]:
    stream = store.open_blob(sha)
    try:
        _skip(stream, offset)
    except BaseException:
        stream.close()
        raise
    return stream


async def open_blob(request: Request, store: Store, max_blob: int) -> Response:
    """``GET /v1/blobs/{sha256}``: the blob's bytes, streamed (from byte N with ``Range: bytes=N-``)."""
    sha = _sha(request)
    stat = await run_in_threadpool(store.stat_blob, sha)
    if stat is None:
        raise NotFoundError(f"no blob {sha} is stored")
    offset, status = 0, 200
    wanted = request.headers.get("range")
    if wanted is not None and stat.size > 0:
        match = _RANGE_RE.match(wanted.strip())
        if match is None or not int(match.group(1)) < stat.size:
            raise QueryError(f"a blob read takes 'Range: bytes=N-' with N below the size ({stat.size})")
        offset, status = int(match.group(1)), 206
    stream = await run_in_threadpool(_open_from, store, sha, offset)
    headers = {"content-length": str(stat.size - offset), "etag": f'"{sha}"', "accept-ranges": "bytes"}
    if status == 206:
        headers["content-range"] = f"bytes {offset}-{stat.size - 1}/{stat.size}"
    return StreamingResponse(
        _chunks(stream, stat.size - offset),
        status_code=status,
        media_type=BINARY,
        headers=headers,
        background=BackgroundTask(stream.close),
    )


async def stat_blob(request: Request, store: Store, max_blob: int) -> Response:
    """``GET /v1/blobs/{sha256}/stat``: ``{"blob": {sha256, size, created} | null}``."""
    stat = await run_in_threadpool(store.stat_blob, _sha(request))
    return _json({"blob": None if stat is None else _stat(stat)})


async def delete_blob(request: Request, store: Store, max_blob: int) -> Response:
    """``DELETE /v1/blobs/{sha256}``: ``{"deleted": bool}``."""
    return _json({"deleted": bool(await run_in_threadpool(store.delete_blob, _sha(request)))})


def _close(blobs: Iterator[BlobStat]) -> None:
    close = getattr(blobs, "close", None)
    if close is not None:
        close()


async def _lines(blobs: Iterator[BlobStat]) -> AsyncIterator[bytes]:
    count = 0
    while True:
        try:
            batch = await run_in_threadpool(lambda: list(islice(blobs, _LIST_BATCH)))
        except TrackBackendsError as e:
            yield dumps({"error": type(e).__name__, "message": str(e)}) + b"\n"
            return
        except Exception as e:  # noqa: BLE001 - a driver error: reported as a line, logged by type only
            log.error(json.dumps({"event": "internal_error", "route": "/v1/blobs", "type": type(e).__name__}))
            yield dumps({"error": "StoreError", "message": "internal server error"}) + b"\n"
            return
        if not batch:
            yield dumps({"end": True, "count": count}) + b"\n"
            return
        count += len(batch)
        yield b"".join(dumps(_stat(s)) + b"\n" for s in batch)


async def list_blobs(request: Request, store: Store, max_blob: int) -> Response:
    """``GET /v1/blobs``: one JSON line per blob, then ``{"end": true, "count": n}``."""
    blobs = await run_in_threadpool(store.list_blobs)
    return StreamingResponse(_lines(blobs), media_type=NDJSON, background=BackgroundTask(_close, blobs))


HANDLERS: dict[str, Handler] = {
    "blob_writer": blob_writer,
    "open_blob": open_blob,
    "stat_blob": stat_blob,
    "delete_blob": delete_blob,
    "list_blobs": list_blobs,
}
"""The handler of each :data:`~.routes.BLOB_ROUTES` entry, by name."""
