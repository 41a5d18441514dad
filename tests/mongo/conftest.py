"""Fixtures for the MongoDB store tests: a fresh database per test on each server.

Servers, each test getting a database of its own (dropped afterwards):

* ``mongomock://`` in process (always available with the test extra);
* the MongoDB-wire server of the root ``mongo_wire_uri`` fixture: SecantusDB started here, or
  ``$TRACK_BACKENDS_MONGO_URI``. Skipped when it cannot start, except under ``CI=true``, where
  that fails the run;
* a MongoDB in Docker through testcontainers (image ``$TRACK_BACKENDS_MONGO_IMAGE``, default
  ``mongo:7``), skipped with the reason when no Docker engine answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from mongo_helpers import Server, fresh_name, require, with_database


@pytest.fixture(scope="session")
def wire_server(mongo_wire_client: Any) -> str:
    """``"secantus"`` when the wire server is SecantusDB, else ``"mongodb"``."""
    info = mongo_wire_client.admin.command("buildInfo")
    return "secantus" if "secantusVersion" in info else "mongodb"


@pytest.fixture
def secantus_uri(mongo_wire_uri: str, mongo_wire_client: Any) -> Iterator[str]:
    """A ``mongodb://`` URI of a fresh database on the wire server (SecantusDB by default)."""
    name = fresh_name()
    yield with_database(mongo_wire_uri, name)
    mongo_wire_client.drop_database(name)


@pytest.fixture
def mock_uri() -> Iterator[str]:
    """A ``mongomock://`` URI of a fresh database."""
    require("mongomock")
    from track_backends.stores.mongo.drivers import shared_mongomock_client

    name = fresh_name()
    yield f"mongomock://{name}"
    client = shared_mongomock_client()
    if client is not None:
        client.drop_database(name)


@pytest.fixture(scope="session")
def container_mongo_uri() -> Iterator[str]:
    """The URI of a MongoDB started in Docker by testcontainers (skipped without Docker)."""
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as e:  # noqa: BLE001 - no engine, no socket, no permission: all mean "no Docker"
        pytest.skip(f"no Docker engine answers ({type(e).__name__}: {str(e)[:160]}); testcontainers needs one")
    try:
        from testcontainers.mongodb import MongoDbContainer
    except ImportError as e:
        pytest.skip(f"testcontainers[mongodb] is not installed: {e}")
    container = MongoDbContainer(os.environ.get("TRACK_BACKENDS_MONGO_IMAGE", "mongo:7"))
    try:
        container.start()
    except Exception as e:  # noqa: BLE001 - e.g. the image cannot be pulled
        pytest.skip(f"the MongoDB container did not start: {str(e)[:200]}")
    try:
        yield with_database(container.get_connection_url(), "admin")  # the root user lives in admin
    finally:
        container.stop()


@pytest.fixture(scope="session")
def container_client(container_mongo_uri: str) -> Iterator[Any]:
    """A pymongo client of the testcontainers MongoDB."""
    import pymongo

    client: Any = pymongo.MongoClient(container_mongo_uri, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def container_uri(container_mongo_uri: str, container_client: Any) -> Iterator[str]:
    """A ``mongodb://`` URI of a fresh database on the testcontainers MongoDB."""
    name = fresh_name()
    yield with_database(container_mongo_uri, name)
    container_client.drop_database(name)


@pytest.fixture(scope="module", params=["wire", "container"])
def server(request: pytest.FixtureRequest) -> Server:
    """Each real server in turn: the ``mongo_wire_uri`` one (SecantusDB), then testcontainers'."""
    if request.param == "wire":
        uri = request.getfixturevalue("mongo_wire_uri")
        return Server(uri, request.getfixturevalue("wire_server"), request.getfixturevalue("mongo_wire_client"))
    uri = request.getfixturevalue("container_mongo_uri")
    return Server(uri, "mongodb", request.getfixturevalue("container_client"))
