"""Blobs of the MongoDB store in its GridFS bucket: layout, damage, races, dead uploads, big artifacts.

The ArtifactContract itself runs in ``test_mongo_contract.py``; these tests look at what only
GridFS has: the ``blobs.files``/``blobs.chunks`` documents, chunks damaged behind the store's
back, the unique index that settles racing uploads, and the orphan chunks of an upload killed
with ``kill -9`` (a real subprocess), which nothing lists and ``clean_uploads`` removes.
"""

from __future__ import annotations

import hashlib
import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from track_backends import errors
from track_backends.blobs import CHUNK_SIZE
from track_backends.gc import collect_garbage
from track_backends.model import Trial
from track_backends.protocol import DocumentProtocol
from track_backends.registry import get_protocol
from track_backends.stores.mongo import MongoStore

MIB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]
BIG_MIB = 300
"""Size of the big artifact, in MiB (SecantusDB streams 300 MiB in and out in a few seconds)."""
PEAK_LIMIT = 64 * MIB
UNSENT_MIB = 8
"""MiB written by the uploads that die (each full 1 MiB chunk is sent at once)."""


@pytest.fixture(params=["mongomock", "secantus", "container"])
def uri(request: pytest.FixtureRequest) -> str:
    """A fresh database on mongomock, on SecantusDB and on the testcontainers MongoDB."""
    fixture = {"mongomock": "mock_uri", "secantus": "secantus_uri", "container": "container_uri"}[request.param]
    return str(request.getfixturevalue(fixture))


@pytest.fixture(params=["secantus", "container"])
def server_uri(request: pytest.FixtureRequest) -> str:
    """A fresh database on a real MongoDB-wire server (SecantusDB, testcontainers)."""
    return str(request.getfixturevalue(f"{request.param}_uri"))


@pytest.fixture
def protocol(uri: str) -> Iterator[DocumentProtocol]:
    p = get_protocol(uri)
    yield p
    p.close()


def _mongo(protocol: DocumentProtocol) -> MongoStore:
    store = protocol.store
    assert isinstance(store, MongoStore)
    return store


def _files(store: MongoStore) -> Any:
    return store.database["blobs.files"]


def _chunks(store: MongoStore) -> Any:
    return store.database["blobs.chunks"]


def _trial(protocol: DocumentProtocol) -> Trial:
    t = protocol.new_trial(Trial({"x": 1}))
    assert t is not None
    return t


def _put(store: MongoStore, data: bytes) -> str:
    with store.blob_writer() as w:
        w.write(data)
    return hashlib.sha256(data).hexdigest()


def test_blobs_are_gridfs_files_named_by_their_sha256(protocol: DocumentProtocol) -> None:
    store = _mongo(protocol)
    data = os.urandom(2 * CHUNK_SIZE + 10)
    t0 = store.now()
    info = protocol.put_artifact(_trial(protocol), "w.bin", data)
    [doc] = list(_files(store).find())
    assert (doc["filename"], doc["length"], doc["chunkSize"]) == (info.sha256, len(data), CHUNK_SIZE)
    assert t0 - 1 <= doc["metadata"]["created"] <= store.now() + 1
    chunks = list(_chunks(store).find({"files_id": doc["_id"]}, sort=[("n", 1)]))
    assert [c["n"] for c in chunks] == [0, 1, 2]
    assert b"".join(c["data"] for c in chunks) == data
    stat = store.stat_blob(info.sha256)
    assert stat is not None and (stat.size, stat.created) == (len(data), doc["metadata"]["created"])
    if not protocol.store.scheme.startswith("mongomock"):  # any GridFS client reads it
        import gridfs

        with gridfs.GridFSBucket(store.database, "blobs").open_download_stream_by_name(info.sha256) as f:
            assert f.read() == data
    assert store.delete_blob(info.sha256) is True
    assert _files(store).count_documents({}) == 0 and _chunks(store).count_documents({}) == 0


@pytest.mark.parametrize("damage", ["flipped-byte", "short-chunk", "missing-chunk"])
def test_damaged_chunks_raise_corrupt_store_error(protocol: DocumentProtocol, damage: str) -> None:
    store = _mongo(protocol)
    t = _trial(protocol)
    data = os.urandom(2 * CHUNK_SIZE + 99)
    protocol.put_artifact(t, "a.bin", data)
    chunk = _chunks(store).find_one({"n": 1})
    if damage == "missing-chunk":
        _chunks(store).delete_one({"_id": chunk["_id"]})
    else:
        bad = bytearray(chunk["data"])
        if damage == "flipped-byte":
            bad[12345] ^= 0x01
        else:
            del bad[-1]
        _chunks(store).update_one({"_id": chunk["_id"]}, {"$set": {"data": bytes(bad)}})
    with pytest.raises(errors.CorruptStoreError):
        protocol.read_artifact(t, "a.bin")
    with pytest.raises(errors.CorruptStoreError), protocol.open_artifact(t, "a.bin") as f:
        while f.read(65_536):
            pass


def test_storing_existing_bytes_keeps_one_copy_and_refreshes_its_time(protocol: DocumentProtocol) -> None:
    store = _mongo(protocol)
    data = os.urandom(CHUNK_SIZE + 1)
    sha = _put(store, data)
    _files(store).update_one({"filename": sha}, {"$set": {"metadata.created": 1000.0}})
    with store.blob_writer() as w:
        w.write(data)
    stat = store.stat_blob(sha)
    assert stat is not None and abs(stat.created - store.now()) < 60
    assert _files(store).count_documents({}) == 1 and _chunks(store).count_documents({}) == 2


def test_an_upload_that_loses_the_race_deletes_its_own_chunks(
    protocol: DocumentProtocol, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both uploads pass the "stored already?" check; the unique index on filename decides."""
    store = _mongo(protocol)
    data = os.urandom(3 * CHUNK_SIZE)
    loser = store.blob_writer()
    loser.write(data)
    sha = _put(store, data)  # the winner commits first
    _files(store).update_one({"filename": sha}, {"$set": {"metadata.created": 1000.0}})
    real = store._refresh
    answers = [False]  # the loser's first check misses the winner's files document
    monkeypatch.setattr(store, "_refresh", lambda s, now: answers.pop() if answers else real(s, now))
    stat = loser.commit()
    assert stat.sha256 == sha and not answers
    assert [b.sha256 for b in store.list_blobs()] == [sha]
    assert _files(store).count_documents({}) == 1 and _chunks(store).count_documents({}) == 3
    got = store.stat_blob(sha)
    assert got is not None and got.created > 1000.0  # the winner's blob was made young again
    with store.open_blob(sha) as f:
        assert f.read() == data


def test_concurrent_uploads_of_the_same_bytes_leave_one_copy(server_uri: str) -> None:
    protocol = get_protocol(server_uri)
    try:
        store = _mongo(protocol)
        data = os.urandom(3 * CHUNK_SIZE + 7)
        barrier = threading.Barrier(4)
        failures: list[BaseException] = []

        def upload() -> None:
            try:
                w = store.blob_writer()
                w.write(data)
                barrier.wait()
                w.commit()
            except BaseException as e:  # noqa: BLE001 - reported below
                failures.append(e)

        threads = [threading.Thread(target=upload) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert failures == []
        assert _files(store).count_documents({}) == 1 and _chunks(store).count_documents({}) == 4
        with store.open_blob(hashlib.sha256(data).hexdigest()) as f:
            assert f.read() == data
    finally:
        protocol.close()


def test_an_abandoned_upload_is_invisible_and_cleaned(protocol: DocumentProtocol) -> None:
    """An upload dropped without commit or abort (as by a crash) after some chunks were sent."""
    store = _mongo(protocol)
    kept = _put(store, b"kept")
    w = store.blob_writer()
    for _ in range(UNSENT_MIB):
        w.write(os.urandom(CHUNK_SIZE))
    assert _chunks(store).count_documents({}) > 1  # some chunks reached the server
    assert [b.sha256 for b in store.list_blobs()] == [kept]
    assert store.clean_uploads(store.now() - 3600) == 0  # young: maybe still uploading
    time.sleep(1.1)  # ObjectId times have one-second resolution
    assert store.clean_uploads(store.now()) == 1
    assert _chunks(store).count_documents({}) == 1  # the kept blob's
    assert store.clean_uploads(store.now()) == 0
    with store.open_blob(kept) as f:
        assert f.read() == b"kept"


_CHILD = """
import os, sys, time
from track_backends.registry import open_store
store = open_store(sys.argv[1])
w = store.blob_writer()
block = os.urandom(1 << 20)
for i in range(int(sys.argv[2])):
    w.write(i.to_bytes(8, "big") + block[8:])
print("written", flush=True)
time.sleep(600)
"""


def test_kill_9_mid_upload_leaves_nothing_visible(server_uri: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-c", _CHILD, server_uri, str(UNSENT_MIB)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    protocol = get_protocol(server_uri)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready and proc.stdout.readline().strip() == b"written", "the uploader did not get going"
        store = _mongo(protocol)
        orphans = _chunks(store).count_documents({})
        assert orphans > 0  # the killed upload's chunks are on the server ...
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert list(store.list_blobs()) == [] and _files(store).count_documents({}) == 0  # ... but no blob
        young = collect_garbage(store)  # the default grace keeps them
        assert (young.blobs, young.uploads) == (0, 0) and _chunks(store).count_documents({}) == orphans
        time.sleep(1.1)
        done = collect_garbage(store, grace=0)
        assert done.uploads == 1 and _chunks(store).count_documents({}) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        protocol.close()


class _Generated(io.RawIOBase):
    """``chunks`` MiB of distinct chunks, made on the fly (the whole content is never held)."""

    def __init__(self, chunks: int, block: bytes) -> None:
        self.left = chunks
        self.i = 0
        self.block = block

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left == 0:
            return 0
        assert len(buffer) >= MIB
        buffer[:MIB] = self.i.to_bytes(8, "big") + self.block[8:]
        self.i += 1
        self.left -= 1
        return MIB


def test_a_big_artifact_streams_in_and_out_in_bounded_memory(server_uri: str) -> None:
    block = os.urandom(MIB)
    expect = hashlib.sha256()
    for i in range(BIG_MIB):
        expect.update(i.to_bytes(8, "big") + block[8:])
    protocol = get_protocol(server_uri)
    try:
        t = _trial(protocol)
        tracemalloc.start()
        try:
            info = protocol.put_artifact(t, "big.bin", io.BufferedReader(_Generated(BIG_MIB, block), MIB))
            up = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            got = hashlib.sha256()
            n = 0
            with protocol.open_artifact(t, "big.bin") as f:
                while piece := f.read(MIB):
                    got.update(piece)
                    n += len(piece)
            down = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert (info.size, info.sha256) == (BIG_MIB * MIB, expect.hexdigest())
        assert (n, got.hexdigest()) == (BIG_MIB * MIB, expect.hexdigest())
        print(f"peak traced memory: upload {up / MIB:.1f} MiB, download {down / MIB:.1f} MiB")
        assert up < PEAK_LIMIT, f"upload peak {up / MIB:.1f} MiB"
        assert down < PEAK_LIMIT, f"download peak {down / MIB:.1f} MiB"
    finally:
        protocol.close()


def test_a_closed_store_refuses_blob_calls(uri: str) -> None:
    protocol = get_protocol(uri)
    store = _mongo(protocol)
    sha = _put(store, b"x")
    protocol.close()
    for call in (
        store.blob_writer,
        lambda: store.open_blob(sha),
        lambda: store.stat_blob(sha),
        lambda: store.delete_blob(sha),
        lambda: list(store.list_blobs()),
        lambda: store.clean_uploads(0),
    ):
        with pytest.raises(errors.StoreUnavailableError):
            call()


def test_mongomock_without_pymongo_refuses_blobs_up_front(mock_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """GridFS reads need pymongo's gridfs package; without it no upload starts (none could be read)."""
    monkeypatch.setitem(sys.modules, "gridfs", None)  # import gridfs now raises ImportError
    protocol = get_protocol(mock_uri)
    try:
        t = _trial(protocol)
        with pytest.raises(errors.DriverNotInstalledError, match=r"track-backends\[mongo\]"):
            protocol.put_artifact(t, "x", b"data")
        with pytest.raises(errors.DriverNotInstalledError):
            protocol.store.blob_writer()
        assert list(protocol.store.list_blobs()) == [] and protocol.list_artifacts(t) == []
    finally:
        protocol.close()
