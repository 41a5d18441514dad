"""The ``http://`` and ``https://`` stores: clients of ``track-backends serve``.

``get_protocol("http://127.0.0.1:8765")`` or ``get_protocol("https://:TOKEN@host:8765?ca=/path/ca.pem")``
returns the Protocol over an :class:`HttpStore`. The token comes from the URI's password slot or
from ``$TRACK_BACKENDS_TOKEN``; it is sent as a bearer token and never shown.

URI options: ``ca`` (a PEM bundle to verify the server's certificate with), ``timeout`` (seconds
per request, default 60), ``connect_timeout`` (default 5), ``retries`` (attempts after the first
while the server cannot be reached, default 6) and ``backoff`` (seconds before the first retry,
doubled each time up to 2 s; default 0.1). A path after the port is a prefix the routes live
under (behind a reverse proxy).

Artifacts' blobs stream both ways, never held whole (see :mod:`.blobs`): an upload sends its
chunks as they are written and is stored only once complete; a read resumes where a broken
connection stopped it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...errors import DriverNotInstalledError, InvalidURIError
from ...uri import StoreURI
from .errors import AuthenticationError, PermissionDeniedError, RequestTooLargeError

if TYPE_CHECKING:
    from .store import HttpStore

TOKEN_ENV = "TRACK_BACKENDS_TOKEN"
OPTIONS = frozenset({"ca", "timeout", "connect_timeout", "retries", "backoff"})

__all__ = ["AuthenticationError", "HttpStore", "PermissionDeniedError", "RequestTooLargeError", "from_uri"]


def __getattr__(name: str) -> Any:
    """Import :class:`HttpStore` (and httpx) on first use, so the server can share :mod:`.wire`.

    Raises:
        AttributeError: ``name`` is not ``HttpStore``.
    """
    if name == "HttpStore":
        from .store import HttpStore

        return HttpStore
    raise AttributeError(name)


def from_uri(uri: StoreURI) -> HttpStore:
    """Registry factory for ``http://`` and ``https://``.

    Raises:
        InvalidURIError: No host, an unknown option, a malformed option or token, or a ``ca``
            file that does not exist.
        DriverNotInstalledError: httpx is not installed.
    """
    try:
        from .store import HttpStore
    except ModuleNotFoundError as e:
        raise DriverNotInstalledError(
            f"the {uri.scheme}: store needs the {e.name!r} package, which is not installed; "
            "pip install 'track-backends[http]'"
        ) from None
    uri.check_options(OPTIONS)
    if not uri.host:
        raise InvalidURIError(f"{uri.redacted} names no host; use e.g. http://127.0.0.1:8765")
    if uri.username and uri.password is None:  # a token put in the user slot: never echo it
        raise InvalidURIError(f"a {uri.scheme}:// URI takes its token after a colon: {uri.scheme}://:TOKEN@host:port")
    token = uri.password or os.environ.get(TOKEN_ENV) or None
    if token is not None and (not token.isascii() or not token.isprintable() or " " in token):
        raise InvalidURIError(f"the token in {uri.redacted} (or ${TOKEN_ENV}) holds characters a header cannot carry")
    ca = uri.option("ca", None)
    if uri.scheme == "http" and ca:
        raise InvalidURIError(f"ca= is for https:// URIs, not {uri.redacted}")
    if ca and not os.path.isfile(ca):
        raise InvalidURIError(f"the CA file {ca} in {uri.redacted} does not exist")
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    port = f":{uri.port}" if uri.port else ""
    prefix = quote(uri.path.rstrip("/"))
    return HttpStore(
        f"{uri.scheme}://{host}{port}{prefix}",
        token=token,
        label=uri.redacted,
        ca=ca,
        timeout=uri.option("timeout", 60.0, float),
        connect_timeout=uri.option("connect_timeout", 5.0, float),
        retries=uri.option("retries", 6, int),
        backoff=uri.option("backoff", 0.1, float),
    )
