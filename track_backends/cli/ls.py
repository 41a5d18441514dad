"""``track-backends ls URI``: list trials (uid, status, group, lease, metric summaries, parameters)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import QueryError
from ..protocol.updates import and_query, stale_query
from ..see.columns import STATS, parse_sort
from ..see.render import OUTPUT_FORMATS, emit, more_line
from ..see.select import trial_filter
from ..store import TRIALS, Document, Store
from .common import FORMATTER, URI_HELP, open_existing, parse_query

NAME = "ls"

DEFAULT_STATS = ("last", "min", "max")
"""The summary fields a bare metric name in ``--metrics`` shows."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``ls`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="list trials",
        description=(
            "List trials: uid, status, group, the lease's owner, attempts and time left (by the "
            "store's clock), metric summaries (--metrics) and parameters. Sort keys are column names: "
            "loss.min is metric_summary.loss.min, lr is parameters.lr; write a descending key as "
            "--sort=-loss.min. Trials without the first sort key come last."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--query", metavar="JSON", help='MongoDB-style filter, e.g. \'{"status.name": "Created"}\'')
    p.add_argument("--group", metavar="G", help="only trials of this group (its name or uid)")
    p.add_argument("--status", metavar="S", help="only trials with this status (or a comma-separated list)")
    p.add_argument("--metrics", metavar="NAMES", help="summary columns: loss (last, min, max) or loss.min,acc.max")
    p.add_argument("--sort", metavar="KEYS", help="e.g. loss.min, --sort=-acc.max, lr (comma-separated)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N trials")
    p.add_argument("--stale", action="store_true", help="only Running trials whose lease has expired")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="table", help="output format (default: table)")
    return p


def metric_columns(text: str | None) -> list[tuple[str, str, str]]:
    """``--metrics`` as ``(column, metric, stat)``: ``loss`` gives last, min and max; ``loss.min`` one column.

    Raises:
        QueryError: A name is empty.
    """
    if text is None:
        return []
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise QueryError(f"--metrics takes metric names, e.g. loss,acc or loss.min; got {text!r}")
    out: list[tuple[str, str, str]] = []
    for name in names:
        metric, _, stat = name.rpartition(".")
        if metric and stat in STATS:
            out.append((name, metric, stat))
        else:
            out.extend((f"{name}.{s}", name, s) for s in DEFAULT_STATS)
    return out


def lease_left(lease: Any, now: float) -> str:
    """How long a lease has left (``"42s"``), how long ago it expired, or ``"-"`` when none runs."""
    expires = lease.get("expires") if isinstance(lease, dict) else None
    if not isinstance(expires, (int, float)):
        return "-"
    left = expires - now
    return f"{left:.0f}s" if left >= 0 else f"expired {-left:.0f}s ago"


def _seconds_left(lease: dict[str, Any], now: float) -> float | None:
    expires = lease.get("expires")
    return round(expires - now, 1) if isinstance(expires, (int, float)) else None


def find_sorted(
    store: Store, query: dict[str, Any] | None, sort: list[tuple[str, int]], limit: int | None
) -> list[Document]:
    """``find`` with the trials missing the first sort key last (MongoDB puts them first when ascending).

    Ties are broken by uid, so that the order is the same on every run and every store.
    """
    if sort and all(path != "uid" for path, _ in sort):
        sort = [*sort, ("uid", 1)]
    if not sort or sort[0][1] < 0:
        return store.find(TRIALS, query, sort=sort or None, limit=limit)
    key = sort[0][0]
    found = store.find(TRIALS, and_query(query, {key: {"$exists": True}}), sort=sort, limit=limit)
    if limit is None or len(found) < limit:
        rest = None if limit is None else limit - len(found)
        found += store.find(TRIALS, and_query(query, {key: {"$exists": False}}), sort=sort, limit=rest)
    return found


def _record(d: Document, now: float, table: bool, metrics: list[tuple[str, str, str]]) -> dict[str, Any]:
    raw = d.get("lease")
    lease: dict[str, Any] = raw if isinstance(raw, dict) else {}
    summary = d.get("metric_summary")
    summary = summary if isinstance(summary, dict) else {}
    rec: dict[str, Any] = {
        "uid": d.get("uid"),
        "status": (d.get("status") or {}).get("name", ""),
        "group": d.get("group_id") or ("" if table else None),
        "owner": lease.get("owner") or ("-" if table else None),
        "attempts": lease.get("attempts", 0),
        "lease": lease_left(lease, now) if table else _seconds_left(lease, now),
        "parameters": d.get("parameters", {}),
    }
    for column, metric, stat in metrics:
        s = summary.get(metric)
        rec[column] = s.get(stat) if isinstance(s, dict) else None
    return rec


def run(args: argparse.Namespace) -> int:
    """List trials as a table, CSV or JSON; say how many more match when ``--limit`` cut the list."""
    metrics = metric_columns(args.metrics)
    sort = parse_sort(args.sort) if args.sort else []
    with open_existing(args.uri) as store:
        query = trial_filter(store, parse_query(args.query), group=args.group, status=args.status)
        now = store.now()
        if args.stale:
            query = and_query(query, stale_query(now))
        docs = find_sorted(store, query, sort, args.limit)
        total = store.count(TRIALS, query) if args.limit and len(docs) >= args.limit else len(docs)
    columns = ["uid", "status", "group", "owner", "attempts", "lease", *(c for c, _, _ in metrics), "parameters"]
    emit(args.format, columns, [_record(d, now, args.format == "table", metrics) for d in docs])
    more = more_line(len(docs), total)
    if more:
        print(more, file=sys.stdout if args.format == "table" else sys.stderr)
    return 0
