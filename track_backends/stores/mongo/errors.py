"""Turning driver exceptions into this library's exceptions, with passwords masked.

Server error codes: https://www.mongodb.com/docs/manual/reference/error-codes/
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from ...errors import (
    DuplicateKeyError,
    EncodingError,
    QueryError,
    StoreError,
    StoreUnavailableError,
    TrackBackendsError,
)
from ...uri import mask_password
from .drivers import Driver

DUPLICATE_CODES = frozenset({11000, 11001, 12582})
QUERY_CODES = frozenset(
    {
        2,  # BadValue: $push onto a non-array, $inc overflow, bad regex, ...
        9,  # FailedToParse
        14,  # TypeMismatch: $inc of a string
        28,  # PathNotViable: a field inside a scalar or an array addressed by a name
        40,  # ConflictingUpdateOperators
        52,  # DollarPrefixedFieldName
        54,  # NotSingleValueField
        56,  # EmptyFieldName
        57,  # DottedFieldName
        66,  # ImmutableField
        171,  # CannotIndexParallelArrays
        31249,  # projection path collision
        31250,  # projection path collision
        31253,  # projection mixes inclusion and exclusion
        31254,  # projection mixes exclusion and inclusion
        51091,  # regular expression is invalid
        51108,  # invalid regex flags
    }
)
TOO_LARGE_CODES = frozenset({10334, 17419, 17420})  # BSONObjectTooLarge, document too large after update
INDEX_CONFLICT_CODES = frozenset({85, 86})  # IndexOptionsConflict, IndexKeySpecsConflict

MAX_TEXT = 500
"""Driver messages are cut to this many characters."""
MAX_UNAVAILABLE = 200
"""An unreachable-server message is at most this long (one line)."""
_MAX_HOSTS = 3

_TIMEOUTS_RE = re.compile(r"\s*\(configured timeouts:[^)]*\)")
_ERRNO_RE = re.compile(r"\[Errno -?\d+\]\s*")
_HOST_PREFIX_RE = re.compile(r"^\S+:\d+: ")
_WAITED_RE = re.compile(r", Timeout: ([0-9.]+)s")


def error_code(e: BaseException) -> int | None:
    """The server error code of a driver exception (the first write error's for bulk writes)."""
    details = getattr(e, "details", None)
    if isinstance(details, dict):
        errs = details.get("writeErrors")
        if errs:
            return errs[0].get("code")
    code = getattr(e, "code", None)
    return code if isinstance(code, int) else None


def index_conflict(e: BaseException) -> bool:
    """Whether creating an index failed because one on the same keys exists with other options."""
    return error_code(e) in INDEX_CONFLICT_CODES or "already exists with different options" in str(e)  # mongomock


def mask(text: str, password: str | None) -> str:
    """``text`` with the password of every URI in it, and ``password`` in any encoding, masked."""
    text = mask_password(text)
    if password:
        for form in {password, quote(password, safe=""), quote(password)}:
            text = text.replace(form, "***")
    return text


def driver_text(e: BaseException, password: str | None) -> str:
    """The driver's message, without pymongo's 'full error' dump, password masked, bounded."""
    details = getattr(e, "details", None)
    text = None
    if isinstance(details, dict):
        errs = details.get("writeErrors")
        text = errs[0].get("errmsg") if errs else details.get("errmsg")
    if not isinstance(text, str):
        text = getattr(e, "_message", None)
    if not isinstance(text, str) or not text:
        text = str(e)
    text = mask(text, password)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "..."


def _reason(text: str) -> str:
    """One short line of why a server could not be reached (no host prefix, no timeout dump)."""
    text = text.partition(", Timeout: ")[0].partition("Topology Description:")[0]
    text = _ERRNO_RE.sub("", _TIMEOUTS_RE.sub("", text)).splitlines()[0] if text.strip() else ""
    text = _HOST_PREFIX_RE.sub("", text.strip()).strip(" ,")
    return text if len(text) <= 80 else text[:77] + "..."


def _address(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port is not None else host


def _servers(client: Any, password: str | None) -> list[tuple[str, str]]:
    """``(host:port, why it failed or "")`` of every server the client knows of (its seeds at first)."""
    try:
        descriptions = client.topology_description.server_descriptions()
    except Exception:  # noqa: BLE001 - mongomock, or a client in a state that cannot say
        return []
    out = []
    for (host, port), sd in sorted(descriptions.items(), key=lambda kv: str(kv[0])):
        error = getattr(sd, "error", None)
        out.append((_address(host, port), _reason(mask(str(error), password)) if error else ""))
    return out


def unavailable_message(e: BaseException, what: str, label: str, client: Any, password: str | None) -> str:
    """One line naming the hosts tried and why they failed, at most :data:`MAX_UNAVAILABLE` characters.

    Args:
        e: The driver's exception.
        what: The operation, e.g. ``"find in 'trials'"``.
        label: How messages name the store (a redacted URI: its options are left out).
        client: The driver client, asked which servers it tried.
        password: The URI's password, masked.
    """
    text = mask(str(e), password)
    servers = _servers(client, password)
    reasons = {r for _, r in servers if r}
    waited = _WAITED_RE.search(text)
    within = f" within {float(waited.group(1)):g} s" if waited else ""
    more = f" and {len(servers) - _MAX_HOSTS} more" if len(servers) > _MAX_HOSTS else ""
    shown = servers[:_MAX_HOSTS]
    if len(reasons) > 1:
        listed = ", ".join(f"{h} ({r})" if r else h for h, r in shown)
        msg = f"cannot reach the servers{within}: {listed}{more}"
    else:
        hosts = ", ".join(h for h, _ in shown) or "the server"
        reason = reasons.pop() if reasons else _reason(text)
        msg = f"cannot reach {hosts}{more}{within}" + (f": {reason}" if reason else "")
    for candidate in (f"{what} ({label.partition('?')[0]}): {msg}", f"{what}: {msg}", msg):
        if len(candidate) <= MAX_UNAVAILABLE:
            return candidate
    return msg[: MAX_UNAVAILABLE - 3] + "..."


def wrap_error(
    e: BaseException,
    what: str,
    bad_value: type[TrackBackendsError],
    *,
    driver: Driver,
    label: str,
    client: Any,
    password: str | None,
) -> TrackBackendsError:
    """Turn a driver exception into this library's exception (to be raised ``from e``).

    Args:
        e: The driver's exception.
        what: The operation, e.g. ``"find in 'trials'"``.
        bad_value: The class raised when BSON cannot encode a value.
        driver: The store's driver adapter.
        label: How messages name the store (the redacted URI).
        client: The driver client (asked which servers it tried).
        password: The URI's password, masked in every message.
    """
    if isinstance(e, TrackBackendsError):
        return e
    code = error_code(e)
    text = driver_text(e, password)
    where = f"{what} ({label})"
    if code in DUPLICATE_CODES or isinstance(e, driver.duplicate):
        return DuplicateKeyError(f"{where}: duplicate key: {text}")
    if (
        isinstance(e, driver.unavailable)
        or getattr(e, "timeout", False) is True
        or (isinstance(e, driver.invalid_operation) and "close" in text)
    ):
        return StoreUnavailableError(unavailable_message(e, what, label, client, password))
    if code in QUERY_CODES:
        return QueryError(f"{where}: {text}")
    if code in TOO_LARGE_CODES:
        return EncodingError(f"{where}: {text}")
    if isinstance(e, driver.bad_value):
        return bad_value(f"{where}: MongoDB cannot store this value: {text}")
    return StoreError(f"{where}: {driver.name} {type(e).__name__}: {text}")
