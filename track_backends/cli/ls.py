"""``track-backends ls URI``: list trials as a table (uid, status, group, lease, parameters)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..protocol.updates import and_query, stale_query
from ..store import TRIALS
from .common import FORMATTER, URI_HELP, open_existing, parse_query

NAME = "ls"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``ls`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="list trials",
        description=(
            "List trials: uid, status, group, the lease's owner, attempts and time left (by the "
            "store's clock), and parameters."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--query", metavar="JSON", help='MongoDB-style filter, e.g. \'{"status.name": "Created"}\'')
    p.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N trials")
    p.add_argument("--stale", action="store_true", help="only Running trials whose lease has expired")
    return p


def _summary(params: Any, width: int = 60) -> str:
    if not isinstance(params, dict):
        return repr(params)
    text = ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 3] + "..."


def lease_left(lease: Any, now: float) -> str:
    """How long a lease has left (``"42s"``), how long ago it expired, or ``"-"`` when none runs."""
    expires = lease.get("expires") if isinstance(lease, dict) else None
    if not isinstance(expires, (int, float)):
        return "-"
    left = expires - now
    return f"{left:.0f}s" if left >= 0 else f"expired {-left:.0f}s ago"


def run(args: argparse.Namespace) -> int:
    """List trials as a table: uid, status, group, lease owner, attempts, time left, parameters."""
    query = parse_query(args.query)
    with open_existing(args.uri) as store:
        now = store.now()
        if args.stale:
            query = and_query(query, stale_query(now))
        docs = store.find(TRIALS, query, limit=args.limit)
    rows = []
    for d in docs:
        raw = d.get("lease")
        lease: dict[str, Any] = raw if isinstance(raw, dict) else {}
        rows.append(
            [
                str(d.get("uid")),
                str((d.get("status") or {}).get("name", "")),
                str(d.get("group_id") or ""),
                str(lease.get("owner") or "-"),
                str(lease.get("attempts", 0)),
                lease_left(lease, now),
                _summary(d.get("parameters", {})),
            ]
        )
    header = ["uid", "status", "group", "owner", "attempts", "lease", "parameters"]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    for cells in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return 0
