"""``track-backends replay``: send a multiplexer's outbox to its mirrors.

``track-backends replay MULTIPLEX_URI`` opens the primary and the mirrors the URI names and
replays the outbox (the URI's, ``--outbox PATH``, or the default one next to the primary).
``track-backends replay --outbox PATH`` alone reopens the stores recorded in the outbox; that
works only for stores whose URIs carry no password (the outbox never stores passwords).

Exit status: 0 when every mirror caught up, 1 when documents are left (a mirror is still down;
each such mirror is named with its error), 2 on any other error (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from urllib.parse import quote

from .errors import TrackBackendsError
from .stores.multiplex import (
    MEMORY_OUTBOX,
    MirrorStatus,
    MultiplexSpec,
    MultiplexStore,
    Outbox,
    open_multiplex,
    parse_multiplex,
)
from .uri import parse_uri

_JOURNALS = ("pickled", "file")


class ReplayError(TrackBackendsError):
    """The replay cannot start: no URI, an outbox that does not exist, or one without usable URIs."""


def open_for_replay(uri: str | None = None, outbox: str | None = None) -> MultiplexStore:
    """Open the multiplexer a URI names, or the one an outbox file describes.

    Args:
        uri: A ``multiplex:`` URI (``None``: read the stores' URIs from ``outbox``).
        outbox: An outbox file, overriding the URI's.

    Raises:
        ReplayError: Neither is given, the outbox does not exist, or it names stores by URIs
            whose password was masked.
        InvalidURIError: The URI is malformed.
        StoreError: The primary cannot be opened.
    """
    if outbox is not None and not os.path.exists(outbox):
        raise ReplayError(f"no outbox at {outbox!r}")
    if uri is not None:
        return _open(parse_multiplex(uri), outbox)
    if outbox is None:
        raise ReplayError("give a multiplex: URI, or --outbox PATH")
    box = Outbox(outbox)
    try:
        described = box.description()
    finally:
        box.close()
    if not described:
        raise ReplayError(f"the outbox {outbox!r} does not say which stores it belongs to; pass the multiplex: URI")
    stores = [described["primary"], *described["mirrors"]]
    if any("***" in u for u in stores):
        raise ReplayError(
            f"the outbox {outbox!r} records its stores without their passwords; pass the multiplex: URI "
            "(track-backends replay 'multiplex:?primary=...&mirror=...' --outbox PATH)"
        )
    query = "&".join([f"primary={quote(stores[0], safe='')}"] + [f"mirror={quote(m, safe='')}" for m in stores[1:]])
    return _open(parse_multiplex(f"multiplex:?{query}"), outbox)


def _open(spec: MultiplexSpec, outbox: str | None) -> MultiplexStore:
    """Open for a replay, refusing to create a primary or an outbox that does not exist."""
    primary = parse_uri(spec.primary)
    if primary.scheme == "ephemeral" or (outbox or spec.outbox) == MEMORY_OUTBOX:
        raise ReplayError("an ephemeral: primary (or an outbox in :memory:) leaves no outbox to replay")
    if primary.scheme in _JOURNALS and primary.path and not os.path.exists(primary.path):
        raise ReplayError(f"no primary store at {primary.path!r} (from {primary.redacted})")
    path = outbox or spec.outbox
    if path is None and primary.scheme in _JOURNALS:
        path = os.path.realpath(primary.path) + ".outbox"
    if path is not None and not os.path.exists(path):
        raise ReplayError(f"no outbox at {path!r}: nothing to replay")
    return open_multiplex(spec, outbox=outbox)


def replay(uri: str | None = None, outbox: str | None = None, timeout: float | None = None) -> dict[str, MirrorStatus]:
    """Replay a multiplexer's outbox to its mirrors now; return each mirror's status afterwards.

    Args:
        uri: A ``multiplex:`` URI, or ``None`` to use the stores recorded in ``outbox``.
        outbox: The outbox file (default: the URI's).
        timeout: Stop after this many seconds (``None``: until done, or until each mirror fails).

    Raises:
        ReplayError: See :func:`open_for_replay`.
        StoreUnavailableError: The primary cannot be read.
    """
    store = open_for_replay(uri, outbox)
    try:
        return store.replay(timeout)
    finally:
        store.close(timeout=0)


def cmd_replay(args: argparse.Namespace) -> int:
    """The ``replay`` subcommand: replay, print one line per mirror, exit 1 if documents are left."""
    if args.uri is None and args.outbox is None:
        raise ReplayError("give a multiplex: URI, or --outbox PATH")
    started = time.monotonic()
    store = open_for_replay(args.uri, args.outbox)
    try:
        before = {name: s.outbox_depth for name, s in store.status().items()}
        status = store.status() if args.dry_run else store.replay(args.timeout)
        orphans = sorted(set(store.outbox.mirrors()) - set(before))
    finally:
        store.close(timeout=0)
    for name, s in status.items():
        done = before[name] - s.outbox_depth
        if args.dry_run:
            print(f"mirror {name}: {s.outbox_depth} pending")
        else:
            line = f"mirror {name}: replayed {done}, {s.outbox_depth} left"
            if s.outbox_depth and s.last_error:
                line += f" ({s.last_error})"
            print(line)
    for name in orphans:
        print(f"warning: the outbox also holds entries for {name}, which this URI does not name", file=sys.stderr)
    if not args.dry_run:
        print(f"{time.monotonic() - started:.2f} s", file=sys.stderr)
    return 1 if any(s.outbox_depth for s in status.values()) else 0


def add_parser(sub: argparse._SubParsersAction, epilog: str = "") -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Add the ``replay`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        "replay",
        help="send a multiplexer's outbox to its mirrors",
        description="Replay the outbox of a multiplex: store: re-read each document a mirror missed from the "
        "primary and write it to the mirror (or delete it there). Exit status 1 when documents are left. "
        "URI form: multiplex:?primary=<percent-encoded URI>&mirror=<percent-encoded URI>[&mirror=...]"
        "[&policy=strict|best_effort][&outbox=PATH][&close_timeout=S].",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("uri", nargs="?", metavar="MULTIPLEX_URI", help="the multiplex: URI (optional with --outbox)")
    p.add_argument("--outbox", metavar="PATH", help="the outbox file (default: the URI's, or next to the primary)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--dry-run", action="store_true", help="only print how many documents each mirror misses")
    return p


__all__ = ["ReplayError", "add_parser", "cmd_replay", "open_for_replay", "replay"]
