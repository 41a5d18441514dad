"""Fixtures for the PostgreSQL store tests: one server per session, one fresh schema per test.

The server is ``$TRACK_BACKENDS_PG_URI`` when set, else a PostgreSQL started from the
``pgserver`` wheel in a temporary directory. When neither works the tests are skipped with the
reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import pytest

_counter = itertools.count()


def unavailable(reason: str) -> None:
    """Skip (or, under ``CI=true``, fail) a test whose server is unavailable."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: refusing to skip)", pytrace=False)
    pytest.skip(reason)


def with_options(uri: str, **options: str) -> str:
    """Append query-string options to a URI."""
    extra = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{uri}{'&' if '?' in uri else '?'}{extra}"


@pytest.fixture(scope="session")
def pg_server_uri() -> Iterator[str]:
    """URI of a PostgreSQL server: ``$TRACK_BACKENDS_PG_URI`` or a pgserver started here."""
    uri = os.environ.get("TRACK_BACKENDS_PG_URI")
    if uri:
        yield uri
        return
    try:
        import pgserver
    except ImportError as e:
        unavailable(f"pgserver is not installed ({e}); pip install pgserver or set TRACK_BACKENDS_PG_URI")
        return
    datadir = tempfile.mkdtemp(prefix="tb-pg-")
    try:
        server = pgserver.get_server(datadir, cleanup_mode="stop")
        uri = server.get_uri()
    except Exception as e:  # noqa: BLE001 - any failure to start means "no server"
        shutil.rmtree(datadir, ignore_errors=True)
        unavailable(f"cannot start PostgreSQL with pgserver: {e}")
        return
    try:
        yield uri
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin(pg_server_uri: str) -> Iterator[object]:
    """An autocommit psycopg connection to the server, for test setup."""
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(pg_server_uri, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        unavailable(f"PostgreSQL at {pg_server_uri} does not answer: {e}")
        return
    yield conn
    conn.close()


@pytest.fixture
def pg_schema(pg_admin: object) -> Iterator[str]:
    """A fresh schema name (dropped after the test)."""
    name = f"t_{next(_counter)}_{uuid.uuid4().hex[:8]}"
    yield name
    pg_admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # type: ignore[attr-defined]


@pytest.fixture
def pg_uri(pg_server_uri: str, pg_schema: str) -> str:
    """The URI of a fresh, empty store (its own schema on the session's server)."""
    return with_options(pg_server_uri, schema=pg_schema)
