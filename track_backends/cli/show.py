"""``track-backends show URI UID``: print one trial as JSON (a unique uid prefix is enough)."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from ..errors import NotFoundError
from ..store import TRIALS
from ..uri import parse_uri
from .common import FORMATTER, URI_HELP, open_existing

NAME = "show"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``show`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="print one trial as JSON",
        description="Print one trial as JSON (a unique uid prefix works).",
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("uid", metavar="UID")
    return p


def run(args: argparse.Namespace) -> int:
    """Print one trial as JSON; a unique uid prefix is enough."""
    with open_existing(args.uri) as store:
        doc = store.find_one(TRIALS, {"uid": args.uid})
        if doc is None:
            found = store.find(TRIALS, {"uid": {"$regex": "^" + re.escape(args.uid)}}, limit=2)
            if len(found) > 1:
                raise NotFoundError(f"uid prefix {args.uid!r} is ambiguous (e.g. {found[0]['uid']}, {found[1]['uid']})")
            if not found:
                raise NotFoundError(f"no trial with uid {args.uid!r} in {parse_uri(args.uri).redacted}")
            doc = found[0]
    print(json.dumps(doc, indent=2, sort_keys=True))
    return 0
