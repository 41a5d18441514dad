"""The OpenAPI 3.1 document the server publishes at ``GET /openapi.json``, built from the allow-list."""

from __future__ import annotations

from typing import Any

from .. import __version__
from .routes import BINARY, BLOB_ROUTES, COLLECTION_PATTERN, ROUTES, SHA_PATTERN, BlobRoute, Route

ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "the TrackBackendsError subclass, e.g. QueryError"},
        "message": {"type": "string"},
    },
    "required": ["error", "message"],
}
_ERRORS = {
    "400": "malformed body, query, update or value",
    "401": "no token, or an unknown one",
    "403": "the token's role does not allow this operation",
    "404": "no such route",
    "405": "wrong method",
    "409": "a unique key is taken",
    "413": "the body is over the size limit (the blob limit, for uploads)",
    "503": "the store cannot be reached, or a lock wait ran out",
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "description": f"Needs a token with role '{route.role}' or above.",
        "security": [{"bearer": []}],
        "responses": {
            "200": _json(route.result, "the result"),
            **{code: {"$ref": f"#/components/responses/E{code}"} for code in _ERRORS},
        },
    }
    if "{collection}" in route.path:
        op["parameters"] = [
            {
                "name": "collection",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": COLLECTION_PATTERN},
            }
        ]
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
    return op


def _blob_operation(route: BlobRoute) -> dict[str, Any]:
    if route.response == BINARY:
        answer = {"description": "the bytes", "content": {BINARY: {"schema": {"type": "string", "format": "binary"}}}}
    else:
        answer = {"description": "the result", "content": {route.response: {"schema": route.result}}}
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "description": f"Needs a token with role '{route.role}' or above.",
        "security": [{"bearer": []}],
        "responses": {"200": answer, **{code: {"$ref": f"#/components/responses/E{code}"} for code in _ERRORS}},
    }
    if "{sha256}" in route.path:
        op["parameters"] = [
            {"name": "sha256", "in": "path", "required": True, "schema": {"type": "string", "pattern": SHA_PATTERN}}
        ]
    if route.name == "open_blob":
        op["responses"]["206"] = {**answer, "description": "the bytes from N on (Range: bytes=N-)"}
    if route.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {route.request: {"schema": {"type": "string", "format": "binary"}}},
        }
    return op


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of every route (a fresh copy on each call).

    Returns:
        A JSON-ready dict.
    """
    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness; needs no token.",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "the server is up")},
            }
        }
    }
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    for blob in BLOB_ROUTES:
        paths.setdefault(blob.path, {})[blob.method.lower()] = _blob_operation(blob)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "track_backends store server",
            "version": __version__,
            "description": (
                "The Store primitives of track_backends over HTTP. Non-finite floats travel as "
                '{"$n": "NaN"}, {"$n": "Infinity"} or {"$n": "-Infinity"}; a literal {"$n": x} as {"$n": [x]}.'
            ),
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR_BODY},
            "responses": {
                f"E{code}": _json({"$ref": "#/components/schemas/Error"}, text) for code, text in _ERRORS.items()
            },
        },
    }
