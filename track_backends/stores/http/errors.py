"""Errors of the HTTP client and server, and the table that carries errors across the wire.

The server answers a failure with ``{"error": NAME, "message": ...}``, where NAME is the class
name of a :class:`~track_backends.errors.TrackBackendsError`. The client turns NAME back into the
same class through :data:`ERRORS`, a fixed table: a name the table does not hold becomes a plain
:class:`~track_backends.errors.StoreError`. No class is ever looked up by a name a peer sent.
"""

from __future__ import annotations

from ...errors import (
    CorruptStoreError,
    DriverNotInstalledError,
    DuplicateKeyError,
    EncodingError,
    InvalidURIError,
    LeaseLostError,
    LockTimeoutError,
    NotFoundError,
    QueryError,
    StoreError,
    StoreUnavailableError,
    TrackBackendsError,
    UnknownSchemeError,
    UnsupportedOperatorError,
)


class AuthenticationError(StoreError, PermissionError):
    """The server refused the request: no token, or a token it does not know (HTTP 401)."""


class PermissionDeniedError(StoreError, PermissionError):
    """The token's role does not allow the operation (HTTP 403): e.g. a ``read`` token writing."""


class RequestTooLargeError(EncodingError):
    """The request body is over the server's ``--max-body`` limit (HTTP 413)."""


ERRORS: dict[str, type[TrackBackendsError]] = {
    cls.__name__: cls
    for cls in (
        AuthenticationError,
        CorruptStoreError,
        DriverNotInstalledError,
        DuplicateKeyError,
        EncodingError,
        InvalidURIError,
        LeaseLostError,
        LockTimeoutError,
        NotFoundError,
        PermissionDeniedError,
        QueryError,
        RequestTooLargeError,
        StoreError,
        StoreUnavailableError,
        TrackBackendsError,
        UnknownSchemeError,
        UnsupportedOperatorError,
    )
}
"""Error name -> class, for the names a server may send; anything else is a :class:`StoreError`."""

STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (RequestTooLargeError, 413),
    (NotFoundError, 404),
    (DuplicateKeyError, 409),
    (LeaseLostError, 409),
    (QueryError, 400),
    (EncodingError, 400),
    (InvalidURIError, 400),
    (LockTimeoutError, 503),
    (StoreUnavailableError, 503),
)
"""The HTTP status of each error class, most specific first; any other error is a 500."""


def status_of(error: BaseException) -> int:
    """The HTTP status a server answers ``error`` with (500 for anything not in :data:`STATUS`)."""
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_from(name: object, message: object) -> TrackBackendsError:
    """Rebuild the error a server reported.

    Args:
        name: The ``error`` field of the answer.
        message: The ``message`` field.

    Returns:
        An instance of the class :data:`ERRORS` names, or a :class:`StoreError` for an unknown name.
    """
    cls = ERRORS.get(name, StoreError) if isinstance(name, str) else StoreError
    text = message if isinstance(message, str) else ""
    if cls is StoreError and name != "StoreError":
        text = f"{name}: {text}" if isinstance(name, str) and len(name) < 80 else text
    return cls(text)
