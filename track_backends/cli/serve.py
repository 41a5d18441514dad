"""``track-backends serve URI``: serve a store over HTTP(S) to other machines."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import DriverNotInstalledError
from .common import FORMATTER, URI_HELP

NAME = "serve"
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 16 * 1024 * 1024


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="serve a store over HTTP(S), with tokens and TLS",
        description=(
            "Serve any store to machines that cannot share its file or reach its database. The routes "
            "are exactly the Store primitives; clients open http://HOST:PORT or https://:TOKEN@HOST:PORT "
            "with get_protocol. Beyond loopback, serve refuses to start without --tls-cert/--tls-key and "
            "--tokens (make tokens with 'track-backends token add'), unless --insecure. SIGTERM or Ctrl-C "
            "lets requests in flight finish, then closes the store."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI", help="the store to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on (default: %(default)s)")
    p.add_argument(
        "--tokens", metavar="FILE", help="token file (from 'track-backends token add'); required off loopback"
    )
    p.add_argument("--tls-cert", metavar="PEM", help="certificate chain (PEM) for HTTPS")
    p.add_argument("--tls-key", metavar="PEM", help="private key (PEM) for HTTPS")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    p.add_argument(
        "--max-body", type=int, default=DEFAULT_MAX_BODY, metavar="BYTES", help="largest request body (default: 16 MiB)"
    )
    p.add_argument(
        "--max-blob",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest artifact upload, streamed (default: $TRACK_BACKENDS_SERVE_MAX_BLOB, else 1 TiB)",
    )
    p.add_argument("--insecure", action="store_true", help="allow serving off loopback without TLS or tokens")
    return p


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C.

    Raises:
        DriverNotInstalledError: starlette or uvicorn is not installed.
    """
    try:
        import starlette  # noqa: F401 - checked here, so that a missing one names the extra
        import uvicorn  # noqa: F401

        from ..server.run import ServeConfig, serve
    except ModuleNotFoundError as e:
        raise DriverNotInstalledError(
            f"serve needs the {e.name!r} package, which is not installed; pip install 'track-backends[server]'"
        ) from None
    cfg = ServeConfig(
        uri=args.uri,
        host=args.host,
        port=args.port,
        tokens=args.tokens,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        workers=args.workers,
        max_body=args.max_body,
        insecure=args.insecure,
        **({} if args.max_blob is None else {"max_blob": args.max_blob}),
    )
    return serve(cfg)
