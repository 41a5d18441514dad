"""The contract suite on CockroachDB (``cockroach://``), in a testcontainers container.

Runs where a Docker engine answers (or against ``$TRACK_BACKENDS_COCKROACH_URI``, a
``cockroach://`` URI); skipped with the reason otherwise, CI included: CockroachDB needs Docker,
which a CI machine may not have.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from conftest import with_options

from track_backends.testing import ClaimContract, ProtocolContract, StoreContract


@pytest.fixture(scope="module")
def cockroach_server_uri() -> Iterator[str]:
    uri = os.environ.get("TRACK_BACKENDS_COCKROACH_URI")
    if uri:
        yield uri
        return
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as e:  # noqa: BLE001 - any failure means "no Docker engine here"
        pytest.skip(f"no Docker engine answers, so no CockroachDB container: {type(e).__name__}: {e}")
    try:
        from testcontainers.community.cockroachdb import CockroachDBContainer
    except ImportError as e:
        pytest.skip(f"testcontainers cannot run CockroachDB: {e}")
    container = CockroachDBContainer()
    try:
        container.start()
    except Exception as e:  # noqa: BLE001 - an image that cannot be pulled, a daemon error, ...
        pytest.skip(f"CockroachDB container did not start: {e}")
    try:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(container.COCKROACH_DB_PORT)
        yield (
            f"cockroach://{container.username}:{container.password}@{host}:{port}/{container.dbname}"
            "?sslmode=require&connect_timeout=10"
        )
    finally:
        container.stop()


@pytest.fixture
def cockroach_uri(cockroach_server_uri: str) -> str:
    return with_options(cockroach_server_uri, schema=f"c_{uuid.uuid4().hex[:10]}")


class TestCockroach(StoreContract, ProtocolContract):
    multiprocess = True

    @pytest.fixture
    def store_uri(self, cockroach_uri: str) -> str:
        return cockroach_uri


class TestCockroachClaims(ClaimContract):
    multiprocess = True
    claim_trials = 500

    @pytest.fixture
    def store_uri(self, cockroach_uri: str) -> str:
        return cockroach_uri
