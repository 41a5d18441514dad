"""Tokens and roles: 401 without or with a wrong token, 403 past the role, tokens never shown or logged."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable
from typing import Any

import pytest
from serve_helpers import Served, run_cli

from track_backends import get_protocol
from track_backends.errors import TrackBackendsError
from track_backends.server import auth as auth_module
from track_backends.server.auth import Authenticator
from track_backends.server.routes import BLOB_ROUTES, ROUTES, allowed
from track_backends.server.tokens import add_token, load_tokens
from track_backends.stores.http import AuthenticationError, PermissionDeniedError

EXPECTED_ROLES = {
    "find": "read",
    "count": "read",
    "fetch_points": "read",
    "now": "read",
    "insert": "write",
    "insert_many": "write",
    "update": "write",
    "find_one_and_update": "write",
    "append_points": "write",
    "commit": "write",
    "delete": "admin",
    "delete_points": "admin",
    "ensure_index": "admin",
    "clean_uploads": "admin",
    "blob_writer": "write",
    "open_blob": "read",
    "stat_blob": "read",
    "list_blobs": "read",
    "delete_blob": "admin",
}


def test_the_allow_list_is_exactly_the_store_primitives_with_their_roles() -> None:
    assert {r.name: r.role for r in (*ROUTES, *BLOB_ROUTES)} == EXPECTED_ROLES
    for r in (*ROUTES, *BLOB_ROUTES):
        for role, ok in (("read", r.role == "read"), ("write", r.role != "admin"), ("admin", True)):
            assert allowed(role, r) is ok, (role, r.name)
        assert not allowed("root", r) and not allowed("", r)


@pytest.fixture
def secured(pooled: Callable[..., Served], tokens: dict[str, str]) -> Served:
    return pooled("ephemeral:", "--tokens", tokens["file"])


def _error(resp: Any) -> str:
    body = resp.json()
    assert set(body) == {"error", "message"}, body
    return str(body["error"])


def test_no_token_or_a_wrong_one_is_401(secured: Served, tokens: dict[str, str]) -> None:
    read_id = tokens["read"].split("_")[1]
    wrong = [
        None,
        "nonsense",
        tokens["read"][:-1] + ("A" if tokens["read"][-1] != "A" else "B"),  # right id, wrong secret
        f"tb_{'0' * 12}_{'a' * 43}",  # well formed, unknown id
        f"tb_{read_id}_{'a' * 43}",
    ]
    for token in wrong:
        with secured.client(token) as c:
            r = c.post("/v1/things/find", json={})
            assert r.status_code == 401 and _error(r) == "AuthenticationError", token
            r = c.get("/openapi.json")
            assert r.status_code == 401
    with secured.client() as c:
        assert c.get("/health").status_code == 200  # health needs no token
        r = c.post("/v1/things/find", json={}, headers={"authorization": f"Basic {tokens['read']}"})
        assert r.status_code == 401


def test_roles(secured: Served, tokens: dict[str, str]) -> None:
    with secured.client(tokens["read"]) as read, secured.client(tokens["write"]) as write:
        with secured.client(tokens["admin"]) as admin:
            r = read.post("/v1/things/insert", json={"doc": {"uid": "a"}})
            assert r.status_code == 403 and _error(r) == "PermissionDeniedError"
            assert write.post("/v1/things/insert", json={"doc": {"uid": "a"}}).status_code == 200
            assert read.post("/v1/things/count", json={}).json() == {"count": 1}
            for path, body in (
                ("delete", {"query": {}}),
                ("delete_points", {"uids": ["a"]}),
                ("ensure_index", {"keys": "x"}),
            ):
                r = write.post(f"/v1/things/{path}", json=body)
                assert r.status_code == 403 and _error(r) == "PermissionDeniedError", path
                assert admin.post(f"/v1/things/{path}", json=body).status_code == 200, path
            assert read.get("/v1/now").status_code == 200
            assert read.get("/openapi.json").status_code == 200
            assert read.post("/v1/commit", json={}).status_code == 403


def test_client_errors_and_the_environment_token(
    secured: Served, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with get_protocol(secured.uri()) as p:
        with pytest.raises(AuthenticationError) as e:
            p.store.count("things")
    with get_protocol(secured.uri(tokens["read"])) as p:
        assert p.store.count("things") == 0
        with pytest.raises(PermissionDeniedError) as denied:
            p.store.insert("things", {"uid": "x"})
        assert "read" in str(denied.value)
        assert tokens["read"] not in repr(p.store) and tokens["read"] not in str(p.store.label)
    bad = secured.uri("tb_000000000000_" + "b" * 43)
    with get_protocol(bad) as p:
        with pytest.raises(AuthenticationError) as e:
            p.store.find("things")
        assert "b" * 43 not in str(e.value) and "***" in p.store.label
    monkeypatch.setenv("TRACK_BACKENDS_TOKEN", tokens["write"])
    with get_protocol(secured.uri()) as p:
        p.store.insert("things", {"uid": "from-env"})
        assert p.store.count("things") == 1
    with pytest.raises(TrackBackendsError) as e:
        get_protocol(f"http://{tokens['write']}@127.0.0.1:{secured.port}")  # the token in the user slot
    assert tokens["write"] not in str(e.value)


def test_tokens_never_reach_the_log_or_the_file(secured: Served, tokens: dict[str, str]) -> None:
    for role in ("read", "write", "admin"):
        with secured.client(tokens[role]) as c:
            c.post("/v1/things/insert", json={"doc": {"uid": role, "secret": "BODY-MARKER"}})
            c.post("/v1/things/find", json={"query": {"uid": role}})
    with secured.client(tokens["read"] + "x") as c:
        c.post("/v1/things/find", json={})
    log = secured.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"event": "request"')]
    assert len(lines) >= 7
    assert {line["client"] for line in lines} >= {"read-user", "write-user", "admin-user", "-"}
    assert {(line["role"], line["status"]) for line in lines if line["route"].endswith("/insert")} == {
        ("read", 403),
        ("write", 200),
        ("admin", 200),
    }
    assert all({"route", "role", "status", "ms", "method"} <= set(line) for line in lines)
    text = open(tokens["file"]).read()
    for role in ("read", "write", "admin"):
        secret = tokens[role].split("_", 2)[2]
        assert secret not in log and secret not in text
    assert "BODY-MARKER" not in log
    assert stat.S_IMODE(os.stat(tokens["file"]).st_mode) == 0o600


def test_every_wrong_token_costs_one_kdf(tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = auth_module.derive

    def counting(secret: str, salt: bytes, params: dict[str, int]) -> bytes:
        calls.append(1)
        return real(secret, salt, params)

    monkeypatch.setattr(auth_module, "derive", counting)
    a = Authenticator(tokens["file"])
    read_id = tokens["read"].split("_")[1]
    for wrong in ("x", f"tb_{'0' * 12}_{'a' * 43}", f"tb_{read_id}_{'a' * 43}", tokens["read"] + "x"):
        before = len(calls)
        with pytest.raises(AuthenticationError):
            a.authenticate(f"Bearer {wrong}")
        assert len(calls) == before + 1, wrong
    assert a.authenticate(f"Bearer {tokens['read']}").role == "read"
    n = len(calls)
    assert a.authenticate(f"bearer {tokens['read']}").name == "read-user"  # remembered: no second scrypt
    assert len(calls) == n


def test_token_cli_and_revocation(pooled: Callable[..., Served], tmp_path: Any) -> None:
    path = str(tmp_path / "t.json")
    out = run_cli("token", "add", "alice", "--role", "write", "--tokens", path)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert len(out.stdout.splitlines()) == 1 and token.startswith("tb_") and token not in out.stderr
    assert token.split("_", 2)[2] not in open(path).read()
    assert [(e.name, e.role) for e in load_tokens(path)] == [("alice", "write")]
    again = run_cli("token", "add", "alice", "--role", "read", "--tokens", path)
    assert again.returncode == 2 and "exists" in again.stderr
    bob = add_token(path, "bob", "read")
    assert run_cli("token", "list", "--tokens", path).stdout.split() == ["alice", "write", "bob", "read"]
    served = pooled(f"pickled://{tmp_path}/s.pkl", "--tokens", path)
    with served.client(token) as c:
        assert c.post("/v1/things/insert", json={"doc": {"uid": "a"}}).status_code == 200
    assert run_cli("token", "remove", "alice", "--tokens", path).returncode == 0
    deadline = time.monotonic() + 10
    with served.client(token) as c:
        while c.post("/v1/things/count", json={}).status_code != 401:
            assert time.monotonic() < deadline, "a removed token still works"
            time.sleep(0.2)
    with served.client(bob) as c:
        assert c.post("/v1/things/count", json={}).json() == {"count": 1}


def test_serve_refuses_to_listen_beyond_loopback_unprotected(
    serve: Callable[..., Served], tokens: dict[str, str], tls_files: tuple[str, str, str]
) -> None:
    for extra in ([], ["--tokens", tokens["file"]], ["--tls-cert", tls_files[0], "--tls-key", tls_files[1]]):
        out = run_cli("serve", "ephemeral:", "--host", "0.0.0.0", "--port", "1", *extra)
        assert out.returncode == 2 and "refusing to listen on 0.0.0.0" in out.stderr, out.stderr
    out = run_cli("serve", "ephemeral:", "--tls-cert", tls_files[0])
    assert out.returncode == 2 and "go together" in out.stderr
    served = serve("ephemeral:", "--host", "0.0.0.0", "--insecure")
    with served.client() as c:
        assert c.post("/v1/things/count", json={}).json() == {"count": 0}
    assert "WARNING: --insecure" in served.log()
    safe = serve("ephemeral:", "--host", "0.0.0.0", "--tokens", tokens["file"], tls=tls_files)
    with safe.client(tokens["read"]) as c:
        assert c.post("/v1/things/count", json={}).json() == {"count": 0}
    assert "WARNING" not in safe.log()
