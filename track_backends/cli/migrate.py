"""``track-backends migrate SRC DST``: copy projects, groups, trials and artifacts, then verify.

Exit status: 0 copied and verified, 1 a document was refused, a blob could not be copied, or
verification found a mismatch, 2 an error (bad argument, unreachable store, a conflict under
``--on-conflict fail``), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..migrate import DEFAULT_BATCH, ON_CONFLICT, make_progress, migrate
from .common import FORMATTER, PROG, URI_HELP, parse_query

NAME = "migrate"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``migrate`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="copy projects, groups, trials and artifacts from one store to another, then verify",
        description="Copy projects, groups and trials (with their metric points) from SRC to DST in batches "
        "(upserting by uid, so reruns are no-ops and an interrupted run resumes), then the blobs that artifacts "
        "and cache entries reference (each distinct content once, skipping those DST has), then those "
        "references; then verify counts, per-document checksums and that each referenced blob is in DST with "
        "its size. Exit status: 0 copied and verified, 1 a document was refused, a blob could not be copied or "
        "verification found a mismatch, 2 an error (bad argument, unreachable store, a conflict under "
        "--on-conflict fail).",
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("src", metavar="SRC_URI", help="the store to copy from (not modified)")
    p.add_argument("dst", metavar="DST_URI", help="the store to copy into (created if needed)")
    p.add_argument(
        "--query",
        metavar="JSON",
        help="copy only the trials matching this filter (and the groups and projects they reference)",
    )
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, metavar="N", help="documents per batch (default: 500)")
    p.add_argument(
        "--on-conflict",
        choices=ON_CONFLICT,
        default="skip",
        help="same uid, other content: keep the destination's (skip, default), replace it (overwrite), "
        "store the trial as its next revision (bump), or stop (fail)",
    )
    p.add_argument(
        "--all-blobs",
        action="store_true",
        help="also copy the blobs that no copied document references (e.g. before a gc)",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be copied without writing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the migration and print its summary; 0 if verified, 1 on a mismatch, 130 if interrupted."""
    progress = None if args.quiet else make_progress(sys.stderr)
    try:
        report = migrate(
            args.src,
            args.dst,
            query=parse_query(args.query),
            batch=args.batch,
            on_conflict=args.on_conflict,
            dry_run=args.dry_run,
            progress=progress,
            all_blobs=args.all_blobs,
        )
    except KeyboardInterrupt:
        print(f"{PROG} {NAME}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        if progress is not None:
            progress.close()
    print(report.summary(), flush=True)
    return 0 if report.ok else 1
