"""``track-backends gc URI``: delete blobs that no artifact or cache entry references."""

from __future__ import annotations

import argparse
from typing import Any

from ..gc import DEFAULT_GRACE, collect_garbage
from ..migrate import require_existing
from ..migrate.progress import make_progress
from ..registry import open_store
from ..uri import parse_uri
from .common import FORMATTER, URI_HELP

NAME = "gc"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``gc`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="delete blobs that nothing references",
        description=(
            "Delete the stored blobs (artifact contents, cached values) that no artifact or cache "
            "entry references any more, and the leftovers of uploads that died. Deleting an "
            "artifact only removes its reference, because other artifacts may share its content; "
            "gc frees the space. Blobs younger than the grace period are kept, since an upload "
            "stores its blob just before its reference."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help=f"keep unreferenced blobs younger than this (default {DEFAULT_GRACE:g})",
    )
    p.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    return p


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def run(args: argparse.Namespace) -> int:
    """Collect the garbage and print what was (or would be) deleted."""
    require_existing(parse_uri(args.uri))
    progress = make_progress()
    with open_store(args.uri) as store:
        try:
            report = collect_garbage(store, grace=args.grace, dry_run=args.dry_run, progress=progress)
        finally:
            progress.close()
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{report.blobs} blob(s): {report.referenced} referenced, {report.young} younger than the grace "
        f"period; {verb} {report.deleted} ({_size(report.freed)})"
        + (f"; removed {report.uploads} dead upload(s)" if report.uploads else "")
    )
    return 0
