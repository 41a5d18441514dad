"""``track-backends ls URI``: list trials as a table (uid, status, group, parameters)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..store import TRIALS
from .common import FORMATTER, URI_HELP, open_existing, parse_query

NAME = "ls"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``ls`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="list trials",
        description="List trials: uid, status, group, parameters.",
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--query", metavar="JSON", help='MongoDB-style filter, e.g. \'{"status.name": "Created"}\'')
    p.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N trials")
    return p


def _summary(params: Any, width: int = 60) -> str:
    if not isinstance(params, dict):
        return repr(params)
    text = ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 3] + "..."


def run(args: argparse.Namespace) -> int:
    """List trials as a table: uid, status, group, parameters."""
    query = parse_query(args.query)
    with open_existing(args.uri) as store:
        docs = store.find(TRIALS, query, limit=args.limit)
    rows = [
        [
            str(d.get("uid")),
            str((d.get("status") or {}).get("name", "")),
            str(d.get("group_id") or ""),
            _summary(d.get("parameters", {})),
        ]
        for d in docs
    ]
    header = ["uid", "status", "group", "parameters"]
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    for cells in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return 0
