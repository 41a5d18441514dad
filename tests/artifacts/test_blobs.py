"""The shared blob pieces: VerifiedReader, BlobWriter's commit/abort rules, names and addresses."""

from __future__ import annotations

import hashlib
import io

import pytest

from track_backends import errors
from track_backends.blobs import VerifiedReader, check_sha
from track_backends.protocol.artifacts import check_artifact_name
from track_backends.registry import open_store

DATA = bytes(range(256)) * 4000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize("piece", [1, 4096, len(DATA), len(DATA) + 1, -1])
def test_verified_reader_passes_good_bytes(piece: int) -> None:
    with VerifiedReader(io.BytesIO(DATA), SHA, len(DATA), "test") as f:
        got = f.read() if piece == -1 else b"".join(iter(lambda: f.read(piece), b""))
    assert got == DATA


@pytest.mark.parametrize(
    ("stored", "size"),
    [(DATA[:-1], len(DATA)), (DATA + b"x", len(DATA)), (b"\x01" + DATA[1:], len(DATA))],
    ids=["short", "long", "flipped"],
)
def test_verified_reader_catches_damage(stored: bytes, size: int) -> None:
    with pytest.raises(errors.CorruptStoreError, match="the thing is damaged"):
        VerifiedReader(io.BytesIO(stored), SHA, size, "the thing").read()
    f = VerifiedReader(io.BytesIO(stored), SHA, size, "the thing")
    with pytest.raises(errors.CorruptStoreError):
        while f.read(1000):
            pass


def test_writer_commits_once_and_aborts_on_error() -> None:
    store = open_store("ephemeral:")
    w = store.blob_writer()
    w.write(b"abc")
    stat = w.commit()
    assert stat.sha256 == hashlib.sha256(b"abc").hexdigest() and stat.size == 3
    with pytest.raises(ValueError):
        w.write(b"more")
    with pytest.raises(ValueError):
        w.commit()
    with pytest.raises(RuntimeError), store.blob_writer() as w2:
        w2.write(b"lost")
        raise RuntimeError("boom")
    assert [b.sha256 for b in store.list_blobs()] == [stat.sha256]


@pytest.mark.parametrize("bad", ["", "g" * 64, "A" * 64, "a" * 63, None, 5, "../" + "a" * 61])
def test_check_sha(bad: object) -> None:
    with pytest.raises(errors.QueryError):
        check_sha(bad)


@pytest.mark.parametrize("good", ["a", "a/b/c.txt", "plots/loss curve.png", "ünïcode/名前", ".hidden", "a..b"])
def test_good_names(good: str) -> None:
    assert check_artifact_name(good) == good
