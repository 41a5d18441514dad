"""Blobs through ``track-backends serve``: streamed both ways, killed clients, roles and limits.

Servers and the clients whose memory or death is measured run as real subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import Served, child_env

from track_backends import get_protocol
from track_backends.errors import NotFoundError, QueryError, StoreUnavailableError
from track_backends.stores.http import AuthenticationError, PermissionDeniedError, RequestTooLargeError

MiB = 1 << 20
BINARY = {"content-type": "application/octet-stream"}


def _journal(tmp_path: Path) -> str:
    return f"pickled://{tmp_path}/store.pkl"


def _parts(tmp_path: Path) -> list[str]:
    """The upload leftovers (``.part`` files) of the journal's blob directory."""
    tmp = tmp_path / "store.pkl.blobs" / "tmp"
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


def _error(resp: Any) -> str:
    body = resp.json()
    assert set(body) == {"error", "message"}, body
    return str(body["error"])


def _run_client(code: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


BIG_CLIENT = """
    import hashlib, io, json, sys, tracemalloc
    from track_backends import get_protocol
    from track_backends.model import Trial

    SIZE = int(sys.argv[2])

    class Source(io.RawIOBase):  # SIZE pseudo-random bytes, made as they are read
        def __init__(self):
            self.left, self.n, self.hash = SIZE, 0, hashlib.sha256()
        def readable(self):
            return True
        def readinto(self, buffer):
            k = min(len(buffer), self.left)
            block = hashlib.sha512(self.n.to_bytes(8, "big")).digest() * (k // 64 + 1)
            buffer[:k] = block[:k]
            self.hash.update(block[:k])
            self.left -= k
            self.n += 1
            return k

    with get_protocol(sys.argv[1]) as p:
        t = p.new_trial(Trial({"big": 1}))
        p.put_artifact(t, "warm.bin", b"warm up the connections")
        p.read_artifact(t, "warm.bin")
        tracemalloc.start()
        source = Source()
        info = p.put_artifact(t, "big.bin", source)
        up_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        got, n = hashlib.sha256(), 0
        with p.open_artifact(t, "big.bin") as f:
            while chunk := f.read(1 << 20):
                got.update(chunk)
                n += len(chunk)
        down_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(json.dumps({"sent": source.hash.hexdigest(), "stored": info.sha256, "size": info.size,
                          "read": got.hexdigest(), "read_size": n, "up_peak": up_peak, "down_peak": down_peak}))
"""


def test_a_300_mb_artifact_streams_both_ways_in_little_memory(
    serve: Callable[..., Served], tmp_path: Path, tokens: dict[str, str]
) -> None:
    size = 300 * MiB + 12_345
    server = serve(_journal(tmp_path), "--tokens", tokens["file"])
    out = _run_client(BIG_CLIENT, server.uri(tokens["write"]), str(size))
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    up, down = got["up_peak"] / MiB, got["down_peak"] / MiB
    print(f"peak traced memory of the client: upload {up:.1f} MiB, read {down:.1f} MiB")
    assert got["sent"] == got["stored"] == got["read"] and got["size"] == got["read_size"] == size
    assert got["up_peak"] < 64 * MiB and got["down_peak"] < 64 * MiB, got
    blobs = list((tmp_path / "store.pkl.blobs").glob("??/*"))
    assert any(b.name == got["sent"] and b.stat().st_size == size for b in blobs)
    assert _parts(tmp_path) == []


KILLED_CLIENT = """
    import os, sys, time
    from track_backends import get_protocol

    with get_protocol(sys.argv[1]) as p:
        w = p.store.blob_writer()
        for _ in range(40):
            w.write(os.urandom(1 << 20))
        print("sending", flush=True)
        while True:  # keeps the upload open, a chunk now and then, until killed
            w.write(os.urandom(1 << 16))
            time.sleep(0.05)
"""


def _wait_for(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_client_killed_mid_upload_leaves_nothing(serve: Callable[..., Served], tmp_path: Path) -> None:
    server = serve(_journal(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_CLIENT), server.uri()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "sending", proc.stderr
        assert _wait_for(lambda: len(_parts(tmp_path)) == 1)  # the server's writer holds the upload
        assert _wait_for(lambda: (tmp_path / "store.pkl.blobs" / "tmp" / _parts(tmp_path)[0]).stat().st_size > 0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert _wait_for(lambda: '"status": 499' in server.log()), server.log()[-2000:]
    assert _wait_for(lambda: _parts(tmp_path) == [])  # the writer was aborted: no leftover either
    with get_protocol(server.uri()) as p:
        assert list(p.store.list_blobs()) == []


def test_roles_for_blobs(pooled: Callable[..., Served], tokens: dict[str, str]) -> None:
    server = pooled("ephemeral:", "--tokens", tokens["file"])
    data = os.urandom(5 * MiB + 1)
    sha = hashlib.sha256(data).hexdigest()
    with get_protocol(server.uri(tokens["read"])) as reader, get_protocol(server.uri(tokens["write"])) as writer:
        w = reader.store.blob_writer()
        with pytest.raises(PermissionDeniedError):
            w.write(data)
            w.commit()
        w.abort()
        assert list(reader.store.list_blobs()) == []
        with writer.store.blob_writer() as w:
            w.write(data)
        with reader.store.open_blob(sha) as f:
            assert f.read() == data
        assert reader.store.stat_blob(sha) is not None
        with pytest.raises(PermissionDeniedError):
            writer.store.delete_blob(sha)  # deleting bytes is an admin's (gc's), like deleting documents
        with pytest.raises(PermissionDeniedError):
            writer.store.clean_uploads(time.time())
    with pytest.raises(AuthenticationError), get_protocol(server.uri()) as anonymous:
        with anonymous.store.blob_writer() as w:
            w.write(b"who am I")
    with server.client(tokens["read"]) as c:
        r = c.post("/v1/blobs", content=b"x" * 1000, headers=BINARY)
        assert r.status_code == 403 and _error(r) == "PermissionDeniedError"
        r = c.delete(f"/v1/blobs/{sha}")
        assert r.status_code == 403
    with server.client() as c:
        r = c.post("/v1/blobs", content=b"x" * 1000, headers=BINARY)
        assert r.status_code == 401 and _error(r) == "AuthenticationError"
        assert c.get(f"/v1/blobs/{sha}").status_code == 401
    with server.client(tokens["admin"]) as c:
        assert [json.loads(line) for line in c.get("/v1/blobs").text.splitlines()] == [
            {"sha256": sha, "size": len(data), "created": pytest.approx(time.time(), abs=120)},
            {"end": True, "count": 1},
        ]
        assert c.delete(f"/v1/blobs/{sha}").json() == {"deleted": True}


def test_the_wire_format(pooled: Callable[..., Served]) -> None:
    server = pooled("ephemeral:")
    data = bytes(range(256)) * 10_000
    sha = hashlib.sha256(data).hexdigest()
    with server.client() as c:
        r = c.post("/v1/blobs", content=iter([data[:1000], data[1000:]]), headers=BINARY)  # chunked
        assert r.status_code == 200 and r.json() == {"sha256": sha, "size": len(data), "created": r.json()["created"]}
        r = c.get(f"/v1/blobs/{sha}")
        assert r.status_code == 200 and r.content == data and r.headers["content-length"] == str(len(data))
        r = c.get(f"/v1/blobs/{sha}", headers={"range": "bytes=2000000-"})
        assert r.status_code == 206 and r.content == data[2_000_000:]
        assert r.headers["content-range"] == f"bytes 2000000-{len(data) - 1}/{len(data)}"
        for bad in ("bytes=0-10", "bytes=-5", f"bytes={len(data)}-", "lines=1-"):
            r = c.get(f"/v1/blobs/{sha}", headers={"range": bad})
            assert r.status_code == 400 and _error(r) == "QueryError", bad
        assert c.get(f"/v1/blobs/{sha}/stat").json()["blob"]["size"] == len(data)
        absent = "0" * 64
        assert c.get(f"/v1/blobs/{absent}/stat").json() == {"blob": None}
        r = c.get(f"/v1/blobs/{absent}")
        assert r.status_code == 404 and _error(r) == "NotFoundError"
        for bad in (sha.upper(), sha[:-1], sha + "0", "..%2F..%2Fetc%2Fpasswd", "g" * 64):
            for method in ("GET", "DELETE"):
                r = c.request(method, f"/v1/blobs/{bad}")
                assert r.status_code in (400, 404) and _error(r) in ("QueryError", "NotFoundError"), (bad, r.text)
            r = c.get(f"/v1/blobs/{bad}/stat")
            assert r.status_code in (400, 404), bad
        r = c.post("/v1/blobs", content=b"data", headers={"content-type": "application/json"})
        assert r.status_code == 400 and _error(r) == "QueryError"
        r = c.post("/v1/blobs/clean_uploads", json={"older_than": "yesterday"})
        assert r.status_code == 400 and _error(r) == "QueryError"
        assert c.post("/v1/blobs/clean_uploads", json={"older_than": time.time()}).json() == {"removed": 0}
        lines = c.get("/v1/blobs").text.splitlines()
        assert [json.loads(line).get("sha256") for line in lines] == [sha, None]
    with get_protocol(server.uri()) as p:
        with pytest.raises(QueryError):
            p.store.open_blob("../etc/passwd")
        with pytest.raises(NotFoundError):
            p.store.open_blob("0" * 64)
        with p.store.open_blob(sha) as f:  # read in odd pieces, then the rest
            assert f.read(3) == data[:3] and f.read(70_000) == data[3:70_003] and f.read() == data[70_003:]


def test_the_blob_limit_is_separate_from_the_body_limit(serve: Callable[..., Served], tmp_path: Path) -> None:
    server = serve(_journal(tmp_path), "--max-body", "2000", env={"TRACK_BACKENDS_SERVE_MAX_BLOB": str(3 * MiB)})
    fits, over = os.urandom(3 * MiB), os.urandom(3 * MiB + 1)
    with get_protocol(server.uri()) as p:
        with p.store.blob_writer() as w:  # far over the JSON body limit: uploads are not capped by it
            w.write(fits)
        w = p.store.blob_writer()
        with pytest.raises(RequestTooLargeError):  # the client knows the server's limit
            w.write(over)
            w.write(b"more")
        w.abort()
        assert [b.size for b in p.store.list_blobs()] == [len(fits)]
    with server.client() as c:
        r = c.post("/v1/blobs", content=over, headers=BINARY)  # declared too long: refused before reading
        assert r.status_code == 413 and _error(r) == "RequestTooLargeError"
        try:  # chunked, so found too long as it arrives: the writer is aborted
            r = c.post("/v1/blobs", content=iter([over[:MiB], over[MiB:]]), headers=BINARY)
            assert r.status_code == 413
        except Exception as e:  # noqa: BLE001 - or the connection is closed before the answer is read
            assert "httpx" in type(e).__module__, e
    assert _wait_for(lambda: _parts(tmp_path) == [])
    with get_protocol(server.uri()) as p:
        assert [b.size for b in p.store.list_blobs()] == [len(fits)]


def test_the_max_blob_flag_sets_the_limit(serve: Callable[..., Served], tmp_path: Path) -> None:
    server = serve(_journal(tmp_path), "--max-blob", str(MiB), env={"TRACK_BACKENDS_SERVE_MAX_BLOB": str(9 * MiB)})
    with get_protocol(server.uri()) as p:
        with p.store.blob_writer() as w:
            w.write(os.urandom(MiB))
        w = p.store.blob_writer()
        with pytest.raises(RequestTooLargeError):  # the flag wins over the environment
            w.write(os.urandom(MiB + 1))
        w.abort()
        assert [b.size for b in p.store.list_blobs()] == [MiB]


def test_abort_cancels_the_request_and_the_server_aborts_its_writer(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    server = serve(_journal(tmp_path))
    with get_protocol(server.uri()) as p:
        w = p.store.blob_writer()
        w.write(os.urandom(6 * MiB))
        assert _wait_for(lambda: len(_parts(tmp_path)) == 1)
        w.abort()
        assert _wait_for(lambda: _parts(tmp_path) == [])
        assert list(p.store.list_blobs()) == []
        with p.store.blob_writer() as w:  # the store still uploads after an abort
            w.write(b"after")
        assert [b.size for b in p.store.list_blobs()] == [5]


def test_a_read_cut_short_resumes_where_it_stopped(pooled: Callable[..., Served]) -> None:
    server = pooled("ephemeral:")
    data = os.urandom(3 * MiB + 5)
    sha = hashlib.sha256(data).hexdigest()

    def cut_after_one_chunk(f: Any) -> None:
        chunks = f.raw._chunks

        def cut() -> Any:
            yield next(chunks)
            raise httpx.ReadError("connection reset by peer")

        f.raw._chunks = cut()

    with get_protocol(server.uri()) as p:
        with p.store.blob_writer() as w:
            w.write(data)
        with p.store.open_blob(sha) as f:
            cut_after_one_chunk(f)
            assert f.read(10) == data[:10] and f.read() == data[10:]  # resumed with Range: bytes=N-
    assert '"status": 206' in server.log()
    with get_protocol(server.uri(retries="0")) as p, p.store.open_blob(sha) as f:
        cut_after_one_chunk(f)
        with pytest.raises(StoreUnavailableError):
            f.read()
