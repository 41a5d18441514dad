"""Helpers shared by the MongoDB store tests (importable from test modules and the conftest)."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit


def fresh_name() -> str:
    """A database name no other test uses."""
    return f"tb_{uuid.uuid4().hex[:16]}"


def with_database(uri: str, name: str) -> str:
    """``uri`` naming the database ``name``, its hosts, credentials and options kept.

    When ``uri`` named a database and carries credentials without ``authSource``, that database
    stays the one the credentials authenticate against (MongoDB's default).
    """
    parts = urlsplit(uri)
    params = parse_qsl(parts.query, keep_blank_values=True)
    old = unquote(parts.path.strip("/"))
    if old and "@" in parts.netloc and not any(k.lower() == "authsource" for k, _ in params):
        params.append(("authSource", old))
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, urlencode(params), ""))
