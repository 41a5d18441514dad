"""The dashboard's web application: GET routes over one open store, built on Starlette.

Importing this module imports Starlette; :mod:`track_backends.ui` imports it only when a
dashboard is created, so ``import track_backends`` never does.

Routes (all ``GET``; any other method answers 405):

* ``/``: the page; ``/static/...``: its script, style and the vendored uPlot.
* ``/api/config``: the polling interval.
* ``/api/overview``: projects, groups and trial counts by status.
* ``/api/trials?q=&sort=&dir=&page=&size=``: one page of the trials table.
* ``/api/trial/{uid}?max_points=``: one trial, its curves and its artifacts.
* ``/api/artifact/{uid}?name=``: an artifact's content, streamed and verified (a download;
  a damaged artifact ends the response early, so the browser reports a failed download).
* ``/api/group/{gid}``: a group, its counts and the scatter's axes.
* ``/api/scatter?q=&x=&y=``: points for the scatter.

Errors answer JSON ``{"error": ..., "message": ...}``: 400 for a ``QueryError`` (``"error":
"QueryError"``, whatever its subclass) or another bad argument, 404 for an unknown trial, 503 when
the store fails.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..blobs import CHUNK_SIZE
from ..errors import ArtifactError, NotFoundError, QueryError, StoreError
from ..protocol import DocumentProtocol
from ..uri import mask_password
from . import data
from .values import dumps

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """ASGI middleware adding a strict Content-Security-Policy (no inline script) and friends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def json_response(value: Any, status: int = 200) -> Response:
    """A strict-JSON response (non-finite floats written as strings)."""
    return Response(dumps(value), status_code=status, media_type="application/json")


def error_response(e: Exception) -> Response:
    """The JSON error answer for an exception raised while serving a request."""
    if isinstance(e, QueryError):
        return json_response({"error": "QueryError", "type": type(e).__name__, "message": str(e)}, 400)
    if isinstance(e, data.BadRequest):
        return json_response({"error": "BadRequest", "message": str(e)}, 400)
    if isinstance(e, NotFoundError):
        return json_response({"error": "NotFound", "message": str(e)}, 404)
    if isinstance(e, StoreError):
        return json_response({"error": type(e).__name__, "message": mask_password(str(e))}, 503)
    raise e


class Dashboard:
    """The request handlers over one store; store calls are serialised by a lock.

    Args:
        proto: The Protocol over the store (the dashboard closes it at shutdown).
        poll: Seconds between the page's refreshes.
    """

    def __init__(self, proto: DocumentProtocol, poll: float = 4.0) -> None:
        self.proto = proto
        self.store = proto.store
        self.poll = poll
        self._lock = threading.Lock()

    def _call(self, fn: Callable[[], Any]) -> Response:
        try:
            with self._lock:
                return json_response(fn())
        except Exception as e:  # noqa: BLE001 - error_response re-raises what it does not map
            return error_response(e)

    def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    def config(self, request: Request) -> Response:
        return json_response({"poll_seconds": self.poll, "statuses": data.STATUS_NAMES})

    def overview(self, request: Request) -> Response:
        return self._call(lambda: data.overview(self.store))

    def trials(self, request: Request) -> Response:
        a = request.query_params

        def page() -> dict[str, Any]:
            direction = data.int_arg(a.get("dir"), "dir", 1, -1, 1)
            if direction == 0:
                raise data.BadRequest("dir must be 1 or -1")
            return data.trials_page(
                self.store,
                data.parse_query(a.get("q")),
                sort=a.get("sort") or None,
                direction=direction,
                page=data.int_arg(a.get("page"), "page", 0, 0),
                size=data.int_arg(a.get("size"), "size", 50, 1, data.MAX_PAGE_SIZE),
            )

        return self._call(page)

    def trial(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        return self._call(
            lambda: data.trial_detail(
                self.proto, uid, data.int_arg(request.query_params.get("max_points"), "max_points", 10_000, 2)
            )
        )

    def artifact(self, request: Request) -> Response:
        uid, name = request.path_params["uid"], request.query_params.get("name", "")
        try:
            with self._lock:
                info = self.proto.get_artifact(uid, name)
                stream = self.proto.open_artifact(uid, name)
        except Exception as e:  # noqa: BLE001 - error_response re-raises what it does not map
            return error_response(e if not isinstance(e, ArtifactError) else data.BadRequest(str(e)))

        def chunks() -> Iterator[bytes]:
            with stream:
                while chunk := stream.read(CHUNK_SIZE):
                    yield chunk

        filename = quote(name.rsplit("/", 1)[-1])
        headers = {
            "content-length": str(info.size),
            "content-disposition": f"attachment; filename*=UTF-8''{filename}",
        }
        return StreamingResponse(chunks(), media_type=info.media_type, headers=headers)

    def group(self, request: Request) -> Response:
        return self._call(lambda: data.group_view(self.store, request.path_params["gid"]))

    def scatter(self, request: Request) -> Response:
        a = request.query_params
        return self._call(lambda: data.scatter(self.store, data.parse_query(a.get("q")), a.get("x"), a.get("y")))

    def close(self) -> None:
        with self._lock:
            self.proto.close()


def create_app(proto: DocumentProtocol, poll: float = 4.0) -> Starlette:
    """The dashboard's Starlette application over an open Protocol.

    Args:
        proto: The Protocol over the store to show (closed when the application shuts down).
        poll: Seconds between the page's refreshes.

    Returns:
        The ASGI application.
    """
    d = Dashboard(proto, poll)
    get = ["GET"]
    routes = [
        Route("/", d.index, methods=get),
        Route("/api/config", d.config, methods=get),
        Route("/api/overview", d.overview, methods=get),
        Route("/api/trials", d.trials, methods=get),
        Route("/api/trial/{uid:path}", d.trial, methods=get),
        Route("/api/artifact/{uid:path}", d.artifact, methods=get),
        Route("/api/group/{gid:path}", d.group, methods=get),
        Route("/api/scatter", d.scatter, methods=get),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            d.close()

    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.dashboard = d
    return app
