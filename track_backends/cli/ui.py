"""``track-backends ui URI``: serve a read-only web dashboard over a store (needs the ``ui`` extra)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import FORMATTER, URI_HELP, open_existing

NAME = "ui"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``ui`` subparser to the command line's subparsers."""
    from ..ui import DEFAULT_HOST, DEFAULT_POLL, DEFAULT_PORT  # no web framework is imported here

    p = sub.add_parser(
        NAME,
        help="serve a read-only web dashboard",
        description=(
            "Serve a read-only web dashboard over the store: projects and groups with trial counts "
            "by status, a sortable, filterable trials table, each trial's curves, a parameter/metric "
            "scatter per group. The page refreshes itself. Needs pip install 'track-backends[ui]'."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}; no login)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--poll", type=float, default=DEFAULT_POLL, metavar="SECONDS", help="seconds between page refreshes")
    return p


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until Ctrl-C or SIGTERM."""
    from ..protocol import DocumentProtocol
    from ..ui import DashboardError, serve

    if args.poll <= 0:
        raise DashboardError(f"--poll must be a positive number of seconds, got {args.poll:g}")
    serve(DocumentProtocol(open_existing(args.uri)), args.host, args.port, poll=args.poll)
    return 0
