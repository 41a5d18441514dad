"""Artifacts and blobs on any store: round trips, streaming, dedup, names, failures, fencing, gc."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest

from .. import errors
from ..blobs import VerifiedReader, copy_blob
from ..gc import collect_garbage
from ..model import Trial
from ..protocol import DocumentProtocol
from ..protocol.artifacts import ARTIFACTS
from ..registry import get_protocol, open_store
from ..store import Store
from .base import _Base

BAD_NAMES = ["", "/abs", "../up", "a/../b", "a/./b", "a//b", "a/", "nul\x00", "tab\tname", "back\\slash", "x" * 513]


def _trial(protocol: DocumentProtocol, i: int = 0) -> Trial:
    t = protocol.new_trial(Trial({"artifact": i}))
    assert t is not None
    return t


def _blobs(store: Store) -> dict[str, int]:
    return {b.sha256: b.size for b in store.list_blobs()}


class _Failing(io.RawIOBase):
    """A source that yields some bytes, then fails like a dying producer."""

    def __init__(self, before: int) -> None:
        self.left = before

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            raise OSError("the producer died")
        n = min(len(buffer), self.left)
        buffer[:n] = b"z" * n
        self.left -= n
        return n


class ArtifactContract(_Base):
    """``put_artifact``/``open_artifact``/``list_artifacts``/``delete_artifact``, blobs and ``gc``."""

    def test_round_trip_bytes_path_and_file(self, protocol: DocumentProtocol, tmp_path: Path) -> None:
        t = _trial(protocol)
        data = os.urandom(3 * (1 << 20) + 17)  # several chunks, not a multiple of the chunk size
        src = tmp_path / "weights.bin"
        src.write_bytes(data)
        a = protocol.put_artifact(t, "model/weights.bin", data, metadata={"epoch": 3, "tags": ["x"]})
        b = protocol.put_artifact(t, "from_path.bin", src)
        c = protocol.put_artifact(t.uid, "from_file.bin", io.BytesIO(data), media_type="application/x-weights")
        d = protocol.put_artifact(t, "notes.txt", b"")
        sha = hashlib.sha256(data).hexdigest()
        assert (a.sha256, a.size, a.metadata, a.trial) == (sha, len(data), {"epoch": 3, "tags": ["x"]}, t.uid)
        assert a.media_type == "application/octet-stream" and c.media_type == "application/x-weights"
        assert d.media_type == "text/plain" and d.size == 0 and d.sha256 == hashlib.sha256(b"").hexdigest()
        assert b.sha256 == c.sha256 == sha
        for name in ("model/weights.bin", "from_path.bin", "from_file.bin"):
            assert protocol.read_artifact(t, name) == data
        assert protocol.read_artifact(t, "notes.txt") == b""
        listed = protocol.list_artifacts(t)
        assert [x.name for x in listed] == ["from_file.bin", "from_path.bin", "model/weights.bin", "notes.txt"]
        assert listed[2] == protocol.get_artifact(t, "model/weights.bin") == a

    def test_streamed_read_in_small_pieces(self, protocol: DocumentProtocol) -> None:
        t = _trial(protocol)
        data = os.urandom((1 << 20) + 999)
        protocol.put_artifact(t, "big", data)
        got = bytearray()
        with protocol.open_artifact(t, "big") as f:
            while piece := f.read(65_537):
                got += piece
        assert bytes(got) == data

    def test_same_name_replaces(self, protocol: DocumentProtocol) -> None:
        t = _trial(protocol)
        protocol.put_artifact(t, "x", b"one")
        info = protocol.put_artifact(t, "x", b"two", metadata={"v": 2})
        assert protocol.read_artifact(t, "x") == b"two"
        assert [a.name for a in protocol.list_artifacts(t)] == ["x"]
        assert protocol.get_artifact(t, "x") == info

    def test_same_bytes_are_stored_once(self, protocol: DocumentProtocol) -> None:
        t1, t2 = _trial(protocol, 1), _trial(protocol, 2)
        data = os.urandom(200_000)
        for t in (t1, t2):
            protocol.put_artifact(t, "a", data)
            protocol.put_artifact(t, "b", data)
        protocol.put_artifact(t1, "c", b"other")
        blobs = _blobs(protocol.store)
        assert blobs == {hashlib.sha256(data).hexdigest(): len(data), hashlib.sha256(b"other").hexdigest(): 5}
        assert protocol.store.count(ARTIFACTS) == 5

    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_bad_names_are_refused_and_nothing_is_stored(self, protocol: DocumentProtocol, name: str) -> None:
        t = _trial(protocol)
        with pytest.raises(errors.ArtifactError):
            protocol.put_artifact(t, name, b"data")
        with pytest.raises(errors.ArtifactError):
            protocol.open_artifact(t, name)
        assert _blobs(protocol.store) == {} and protocol.store.count(ARTIFACTS) == 0

    @pytest.mark.parametrize(
        "kwargs",
        [{"metadata": {"$bad": 1}}, {"metadata": {"f": float("nan") + 1j}}, {"metadata": [1]}, {"media_type": "nope"}],
        ids=["dollar-key", "complex", "not-a-mapping", "media-type"],
    )
    def test_bad_metadata_is_refused_before_upload(self, protocol: DocumentProtocol, kwargs: Any) -> None:
        t = _trial(protocol)
        with pytest.raises(errors.ArtifactError):
            protocol.put_artifact(t, "x", b"data", **kwargs)
        assert _blobs(protocol.store) == {} and protocol.store.count(ARTIFACTS) == 0

    def test_bad_sources_leave_nothing(self, protocol: DocumentProtocol, tmp_path: Path) -> None:
        t = _trial(protocol)
        with pytest.raises(errors.ArtifactError):
            protocol.put_artifact(t, "x", 12345)  # type: ignore[arg-type]
        with pytest.raises(errors.ArtifactError):
            protocol.put_artifact(t, "x", tmp_path / "missing.bin")
        (tmp_path / "text.txt").write_text("text")
        with open(tmp_path / "text.txt") as text, pytest.raises(errors.ArtifactError):
            protocol.put_artifact(t, "x", text)  # type: ignore[arg-type]
        assert _blobs(protocol.store) == {} and protocol.store.count(ARTIFACTS) == 0

    def test_a_failure_half_way_leaves_the_old_artifact(self, protocol: DocumentProtocol) -> None:
        t = _trial(protocol)
        protocol.put_artifact(t, "x", b"old")
        with pytest.raises(OSError, match="producer died"):
            protocol.put_artifact(t, "x", _Failing(3 * (1 << 20)))
        assert protocol.read_artifact(t, "x") == b"old"
        assert list(_blobs(protocol.store)) == [hashlib.sha256(b"old").hexdigest()]

    def test_missing_trial_and_missing_artifact(self, protocol: DocumentProtocol) -> None:
        t = _trial(protocol)
        with pytest.raises(errors.NotFoundError):
            protocol.put_artifact("no-such-trial", "x", b"data")
        assert _blobs(protocol.store) == {}
        with pytest.raises(errors.NotFoundError):
            protocol.open_artifact(t, "nothing")
        with pytest.raises(errors.NotFoundError):
            protocol.get_artifact(t, "nothing")
        with pytest.raises(errors.NotFoundError):
            protocol.delete_artifact(t, "nothing")
        assert protocol.list_artifacts(t) == []

    def test_fenced_by_the_lease(self, protocol: DocumentProtocol) -> None:
        t = _trial(protocol)
        mine = protocol.reserve_trial({"uid": t.uid}, lease=30)
        assert mine is not None
        protocol.put_artifact(mine, "ok", b"mine")
        protocol.store.update("trials", {"uid": t.uid}, {"$inc": {"lease.token": 1}})  # taken over
        with pytest.raises(errors.LeaseLostError):
            protocol.put_artifact(mine, "late", b"late")
        with pytest.raises(errors.LeaseLostError):
            protocol.delete_artifact(mine, "ok")
        assert [a.name for a in protocol.list_artifacts(t)] == ["ok"]

    def test_delete_then_gc(self, protocol: DocumentProtocol) -> None:
        t = _trial(protocol)
        shared, alone = os.urandom(5000), os.urandom(7000)
        protocol.put_artifact(t, "a", shared)
        protocol.put_artifact(t, "b", shared)
        protocol.put_artifact(t, "c", alone)
        protocol.delete_artifact(t, "a")
        protocol.delete_artifact(t, "c")
        assert protocol.read_artifact(t, "b") == shared
        young = collect_garbage(protocol.store)  # default grace: everything is too young to go
        assert (young.deleted, young.young, young.referenced) == (0, 1, 1)
        dry = collect_garbage(protocol.store, grace=0, dry_run=True)
        assert (dry.deleted, dry.freed) == (1, 7000) and len(_blobs(protocol.store)) == 2
        done = collect_garbage(protocol.store, grace=0)
        assert (done.blobs, done.referenced, done.deleted, done.freed) == (2, 1, 1, 7000)
        assert _blobs(protocol.store) == {hashlib.sha256(shared).hexdigest(): 5000}
        assert protocol.read_artifact(t, "b") == shared
        with pytest.raises(errors.QueryError):
            collect_garbage(protocol.store, grace=-1)

    def test_blob_primitives(self, store: Store) -> None:
        data = b"blob" * 1000
        sha = hashlib.sha256(data).hexdigest()
        assert store.stat_blob(sha) is None
        with pytest.raises(errors.NotFoundError):
            store.open_blob(sha)
        with store.blob_writer() as w:
            w.write(data[:10])
            w.write(memoryview(data)[10:])
        stat = store.stat_blob(sha)
        assert stat is not None and (stat.sha256, stat.size) == (sha, len(data))
        assert abs(stat.created - store.now()) < 60
        with store.open_blob(sha) as f:
            assert f.read() == data
        aborted = store.blob_writer()
        aborted.write(b"never visible")
        aborted.abort()
        assert [b.sha256 for b in store.list_blobs()] == [sha]
        with pytest.raises(errors.QueryError):
            store.stat_blob("../etc/passwd")
        assert store.delete_blob(sha) is True and store.delete_blob(sha) is False
        assert list(store.list_blobs()) == []

    def test_copy_blob_between_stores(self, store: Store) -> None:
        data = os.urandom(2 * (1 << 20) + 5)
        with store.blob_writer() as w:
            w.write(data)
        sha = hashlib.sha256(data).hexdigest()
        other = open_store("ephemeral:")
        assert copy_blob(store, other, sha) is True and copy_blob(store, other, sha) is False
        with VerifiedReader(other.open_blob(sha), sha, len(data), "copy") as f:
            assert f.read() == data
        back = open_store("ephemeral:")
        with back.blob_writer() as w:
            w.write(b"from elsewhere")
        sha2 = hashlib.sha256(b"from elsewhere").hexdigest()
        assert copy_blob(back, store, sha2) is True
        with store.open_blob(sha2) as f:
            assert f.read() == b"from elsewhere"

    def test_another_handle_sees_artifacts(self, protocol: DocumentProtocol, store_uri: str) -> None:
        if not self.multiprocess:
            pytest.skip("the store is private to one handle")
        t = _trial(protocol)
        protocol.put_artifact(t, "shared.bin", b"seen elsewhere")
        other = get_protocol(store_uri)
        try:
            assert other.read_artifact(t.uid, "shared.bin") == b"seen elsewhere"
            assert [a.name for a in other.list_artifacts(t.uid)] == ["shared.bin"]
        finally:
            other.close()
