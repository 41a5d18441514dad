"""MongoDB URIs: database names, client options, and the client a ``mongodb://`` URI opens."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from ...errors import InvalidURIError, StoreUnavailableError
from ...uri import StoreURI, mask_password

DEFAULT_DATABASE = "track"
DEFAULT_CLIENT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
    "appname": "track_backends",
}
"""Options :func:`~.factories.from_uri` passes to ``MongoClient`` unless the URI sets them (any case)."""

_BAD_DB_CHARS = frozenset('/\\. "$*<>:|?\x00')


def check_database_name(name: str, where: str = "") -> str:
    """Validate a MongoDB database name (the URI's path).

    Raises:
        InvalidURIError: The name is empty, longer than 63 bytes, or holds a character MongoDB
            refuses (slash, backslash, dot, space, quote, ``$ * < > : | ?``).
    """
    if not name or len(name.encode("utf-8", "surrogatepass")) > 63 or any(ch in _BAD_DB_CHARS for ch in name):
        raise InvalidURIError(
            f"bad MongoDB database name {name!r}{' in ' + where if where else ''}: use at most 63 bytes, "
            'without any of / \\ . space " $ * < > : | ?'
        )
    return name


def database_name(uri: StoreURI, name: str) -> str:
    """The database a URI names (``name`` is its decoded path), or the default one.

    Raises:
        InvalidURIError: The name is not a valid MongoDB database name.
    """
    return check_database_name(name.strip("/") or DEFAULT_DATABASE, uri.redacted)


def check_client_options(uri: StoreURI) -> None:
    """Refuse option names and values pymongo does not know, naming the option (never its value).

    Each ``name=value`` of the query string is checked on its own, as written (pymongo decodes
    values its own way), so the message can say which one is wrong; pymongo's own messages
    never repeat a value.

    Raises:
        InvalidURIError: An option is unknown or has a bad value.
    """
    from pymongo.uri_parser import split_options

    query = uri.raw.partition("?")[2].partition("#")[0]
    for piece in re.split("[&;]", query):
        if not piece:
            continue
        try:
            split_options(piece, validate=True, warn=False)
        except Exception as e:  # noqa: BLE001 - ConfigurationError, InvalidURI, ValueError, OSError (tlsCAFile)
            name = unquote(piece.partition("=")[0])
            raise InvalidURIError(f"option {name!r} in {uri.redacted}: {mask_password(str(e))}") from None


def default_options(uri: StoreURI) -> dict[str, Any]:
    """The :data:`DEFAULT_CLIENT_OPTIONS` the URI does not set (option names compared in any case)."""
    given = {k.lower() for k in uri.params}
    return {k: v for k, v in DEFAULT_CLIENT_OPTIONS.items() if k.lower() not in given}


def open_client(pymongo: Any, uri: StoreURI) -> Any:
    """A ``pymongo.MongoClient`` for ``uri`` with the default options it does not set (lazy: no I/O).

    Raises:
        InvalidURIError: The URI or an option is invalid.
        StoreUnavailableError: A ``mongodb+srv`` host name does not resolve.
    """
    check_client_options(uri)
    try:
        return pymongo.MongoClient(uri.raw, **default_options(uri))
    except pymongo.errors.ConfigurationError as e:
        text = mask_password(str(e))
        if "DNS" in text or "resolution" in text:
            raise StoreUnavailableError(f"cannot resolve the hosts of {uri.redacted}: {text}") from e
        raise InvalidURIError(f"{uri.redacted}: {text}") from e
    except (pymongo.errors.PyMongoError, ValueError, TypeError) as e:
        raise InvalidURIError(f"{uri.redacted}: {mask_password(str(e))}") from e


def mongomock_database(uri: StoreURI) -> str:
    """The database of a ``mongomock://dbname`` (or ``mongomock:dbname``) URI.

    Raises:
        InvalidURIError: The URI has options, credentials, or both a host part and a path.
    """
    uri.check_options(frozenset())
    rest = uri.raw.split(":", 1)[1].split("?", 1)[0].split("#", 1)[0]
    netloc, path = "", rest
    if rest.startswith("//"):
        netloc, _, path = rest[2:].partition("/")
    if netloc and path.strip("/"):
        raise InvalidURIError(f"{uri.redacted}: name the database once, as in mongomock://dbname")
    if "@" in netloc:
        raise InvalidURIError(f"{uri.redacted}: mongomock:// takes no credentials")
    return database_name(uri, unquote(netloc or path))
