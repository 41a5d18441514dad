"""What the subcommands share: the program name, the URI help, ``--query`` parsing, read-only opening."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ..errors import TrackBackendsError
from ..migrate import JOURNAL_SCHEMES, require_existing
from ..registry import open_store
from ..store import Store
from ..uri import parse_uri

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
  https://:TOKEN@host:8765?ca=ca.pem     a store served by `track-backends serve` (pip install 'track-backends[http]')
Passwords are never printed; options go in the query string (?name=value).
"""

Handler = Callable[[argparse.Namespace], int]
"""A subcommand: gets the parsed arguments, returns the exit status."""

FORMATTER = argparse.RawDescriptionHelpFormatter


class CLIError(TrackBackendsError):
    """A command-line argument is unusable (e.g. ``--query`` is not a JSON object)."""


def parse_query(text: str | None) -> dict[str, Any] | None:
    """Parse a ``--query`` argument.

    Args:
        text: The argument, or ``None`` when it was not given.

    Returns:
        The filter, or ``None``.

    Raises:
        CLIError: ``text`` is not JSON, or not a JSON object.
    """
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


def read_only_uri(uri: str) -> str:
    """The URI with ``create=false`` added when it names a journal, so opening never creates a file.

    Other schemes are returned unchanged.

    Args:
        uri: A store URI.

    Returns:
        The URI to open.
    """
    if parse_uri(uri).scheme not in JOURNAL_SCHEMES:
        return uri
    return uri + ("&" if "?" in uri else "?") + "create=false"


def open_existing(uri: str) -> Store:
    """Open a store for a read-only command; a journal file that does not exist is an error.

    Args:
        uri: The store's URI, as the user typed it.

    Returns:
        The open store (the caller closes it).

    Raises:
        NotFoundError: The URI names a journal file that does not exist (nothing is created).
    """
    require_existing(parse_uri(uri))
    return open_store(read_only_uri(uri))
