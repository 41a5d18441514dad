"""Starting the server: the safety checks, logging, and uvicorn (one process or several workers).

``serve`` refuses to listen beyond loopback unless both TLS and a token file are configured, or
``insecure`` is set (which prints a warning). SIGTERM and Ctrl-C shut down gracefully: the
listening socket closes, requests in flight finish (up to ``graceful`` seconds), then the store
is closed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import TrackBackendsError
from ..registry import open_store
from ..store import Store
from ..uri import mask_password, parse_uri
from .app import DEFAULT_MAX_BODY, create_app
from .blobs import DEFAULT_MAX_BLOB
from .tokens import load_tokens

ENV_CONFIG = "TRACK_BACKENDS_SERVE_CONFIG"
"""Environment variable carrying the configuration to worker processes (``--workers N``)."""
ENV_MAX_BLOB = "TRACK_BACKENDS_SERVE_MAX_BLOB"
"""Environment variable setting the default of :attr:`ServeConfig.max_blob` (bytes)."""
_SINGLE_PROCESS = frozenset({"ephemeral", "mongomock"})


class ServeConfigError(TrackBackendsError, ValueError):
    """The ``serve`` options are unsafe or inconsistent (the message says which and why)."""


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``serve`` needs; the fields mirror the command-line options.

    ``max_blob`` (the largest blob upload, in bytes; uploads are streamed, so the default is
    generous) defaults to ``$TRACK_BACKENDS_SERVE_MAX_BLOB`` when that is set.
    """

    uri: str
    host: str = "127.0.0.1"
    port: int = 8765
    tokens: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    max_body: int = DEFAULT_MAX_BODY
    max_blob: int = field(default_factory=lambda: default_max_blob())
    insecure: bool = False
    graceful: int = 30


def default_max_blob() -> int:
    """The blob upload limit: ``$TRACK_BACKENDS_SERVE_MAX_BLOB`` bytes, else :data:`DEFAULT_MAX_BLOB`.

    Raises:
        ServeConfigError: The variable is not a positive whole number.
    """
    text = os.environ.get(ENV_MAX_BLOB, "").strip()
    if not text:
        return DEFAULT_MAX_BLOB
    if not text.isdigit() or int(text) < 1:
        raise ServeConfigError(f"${ENV_MAX_BLOB} must be a positive number of bytes, got {text[:40]!r}")
    return int(text)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_config(cfg: ServeConfig) -> list[str]:
    """Refuse unsafe or inconsistent options.

    Returns:
        Warnings to print (with ``insecure``).

    Raises:
        ServeConfigError: The options are inconsistent, or unsafe without ``insecure``.
        TokenFileError: The token file cannot be read.
    """
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ServeConfigError("--tls-cert and --tls-key go together")
    for path in (cfg.tls_cert, cfg.tls_key):
        if path and not os.path.isfile(path):
            raise ServeConfigError(f"TLS file {path} does not exist")
    if cfg.workers < 1 or cfg.max_body < 1 or cfg.max_blob < 1 or not 0 <= cfg.port <= 65535:
        raise ServeConfigError("--workers, --max-body and the blob limit must be positive, --port in 0..65535")
    if cfg.workers > 1 and parse_uri(cfg.uri).scheme in _SINGLE_PROCESS:
        raise ServeConfigError(f"{parse_uri(cfg.uri).scheme}: lives in one process: serve it with --workers 1")
    if cfg.tokens:
        if not load_tokens(cfg.tokens):
            raise ServeConfigError(f"token file {cfg.tokens} holds no token: add one with 'track-backends token add'")
    warnings = []
    if not is_loopback(cfg.host) and not (cfg.tls_cert and cfg.tokens):
        missing = " and ".join(m for m, ok in (("TLS", cfg.tls_cert), ("a token file", cfg.tokens)) if not ok)
        if not cfg.insecure:
            raise ServeConfigError(
                f"refusing to listen on {cfg.host} without {missing}: anyone who can reach it could read and "
                "change every document. Use --tls-cert/--tls-key and --tokens, or --insecure on a trusted network"
            )
        warnings.append(f"WARNING: --insecure: serving on {cfg.host} without {missing}")
    return warnings


def configure_logging() -> None:
    """Log lines (JSON) to stderr: the access log, the server's events, and uvicorn's own."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("track_backends.server", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def app_from_env() -> Any:
    """The application of one worker process, configured from :data:`ENV_CONFIG` (``--workers N``)."""
    cfg = ServeConfig(**json.loads(os.environ[ENV_CONFIG]))
    configure_logging()
    return create_app(lambda: open_store(cfg.uri), tokens=cfg.tokens, max_body=cfg.max_body, max_blob=cfg.max_blob)


def _uvicorn_options(cfg: ServeConfig) -> dict[str, Any]:
    return {
        "host": cfg.host,
        "port": cfg.port,
        "ssl_certfile": cfg.tls_cert,
        "ssl_keyfile": cfg.tls_key,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "lifespan": "on",
        "timeout_keep_alive": 65,  # longer than the client's keep-alive, so it never reuses a closing connection
        "timeout_graceful_shutdown": cfg.graceful,
    }


def serve(cfg: ServeConfig) -> int:
    """Serve the store until SIGTERM or Ctrl-C.

    Returns:
        0 after a graceful shutdown.

    Raises:
        ServeConfigError: The options are unsafe or inconsistent.
        DriverNotInstalledError: uvicorn or starlette is missing.
        StoreError: The store cannot be opened.
    """
    import uvicorn

    for warning in check_config(cfg):
        print(warning, file=sys.stderr)
    configure_logging()
    where = f"{'https' if cfg.tls_cert else 'http'}://{cfg.host}:{cfg.port}"
    label = mask_password(cfg.uri)
    if cfg.workers == 1:
        store: Store = open_store(cfg.uri)  # opened here, so a bad URI fails before listening
        app = create_app(lambda: store, tokens=cfg.tokens, max_body=cfg.max_body, max_blob=cfg.max_blob)
        print(f"serving {label} on {where}", file=sys.stderr, flush=True)
        uvicorn.run(app, **_uvicorn_options(cfg))
        return 0
    open_store(cfg.uri).close()  # fail early on a bad URI; each worker opens its own
    os.environ[ENV_CONFIG] = json.dumps(asdict(cfg))
    print(f"serving {label} on {where} with {cfg.workers} workers", file=sys.stderr, flush=True)
    uvicorn.run("track_backends.server.run:app_from_env", factory=True, workers=cfg.workers, **_uvicorn_options(cfg))
    return 0
