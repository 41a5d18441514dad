"""``track-backends show URI UID``: print one trial as JSON (a unique uid prefix is enough).

The document carries ``metric_summary`` (count, last, last_step, min and max of each metric);
``--metrics`` adds the series themselves as ``"metrics": {name: [[step, value], ...]}``. The
output is strict JSON: NaN and the infinities, which JSON lacks, are printed as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from typing import Any

from ..errors import NotFoundError
from ..layout import attempt_of
from ..protocol.artifacts import ARTIFACTS
from ..store import TRIALS, Document, Store
from ..uri import parse_uri
from .common import FORMATTER, URI_HELP, open_existing

NAME = "show"
_NON_FINITE_HELP = 'NaN and infinities, which JSON lacks, are printed as the strings "NaN", "Infinity" and "-Infinity".'


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``show`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="print one trial as JSON",
        description="Print one trial as JSON (a unique uid prefix works), with its metric_summary "
        "(count, last, last_step, min, max per metric). " + _NON_FINITE_HELP,
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("uid", metavar="UID")
    p.add_argument(
        "--metrics",
        action="store_true",
        help='also print its metric points, as "metrics": {name: [[step, value], ...]} in logging order '
        "(the current attempt's, and those logged outside any reservation). " + _NON_FINITE_HELP,
    )
    p.add_argument(
        "--artifacts",
        action="store_true",
        help='also list its artifacts, as "artifacts": [{name, sha256, size, media_type, metadata, created}]',
    )
    return p


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

    >>> json_safe({"a": [1.0, float("nan"), float("-inf")], "b": (2, float("inf"))})
    {'a': [1.0, 'NaN', '-Infinity'], 'b': [2, 'Infinity']}
    """
    if type(value) is float and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def find_trial(store: Store, uid: str, uri: str) -> Document:
    """The trial whose uid is ``uid``, or the only one whose uid starts with it.

    Raises:
        NotFoundError: No trial matches, or the prefix is ambiguous.
    """
    doc = store.find_one(TRIALS, {"uid": uid})
    if doc is not None:
        return doc
    found = store.find(TRIALS, {"uid": {"$regex": "^" + re.escape(uid)}}, limit=2)
    if len(found) > 1:
        raise NotFoundError(f"uid prefix {uid!r} is ambiguous (e.g. {found[0]['uid']}, {found[1]['uid']})")
    if not found:
        raise NotFoundError(f"no trial with uid {uid!r} in {parse_uri(uri).redacted}")
    return found[0]


def run(args: argparse.Namespace) -> int:
    """Print one trial as strict JSON, with its series under ``--metrics``; a unique uid prefix is enough."""
    with open_existing(args.uri) as store:
        doc = find_trial(store, args.uid, args.uri)
        if args.metrics:
            uid = doc["uid"]
            series = store.fetch_points(TRIALS, [uid], attempts={uid: attempt_of(doc)}).get(uid, {})
            doc["metrics"] = {name: [[step, value] for step, value in pairs] for name, pairs in series.items()}
        if args.artifacts:
            keep = ("name", "sha256", "size", "media_type", "metadata", "created")
            refs = store.find(ARTIFACTS, {"trial": doc["uid"]}, sort=[("name", 1)])
            doc["artifacts"] = [{k: a.get(k) for k in keep} for a in refs]
    print(json.dumps(json_safe(doc), indent=2, sort_keys=True, allow_nan=False))
    return 0
