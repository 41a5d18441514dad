"""The ``track-backends`` entry point: one subparser per subcommand module, one error policy.

Every subcommand reports a :class:`~track_backends.errors.TrackBackendsError` as one line on
stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import TrackBackendsError
from ..uri import mask_password
from . import bench, ls, migrate, replay, show
from .common import FORMATTER, PROG, URI_HELP, Handler

_SUBCOMMANDS = (bench, ls, show, migrate, replay)

COMMANDS: dict[str, Handler] = {m.NAME: m.run for m in _SUBCOMMANDS}
"""Subcommand name -> handler; each handler gets the parsed arguments and returns an exit code."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser, with one subparser per entry of :data:`COMMANDS`.

    Returns:
        The ``track-backends`` parser.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, benchmark and migrate track_backends stores.",
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 when a store, query or argument error was reported;
        some subcommands add their own (``migrate``: 1 on a verification mismatch, 130 when
        interrupted).
    """
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TrackBackendsError as e:
        message = " ".join(mask_password(str(e)).split()) or type(e).__name__
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2
