"""``track-backends best URI --metric loss``: the best trials by one metric, with their parameters."""

from __future__ import annotations

import argparse
from typing import Any

from ..protocol import DocumentProtocol
from ..protocol.updates import and_query
from ..see.columns import flatten, metric_column, param_column
from ..see.render import OUTPUT_FORMATS, emit
from ..see.select import trial_filter
from .common import FORMATTER, URI_HELP, CLIError, open_existing, parse_query

NAME = "best"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``best`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="the best trials by a metric, with their parameters",
        description=(
            "List the k best trials by a metric's summary: the lowest metric_summary.<metric>.min "
            "(--mode min, the default) or the highest metric_summary.<metric>.max (--mode max). "
            "Trials that logged no number for the metric are left out."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--metric", required=True, metavar="NAME", help="the metric, e.g. loss")
    p.add_argument("--mode", choices=("min", "max"), default="min", help="lower or higher is better (default: min)")
    p.add_argument("-k", type=int, default=5, metavar="K", help="how many trials (default: 5)")
    p.add_argument("--group", metavar="G", help="only trials of this group (its name or uid)")
    p.add_argument("--status", metavar="S", help="only trials with this status (or a comma-separated list)")
    p.add_argument("--query", metavar="JSON", help="only trials matching this MongoDB-style filter")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="table", help="output format (default: table)")
    return p


def run(args: argparse.Namespace) -> int:
    """Print the best ``k`` trials: rank, uid, the metric's min (or max), status, group, parameters."""
    if args.k < 1:
        raise CLIError(f"-k must be a positive number of trials, got {args.k}")
    path = f"metric_summary.{args.metric}.{args.mode}"
    column = metric_column(args.metric, args.mode)
    with DocumentProtocol(open_existing(args.uri)) as proto:
        query = trial_filter(proto.store, parse_query(args.query), group=args.group, status=args.status)
        query = and_query(query, {path: {"$exists": True}})
        sort = [(path, 1 if args.mode == "min" else -1), ("uid", 1)]  # ties in a stable order
        trials = proto.fetch_trials(query, sort=sort, limit=args.k, metrics=False)
    records: list[dict[str, Any]] = []
    params: dict[str, None] = {}
    for rank, t in enumerate(trials, 1):
        flat = {param_column(k): v for k, v in flatten(t.parameters).items()}
        params.update(dict.fromkeys(flat))
        value = t.metric_summary[args.metric][args.mode]
        base = {"rank": rank, "uid": t.uid, column: value, "status": t.status.name, "group": t.group_id}
        records.append({**base, "parameters": t.parameters} if args.format == "json" else {**base, **flat})
    columns = ["rank", "uid", column, "status", "group"]
    columns += ["parameters"] if args.format == "json" else sorted(params)
    emit(args.format, columns, records)
    return 0
