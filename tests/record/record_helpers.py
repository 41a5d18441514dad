"""Helpers of the record tests: running ``record_workers.py`` in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKERS = Path(__file__).resolve().parent / "record_workers.py"


def worker_env() -> dict[str, str]:
    """The environment of a worker: this checkout's package first on the path."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def start_worker(*args: str) -> subprocess.Popen[str]:
    """Start ``record_workers.py`` with arguments (the caller waits for it with :func:`finish`)."""
    return subprocess.Popen(
        [sys.executable, str(WORKERS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(),
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60, code: int = 0) -> str:
    """Wait for a worker, check its exit code, and return its stdout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"worker timed out:\n{err[-3000:]}") from None
    assert proc.returncode == code, f"worker exited {proc.returncode}, expected {code}:\n{err[-3000:]}"
    return out


def run_worker(*args: str, timeout: float = 60, code: int = 0) -> str:
    """Run a worker to its end; return its stdout."""
    return finish(start_worker(*args), timeout=timeout, code=code)
