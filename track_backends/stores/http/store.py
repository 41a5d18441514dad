"""``HttpStore``: the Store interface over HTTP(S), as a client of ``track-backends serve``.

Each Store call is one request to the server's allow-listed route of the same name. Connections
are pooled and kept alive (httpx). When the server cannot be reached, a call is retried with
exponential backoff, a bounded number of times, then raises :class:`StoreUnavailableError`.
A request that may have reached the server (the connection broke after it was sent) is retried
only when it cannot change anything (``find``, ``count``, ``fetch_points``, ``now``): a write
then raises :class:`StoreUnavailableError` saying that it may or may not have been applied.
An error the server reports comes back as the same :class:`TrackBackendsError` subclass, with its
message. The lease clock is the server's (:class:`~track_backends.clock.ServerClock`). Blobs
are streamed both ways (see :mod:`.blobs`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from ...clock import ServerClock
from ...errors import QueryError, StoreError, StoreUnavailableError
from ...store import Document, Query, Store, check_collection
from ..points import check_strings
from .blobs import HttpBlobs
from .errors import error_from
from .transport import NOT_SENT as _NOT_SENT
from .transport import describe as _describe
from .transport import looks_like_tls as _looks_like_tls
from .wire import dumps, loads, to_wire

_READS = frozenset({"find", "count", "fetch_points", "now", "health", "open_blob", "stat_blob", "list_blobs"})
_NONE: Any = object()  # the collection of the calls that name none (now, commit)


class HttpStore(HttpBlobs, Store):
    """A store served by ``track-backends serve``.

    Args:
        base_url: ``http(s)://host:port[/prefix]`` (no credentials in it).
        token: The bearer token, or ``None``.
        label: How messages name the server (credentials masked).
        ca: A CA bundle (PEM) to verify the server's certificate with, instead of the system's.
        timeout: Seconds to wait for an answer.
        connect_timeout: Seconds to wait for a connection.
        retries: How many times a call is retried while the server cannot be reached.
        backoff: Seconds before the first retry; doubled each time, at most 2 s.
    """

    scheme = "http"

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        label: str | None = None,
        ca: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retries: int = 6,
        backoff: float = 0.1,
    ) -> None:
        self.scheme = "https" if base_url.startswith("https:") else "http"
        self.label = label or base_url
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        headers = {"content-type": "application/json", "accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            verify=ssl.create_default_context(cafile=ca) if ca else True,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0),
            trust_env=False,
        )
        self._clock = ServerClock(self._server_time)
        self._checked = False
        self._max_blob: int | None = None
        self.closed = False

    # -- transport ----------------------------------------------------------------------------
    def _send(
        self,
        name: str,
        method: str,
        path: str,
        content: bytes | None,
        *,
        stream: bool = False,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request, retrying while the server cannot be reached (see the module docstring).

        With ``stream``, the answer's body is not read yet: the caller reads it and closes it.
        """
        if self.closed:
            raise StoreUnavailableError(f"the store {self.label} is closed")
        delay = self._backoff
        error: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
            try:
                request = self._client.build_request(method, path, content=content, headers=headers)
                return self._client.send(request, stream=stream)
            except _NOT_SENT as e:
                error = e
            except httpx.TransportError as e:
                if name not in _READS:
                    raise StoreUnavailableError(
                        f"{self.label}: the connection broke during {name} ({_describe(e)}); "
                        "the write may or may not have been applied"
                    ) from None
                error = e
            except httpx.HTTPError as e:  # an invalid URL or the like: retrying cannot help
                raise StoreUnavailableError(f"{self.label}: {name} failed: {_describe(e)}") from None
        hint = " (is it an https:// server?)" if self.scheme == "http" and _looks_like_tls(error) else ""
        raise StoreUnavailableError(
            f"{self.label} cannot be reached after {self._retries + 1} attempts: {_describe(error)}{hint}"
        ) from None

    def _check_server(self) -> None:
        """Once, before the first call: is a track-backends server answering (over the right protocol)?"""
        try:
            resp = self._send("health", "GET", "/health", None)
        except StoreUnavailableError as e:
            raise StoreUnavailableError(str(e)) from None
        try:
            health = loads(resp.content)
            ok = resp.status_code == 200 and health.get("status") == "ok"
        except (QueryError, AttributeError):
            ok = False
        if not ok:
            raise StoreError(
                f"{self.label} does not answer as a track-backends server (HTTP {resp.status_code} on /health)"
            )
        limit = health.get("max_blob")
        self._max_blob = limit if type(limit) is int else None
        self._checked = True

    def _call(self, name: str, collection: Any, body: dict[str, Any] | None, method: str = "POST") -> Any:
        if not self._checked:
            self._check_server()
        path = f"/v1/{check_collection(collection)}/{name}" if collection is not _NONE else f"/v1/{name}"
        return self._json(name, method, path, body)

    def _json(self, name: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One request with a JSON answer: the decoded answer, or the error the server reported."""
        if not self._checked:
            self._check_server()
        resp = self._send(name, method, path, dumps(body) if body is not None else None)
        if resp.status_code == 200:
            try:
                return loads(resp.content)
            except QueryError as e:
                raise StoreError(f"{self.label}: unreadable answer to {name}: {e}") from None
        raise self._error(name, resp)

    def _error(self, name: str, resp: httpx.Response) -> Exception:
        try:
            body = loads(resp.content)
            if isinstance(body, dict) and "error" in body:
                return error_from(body.get("error"), body.get("message"))
        except QueryError:
            pass
        if resp.status_code in (502, 503, 504):
            return StoreUnavailableError(f"{self.label}: HTTP {resp.status_code} on {name}")
        return StoreError(f"{self.label}: HTTP {resp.status_code} on {name} (not a track-backends server?)")

    def _server_time(self) -> float:
        return float(self._call("now", _NONE, None, method="GET")["now"])

    # -- the Store primitives -----------------------------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document (see :meth:`Store.insert`).

        Raises:
            DuplicateKeyError: The uid (or a unique key) is taken.
            EncodingError: The document cannot be stored.
            StoreUnavailableError: The server cannot be reached.
        """
        self._call("insert", collection, {"doc": to_wire(doc)})

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert documents, all or none (see :meth:`Store.insert_many`).

        Raises:
            DuplicateKeyError: One of them collides.
            EncodingError: One cannot be stored.
            StoreUnavailableError: The server cannot be reached.
        """
        return int(self._call("insert_many", collection, {"docs": to_wire(list(docs))})["inserted"])

    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Documents matching ``query`` (see :meth:`Store.find`).

        Raises:
            QueryError: The query, sort, limit or projection is malformed.
            StoreUnavailableError: The server cannot be reached.
        """
        body = {"query": query, "sort": sort, "limit": limit, "projection": projection}
        docs: list[Document] = self._call("find", collection, to_wire(body, QueryError))["docs"]
        return docs

    def count(self, collection: str, query: Query = None) -> int:
        """How many documents match (see :meth:`Store.count`).

        Raises:
            QueryError: The query is malformed.
            StoreUnavailableError: The server cannot be reached.
        """
        return int(self._call("count", collection, {"query": to_wire(query, QueryError)})["count"])

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Apply an update (see :meth:`Store.update`).

        Raises:
            QueryError: The query or update is malformed.
            EncodingError: A value cannot be stored.
            StoreUnavailableError: The server cannot be reached (a write may then be applied or not).
        """
        body = {"query": to_wire(query, QueryError), "update": to_wire(update), "many": many, "upsert": upsert}
        return int(self._call("update", collection, body)["matched"])

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match and return it (see :meth:`Store.find_one_and_update`).

        Raises:
            QueryError: The query, update or sort is malformed.
            EncodingError: A value cannot be stored.
            StoreUnavailableError: The server cannot be reached.
        """
        body = {"query": to_wire(query, QueryError), "update": to_wire(update), "sort": to_wire(sort, QueryError)}
        doc: Document | None = self._call("find_one_and_update", collection, body)["doc"]
        return doc

    def delete(self, collection: str, query: Query) -> int:
        """Delete every match (see :meth:`Store.delete`); needs an ``admin`` token.

        Raises:
            QueryError: The query is malformed.
            PermissionDeniedError: The token's role is not ``admin``.
            StoreUnavailableError: The server cannot be reached.
        """
        return int(self._call("delete", collection, {"query": to_wire(query, QueryError)})["deleted"])

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create an index (see :meth:`Store.ensure_index`); needs an ``admin`` token.

        Raises:
            DuplicateKeyError: ``unique`` and stored documents collide.
            QueryError: The keys are malformed.
            StoreUnavailableError: The server cannot be reached.
        """
        self._call("ensure_index", collection, {"keys": to_wire(keys, QueryError), "unique": unique})

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
        """Append metric points, after ``update`` in the same atomic step (see :meth:`Store.append_points`).

        Raises:
            QueryError: A point, the query or the update is malformed.
            EncodingError: A name, step or value cannot be stored.
            StoreUnavailableError: The server cannot be reached.
        """
        if isinstance(points, (str, bytes)) or not isinstance(points, Iterable):
            raise QueryError(f"points must be a sequence of (name, step, value), got {points!r:.80}")
        body = {
            "uid": uid,
            "points": to_wire(list(points)),
            "attempt": attempt,
            "query": to_wire(query, QueryError),
            "update": to_wire(update),
        }
        return bool(self._call("append_points", collection, body)["appended"])

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
        """Read the series of many documents (see :meth:`Store.fetch_points`).

        Raises:
            QueryError: ``start``, ``stop`` or ``last`` is malformed.
            StoreUnavailableError: The server cannot be reached.
        """
        body = {
            "uids": check_strings(uids, "uid"),
            "names": check_strings(names, "metric name") if names is not None else None,
            "start": start,
            "stop": stop,
            "last": last,
            "attempts": attempts,
        }
        got = self._call("fetch_points", collection, to_wire(body, QueryError))["points"]
        return {uid: {n: [(s, v) for s, v in pts] for n, pts in series.items()} for uid, series in got.items()}

    def delete_points(self, collection: str, uids: Sequence[str]) -> int:
        """Delete every point of the given documents; needs an ``admin`` token.

        Raises:
            QueryError: A uid is not a string.
            StoreUnavailableError: The server cannot be reached.
        """
        body = {"uids": to_wire(check_strings(uids, "uid"), QueryError)}
        return int(self._call("delete_points", collection, body)["deleted"])

    def now(self) -> float:
        """The server's clock, measured as an offset to the local one and refreshed every 30 s.

        Raises:
            StoreUnavailableError: The server cannot be reached.
        """
        return self._clock.now()

    def commit(self) -> None:
        """Ask the server's store to make every returned write durable.

        Raises:
            StoreUnavailableError: The server cannot be reached.
        """
        self._call("commit", _NONE, {})

    def close(self) -> None:
        """Close the connections (the server and its store stay up). Closing twice is harmless."""
        if not self.closed:
            self.closed = True
            self._client.close()

    def __repr__(self) -> str:
        return f"<HttpStore {self.label}>"
