"""Helpers shared by the MongoDB store tests (importable from test modules and the conftest)."""

from __future__ import annotations

import importlib
import os
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit


@dataclass(frozen=True)
class Server:
    """A MongoDB-wire server the tests run on."""

    uri: str  # its base URI
    kind: str  # "secantus" or "mongodb"
    client: Any  # a pymongo client connected to it


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


def require(module: str) -> ModuleType:
    """Import a driver the tests need: skip without it, but fail under CI (``CI=true``)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        import pytest

        reason = f"{module} is not installed ({e}); pip install -e '.[test]'"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{reason} (CI=true: refusing to skip)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
        raise  # pragma: no cover - skip raises
