"""URIs of the journal stores: ``pickled:`` and ``file:`` (the registry's factories)."""

from __future__ import annotations

import math

from ..errors import InvalidURIError
from ..uri import StoreURI
from .journal import DEFAULT_COMPACT_BYTES, DEFAULT_LOCK_TIMEOUT, JournalStore

URI_OPTIONS = frozenset({"lock_timeout", "fsync", "compact_bytes", "create"})


def _from_uri(uri: StoreURI, codec: str) -> JournalStore:
    if uri.host and uri.host.lower() != "localhost":
        raise InvalidURIError(
            f"{uri.redacted}: a {codec}: URI names a file, not a host ({uri.host!r}); "
            f"use {codec}:relative/path or {codec}:///absolute/path"
        )
    if not uri.path:
        raise InvalidURIError(
            f"{uri.redacted}: a {codec}: URI needs a file path, e.g. {codec}:relative/path or {codec}:///absolute/path"
        )
    uri.check_options(URI_OPTIONS)
    lock_timeout = uri.option("lock_timeout", DEFAULT_LOCK_TIMEOUT, float)
    if not math.isfinite(lock_timeout) or lock_timeout < 0:
        raise InvalidURIError(f"{uri.redacted}: lock_timeout must be a finite number of seconds >= 0")
    compact_bytes = uri.option("compact_bytes", DEFAULT_COMPACT_BYTES, int)
    if compact_bytes < 0:
        raise InvalidURIError(f"{uri.redacted}: compact_bytes must be >= 0 (0 disables automatic compaction)")
    return JournalStore(
        uri.path,
        codec,
        lock_timeout=lock_timeout,
        fsync=uri.option("fsync", True, bool),
        compact_bytes=compact_bytes,
        create=uri.option("create", True, bool),
    )


def pickled_from_uri(uri: StoreURI) -> JournalStore:
    """Registry factory for ``pickled:`` (pickle-framed journal).

    Options: ``lock_timeout`` (seconds, default 30), ``fsync`` (default true; false is unsafe on
    power loss), ``compact_bytes`` (default 4 MiB; 0 disables automatic compaction) and
    ``create`` (default true; false refuses to open a file that does not exist). A path that
    starts with ``~`` (``pickled:~/t.pkl``) is in the home directory.

    Raises:
        InvalidURIError: The URI names a host, has no path, or has an unknown or bad option.
        StoreUnavailableError: ``create=false`` and the file does not exist.
        StoreError: The file cannot be opened (see :class:`JournalStore`).
    """
    return _from_uri(uri, "pickled")


def file_from_uri(uri: StoreURI) -> JournalStore:
    """Registry factory for ``file:`` (JSON-lines journal, readable by ``jq``).

    Options are those of :func:`pickled_from_uri`.

    Raises:
        InvalidURIError: The URI names a host, has no path, or has an unknown or bad option.
        StoreUnavailableError: ``create=false`` and the file does not exist.
        StoreError: The file cannot be opened (see :class:`JournalStore`).
    """
    return _from_uri(uri, "file")
