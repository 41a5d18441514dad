"""``track-backends artifact URI UID [NAME]``: list a trial's artifacts, or write one out."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from ..blobs import iter_chunks
from ..errors import OutputError
from ..protocol import DocumentProtocol
from .common import FORMATTER, URI_HELP, open_existing
from .show import find_trial

NAME = "artifact"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``artifact`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="list a trial's artifacts, or write one to a file",
        description=(
            "Without NAME, list the artifacts of a trial (a unique uid prefix works): name, size, "
            "media type, sha256. With NAME, stream that artifact's content, verified against its "
            "sha256, to --output (written to a temporary file and renamed into place only when the "
            "whole content checked out) or to standard output."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("uid", metavar="UID")
    p.add_argument("name", metavar="NAME", nargs="?")
    p.add_argument("-o", "--output", metavar="PATH", help="write the artifact here (default: standard output)")
    return p


def _write_file(stream: Any, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".artifact-", dir=directory)
    except OSError as e:
        raise OutputError(f"cannot write into {directory}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in iter_chunks(stream):
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> int:
    """List the artifacts, or write one out."""
    with open_existing(args.uri) as store:
        proto = DocumentProtocol(store)
        uid = find_trial(store, args.uid, args.uri)["uid"]
        if args.name is None:
            for a in proto.list_artifacts(uid):
                print(f"{a.name}\t{a.size}\t{a.media_type}\t{a.sha256}")
            return 0
        with proto.open_artifact(uid, args.name) as stream:
            if args.output:
                _write_file(stream, args.output)
            else:
                for chunk in iter_chunks(stream):
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
    return 0
