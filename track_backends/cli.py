"""The ``track-backends`` command line: ``bench``, ``ls`` and ``show``.

Every subcommand reports a :class:`~track_backends.errors.TrackBackendsError` as one line on
stderr and exits with status 2. Subcommands live in :data:`COMMANDS` (name -> handler), so later
ones (``migrate``, ``replay``) are one function and one parser each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__, bench, migrate, replay
from .errors import NotFoundError, TrackBackendsError
from .registry import open_store
from .store import TRIALS, Store
from .uri import mask_password, parse_uri

PROG = "track-backends"
URI_HELP = """\
store URIs:
  ephemeral:                             in-process memory (gone when the process exits)
  pickled:///abs/path.pkl                durable journal, pickle records (absolute path)
  pickled:rel.pkl                        the same, path relative to the current directory
  file:///abs/path.jsonl                 durable journal, JSON lines (readable with jq)
  file:rel.jsonl                         the same, relative path
  mongodb://user:pass@host:27017/db      MongoDB (pip install 'track-backends[mongo]')
  mongomock://db                         mongomock, in memory (pip install 'track-backends[mongomock]')
  postgresql://user:pass@host/db         PostgreSQL, JSONB (pip install 'track-backends[postgres]')
  cockroach://user:pass@host:26257/db    CockroachDB (pip install 'track-backends[postgres]')
  multiplex:?primary=URI&mirror=URI      a primary mirrored to other stores (inner URIs percent-encoded)
Passwords are never printed; options go in the query string (?name=value).
"""

Handler = Callable[[argparse.Namespace], int]


class CLIError(TrackBackendsError):
    """A command-line argument is unusable (e.g. ``--query`` is not a JSON object)."""


# -- helpers --------------------------------------------------------------------------------------
def _open_existing(uri: str) -> Store:
    """Open a store for reading; a journal file that does not exist is an error, not created."""
    parsed = parse_uri(uri)
    if parsed.scheme in bench.JOURNAL_SCHEMES and parsed.path and not os.path.exists(parsed.path):
        raise NotFoundError(f"no store at {parsed.path!r} (from {parsed.redacted})")
    return open_store(parsed)


def _parse_query(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        query = json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(
            f"--query is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}): {text!r:.80}"
        ) from None
    if not isinstance(query, dict):
        raise CLIError(f'--query must be a JSON object like \'{{"status.name": "Created"}}\', got {text!r:.80}')
    return query


def _summary(params: Any, width: int = 60) -> str:
    if not isinstance(params, dict):
        return repr(params)
    text = ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 3] + "..."


def _parse_ns(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        scale = 1_000 if part.endswith("k") else 1_000_000 if part.endswith("m") else 1
        try:
            n = int(part.rstrip("km")) * scale
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of counts: {text!r} (e.g. 1000,10000 or 1k,10k)") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"counts must be positive, got {part!r}")
        out.append(n)
    return out


def _parse_levels(text: str) -> list[str]:
    levels = [p.strip() for p in text.split(",") if p.strip()]
    bad = [lv for lv in levels if lv not in bench.LEVELS]
    if bad or not levels:
        raise argparse.ArgumentTypeError(f"levels are {', '.join(bench.LEVELS)}; got {text!r}")
    return levels


# -- subcommands ----------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    """List trials as a table: uid, status, group, parameters."""
    query = _parse_query(args.query)
    with _open_existing(args.uri) as store:
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


def cmd_show(args: argparse.Namespace) -> int:
    """Print one trial as JSON; a unique uid prefix is enough."""
    with _open_existing(args.uri) as store:
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


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark and print its table (and/or JSON)."""
    progress = None if args.quiet else bench.print_progress
    if args.plot:
        bench.require_plotting()  # before the run, not after it
    report = bench.run(
        args.uris,
        args.n,
        levels=args.level,
        workers_k=args.workers,
        peers=not args.no_peers,
        repeats=args.repeat,
        no_gc=args.no_gc,
        progress=progress,
    )
    if args.plot:
        bench.plot_report(report, args.plot)
    text = json.dumps(report, indent=2)
    if args.json == "-":
        print(text)
        if args.check:
            print(bench.format_checks(report), file=sys.stderr)
        return 0
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(bench.format_report(report, checks=args.check))
    return 0


COMMANDS: dict[str, Handler] = {"bench": cmd_bench, "ls": cmd_ls, "show": cmd_show, "migrate": migrate.cmd_migrate}
"""Subcommand name -> handler; each handler gets the parsed arguments and returns an exit code."""
COMMANDS["replay"] = replay.cmd_replay


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (one subparser per entry of :data:`COMMANDS`)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect and benchmark track_backends stores.",
        epilog=URI_HELP,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "bench",
        help="run the trial workload (insert, query, log, claim, K-worker claims) and print rates",
        description="Run Orion's trial workload at the Store and Protocol level, next to a raw reference "
        "(dict operations for memory, append+fdatasync for journals, the store's SQL replayed with psycopg for "
        "postgresql://, plain pymongo for mongodb://), K-worker concurrent claims and, where optuna or orion "
        "import, their stores; print rates, ratios and flatness. "
        "With no URI: ephemeral:, pickled: and file: in a temporary directory. Full run: --n 1k,10k,100k.",
        epilog=URI_HELP,
        formatter_class=fmt,
    )
    p.add_argument("uris", nargs="*", metavar="URI", help="stores to benchmark (default: the embedded ones)")
    p.add_argument("--n", type=_parse_ns, default=list(bench.DEFAULT_NS), help="trial counts (default: 1000,10000)")
    p.add_argument("--level", type=_parse_levels, default=list(bench.LEVELS), help="store,protocol (default: both)")
    p.add_argument("--repeat", type=int, default=None, help="runs per measurement (default: 5/3/1 by cost)")
    p.add_argument("--json", nargs="?", const="-", metavar="PATH", help="write the report as JSON to PATH (or stdout)")
    p.add_argument("--check", action="store_true", help="print which speed targets are met (PASS/MISS)")
    p.add_argument("--no-gc", action="store_true", help="disable Python's garbage collector while measuring")
    p.add_argument(
        "--workers",
        type=bench.parse_workers,
        default=list(bench.DEFAULT_WORKERS),
        metavar="K,...",
        help="concurrent claiming processes (default: 1,2,4; 0 for none)",
    )
    p.add_argument("--plot", metavar="PNG", help="draw µs/op against n, log-log (needs the 'bench' extra)")
    p.add_argument("--no-peers", action="store_true", help="skip optuna/orion rows even when they import")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")

    p = sub.add_parser(
        "ls",
        help="list trials",
        description="List trials: uid, status, group, parameters.",
        epilog=URI_HELP,
        formatter_class=fmt,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--query", metavar="JSON", help='MongoDB-style filter, e.g. \'{"status.name": "Created"}\'')
    p.add_argument("--limit", type=int, default=None, metavar="N", help="show at most N trials")

    p = sub.add_parser(
        "show",
        help="print one trial as JSON",
        description="Print one trial as JSON (a unique uid prefix works).",
        epilog=URI_HELP,
        formatter_class=fmt,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("uid", metavar="UID")
    migrate.add_parser(sub, URI_HELP)
    replay.add_parser(sub, URI_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 when a store, query or argument error was reported.
    """
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TrackBackendsError as e:
        message = " ".join(mask_password(str(e)).split()) or type(e).__name__
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
