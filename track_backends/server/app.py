"""The ASGI application: the allow-listed routes over one store, with tokens, limits and a log line each.

A request goes through, in order: the router (an unknown path is a 404, a wrong method a 405),
the token check (401) and the route's role (403), the body size limit (413), JSON decoding and
the route's schema (400), and only then the store, called in a worker thread. The blob routes
(:mod:`.blobs`) stream their bodies instead, under a limit of their own (``max_blob``). Every failure is a
JSON body ``{"error": "<TrackBackendsError subclass>", "message": ...}``. One log line per request
records the route, the caller's token name and role, the status and the duration: never a body,
a header or a token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import QueryError, StoreError, StoreUnavailableError, TrackBackendsError
from ..store import Store, check_collection
from ..stores.http.errors import PermissionDeniedError, RequestTooLargeError, status_of
from ..stores.http.wire import dumps, loads, to_wire
from .auth import OPEN, Authenticator, Identity
from .blobs import DEFAULT_MAX_BLOB, DRAIN_LIMIT, HANDLERS, UploadRefused, check_upload, drain
from .openapi import openapi_document
from .routes import BLOB_ROUTES, ROUTES, BlobRoute, Route, allowed
from .validate import SchemaError, validate

DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""Largest request body accepted, in bytes (``--max-body``)."""
_DRAIN_LIMIT = DRAIN_LIMIT  # past this, an oversized body is not read to its end
_CLOSE = {"connection": "close"}
JSON = "application/json"
access_log = logging.getLogger("track_backends.server.access")
log = logging.getLogger("track_backends.server")


class ServerState:
    """What the routes share: the store (opened at startup), the authenticator and the limits."""

    def __init__(
        self, open_store: Callable[[], Store], auth: Authenticator, max_body: int, max_blob: int = DEFAULT_MAX_BLOB
    ) -> None:
        self.open_store = open_store
        self.auth = auth
        self.max_body = max_body
        self.max_blob = max_blob
        self.store: Store | None = None


def error_response(error: BaseException, status: int | None = None, headers: dict[str, str] | None = None) -> Response:
    """A JSON error answer for ``error`` (its class name and message; never a traceback)."""
    if isinstance(error, TrackBackendsError):
        name, message = type(error).__name__, str(error)
    else:
        name, message = "StoreError", "internal server error"
    body = json.dumps({"error": name, "message": message}).encode()
    return Response(body, status_code=status or status_of(error), media_type=JSON, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused past ``limit`` bytes (read to its end up to a cap, so the client sees the 413)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > _DRAIN_LIMIT):
        raise RequestTooLargeError(f"the body is over the server's limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > _DRAIN_LIMIT:
            break
    if size > limit:
        raise RequestTooLargeError(f"the body ({size}+ bytes) is over the server's limit of {limit} bytes")
    return b"".join(chunks)


def _execute(route: Route, store: Store, collection: str, raw: bytes | None) -> bytes:
    """Decode, validate, call the store and encode the answer (runs in a worker thread)."""
    body: dict[str, Any] = {}
    if route.body is not None:
        value = loads(raw) if raw else ({} if route.name == "commit" else loads(b""))
        try:
            validate(route.body, value)
        except SchemaError as e:
            field = e.path[0] if e.path else None
            raise route.errors.get(field, QueryError)(f"{route.name}: {e}") from None  # type: ignore[arg-type]
        body = value
    return dumps(to_wire(route.call(store, collection, body), StoreError))


async def _authenticate(state: ServerState, request: Request) -> Identity:
    if not state.auth.enabled:
        return OPEN
    return await run_in_threadpool(state.auth.authenticate, request.headers.get("authorization"))


def _endpoint(route: Route, state: ServerState) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        info = request.scope.setdefault("tb_log", {})
        info["route"] = route.path
        try:
            who = await _authenticate(state, request)
            info["client"], info["role"] = who.name, who.role
            if not allowed(who.role, route):
                raise PermissionDeniedError(f"role '{who.role}' may not {route.name}; it needs '{route.role}' or above")
            collection = check_collection(request.path_params["collection"]) if "{collection}" in route.path else ""
            info["collection"] = collection
            raw = None
            if route.body is not None:
                media = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if media != JSON:
                    raise QueryError(f"send the body as {JSON} (got {media[:60] or 'no content type'})")
                raw = await _read_body(request, state.max_body)
            assert state.store is not None
            out = await run_in_threadpool(_execute, route, state.store, collection, raw)
            return Response(out, media_type=JSON)
        except TrackBackendsError as e:
            return error_response(e)
        except Exception as e:  # noqa: BLE001 - a bug or a driver error: a JSON 500, logged by type only
            log.error(json.dumps({"event": "internal_error", "route": route.path, "type": type(e).__name__}))
            return error_response(e, 500)

    endpoint.__name__ = route.name
    return endpoint


async def _refuse_upload(request: Request, error: TrackBackendsError) -> Response:
    """Answer a refused upload once its body is drained (or close the connection past the drain limit)."""
    ended = await drain(request)
    return error_response(error, headers=None if ended else _CLOSE)


def _blob_endpoint(route: BlobRoute, state: ServerState) -> Callable[[Request], Any]:
    handler = HANDLERS[route.name]
    upload = route.request is not None

    async def endpoint(request: Request) -> Response:
        info = request.scope.setdefault("tb_log", {})
        info["route"] = route.path
        try:
            try:
                who = await _authenticate(state, request)
                info["client"], info["role"] = who.name, who.role
                if not allowed(who.role, route):
                    raise PermissionDeniedError(
                        f"role '{who.role}' may not {route.name}; it needs '{route.role}' or above"
                    )
                if upload:
                    check_upload(request, state.max_blob)
            except TrackBackendsError as e:
                if upload:
                    return await _refuse_upload(request, e)
                raise
            assert state.store is not None
            return await handler(request, state.store, state.max_blob)
        except UploadRefused as e:
            return await _refuse_upload(request, e.error)
        except ClientDisconnect:  # the client went away mid-upload: the writer was aborted
            return error_response(StoreUnavailableError("the upload was cut short; nothing was stored"), 499)
        except TrackBackendsError as e:  # an upload's body may be unread: close rather than read it
            return error_response(e, headers=_CLOSE if upload else None)
        except Exception as e:  # noqa: BLE001 - a bug or a driver error: a JSON 500, logged by type only
            log.error(json.dumps({"event": "internal_error", "route": route.path, "type": type(e).__name__}))
            return error_response(e, 500, headers=_CLOSE if upload else None)

    endpoint.__name__ = route.name
    return endpoint


async def _health(request: Request) -> Response:
    state: ServerState = request.app.state.tb
    body = {
        "status": "ok",
        "version": __version__,
        "auth": state.auth.enabled,
        "max_body": state.max_body,
        "max_blob": state.max_blob,
    }
    return Response(json.dumps(body), media_type=JSON)


async def _openapi(request: Request) -> Response:
    state: ServerState = request.app.state.tb
    try:
        who = await _authenticate(state, request)
    except TrackBackendsError as e:
        return error_response(e)
    info = request.scope.setdefault("tb_log", {})
    info["client"], info["role"] = who.name, who.role
    return Response(json.dumps(openapi_document()), media_type=JSON)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        body = {"error": "NotFoundError", "message": f"no such route: {request.method} (see /openapi.json)"}
    elif status == 405:
        body = {"error": "QueryError", "message": f"method {request.method} is not allowed on this route"}
    else:
        body = {"error": "StoreError", "message": f"HTTP {status}"}
    headers = getattr(exc, "headers", None) or {}
    return Response(json.dumps(body), status_code=status, media_type=JSON, headers=headers)


class AccessLog:
    """ASGI middleware writing one JSON line per request: method, route, caller, status, duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info: dict[str, Any] = scope.setdefault("tb_log", {})
        status = [500]

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            line = {
                "event": "request",
                "method": scope.get("method", "-"),
                "route": info.get("route", "/health" if scope.get("path") == "/health" else "-"),
                "collection": info.get("collection", "-") or "-",
                "client": info.get("client", "-"),
                "role": info.get("role", "-"),
                "status": status[0],
                "ms": round((time.perf_counter() - started) * 1000, 2),
            }
            access_log.info(json.dumps(line))


def create_app(
    open_store: Callable[[], Store],
    *,
    tokens: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_blob: int = DEFAULT_MAX_BLOB,
) -> Any:
    """Build the server's ASGI application.

    Args:
        open_store: Opens the store at startup (in the serving process); it is closed at shutdown.
        tokens: The token file, or ``None`` to serve without tokens (the CLI allows it on
            loopback only).
        max_body: Largest request body of the JSON routes, in bytes.
        max_blob: Largest blob upload, in bytes (streamed: it is never held whole).

    Returns:
        The ASGI application.

    Raises:
        TokenFileError: The token file cannot be read.
    """
    state = ServerState(open_store, Authenticator(tokens), max_body, max_blob)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state.store = await run_in_threadpool(state.open_store)
        log.info(json.dumps({"event": "store_open", "scheme": state.store.scheme or "-"}))
        try:
            yield
        finally:
            await run_in_threadpool(state.store.close)
            log.info(json.dumps({"event": "store_closed"}))

    routes = [HttpRoute("/health", _health, methods=["GET"]), HttpRoute("/openapi.json", _openapi, methods=["GET"])]
    routes += [HttpRoute(r.path, _endpoint(r, state), methods=[r.method]) for r in ROUTES]
    routes += [HttpRoute(r.path, _blob_endpoint(r, state), methods=[r.method]) for r in BLOB_ROUTES]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.tb = state
    app.add_middleware(AccessLog)
    return app
