"""Shared pieces of the artifact tests: a big source file, the peak-memory and kill-9 workers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
LIMIT = 64 * (1 << 20)


def big_file(path: Path, mib: int) -> str:
    """Write ``mib`` MiB of varied bytes to ``path``; return their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            chunk = i.to_bytes(8, "little") + block[8:]
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def peak_round_trip(uri: str, source: Path, env: dict[str, str] | None = None) -> tuple[int, str, str, int]:
    """Upload and stream back ``source`` in a fresh process; return (size, sha, read sha, peak bytes)."""
    out = subprocess.run(
        [sys.executable, str(HERE / "peak_worker.py"), uri, str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    size, sha, read_sha, peak = out.stdout.split()
    return int(size), sha, read_sha, int(peak)


def start_slow_upload(uri: str, trial_uid: str, chunks: int = 400) -> subprocess.Popen[str]:
    """Start a process uploading ``chunks`` MiB slowly; returns once it has sent a few chunks."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "upload_worker.py"), uri, trial_uid, str(chunks)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for _ in range(5):
        line = proc.stdout.readline()
        assert line.startswith("chunk"), (line, proc.stderr.read() if proc.stderr else "")
    return proc
