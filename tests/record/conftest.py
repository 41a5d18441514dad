"""Fixtures of the record tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["pickled", "file"])
def journal_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh journal store that processes share: ``pickled:`` or ``file:`` (fsync off for speed)."""
    ext = "pkl" if request.param == "pickled" else "jsonl"
    return f"{request.param}://{tmp_path}/store.{ext}?fsync=false"
