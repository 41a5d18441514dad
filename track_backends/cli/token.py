"""``track-backends token``: make, list and remove the bearer tokens a server accepts."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import FORMATTER

NAME = "token"
ROLES = ("read", "write", "admin")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``token`` subparser (``add``, ``list``, ``remove``) to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="manage the tokens of 'serve'",
        description=(
            "Tokens for 'track-backends serve --tokens FILE'. 'add' prints a new random token once: the "
            "file keeps only a salted scrypt hash of it. Roles: read (find, count, fetch points, the clock), "
            "write (also insert, update, claim, append points, commit), admin (also delete, delete points, "
            "create indexes). A running server notices changes to the file within a second."
        ),
        formatter_class=FORMATTER,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a token and print it (once)")
    add.add_argument("name", help="who holds it (shown in the server's log lines)")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--tokens", metavar="FILE", required=True, help="the token file (created if missing)")
    ls = actions.add_parser("list", help="list the tokens' names and roles")
    ls.add_argument("--tokens", metavar="FILE", required=True)
    rm = actions.add_parser("remove", help="remove a token")
    rm.add_argument("name")
    rm.add_argument("--tokens", metavar="FILE", required=True)
    return p


def run(args: argparse.Namespace) -> int:
    """Carry out the ``token`` action.

    Raises:
        TokenFileError: The file is unusable, or the name is bad or taken.
    """
    from ..server.tokens import add_token, load_tokens, remove_token

    if args.action == "add":
        token = add_token(args.tokens, args.name, args.role)
        print(token)
        print(f"token {args.name!r} ({args.role}) added to {args.tokens}; it is shown only now", file=sys.stderr)
        return 0
    if args.action == "list":
        for e in load_tokens(args.tokens):
            print(f"{e.name}\t{e.role}")
        return 0
    if not remove_token(args.tokens, args.name):
        print(f"no token named {args.name!r} in {args.tokens}", file=sys.stderr)
        return 1
    print(f"token {args.name!r} removed", file=sys.stderr)
    return 0
