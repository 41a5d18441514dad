"""``track-backends export URI -o PATH``: trials (or their metric points) to CSV, JSON lines or Parquet."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..see.export import FORMATS, export, resolve_format
from ..see.extras import OutputError
from ..see.select import trial_filter
from ..store import TRIALS
from .common import FORMATTER, URI_HELP, open_existing, parse_query

NAME = "export"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``export`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="write trials or their metric points to CSV, JSON lines or Parquet",
        description=(
            "Write one row per trial: uid, project, group, status, start_time, end_time, one column per "
            "parameter (dotted names for nested ones) and the metric summaries (loss.count, loss.last, "
            "loss.last_step, loss.min, loss.max). With --series, write the metric points in long form "
            "instead: trial_uid, name, step, value. The export streams (pages of 1,000 trials, written "
            "as they are read) and replaces PATH only once it is complete. Parquet needs the 'analysis' "
            "extra (pip install 'track-backends[analysis]')."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="the file to write")
    p.add_argument("--format", choices=tuple(FORMATS), help="csv, jsonl or parquet (default: from PATH's extension)")
    p.add_argument("--query", metavar="JSON", help="only trials matching this MongoDB-style filter")
    p.add_argument("--group", metavar="G", help="only trials of this group (its name or uid)")
    p.add_argument("--status", metavar="S", help="only trials with this status (or a comma-separated list)")
    p.add_argument("--series", action="store_true", help="metric points, one row per point, instead of trials")
    p.add_argument("--metrics", metavar="NAMES", help="only these metrics (comma-separated; default: all)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def _progress(total: int, quiet: bool) -> Any:
    """A tqdm bar on stderr when it is a terminal (and not ``--quiet``), else ``None``."""
    isatty = getattr(sys.stderr, "isatty", None)
    if quiet or isatty is None or not isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="trial", desc="export", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Export, then print what was written."""
    fmt = resolve_format(args.output, args.format)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else True
    with open_existing(args.uri) as store:
        query = trial_filter(store, parse_query(args.query), group=args.group, status=args.status)
        bar = _progress(store.count(TRIALS, query), args.quiet)
        try:
            result = export(
                store,
                args.output,
                format=fmt,
                query=query,
                series=args.series,
                metrics=metrics,
                progress=None if bar is None else bar.update,
            )
        except OSError as e:  # disk full, a directory in the way: one line, not a traceback
            raise OutputError(f"cannot write {args.output!r}: {e.strerror or e}") from e
        finally:
            if bar is not None:
                bar.close()
    per = "point" if args.series else "trial"
    print(
        f"exported {result.rows} rows (one per {per}) from {result.trials} trials, {len(result.columns)} columns, "
        f"as {result.format} to {result.path}"
    )
    return 0
