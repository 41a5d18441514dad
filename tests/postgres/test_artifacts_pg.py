"""Artifacts on PostgreSQL: the CockroachDB path, damaged chunks, 300 MB in bounded memory, kill -9, layouts.

The contract on the default (``COPY``, read committed) path runs in ``test_contract_pg.py``; here it
runs again on the path CockroachDB takes (one ``INSERT`` per chunk) at SERIALIZABLE.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import with_options

from track_backends import Trial, errors, get_protocol
from track_backends.protocol import DocumentProtocol
from track_backends.registry import open_store
from track_backends.stores.postgres import blobstore
from track_backends.stores.postgres import schema as pgschema
from track_backends.testing import ArtifactContract

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


class TestCockroachPathOnPostgres(ArtifactContract):
    """The contract with chunks sent as CockroachDB gets them (``INSERT``), at SERIALIZABLE."""

    multiprocess = True

    @pytest.fixture(autouse=True)
    def _inserts(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(blobstore, "USE_COPY", False)

    @pytest.fixture
    def store_uri(self, pg_uri: str) -> str:
        return with_options(pg_uri, isolation="serializable")


@pytest.fixture
def protocol(pg_uri: str) -> Iterator[DocumentProtocol]:
    p = get_protocol(pg_uri)
    yield p
    p.close()


def _trial(p: DocumentProtocol) -> Trial:
    t = p.new_trial(Trial({"x": uuid.uuid4().hex}))
    assert t is not None
    return t


def _table(schema: str, name: str) -> str:
    return f'"{schema}"."tb${name}"'


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


# -- damage --------------------------------------------------------------------------------------


@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_a_flipped_byte_or_a_lost_chunk_is_reported(
    protocol: DocumentProtocol, pg_admin: Any, pg_schema: str, monkeypatch: pytest.MonkeyPatch, copy: bool
) -> None:
    monkeypatch.setattr(blobstore, "USE_COPY", copy)
    t = _trial(protocol)
    data = os.urandom(3 * MIB + 100)
    protocol.put_artifact(t, "w.bin", data)
    chunks = _table(pg_schema, "blob_chunks")
    row = blobstore.CHUNK_SIZE if copy else blobstore.ROW_SIZE
    assert pg_admin.execute(f"SELECT count(*) FROM {chunks}").fetchone()[0] == -(-len(data) // row)
    pg_admin.execute(f"UPDATE {chunks} SET data = set_byte(data, 7, 255 - get_byte(data, 7)) WHERE seq = 1")
    with pytest.raises(errors.CorruptStoreError, match="damaged"):
        protocol.read_artifact(t, "w.bin")
    with pytest.raises(errors.CorruptStoreError), protocol.open_artifact(t, "w.bin") as f:
        while f.read(100_000):
            pass
    pg_admin.execute(f"UPDATE {chunks} SET data = set_byte(data, 7, 255 - get_byte(data, 7)) WHERE seq = 1")
    assert protocol.read_artifact(t, "w.bin") == data  # flipped back: whole again
    pg_admin.execute(f"DELETE FROM {chunks} WHERE seq = 2")
    with pytest.raises(errors.CorruptStoreError, match="damaged"):
        protocol.read_artifact(t, "w.bin")


def test_reads_fetch_the_rows_as_they_go(pg_uri: str, pg_admin: Any, pg_schema: str) -> None:
    rows = blobstore._FETCH_ROWS
    data = os.urandom((rows + 3) * MIB)
    with open_store(pg_uri) as s:
        with s.blob_writer() as w:
            w.write(data)
        sha = hashlib.sha256(data).hexdigest()
        with s.open_blob(sha) as f:
            assert f.read(1000) == data[:1000]  # the first rows are fetched, not the blob
            pg_admin.execute(f"DELETE FROM {_table(pg_schema, 'blob_chunks')} WHERE seq >= {rows}")
            assert f.read() == data[1000 : rows * MIB]  # what was deleted since is not there to read


# -- the same content twice ------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ["read_committed", "serializable"])
@pytest.mark.parametrize("copy", [True, False], ids=["copy", "insert"])
def test_an_upload_of_stored_content_keeps_one_copy(
    pg_uri: str, pg_admin: Any, pg_schema: str, monkeypatch: pytest.MonkeyPatch, isolation: str, copy: bool
) -> None:
    """The later upload began before the first committed: at SERIALIZABLE its commit fails and is settled."""
    monkeypatch.setattr(blobstore, "USE_COPY", copy)
    data = os.urandom(2 * MIB + 5)
    sha = hashlib.sha256(data).hexdigest()
    with open_store(with_options(pg_uri, isolation=isolation)) as s:
        late = s.blob_writer()
        late.write(data)  # two full chunks sent: its transaction is open, with its snapshot
        with s.blob_writer() as first:
            first.write(data)
        stored = s.stat_blob(sha)
        assert stored is not None
        again = late.commit()
        assert again.sha256 == sha and again.created >= stored.created
        assert [(b.sha256, b.size) for b in s.list_blobs()] == [(sha, len(data))]
        stat = s.stat_blob(sha)
        assert stat is not None and stat.created == again.created
        with s.open_blob(sha) as f:
            assert f.read() == data
    ids = pg_admin.execute(f"SELECT count(DISTINCT id), count(*) FROM {_table(pg_schema, 'blob_chunks')}").fetchone()
    row = blobstore.CHUNK_SIZE if copy else blobstore.ROW_SIZE
    assert tuple(ids) == (1, -(-len(data) // row))


def test_a_blob_is_deleted_with_its_chunks(pg_uri: str, pg_admin: Any, pg_schema: str) -> None:
    with open_store(pg_uri) as s:
        shas = []
        for size in (0, 10, 3 * MIB):
            data = os.urandom(size)
            with s.blob_writer() as w:
                w.write(data)
            shas.append(hashlib.sha256(data).hexdigest())
        with s.open_blob(shas[0]) as f:
            assert f.read() == b""
        chunks = f"SELECT count(*) FROM {_table(pg_schema, 'blob_chunks')}"
        assert pg_admin.execute(chunks).fetchone()[0] == 4
        assert s.delete_blob(shas[2]) and s.delete_blob(shas[0])
        assert pg_admin.execute(chunks).fetchone()[0] == 1
        assert [b.sha256 for b in s.list_blobs()] == [shas[1]]


# -- 300 MB in bounded memory ------------------------------------------------------------------------

_BIG_CHILD = """
import hashlib, json, resource, sys, tracemalloc
from track_backends import Trial, get_protocol
uri, path = sys.argv[1], sys.argv[2]
with get_protocol(uri) as p:
    t = p.new_trial(Trial({"big": 1}))
    p.put_artifact(t, "warm-up", b"x" * 3_000_000)  # pools, COPY and the reader's code paths are loaded
    p.read_artifact(t, "warm-up")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    info = p.put_artifact(t, "big.bin", path)
    h, n = hashlib.sha256(), 0
    with p.open_artifact(t, "big.bin") as f:
        while piece := f.read(1 << 20):
            h.update(piece)
            n += len(piece)
    peak = tracemalloc.get_traced_memory()[1]
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    print(json.dumps({"sha": info.sha256, "size": info.size, "read_sha": h.hexdigest(), "read": n,
                      "traced_peak": peak, "rss_growth": rss}))
"""


def test_a_300_mb_artifact_streams_in_bounded_memory(pg_uri: str, tmp_path: Path) -> None:
    size = 300 * MIB + 12345
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        block = os.urandom(MIB)
        for i in range(size // MIB + 1):
            piece = (block[i % 251 :] + block[: i % 251])[: min(MIB, size - i * MIB)]
            digest.update(piece)
            f.write(piece)
    run = subprocess.run(
        [sys.executable, "-c", _BIG_CHILD, pg_uri, str(path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert (got["sha"], got["size"]) == (digest.hexdigest(), size)
    assert (got["read_sha"], got["read"]) == (digest.hexdigest(), size)
    assert got["traced_peak"] < 64 * MIB, got
    assert got["rss_growth"] < 64 * MIB, got


# -- kill -9 half-way --------------------------------------------------------------------------------

_KILLED_CHILD = """
import io, os, sys, time
from track_backends import get_protocol
uri, uid = sys.argv[1], sys.argv[2]
block = os.urandom(1 << 20)

class Slow(io.RawIOBase):
    sent = 0
    def readable(self):
        return True
    def readinto(self, buffer):
        n = min(len(buffer), len(block))
        buffer[:n] = block[:n]
        self.sent += n
        if self.sent >= 24 << 20:
            print("sent", self.sent, flush=True)
            time.sleep(0.05)
        return n

with get_protocol(uri) as p:
    p.put_artifact(uid, "never.bin", Slow())
"""


def test_an_upload_killed_half_way_leaves_nothing(pg_uri: str, pg_admin: Any, pg_schema: str) -> None:
    app = f"tb_kill_{uuid.uuid4().hex[:8]}"
    uri = with_options(pg_uri, application_name=app)
    with get_protocol(uri) as p:
        t = _trial(p)
        p.put_artifact(t, "kept.bin", b"an artifact from before")
    chunks = _table(pg_schema, "blob_chunks")
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, uri, t.uid], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = child.stdout.readline() if child.stdout else b""
        assert line.startswith(b"sent"), child.stderr.read().decode() if child.stderr else line
        # the upload is under way: a transaction of the child writes, and the chunks take room on disk
        writing = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' AND backend_xid IS NOT NULL"
        assert pg_admin.execute(writing).fetchone()[0] == 1
        written = f"SELECT pg_total_relation_size('{chunks}')"
        deadline = time.monotonic() + 30
        while pg_admin.execute(written).fetchone()[0] < 16 * MIB and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pg_admin.execute(written).fetchone()[0] >= 16 * MIB
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    gone = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
    deadline = time.monotonic() + 30
    while pg_admin.execute(gone).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pg_admin.execute(gone).fetchone()[0] == 0, "the server kept the killed upload's session"
    with get_protocol(pg_uri) as p:
        assert [a.name for a in p.list_artifacts(t)] == ["kept.bin"]
        assert [b.size for b in p.store.list_blobs()] == [len(b"an artifact from before")]
    assert pg_admin.execute(f"SELECT count(*) FROM {chunks}").fetchone()[0] == 1
    pg_admin.execute(f"VACUUM {chunks}")  # the aborted rows are dead: vacuum gives their room back
    assert pg_admin.execute(f"SELECT pg_total_relation_size('{chunks}')").fetchone()[0] < 4 * MIB


# -- layouts ---------------------------------------------------------------------------------------


def test_a_layout_2_schema_gets_the_blob_tables(pg_uri: str, pg_admin: Any, pg_schema: str) -> None:
    """Layout 2 (the release before blobs) is layout 3 without the blob tables: made so, it upgrades."""
    with get_protocol(pg_uri) as p:
        t = _trial(p)
        p.log_trial_metrics(t, step=0, loss=0.5)
    pg_admin.execute(f"DROP TABLE {_table(pg_schema, 'blobs')}, {_table(pg_schema, 'blob_chunks')}")
    meta = _table(pg_schema, "meta")
    pg_admin.execute(f"UPDATE {meta} SET value = '2'::jsonb WHERE key = 'schema_version'")
    data = os.urandom(2 * MIB + 1)
    procs = [get_protocol(pg_uri) for _ in range(3)]  # three handles bootstrap at once: migrated once
    failed: list[BaseException] = []

    def first_use(q: DocumentProtocol) -> None:
        try:
            q.store.count("trials")
        except BaseException as e:  # noqa: BLE001 - reported below
            failed.append(e)

    try:
        threads = [threading.Thread(target=first_use, args=(q,)) for q in procs]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert failed == []
        assert procs[0].fetch_trials()[0].metrics == {"loss": [(0, 0.5)]}
        procs[1].put_artifact(t.uid, "after.bin", data)
        assert procs[2].read_artifact(t.uid, "after.bin") == data
    finally:
        for q in procs:
            q.close()
    version = pg_admin.execute(f"SELECT value FROM {meta} WHERE key = 'schema_version'").fetchone()[0]
    assert version == pgschema.SCHEMA_VERSION == 3
