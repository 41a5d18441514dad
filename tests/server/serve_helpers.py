"""Helpers for the server tests: starting real ``track-backends serve`` subprocesses on 127.0.0.1.

Each server listens on a free port and is ready once ``GET /health`` answers. When one cannot
start, the test is skipped, except under ``CI=true``, where it fails. Token files and TLS
certificates (made with trustme) are made once per session.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import ServerProcess, ServerStartError, free_port, start_server

REPO = Path(__file__).resolve().parents[2]


def unavailable(reason: str) -> None:
    """Skip (or, under ``CI=true``, fail) a test whose server cannot run."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: refusing to skip)", pytrace=False)
    pytest.skip(reason)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server or worker subprocess: this checkout first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "TRACK_BACKENDS_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


@dataclass
class Served:
    """A running server: its process, where it listens, and how a client reaches it."""

    process: ServerProcess
    port: int
    argv: list[str]
    tls: bool = False
    ca: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def uri(self, token: str | None = None, **options: str) -> str:
        auth = f":{token}@" if token else ""
        opts = dict(options)
        if self.tls and self.ca:
            opts.setdefault("ca", self.ca)
        query = "&".join(f"{k}={v}" for k, v in opts.items())
        return f"{'https' if self.tls else 'http'}://{auth}127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def client(self, token: str | None = None) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, verify=_verify(self.ca), timeout=30)

    def log(self) -> str:
        return self.process.log_tail(10_000_000)

    def kill(self) -> None:
        self.process.proc.send_signal(signal.SIGKILL)
        self.process.proc.wait(timeout=30)

    def terminate(self, timeout: float = 30) -> int:
        self.process.proc.send_signal(signal.SIGTERM)
        return self.process.proc.wait(timeout=timeout)


def _verify(ca: str | None) -> Any:
    return ssl.create_default_context(cafile=ca) if ca else True


def _probe(base: str, ca: str | None) -> Callable[[], bool]:
    def probe() -> bool:
        r = httpx.get(f"{base}/health", verify=_verify(ca), timeout=2)
        return r.status_code == 200 and r.json()["status"] == "ok"

    return probe


def start_serve(
    store_uri: str,
    *args: str,
    port: int | None = None,
    tls: tuple[str, str, str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Served:
    """Start ``track-backends serve`` and wait for ``/health``.

    Args:
        store_uri: The store to serve.
        args: More command-line options (``--tokens FILE``, ...).
        port: The port (default: a free one).
        tls: ``(cert, key, ca)`` PEM paths, to serve HTTPS.
        env: More environment variables.
        timeout: Seconds to wait for readiness.

    Raises:
        ServerStartError: It did not start.
    """
    chosen = port
    for attempt in range(1 if chosen else 3):  # a free port can be taken before the server binds it
        port = chosen or free_port()
        argv = [sys.executable, "-m", "track_backends.cli", "serve", store_uri, "--port", str(port), *args]
        if tls:
            argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        try:
            proc = start_server(
                "track-backends-serve",
                argv,
                _probe(base, tls[2] if tls else None),
                timeout=timeout,
                env=child_env(env),
                poll_interval=0.05,
            )
            break
        except ServerStartError as e:  # uvicorn exits with 3 when it cannot bind: try another port
            if chosen or attempt == 2 or "exited with code 3" not in str(e):
                raise
    return Served(proc, port, argv, tls=bool(tls), ca=tls[2] if tls else None)


class ServerPool:
    """Servers started ahead of need, one spare per kind, so a test rarely waits for a start.

    A kind is ``(store URI template, options, tls)``; ``{n}`` in the template becomes a fresh
    number and ``{dir}`` the pool's directory, so each server gets its own journal file or
    schema. Servers are stopped in the background.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._spares: dict[tuple[Any, ...], Future[Served]] = {}
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._stops: list[Future[None]] = []
        self._n = itertools.count()

    def _start(self, kind: tuple[Any, ...]) -> Served:
        template, args, tls = kind
        return start_serve(
            template.replace("{dir}", str(self.workdir)).replace("{n}", str(next(self._n))), *args, tls=tls
        )

    def take(self, template: str, *args: str, tls: tuple[str, str, str] | None = None) -> Served:
        kind = (template, args, tls)
        spare = self._spares.pop(kind, None) or self._pool.submit(self._start, kind)
        self._spares[kind] = self._pool.submit(self._start, kind)
        return spare.result()

    def release(self, served: Served) -> None:
        self._stops.append(self._pool.submit(served.process.stop))

    def close(self) -> None:
        for spare in self._spares.values():
            with contextlib.suppress(Exception):
                spare.result().process.stop()
        for stop in self._stops:
            with contextlib.suppress(Exception):
                stop.result()
        self._pool.shutdown()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``track-backends ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "track_backends.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(env),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
