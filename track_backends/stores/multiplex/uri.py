"""``multiplex:?primary=<uri>&mirror=<uri>&...`` URIs: building and parsing them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ...errors import InvalidURIError
from ...uri import StoreURI, mask_password, parse_uri
from .state import (
    DEFAULT_BACKOFF,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_POLICY,
    check_policy,
)

SECONDS_OPTIONS = ("close_timeout", "backoff", "backoff_max", "lock_timeout")
URI_OPTIONS = frozenset({"primary", "mirror", "policy", "outbox", *SECONDS_OPTIONS})


@dataclass(frozen=True)
class MultiplexSpec:
    """A parsed ``multiplex:`` URI.

    Attributes:
        primary: The primary's URI (decoded, with its password: never display it).
        mirrors: The mirrors' URIs (likewise).
        policy: ``"strict"`` or ``"best_effort"``.
        outbox: The outbox path, ``":memory:"``, or ``None`` for the default.
        close_timeout: Seconds ``close`` replays at most.
        backoff: First backoff, seconds.
        backoff_max: Longest backoff, seconds.
        lock_timeout: Seconds to wait for the mirroring lock.
    """

    primary: str
    mirrors: tuple[str, ...]
    policy: str = DEFAULT_POLICY
    outbox: str | None = None
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    backoff: float = DEFAULT_BACKOFF
    backoff_max: float = DEFAULT_BACKOFF_MAX
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT

    @property
    def redacted(self) -> str:
        """The URI with inner passwords masked (still percent-encoded, for display only)."""
        return display_name(mask_password(self.primary), [mask_password(m) for m in self.mirrors], self.policy)

    def __repr__(self) -> str:
        return f"MultiplexSpec({self.redacted!r})"


def display_name(primary: str, mirrors: list[str], policy: str) -> str:
    """``multiplex:?primary=...&mirror=...&policy=...`` from names that are already masked."""
    parts = [f"primary={quote(primary, safe=':/@*')}"]
    parts += [f"mirror={quote(m, safe=':/@*')}" for m in mirrors]
    parts.append(f"policy={policy}")
    return "multiplex:?" + "&".join(parts)


def multiplex_uri(
    primary: str, *mirrors: str, policy: str | None = None, outbox: str | None = None, **options: Any
) -> str:
    """Build a ``multiplex:`` URI, percent-encoding the inner URIs.

    Example:
        >>> multiplex_uri("pickled:///data/t.pkl", "mongodb://u:p@db/track")
        'multiplex:?primary=pickled%3A%2F%2F%2Fdata%2Ft.pkl&mirror=mongodb%3A%2F%2Fu%3Ap%40db%2Ftrack'
    """
    parts = [f"primary={quote(primary, safe='')}"] + [f"mirror={quote(m, safe='')}" for m in mirrors]
    if policy is not None:
        parts.append(f"policy={quote(policy, safe='')}")
    if outbox is not None:
        parts.append(f"outbox={quote(outbox, safe='')}")
    parts += [f"{k}={quote(str(v), safe='')}" for k, v in options.items()]
    return "multiplex:?" + "&".join(parts)


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidURIError(f"multiplex: option {name}={text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidURIError(f"multiplex: option {name}={text!r} must be a finite number of seconds >= 0")
    return value


def _options(raw: str) -> dict[str, list[str]]:
    """The decoded options of a multiplex: URI, checked for unknown and repeated names."""
    if not isinstance(raw, str) or not raw.lower().startswith("multiplex:"):
        raise InvalidURIError("not a multiplex: URI")
    rest = raw[len("multiplex:") :]
    if rest.startswith("//"):
        rest = rest[2:]
    path, _, query = rest.partition("?")
    if path.strip("/"):
        raise InvalidURIError("a multiplex: URI takes no path: use multiplex:?primary=<uri>&mirror=<uri>")
    values: dict[str, list[str]] = {}
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            values.setdefault(unquote(key), []).append(unquote(value))
    unknown = sorted(set(values) - URI_OPTIONS)
    if unknown:
        raise InvalidURIError(
            f"unknown option(s) {[mask_password(u) for u in unknown]} in a multiplex: URI; known: {sorted(URI_OPTIONS)}"
        )
    for key, vals in values.items():
        if key != "mirror" and len(vals) > 1:
            raise InvalidURIError(f"option {key!r} is given {len(vals)} times in a multiplex: URI")
    return values


def parse_multiplex(uri: str | StoreURI) -> MultiplexSpec:
    """Parse ``multiplex:?primary=<uri>&mirror=<uri>&mirror=...&policy=...&outbox=...&close_timeout=...``.

    Inner URIs must be percent-encoded (``quote(uri, safe="")``, or :func:`multiplex_uri`). A
    ``+`` is kept as is (not read as a space), so ``mongodb+srv://`` survives unencoded.

    Raises:
        InvalidURIError: Not a multiplex URI, no primary, an option given twice, an unknown
            option, a nested ``multiplex:``, or a bad value. Messages never show passwords.
    """
    values = _options(uri.raw if isinstance(uri, StoreURI) else uri)
    if not values.get("primary") or not values["primary"][0]:
        raise InvalidURIError("a multiplex: URI needs a primary: multiplex:?primary=<percent-encoded URI>&mirror=...")
    primary = values["primary"][0]
    mirrors = tuple(values.get("mirror", []))
    for inner in (primary, *mirrors):
        if not inner:
            raise InvalidURIError("an empty mirror URI in a multiplex: URI")
        if inner.lower().startswith("multiplex:"):
            raise InvalidURIError("multiplex: stores cannot be nested")
        parse_uri(inner)  # a malformed inner URI: its (masked) error
    policy = check_policy(values.get("policy", [DEFAULT_POLICY])[0].replace("-", "_").lower())
    seconds = {k: _seconds(k, v[0]) for k, v in values.items() if k in SECONDS_OPTIONS}
    outbox = values.get("outbox", [None])[0] or None
    return MultiplexSpec(primary, mirrors, policy, outbox, **seconds)


__all__ = ["MultiplexSpec", "multiplex_uri", "parse_multiplex"]
