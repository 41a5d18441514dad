"""Turning driver exceptions into this library's exceptions, with passwords masked.

Server error codes: https://www.mongodb.com/docs/manual/reference/error-codes/
"""

from __future__ import annotations

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
        client: The driver client.
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
        return StoreUnavailableError(f"{where}: the server is unavailable: {text}")
    if code in QUERY_CODES:
        return QueryError(f"{where}: {text}")
    if code in TOO_LARGE_CODES:
        return EncodingError(f"{where}: {text}")
    if isinstance(e, driver.bad_value):
        return bad_value(f"{where}: MongoDB cannot store this value: {text}")
    return StoreError(f"{where}: {driver.name} {type(e).__name__}: {text}")
