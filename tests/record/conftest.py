"""Fixtures of the record tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from track_backends import get_protocol


@pytest.fixture
def proto() -> Iterator[Any]:
    """A Protocol over a fresh ``ephemeral:`` store."""
    with get_protocol("ephemeral:") as p:
        yield p


@pytest.fixture(params=["pickled", "file"])
def journal_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh journal store that processes share: ``pickled:`` or ``file:`` (fsync off for speed)."""
    ext = "pkl" if request.param == "pickled" else "jsonl"
    return f"{request.param}://{tmp_path}/store.{ext}?fsync=false"
