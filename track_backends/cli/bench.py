"""``track-backends bench [URI...]``: run the trial workload and print rates."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import bench
from .common import FORMATTER, URI_HELP

NAME = "bench"


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


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="run the trial workload (insert, query, log, claim, K-worker claims) and print rates",
        description="Run Orion's trial workload at the Store and Protocol level, next to a raw reference "
        "(dict operations for memory, append+fdatasync for journals, the store's SQL replayed with psycopg for "
        "postgresql://, plain pymongo for mongodb://), K-worker concurrent claims and, where optuna or orion "
        "import, their stores; print rates, ratios and flatness. "
        "With no URI: ephemeral:, pickled: and file: in a temporary directory. Full run: --n 1k,10k,100k.",
        epilog=URI_HELP,
        formatter_class=FORMATTER,
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
    p.add_argument("--no-history", action="store_true", help="skip the history phase (metric points at scale)")
    p.add_argument(
        "--history-points",
        type=int,
        default=100_000,
        metavar="N",
        help="points in the history phase's long series (default: 100000)",
    )
    p.add_argument(
        "--artifact-mib",
        type=int,
        default=64,
        metavar="MIB",
        help="size of the artifact in the artifacts phase (default: 64; 0 skips the phase)",
    )
    p.add_argument("--no-record", action="store_true", help="skip the record phase (recorder and tracing costs)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return p


def run(args: argparse.Namespace) -> int:
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
        history=not args.no_history,
        history_points=args.history_points,
        artifact_mib=args.artifact_mib,
        recording=not args.no_record,
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
