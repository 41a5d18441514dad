"""Hostile and malformed requests: each gets a 4xx with a JSON error body and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from serve_helpers import Served

from track_backends import get_protocol
from track_backends.errors import EncodingError, QueryError
from track_backends.stores.http import RequestTooLargeError

SEED = [{"uid": "a", "n": 1}, {"uid": "b", "n": 2}]


@pytest.fixture
def server(pooled: Callable[..., Served], tmp_path: Any) -> Served:
    s = pooled("pickled://{dir}/{n}.pkl")
    with s.client() as c:
        assert c.post("/v1/things/insert_many", json={"docs": SEED}).status_code == 200
    return s


def _state(c: Any) -> list[dict[str, Any]]:
    r = c.post("/v1/things/find", json={"sort": [["uid", 1]]})
    assert r.status_code == 200
    return list(r.json()["docs"])


def _refused(r: Any, status: int, error: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error", "message"} and isinstance(body["message"], str)
    if error:
        assert body["error"] == error, body


def _raw(c: Any, path: str, content: bytes, content_type: str = "application/json") -> Any:
    return c.post(path, content=content, headers={"content-type": content_type})


NESTED = b'{"query": ' + b'{"$and": [' * 10_000 + b"{}" + b"]}" * 10_000 + b"}"
CASES: list[tuple[str, str, bytes, int, str]] = [
    ("nested query 10,000 deep", "find", NESTED, 400, "QueryError"),
    ("nested array 10,000 deep", "insert", b'{"doc": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", 400, "QueryError"),
    ("invalid UTF-8", "insert", b'{"doc": {"uid": "z", "s": "\xff\xfe"}}', 400, "QueryError"),
    ("NaN literal", "insert", b'{"doc": {"uid": "z", "x": NaN}}', 400, "QueryError"),
    ("Infinity literal", "update", b'{"query": {}, "update": {"$set": {"x": -Infinity}}}', 400, "QueryError"),
    ("$where", "find", b'{"query": {"$where": "this.n == 1"}}', 400, "UnsupportedOperatorError"),
    ("$where in a delete", "delete", b'{"query": {"$where": "1"}}', 400, "UnsupportedOperatorError"),
    ("bad stand-in", "insert", b'{"doc": {"uid": "z", "x": {"$n": "1e308"}}}', 400, "QueryError"),
    ("not JSON", "find", b"{query: 1}", 400, "QueryError"),
    ("a list body", "find", b"[]", 400, "QueryError"),
    ("unknown field", "find", b'{"query": {}, "sortt": 1}', 400, "QueryError"),
    ("a string query", "count", b'{"query": "n = 1"}', 400, "QueryError"),
    ("negative limit", "find", b'{"limit": -1}', 400, "QueryError"),
    ("a document that is a list", "insert", b'{"doc": ["uid", "z"]}', 400, "EncodingError"),
    ("no uid", "insert", b'{"doc": {"n": 3}}', 400, "EncodingError"),
    ("a $ key", "insert", b'{"doc": {"uid": "z", "$set": 1}}', 400, "EncodingError"),
    ("a lone surrogate", "insert", b'{"doc": {"uid": "z", "s": "\\ud800"}}', 400, "EncodingError"),
    ("a 65-bit integer", "insert", b'{"doc": {"uid": "z", "v": 36893488147419103232}}', 400, "EncodingError"),
    ("a replacement update", "update", b'{"query": {}, "update": {"n": 5}, "many": true}', 400, "QueryError"),
    ("a duplicate uid", "insert", b'{"doc": {"uid": "a"}}', 409, "DuplicateKeyError"),
    ("half a batch collides", "insert_many", b'{"docs": [{"uid": "new"}, {"uid": "b"}]}', 409, "DuplicateKeyError"),
    ("empty body", "insert", b"", 400, "QueryError"),
]


@pytest.mark.parametrize("name,route,content,status,error", CASES, ids=[c[0] for c in CASES])
def test_malformed_bodies_are_refused_and_change_nothing(
    server: Served, name: str, route: str, content: bytes, status: int, error: str
) -> None:
    with server.client() as c:
        before = _state(c)
        _refused(_raw(c, f"/v1/things/{route}", content), status, error)
        assert _state(c) == before


def test_routes_methods_and_content_types(server: Served) -> None:
    with server.client() as c:
        before = _state(c)
        _refused(c.post("/v1/things/drop", json={}), 404, "NotFoundError")
        _refused(c.post("/v1/things/find/extra", json={}), 404)
        _refused(c.post("/admin", json={}), 404)
        _refused(c.get("/v1/things/find"), 405)
        _refused(c.put("/v1/things/insert", json={"doc": {"uid": "z"}}), 405)
        _refused(c.delete("/v1/things/delete"), 405)
        _refused(c.post("/v1/now", json={}), 405)
        _refused(c.post("/v1/Things/find", json={}), 400, "QueryError")  # a bad collection name
        _refused(c.post("/v1/x%3Bdrop/find", json={}), 400, "QueryError")
        _refused(_raw(c, "/v1/things/insert", b'{"doc": {"uid": "z"}}', "text/plain"), 400, "QueryError")
        _refused(_raw(c, "/v1/things/insert", b'{"doc": {"uid": "z"}}', "application/x-www-form-urlencoded"), 400)
        assert _state(c) == before


def test_oversized_bodies_are_413(server: Served, pooled: Callable[..., Served]) -> None:
    big = b'{"docs": [' + b",".join(b'{"uid": "u%d", "pad": "%s"}' % (i, b"x" * 1000) for i in range(17_000)) + b"]}"
    assert len(big) > 16 * 1024 * 1024
    with server.client() as c:
        before = _state(c)
        _refused(_raw(c, "/v1/things/insert_many", big), 413, "RequestTooLargeError")
        assert _state(c) == before
    small = pooled("ephemeral:", "--max-body", "2000")
    with get_protocol(small.uri()) as p:
        p.store.insert("things", {"uid": "fits", "pad": "x" * 1000})
        with pytest.raises(RequestTooLargeError):
            p.store.insert("things", {"uid": "too-big", "pad": "x" * 3000})
        assert [d["uid"] for d in p.store.find("things")] == ["fits"]


def test_the_client_refuses_what_json_cannot_carry(server: Served) -> None:
    with get_protocol(server.uri()) as p:
        for bad in ({"uid": "z", "v": b"bytes"}, {"uid": "z", 3: "int key"}, {"uid": "z", "v": {1, 2}}):
            with pytest.raises(EncodingError):
                p.store.insert("things", bad)
        with pytest.raises(QueryError):
            p.store.find("things", {"v": object()})
        with pytest.raises(QueryError):
            p.store.find("things", {"$where": "1"})
        assert p.store.count("things") == len(SEED)
