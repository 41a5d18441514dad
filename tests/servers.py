"""Start throw-away database servers as subprocesses for the test suite.

The pattern is generic: :func:`start_server` runs a command, polls a readiness probe until it
succeeds (bounded), and returns a :class:`ServerProcess` that stops the process again. Specific
servers (SecantusDB here; a pgserver PostgreSQL can follow the same pattern) are thin wrappers
that build the command line and the probe.

Servers always listen on a free port chosen at start, never on a fixed one, so a server left
running by someone else is never mistaken for ours.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

DEFAULT_START_TIMEOUT = 15.0


class ServerStartError(RuntimeError):
    """A server subprocess could not be started or did not become ready in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A running server subprocess and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: str
    info: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None  # a temporary working directory to remove at stop

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, limit: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after ``timeout``) and remove its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_server(
    name: str,
    argv: Sequence[str],
    probe: Callable[[], bool],
    *,
    timeout: float = DEFAULT_START_TIMEOUT,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    poll_interval: float = 0.1,
) -> ServerProcess:
    """Start ``argv`` as a subprocess and wait until ``probe()`` returns true.

    Args:
        name: A label for messages.
        argv: The command line.
        probe: Called repeatedly while the process runs; returns true once the server is ready.
            Exceptions it raises count as "not ready yet".
        timeout: Seconds to wait for readiness.
        env: The environment (default: inherit).
        cwd: The working directory (default: a fresh temporary directory, so servers that
            auto-discover config files in the current directory see none).
        poll_interval: Seconds between probes.

    Returns:
        The running server; call :meth:`ServerProcess.stop` when done.

    Raises:
        ServerStartError: The command cannot be run, exits early, or is not ready within
            ``timeout`` (the message carries the tail of its output).
    """
    fd, log_path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
    tmpdir = None if cwd else tempfile.mkdtemp(prefix=f"{name}-cwd-")
    workdir = cwd or tmpdir
    try:
        with os.fdopen(fd, "wb") as log:
            proc = subprocess.Popen(  # noqa: S603 - a fixed command line built by the caller
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise ServerStartError(f"{name}: cannot run {argv[0]!r}: {e}") from e
    server = ServerProcess(name, proc, log_path, workdir=tmpdir)
    atexit.register(server.stop)  # a crashed session must not leave the server behind
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if not server.alive():
            tail = server.log_tail()
            server.stop()
            raise ServerStartError(f"{name} exited with code {proc.returncode} before it was ready:\n{tail}")
        try:
            if probe() and server.alive():
                return server
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = e
        if time.monotonic() >= deadline:
            tail = server.log_tail()
            server.stop()
            raise ServerStartError(
                f"{name} was not ready after {timeout:.0f} s (last probe error: {last_error!r}):\n{tail}"
            )
        time.sleep(poll_interval)


def mongo_ping_probe(uri: str) -> Callable[[], bool]:
    """A readiness probe that succeeds when a MongoDB-wire server at ``uri`` answers ``ping``."""
    import pymongo

    def probe() -> bool:
        client: pymongo.MongoClient = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500, directConnection=True
        )
        try:
            return client.admin.command("ping").get("ok") == 1
        finally:
            client.close()

    return probe


def start_secantus(
    host: str = "127.0.0.1", *, timeout: float = DEFAULT_START_TIMEOUT, attempts: int = 3
) -> ServerProcess:
    """Start an in-memory SecantusDB (a MongoDB-wire server) on a free port.

    The URI is in ``server.info["uri"]``. A port taken between choosing and binding it makes the
    server exit at once; that is retried with another port up to ``attempts`` times.

    Raises:
        ServerStartError: The ``secantus`` module or ``pymongo`` is missing, or the server did
            not start.
    """
    try:
        import pymongo  # noqa: F401
        import secantus  # noqa: F401
    except ImportError as e:
        raise ServerStartError(f"cannot start SecantusDB: {e} (pip install secantusdb pymongo)") from e
    error: ServerStartError | None = None
    for _ in range(attempts):
        port = free_port(host)
        uri = f"mongodb://{host}:{port}/"
        argv = [sys.executable, "-m", "secantus", "--host", host, "--port", str(port)]
        argv += ["--storage-path", ":memory:", "--standalone", "--log-level", "WARNING"]
        try:
            server = start_server("secantus", argv, mongo_ping_probe(uri), timeout=timeout)
        except ServerStartError as e:
            error = e
            if "Address already in use" in str(e):
                continue
            raise
        server.info["uri"] = uri
        return server
    assert error is not None
    raise error
