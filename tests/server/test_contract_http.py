"""The contract suite through ``track-backends serve``: a real, fresh server subprocess per test."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from serve_helpers import Served

from track_backends.testing import (
    ArtifactContract,
    ClaimContract,
    LeaseContract,
    PointsContract,
    ProtocolContract,
    StoreContract,
)

ALL = (StoreContract, ProtocolContract, ClaimContract, LeaseContract, PointsContract, ArtifactContract)


class TestHttpEphemeral(*ALL):  # type: ignore[misc]
    """Plain HTTP on loopback, no tokens, in front of the memory store."""

    multiprocess = True  # the server's memory is shared by every client
    claim_trials = 600

    @pytest.fixture
    def store_uri(self, pooled: Callable[..., Served]) -> str:
        return pooled("ephemeral:").uri()


class TestHttpsPickled(*ALL):  # type: ignore[misc]
    """HTTPS with an admin token in the URI, in front of a journal file."""

    multiprocess = True
    claim_trials = 600

    @pytest.fixture
    def store_uri(self, pooled: Callable[..., Served], tokens: dict[str, str], tls_files: tuple[str, str, str]) -> str:
        server = pooled("pickled://{dir}/{n}.pkl", "--tokens", tokens["file"], tls=tls_files)
        return server.uri(tokens["admin"])


def _load_pg_fixtures() -> object:
    """tests/postgres/conftest.py under a name of its own (its fixtures stay where they are)."""
    path = Path(__file__).resolve().parents[1] / "postgres" / "conftest.py"
    spec = importlib.util.spec_from_file_location("tb_server_tests_pg_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_pg = _load_pg_fixtures()
pg_server_uri = _pg.pg_server_uri  # type: ignore[attr-defined]  # a fixture: pytest finds it in this module
_TAG = uuid.uuid4().hex[:8]


class TestHttpPostgres(*ALL):  # type: ignore[misc]
    """Plain HTTP with an admin token in front of PostgreSQL (pgserver, or ``$TRACK_BACKENDS_PG_URI``)."""

    multiprocess = True
    claim_trials = 300

    @pytest.fixture
    def store_uri(self, pooled: Callable[..., Served], pg_server_uri: str, tokens: dict[str, str]) -> str:
        uri = _pg.with_options(pg_server_uri, schema=f"srv_{_TAG}_{{n}}")  # type: ignore[attr-defined]
        return pooled(uri, "--tokens", tokens["file"]).uri(tokens["admin"])
