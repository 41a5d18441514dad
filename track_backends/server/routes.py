"""The server's allow-list: one route per Store primitive, each with its role, body schema and call.

Every route is written out here: its path, the least role that may call it, the JSON Schema of
its body, and the function that calls the store with the fields of a validated body. Nothing is
looked up by a name the client sends: the HTTP router matches a request to one of these entries
or answers 404/405. Leases, fenced writes and metric batches need nothing more, since the
Protocol builds them from these primitives on the client.

The blob routes (:data:`BLOB_ROUTES`) stream their bytes instead of carrying a JSON body: an
upload needs the ``write`` role, a read the ``read`` role, and deleting a blob the ``admin`` role,
like deleting documents (a blob may hold the bytes of any trial's artifact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import EncodingError, TrackBackendsError
from ..store import Store

ROLES = ("read", "write", "admin")
"""Roles, each allowed what the one before it is, and more."""

COLLECTION_PATTERN = "^[a-z][a-z0-9_]{0,62}$"
JSON_MEDIA = "application/json"
QUERY: dict[str, Any] = {"type": ["object", "null"], "description": "a MongoDB-style filter; null matches all"}
SORT: dict[str, Any] = {"type": ["object", "array", "string", "null"], "description": "{path: 1|-1} or [[path, 1|-1]]"}
PROJECTION: dict[str, Any] = {"type": ["object", "array", "null"], "items": {"type": "string"}}
UPDATE: dict[str, Any] = {"type": "object", "description": "an update document ($set, $inc, $push, ...)"}
OPTIONAL_UPDATE: dict[str, Any] = {"type": ["object", "null"]}
DOC: dict[str, Any] = {"type": "object", "description": "a document with a string uid"}
UIDS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
KEY = {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 2, "maxItems": 2}]}
KEYS: dict[str, Any] = {
    "oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": KEY}],
    "description": "a dotted path or a non-empty list of them",
}
POINT: dict[str, Any] = {"type": "array", "minItems": 3, "maxItems": 3, "description": "[name, step, value]"}

Call = Callable[[Store, str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """One allowed operation.

    Attributes:
        name: The Store primitive it calls (also the last path segment and the operationId).
        method: ``GET`` or ``POST``.
        path: The URL path template.
        role: The least role allowed to call it.
        body: The JSON Schema of the body (``None``: no body).
        call: ``call(store, collection, body) -> result`` (``collection`` is ``""`` off a collection).
        result: The JSON Schema of the answer.
        summary: One line for the OpenAPI document.
        errors: Which error a schema failure in a top-level field raises (default QueryError), so
            that the server refuses a body as the store would refuse the same arguments.
    """

    name: str
    method: str
    path: str
    role: str
    body: dict[str, Any] | None
    call: Call
    result: dict[str, Any]
    summary: str
    errors: dict[str, type[TrackBackendsError]] = field(default_factory=dict)


def _body(required: tuple[str, ...] = (), **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _insert(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    store.insert(coll, b["doc"])
    return {"inserted": 1}


def _insert_many(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"inserted": store.insert_many(coll, b["docs"])}


def _find(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    docs = store.find(coll, b.get("query"), sort=b.get("sort"), limit=b.get("limit"), projection=b.get("projection"))
    return {"docs": docs}


def _count(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"count": store.count(coll, b.get("query"))}


def _update(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    n = store.update(coll, b["query"], b["update"], many=b.get("many", False), upsert=b.get("upsert", False))
    return {"matched": n}


def _find_one_and_update(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"doc": store.find_one_and_update(coll, b["query"], b["update"], sort=b.get("sort"))}


def _delete(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"deleted": store.delete(coll, b["query"])}


def _ensure_index(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    keys = b["keys"]
    listed: Any = keys if isinstance(keys, str) else [k if isinstance(k, str) else tuple(k) for k in keys]
    store.ensure_index(coll, listed, unique=b.get("unique", False))
    return {}


def _append_points(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    points = [tuple(p) for p in b["points"]]
    ok = store.append_points(
        coll, b["uid"], points, attempt=b.get("attempt", 0), query=b.get("query"), update=b.get("update")
    )
    return {"appended": ok}


def _fetch_points(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    got = store.fetch_points(
        coll,
        b["uids"],
        names=b.get("names"),
        start=b.get("start"),
        stop=b.get("stop"),
        last=b.get("last"),
        attempts=b.get("attempts"),
    )
    return {
        "points": {uid: {name: [list(p) for p in pts] for name, pts in series.items()} for uid, series in got.items()}
    }


def _delete_points(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"deleted": store.delete_points(coll, b["uids"])}


def _now(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"now": store.now()}


def _commit(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    store.commit()
    return {}


def _clean_uploads(store: Store, coll: str, b: dict[str, Any]) -> dict[str, Any]:
    return {"removed": store.clean_uploads(b["older_than"])}


_DOCS_OUT = {"type": "array", "items": {"type": "object"}}
_EMPTY = {"type": "object", "properties": {}, "additionalProperties": False}
_V1 = "/v1/{collection}/"
ROUTES: tuple[Route, ...] = (
    Route(
        "insert",
        "POST",
        _V1 + "insert",
        "write",
        _body(("doc",), doc=DOC),
        _insert,
        _obj(inserted={"type": "integer"}),
        "Insert one document.",
        {"doc": EncodingError},
    ),
    Route(
        "insert_many",
        "POST",
        _V1 + "insert_many",
        "write",
        _body(("docs",), docs={"type": "array", "items": DOC}),
        _insert_many,
        _obj(inserted={"type": "integer"}),
        "Insert documents, all or none.",
        {"docs": EncodingError},
    ),
    Route(
        "find",
        "POST",
        _V1 + "find",
        "read",
        _body(query=QUERY, sort=SORT, limit={"type": ["integer", "null"], "minimum": 0}, projection=PROJECTION),
        _find,
        _obj(docs=_DOCS_OUT),
        "Documents matching a filter.",
    ),
    Route(
        "count",
        "POST",
        _V1 + "count",
        "read",
        _body(query=QUERY),
        _count,
        _obj(count={"type": "integer"}),
        "How many documents match a filter.",
    ),
    Route(
        "update",
        "POST",
        _V1 + "update",
        "write",
        _body(("query", "update"), query=QUERY, update=UPDATE, many={"type": "boolean"}, upsert={"type": "boolean"}),
        _update,
        _obj(matched={"type": "integer"}),
        "Apply an update to the first or every match.",
        {"update": EncodingError},
    ),
    Route(
        "find_one_and_update",
        "POST",
        _V1 + "find_one_and_update",
        "write",
        _body(("query", "update"), query=QUERY, update=UPDATE, sort=SORT),
        _find_one_and_update,
        _obj(doc={"type": ["object", "null"]}),
        "Atomically update the first match and return it.",
        {"update": EncodingError},
    ),
    Route(
        "delete",
        "POST",
        _V1 + "delete",
        "admin",
        _body(("query",), query=QUERY),
        _delete,
        _obj(deleted={"type": "integer"}),
        "Delete every match.",
    ),
    Route(
        "ensure_index",
        "POST",
        _V1 + "ensure_index",
        "admin",
        _body(("keys",), keys=KEYS, unique={"type": "boolean"}),
        _ensure_index,
        _EMPTY,
        "Create an index.",
    ),
    Route(
        "append_points",
        "POST",
        _V1 + "append_points",
        "write",
        _body(
            ("uid", "points"),
            uid={"type": "string"},
            points={"type": "array", "items": POINT},
            attempt={"type": "integer", "minimum": 0},
            query=QUERY,
            update=OPTIONAL_UPDATE,
        ),
        _append_points,
        _obj(appended={"type": "boolean"}),
        "Append metric points (with an update).",
        {"points": EncodingError, "update": EncodingError},
    ),
    Route(
        "fetch_points",
        "POST",
        _V1 + "fetch_points",
        "read",
        _body(
            ("uids",),
            uids=UIDS,
            names={"type": ["array", "null"], "items": {"type": "string"}},
            start={"type": ["number", "null"]},
            stop={"type": ["number", "null"]},
            last={"type": ["integer", "null"], "minimum": 0},
            attempts={"type": ["object", "null"], "additionalProperties": {"type": "integer"}},
        ),
        _fetch_points,
        _obj(points={"type": "object"}),
        "Read the metric series of many documents.",
    ),
    Route(
        "delete_points",
        "POST",
        _V1 + "delete_points",
        "admin",
        _body(("uids",), uids=UIDS),
        _delete_points,
        _obj(deleted={"type": "integer"}),
        "Delete every point of the given documents.",
    ),
    Route("now", "GET", "/v1/now", "read", None, _now, _obj(now={"type": "number"}), "The store's clock."),
    Route("commit", "POST", "/v1/commit", "write", _EMPTY, _commit, _EMPTY, "Make every returned write durable."),
    Route(
        "clean_uploads",
        "POST",
        "/v1/blobs/clean_uploads",
        "admin",
        _body(("older_than",), older_than={"type": "number", "description": "epoch seconds"}),
        _clean_uploads,
        _obj(removed={"type": "integer"}),
        "Remove the leftovers of blob uploads that died before older_than (for gc).",
    ),
)
"""The allow-list, in the order the OpenAPI document lists it."""


SHA_PATTERN = "^[0-9a-f]{64}$"
BINARY = "application/octet-stream"
NDJSON = "application/x-ndjson"
BLOB_STAT: dict[str, Any] = _obj(
    sha256={"type": "string", "pattern": SHA_PATTERN},
    size={"type": "integer", "minimum": 0},
    created={"type": "number", "description": "epoch seconds"},
)


@dataclass(frozen=True)
class BlobRoute:
    """One allowed blob operation: its body or its answer is a byte stream, not a JSON document.

    Attributes:
        name: The Store primitive it calls (also the operationId).
        method: ``GET``, ``POST`` or ``DELETE``.
        path: The URL path template (``{sha256}``: 64 lower-case hex digits, checked by the server).
        role: The least role allowed to call it.
        request: The media type of a streamed request body (``None``: no body).
        response: The media type of the answer.
        result: The JSON Schema of a JSON answer (of each line, for ``application/x-ndjson``).
        summary: One line for the OpenAPI document.
    """

    name: str
    method: str
    path: str
    role: str
    request: str | None
    response: str
    result: dict[str, Any] | None
    summary: str


BLOB_ROUTES: tuple[BlobRoute, ...] = (
    BlobRoute(
        "blob_writer",
        "POST",
        "/v1/blobs",
        "write",
        BINARY,
        JSON_MEDIA,
        BLOB_STAT,
        "Upload a blob: the body's bytes, streamed, stored under their sha256 once the body is complete.",
    ),
    BlobRoute(
        "list_blobs",
        "GET",
        "/v1/blobs",
        "read",
        None,
        NDJSON,
        BLOB_STAT,
        'Every blob, one JSON line each, then {"end": true, "count": n} (or an {"error", "message"} line).',
    ),
    BlobRoute("open_blob", "GET", "/v1/blobs/{sha256}", "read", None, BINARY, None, "A blob's bytes, streamed."),
    BlobRoute(
        "stat_blob",
        "GET",
        "/v1/blobs/{sha256}/stat",
        "read",
        None,
        JSON_MEDIA,
        _obj(blob={"oneOf": [BLOB_STAT, {"type": "null"}]}),
        "A blob's size and store time (null when it is absent).",
    ),
    BlobRoute(
        "delete_blob",
        "DELETE",
        "/v1/blobs/{sha256}",
        "admin",
        None,
        JSON_MEDIA,
        _obj(deleted={"type": "boolean"}),
        "Delete a blob, whatever references it (gc decides).",
    ),
)
"""The blob routes (after :data:`ROUTES` in the OpenAPI document); their handlers are in :mod:`.blobs`."""


def allowed(role: str, route: Route | BlobRoute) -> bool:
    """Whether ``role`` may call ``route`` (``admin`` > ``write`` > ``read``)."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(route.role)
