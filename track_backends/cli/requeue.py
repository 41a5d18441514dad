"""``track-backends requeue URI``: set trials whose lease expired back to ``Interrupted``."""

from __future__ import annotations

import argparse
from typing import Any

from ..migrate import require_existing
from ..protocol import DocumentProtocol
from ..registry import open_store
from ..uri import parse_uri
from .common import FORMATTER, URI_HELP, parse_query

NAME = "requeue"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``requeue`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="requeue trials whose lease expired",
        description=(
            "Set every Running trial whose lease has expired (its worker died or stalled) back to "
            "Interrupted, so that reserve_trial hands it out again. Expiry is judged by the store's "
            "clock (the server's, on PostgreSQL and MongoDB). Trials set Running by hand, without a "
            "lease, are left alone."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--query", metavar="JSON", help='only trials matching this filter, e.g. \'{"group_id": "..."}\'')
    p.add_argument("--dry-run", action="store_true", help="list the stale trials without changing them")
    return p


def run(args: argparse.Namespace) -> int:
    """Requeue (or, with ``--dry-run``, list) the stale trials."""
    query = parse_query(args.query)
    require_existing(parse_uri(args.uri))
    with DocumentProtocol(open_store(args.uri)) as proto:
        if args.dry_run:
            stale = proto.stale_trials(query)
            for t in stale:
                owner = (t.lease or {}).get("owner", "")
                print(f"{t.uid}  owner={owner}  attempts={(t.lease or {}).get('attempts', 0)}")
            print(f"{len(stale)} stale trial(s) would be requeued")
            return 0
        n = proto.requeue_stale(query)
    print(f"requeued {n} trial(s)")
    return 0
