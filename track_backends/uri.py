"""Parsing store URIs, with percent-decoding and password masking."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import InvalidURIError

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_HOME_SCHEMES = frozenset({"pickled", "file"})
"""Schemes whose relative form names a local file: a leading ``~`` there is the home directory."""
_PASSWORD_RE = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*:)(?P<pw>[^@/?#]*)(?P<at>@)")


# The same inside a percent-encoded URI (e.g. a multiplex: URI's inner URIs): "%3A%2F%2Fuser%3Apw%40".
_ENCODED_PASSWORD_RE = re.compile(
    r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*%3A%2F%2F(?:(?!%3A|%40|%2F)[^:/@?#&\s])*%3A)"
    r"(?P<pw>(?:(?!%40)[^/@?#&\s])*)(?P<at>%40)",
    re.IGNORECASE,
)


def mask_password(text: str) -> str:
    """Replace the password of every URI found in ``text`` with ``***``, percent-encoded ones too."""
    text = _PASSWORD_RE.sub(lambda m: m.group("pre") + "***" + m.group("at"), text)
    if "%" in text:
        text = _ENCODED_PASSWORD_RE.sub(lambda m: m.group("pre") + "***" + m.group("at"), text)
    return text


@dataclass(frozen=True)
class StoreURI:
    """A parsed store URI. Its ``repr`` and ``str`` never show the password.

    Attributes:
        scheme: Lower-cased scheme, e.g. ``"pickled"``.
        path: Percent-decoded path; for ``scheme:relative`` forms, the relative path (with a
            leading ``~`` expanded in ``pickled:`` and ``file:`` URIs).
        host: Host name, a comma-separated seed list (``h1:27017,h2:27017``), or ``None``.
        port: Port number, or ``None``.
        username: Percent-decoded user name, or ``None``.
        password: Percent-decoded password, or ``None`` (never shown).
        params: Query-string options (last value wins).
        raw: The URI as given (use :attr:`redacted` for display).
    """

    scheme: str
    path: str = ""
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    params: dict[str, str] = field(default_factory=dict)
    raw: str = field(default="", repr=False)

    @property
    def redacted(self) -> str:
        """The URI as given, with its password replaced by ``***``."""
        return mask_password(self.raw)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"StoreURI({self.redacted!r})"

    def option(self, name: str, default: Any, kind: type = str) -> Any:
        """Read a query-string option converted to ``kind`` (``bool`` accepts true/false/1/0).

        Raises:
            InvalidURIError: The value does not convert.
        """
        if name not in self.params:
            return default
        value = self.params[name]
        try:
            if kind is bool:
                low = value.lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return kind(value)
        except ValueError:
            raise InvalidURIError(
                f"option {name}={value!r} in {self.redacted} is not a valid {kind.__name__}"
            ) from None

    def check_options(self, known: set[str] | frozenset[str]) -> None:
        """Raise InvalidURIError naming any query-string option outside ``known``."""
        unknown = sorted(set(self.params) - set(known))
        if unknown:
            raise InvalidURIError(f"unknown option(s) {unknown} in {self.redacted}; known: {sorted(known) or 'none'}")


def parse_uri(uri: str) -> StoreURI:
    """Parse a store URI.

    Accepted forms include ``ephemeral:``, ``pickled:///abs/path.pkl``, ``pickled:rel.pkl``,
    ``file:///abs/store.jsonl``, ``mongodb://user:pw@host:port/db?opt=v`` and
    ``postgresql://user:pw@host:port/db?opt=v``. Paths, users and passwords are
    percent-decoded. In ``pickled:`` and ``file:`` URIs, a relative path that starts with ``~``
    (``file:~/runs.jsonl``, ``pickled:~user/t.pkl``) is expanded to the home directory.

    Raises:
        InvalidURIError: ``uri`` is not a string, has no scheme, or has a bad port.
    """
    if not isinstance(uri, str):
        raise InvalidURIError(f"a store URI must be a string, got {type(uri).__name__}")
    m = _SCHEME_RE.match(uri)
    if not m:
        raise InvalidURIError(f"{mask_password(uri)!r} has no scheme; expected e.g. 'ephemeral:' or 'pickled:///path'")
    scheme = m.group(1).lower()
    rest = uri[m.end() :]
    if not rest.startswith("//"):  # scheme:relative/path?opts
        path, _, query = rest.partition("?")
        path = unquote(path)
        if scheme in _HOME_SCHEMES and path.startswith("~"):
            path = os.path.expanduser(path)
        return StoreURI(scheme=scheme, path=path, params=dict(parse_qsl(query)), raw=uri)
    try:
        parts = urlsplit(uri)
        hosts = parts.netloc.rpartition("@")[2]
        if "," in hosts:  # a seed list (MongoDB replica sets): host keeps "h1:p1,h2:p2", no port
            host: str | None = unquote(hosts)
            port = None
        else:
            host = unquote(parts.hostname) if parts.hostname else None
            port = parts.port
    except ValueError as e:
        raise InvalidURIError(f"malformed URI {mask_password(uri)!r}: {mask_password(str(e))}") from None
    return StoreURI(
        scheme=scheme,
        path=unquote(parts.path),
        host=host,
        port=port,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        params=dict(parse_qsl(parts.query)),
        raw=uri,
    )
