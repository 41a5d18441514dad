"""Shared fixtures: reference servers for differential tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from servers import ServerStartError, start_secantus


def unavailable(reason: str) -> None:
    """Skip a test whose server is unavailable, or fail it under CI (``CI=true``)."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: refusing to skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mongo_wire_uri() -> Iterator[str]:
    """URI of a MongoDB-wire server: ``$TRACK_BACKENDS_MONGO_URI``, else a SecantusDB started here."""
    uri = os.environ.get("TRACK_BACKENDS_MONGO_URI")
    if uri:
        yield uri
        return
    try:
        server = start_secantus()
    except ServerStartError as e:
        unavailable(f"no MongoDB-wire server: {e}")
        return
    try:
        yield server.info["uri"]
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_wire_client(mongo_wire_uri: str) -> Iterator[Any]:
    """A pymongo client connected to :func:`mongo_wire_uri`."""
    try:
        import pymongo
    except ImportError as e:
        unavailable(f"pymongo is not installed: {e}")
        return
    client: Any = pymongo.MongoClient(mongo_wire_uri, serverSelectionTimeoutMS=5000)
    try:
        client.admin.command("ping")
    except Exception as e:  # noqa: BLE001 - any failure means the server is unusable
        client.close()
        unavailable(f"MongoDB-wire server at {mongo_wire_uri} does not answer: {str(e)[:200]}")
        return
    yield client
    client.close()


@pytest.fixture(scope="session")
def mongo_wire_db(mongo_wire_client: Any) -> Iterator[Any]:
    """A database with a unique name on the wire server, dropped at the end of the session."""
    name = f"tb_test_{uuid.uuid4().hex[:12]}"
    db = mongo_wire_client[name]
    yield db
    mongo_wire_client.drop_database(name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per distinct skip reason, with its count, instead of one line per skipped test."""
    reasons: dict[str, int] = {}
    for rep in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(rep, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        terminalreporter.section("skips by reason", sep="-")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{n:5d} x {reason[:160]}")
