"""Artifacts of the journal stores: blob files beside the journal, damage, big files, kill -9, gc."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from track_backends import CorruptStoreError, Trial, get_protocol
from track_backends.gc import collect_garbage

from .helpers import LIMIT, big_file, peak_round_trip, start_slow_upload


@pytest.fixture(params=["pickled", "file"])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"{request.param}://{tmp_path}/store.{'pkl' if request.param == 'pickled' else 'jsonl'}"


def _blob_file(tmp_path: Path, sha: str) -> Path:
    (found,) = [p for p in tmp_path.glob(f"store.*.blobs/{sha[:2]}/{sha}")]
    return found


def test_blobs_are_files_beside_the_journal(uri: str, tmp_path: Path) -> None:
    proto = get_protocol(uri)
    t = proto.new_trial(Trial({"a": 1}))
    info = proto.put_artifact(t, "x.bin", b"content")
    path = _blob_file(tmp_path, info.sha256)
    assert path.read_bytes() == b"content"
    assert list(path.parent.parent.glob("tmp/*.part")) == []


@pytest.mark.parametrize(
    "damage",
    ["flip", "truncate", "extend", "remove"],
)
def test_damaged_blob_raises_corrupt_store_error(uri: str, tmp_path: Path, damage: str) -> None:
    proto = get_protocol(uri)
    t = proto.new_trial(Trial({"a": 1}))
    data = os.urandom(3 * (1 << 20))
    info = proto.put_artifact(t, "x.bin", data)
    path = _blob_file(tmp_path, info.sha256)
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(raw)
    elif damage == "truncate":
        path.write_bytes(raw[:-1])
    elif damage == "extend":
        path.write_bytes(raw + b"!")
    else:
        path.unlink()
    with pytest.raises(CorruptStoreError, match="x.bin"):
        proto.read_artifact(t, "x.bin")
    if damage != "remove":  # read in pieces: the damage is found by the end at the latest
        with pytest.raises(CorruptStoreError), proto.open_artifact(t, "x.bin") as f:
            while f.read(100_000):
                pass


def test_300_mb_streams_with_bounded_memory(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    sha = big_file(source, 300)
    size, stored, read_back, peak = peak_round_trip(f"file://{tmp_path}/store.jsonl", source)
    assert (size, stored, read_back) == (300 << 20, sha, sha)
    assert peak < LIMIT, f"peak Python memory {peak / 2**20:.1f} MiB"
    source.unlink()


def test_kill_9_mid_upload_leaves_nothing_visible(uri: str, tmp_path: Path) -> None:
    proto = get_protocol(uri)
    t = proto.new_trial(Trial({"a": 1}))
    proto.put_artifact(t, "half.bin", b"the previous version")
    proc = start_slow_upload(uri, t.uid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    parts = list(tmp_path.glob("store.*.blobs/tmp/*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size >= 1 << 20  # the dead upload's leftover
    fresh = get_protocol(uri)
    assert fresh.read_artifact(t.uid, "half.bin") == b"the previous version"
    assert [b.sha256 for b in fresh.store.list_blobs()] == [hashlib.sha256(b"the previous version").hexdigest()]
    report = collect_garbage(fresh.store, grace=0)
    assert (report.uploads, report.deleted, report.referenced) == (1, 0, 1)
    assert list(tmp_path.glob("store.*.blobs/tmp/*.part")) == []


def test_gc_command(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/store.jsonl"
    proto = get_protocol(uri)
    t = proto.new_trial(Trial({"a": 1}))
    proto.put_artifact(t, "keep", b"kept")
    proto.put_artifact(t, "drop", b"dropped" * 1000)
    proto.delete_artifact(t, "drop")
    proto.close()

    def gc(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "track_backends.cli", "gc", uri, *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "would delete 0" in gc("--dry-run") and "1 younger" in gc("--dry-run")
    assert "would delete 1 (6.8 KiB)" in gc("--dry-run", "--grace", "0")
    assert "deleted 1 (6.8 KiB)" in gc("--grace", "0")
    assert "1 blob(s): 1 referenced" in gc("--grace", "0")
    assert get_protocol(uri).read_artifact(t.uid, "keep") == b"kept"
    bad = subprocess.run(
        [sys.executable, "-m", "track_backends.cli", "gc", uri, "--grace", "-5"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "grace" in bad.stderr
