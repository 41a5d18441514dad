"""Exception hierarchy of track_backends.

Every error raised on purpose by the library derives from :class:`TrackBackendsError`, and, where
one fits, from the matching built-in exception, so ``except ValueError`` keeps working for callers
that do not know this library. Driver exceptions are never leaked: they are wrapped in
:class:`StoreError` (or a subclass) with the original kept as ``__cause__``.
"""

from __future__ import annotations


class TrackBackendsError(Exception):
    """Root of every error raised by track_backends."""


class InvalidURIError(TrackBackendsError, ValueError):
    """A store URI is malformed or names options the store does not know."""


class UnknownSchemeError(InvalidURIError):
    """No store is registered for the URI's scheme."""


class DriverNotInstalledError(TrackBackendsError, ImportError):
    """The database driver a scheme needs is not installed; the message names the pip extra."""


class ExtraNotInstalledError(TrackBackendsError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the pip extra."""


class OutputError(TrackBackendsError, ValueError):
    """An output format or path is unusable (e.g. an unknown ``--format`` or file extension)."""


class QueryError(TrackBackendsError, ValueError):
    """A query, sort, projection or update document is malformed."""


class UnsupportedOperatorError(QueryError):
    """A query or update uses an operator that track_backends does not implement."""


class EncodingError(TrackBackendsError, ValueError):
    """A value cannot be stored: unsupported type, bad key, or out-of-range number."""


class ArtifactError(TrackBackendsError, ValueError):
    """An artifact name, source, media type or metadata cannot be stored."""


class DuplicateKeyError(TrackBackendsError):
    """An insert or update would break a unique index (``uid`` is always unique)."""


class NotFoundError(TrackBackendsError, KeyError):
    """A document that an operation needs (a trial, a group, a project) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class LeaseLostError(TrackBackendsError):
    """A worker's lease on a trial was taken over: its fencing token is no longer the stored one.

    The write that raised it changed nothing. The trial now belongs to another reservation.
    """


class StoreError(TrackBackendsError):
    """The store failed to carry out an operation; the driver's exception is the cause."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached (connection refused, timed out, or closed)."""


class LockTimeoutError(StoreError, TimeoutError):
    """A bounded wait for a lock ran out."""


class CorruptStoreError(StoreError):
    """A store's files are not in a format this library wrote, or are damaged beyond a torn tail."""


__all__ = [
    "CorruptStoreError",
    "DriverNotInstalledError",
    "DuplicateKeyError",
    "EncodingError",
    "ExtraNotInstalledError",
    "InvalidURIError",
    "LeaseLostError",
    "LockTimeoutError",
    "NotFoundError",
    "OutputError",
    "QueryError",
    "StoreError",
    "StoreUnavailableError",
    "TrackBackendsError",
    "UnknownSchemeError",
    "UnsupportedOperatorError",
]
