"""``track-backends artifact`` and ``show --artifacts``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from track_backends import Trial, get_protocol


def _cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "track_backends.cli", *args], capture_output=True, check=False)


def _store(tmp_path: Path) -> tuple[str, str, str]:
    uri = f"file://{tmp_path}/store.jsonl"
    with get_protocol(uri) as proto:
        t = proto.new_trial(Trial({"cli": 1}))
        assert t is not None
        info = proto.put_artifact(t, "m/data.bin", bytes(range(256)) * 100, metadata={"k": "v"})
        proto.put_artifact(t, "a.txt", b"hello")
    return uri, t.uid, info.sha256


def test_list_and_write_out(tmp_path: Path) -> None:
    uri, uid, sha = _store(tmp_path)
    listed = _cli("artifact", uri, uid[:10])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.decode().splitlines() == [
        f"a.txt\t5\ttext/plain\t{hashlib.sha256(b'hello').hexdigest()}",
        f"m/data.bin\t25600\tapplication/octet-stream\t{sha}",
    ]
    out = _cli("artifact", uri, uid, "a.txt")
    assert out.returncode == 0 and out.stdout == b"hello"
    target = tmp_path / "copy.bin"
    assert _cli("artifact", uri, uid, "m/data.bin", "-o", str(target)).returncode == 0
    assert target.read_bytes() == bytes(range(256)) * 100
    missing = _cli("artifact", uri, uid, "nope")
    assert missing.returncode != 0 and b"no artifact 'nope'" in missing.stderr


def test_damaged_artifact_is_not_written_out(tmp_path: Path) -> None:
    uri, uid, sha = _store(tmp_path)
    blob = next(tmp_path.glob(f"store.jsonl.blobs/{sha[:2]}/{sha}"))
    raw = bytearray(blob.read_bytes())
    raw[100] ^= 0xFF
    blob.write_bytes(raw)
    target = tmp_path / "copy.bin"
    got = _cli("artifact", uri, uid, "m/data.bin", "-o", str(target))
    assert got.returncode != 0 and b"damaged" in got.stderr
    assert not target.exists() and list(tmp_path.glob(".artifact-*")) == []


def test_show_lists_artifacts(tmp_path: Path) -> None:
    uri, uid, sha = _store(tmp_path)
    shown = _cli("show", uri, uid, "--artifacts")
    assert shown.returncode == 0, shown.stderr
    arts = json.loads(shown.stdout)["artifacts"]
    assert [(a["name"], a["size"], a["metadata"]) for a in arts] == [
        ("a.txt", 5, {}),
        ("m/data.bin", 25600, {"k": "v"}),
    ]
    assert "artifacts" not in json.loads(_cli("show", uri, uid).stdout)
