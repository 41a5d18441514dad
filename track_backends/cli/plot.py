"""``track-backends plot URI --metric loss``: draw each matching trial's curve to a PNG, SVG or PDF file."""

from __future__ import annotations

import argparse
from typing import Any

from ..see.extras import OutputError
from ..see.plot import PLOT_FORMATS, plot_curves, plot_format
from ..see.select import trial_filter
from .common import FORMATTER, URI_HELP, CLIError, open_existing, parse_query

NAME = "plot"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``plot`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="draw a metric's curve for each matching trial",
        description=(
            "Draw a metric against step, one line per matching trial (a legend names up to 20 of them "
            f"by uid and parameters), to a {', '.join(PLOT_FORMATS)} file named by -o's extension. "
            "Needs matplotlib (pip install 'track-backends[plot]')."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--metric", required=True, metavar="NAME", help="the metric to draw, e.g. loss")
    p.add_argument("-o", "--output", default="curves.png", metavar="PATH", help="default: curves.png")
    p.add_argument("--query", metavar="JSON", help="only trials matching this MongoDB-style filter")
    p.add_argument("--group", metavar="G", help="only trials of this group (its name or uid)")
    p.add_argument("--status", metavar="S", help="only trials with this status (or a comma-separated list)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="draw at most N trials")
    p.add_argument("--logy", action="store_true", help="logarithmic y axis")
    p.add_argument("--title", help="the figure's title (default: the metric and the number of trials)")
    return p


def run(args: argparse.Namespace) -> int:
    """Draw the curves and say how many were drawn."""
    plot_format(args.output)  # a bad extension fails before the store is opened
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be a positive number of trials, got {args.limit}")
    with open_existing(args.uri) as store:
        query = trial_filter(store, parse_query(args.query), group=args.group, status=args.status)
        try:
            n = plot_curves(
                store, args.metric, args.output, query=query, limit=args.limit, logy=args.logy, title=args.title
            )
        except OSError as e:  # a missing directory, a full disk: one line, not a traceback
            raise OutputError(f"cannot write {args.output!r}: {e.strerror or e}") from e
    print(f"drew {n} curve{'s' if n != 1 else ''} of {args.metric} to {args.output}")
    return 0
