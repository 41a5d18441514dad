"""The ``track-backends`` entry point: one subparser per subcommand module, one error policy.

Every subcommand reports a :class:`~track_backends.errors.TrackBackendsError` as one line on
stderr and exits with status 2. A reader that stops early (``track-backends ls URI | head``)
ends the command quietly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import TrackBackendsError
from ..uri import mask_password
from . import artifact, bench, best, export, gc, ls, migrate, plot, replay, requeue, serve, show, token, tree, ui
from .common import FORMATTER, PROG, URI_HELP, Handler

_SUBCOMMANDS = (bench, ls, show, best, tree, export, plot, ui, serve, token, migrate, replay, requeue, gc, artifact)

COMMANDS: dict[str, Handler] = {m.NAME: m.run for m in _SUBCOMMANDS}
"""Subcommand name -> handler; each handler gets the parsed arguments and returns an exit code."""

BROKEN_PIPE = 141
"""Exit status when stdout's reader went away (128 + SIGPIPE, as a shell reports it)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser, with one subparser per entry of :data:`COMMANDS`.

    Returns:
        The ``track-backends`` parser.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Inspect, see, export, serve, benchmark and migrate track_backends stores.",
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def _silence_stdout() -> None:
    """Point stdout at devnull, so that the flush at exit does not fail on the closed pipe again."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (e.g. captured by a test): nothing is flushed to a pipe at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 when a store, query or argument error was reported,
        :data:`BROKEN_PIPE` when the reader of stdout went away; some subcommands add their own
        (``migrate``: 1 on a verification mismatch, 130 when interrupted).
    """
    args = build_parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE
    except TrackBackendsError as e:
        message = " ".join(mask_password(str(e)).split()) or type(e).__name__
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2
