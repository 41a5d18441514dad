"""The ``track-backends`` command line: one module per subcommand (``ls``, ``best``, ``export``, ``ui``...).

Each subcommand is a module of this package with ``NAME``, ``add_parser(subparsers)`` and
``run(args) -> exit status``; :func:`main` parses the arguments, runs one, and reports errors.
"""

from __future__ import annotations

from .common import PROG, URI_HELP, CLIError
from .main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "PROG", "URI_HELP", "CLIError", "build_parser", "main"]
