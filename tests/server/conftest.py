"""Fixtures for the server tests: real ``track-backends serve`` subprocesses on 127.0.0.1 (see serve_helpers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from serve_helpers import Served, ServerPool, start_serve, unavailable
from servers import ServerStartError


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """A factory of servers (see :func:`start_serve`), all stopped at the end of the test."""
    started: list[Served] = []

    def make(store_uri: str, *args: str, **kwargs: Any) -> Served:
        try:
            s = start_serve(store_uri, *args, **kwargs)
        except ServerStartError as e:
            unavailable(f"track-backends serve did not start: {e}")
            raise
        started.append(s)
        return s

    yield make
    for s in started:
        s.process.stop()


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """The session's :class:`ServerPool`."""
    pool = ServerPool(tmp_path_factory.mktemp("pool"))
    yield pool
    pool.close()


@pytest.fixture
def pooled(server_pool: ServerPool) -> Iterator[Callable[..., Served]]:
    """Take a fresh server from the pool (``pooled(template, *args, tls=None)``); stopped after the test."""
    taken: list[Served] = []

    def take(template: str, *args: str, tls: tuple[str, str, str] | None = None) -> Served:
        try:
            served = server_pool.take(template, *args, tls=tls)
        except ServerStartError as e:
            unavailable(f"track-backends serve did not start: {e}")
            raise
        taken.append(served)
        return served

    yield take
    for served in taken:
        server_pool.release(served)


@pytest.fixture(scope="session")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A token file with one token per role: ``{"file": path, "read": token, "write": ..., "admin": ...}``."""
    from track_backends.server.tokens import add_token

    path = str(tmp_path_factory.mktemp("tokens") / "tokens.json")
    out = {"file": path}
    for role in ("read", "write", "admin"):
        out[role] = add_token(path, f"{role}-user", role)
    return out


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """``(cert, key, ca)`` PEM files for 127.0.0.1 and localhost, from a throw-away trustme CA."""
    trustme = pytest.importorskip("trustme")
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    return str(d / "cert.pem"), str(d / "key.pem"), str(d / "ca.pem")
