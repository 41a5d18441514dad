"""Opening a multiplexer's primary and mirrors from URIs; the registry's ``multiplex:`` factory."""

from __future__ import annotations

import contextlib
import logging

from ...errors import InvalidURIError, StoreError, TrackBackendsError
from ...store import Store
from ...uri import StoreURI, parse_uri
from .state import Mirror, one_line
from .store import MultiplexStore
from .uri import MultiplexSpec, parse_multiplex

log = logging.getLogger("track_backends.multiplex")


def open_mirror(uri: str, policy: str, backoff: float, backoff_max: float) -> Mirror:
    """Open a mirror given by its URI.

    A best-effort mirror that cannot be opened yet (its server is down) is returned without a
    store, counted as failed once so that writes back off from it; it is opened again at its
    next retry.

    Raises:
        InvalidURIError: The URI is malformed.
        ImportError: The mirror's driver is not installed.
        StoreError: Under the strict policy, the mirror cannot be opened.
    """
    from ...registry import open_store

    parsed = parse_uri(uri)
    name = parsed.redacted
    try:
        return Mirror(name, open_store(parsed), parsed)
    except (InvalidURIError, ImportError):
        raise
    except StoreError as e:
        if policy == "strict":
            raise
        log.warning("multiplex: mirror %s cannot be opened yet (%s); its writes go to the outbox", name, one_line(e))
        mirror = Mirror(name, None, parsed)
        mirror.failed(one_line(e), backoff, backoff_max)
        return mirror


def close_all(stores: list[Store]) -> None:
    """Close stores opened for a multiplexer that could not be built (errors are ignored)."""
    for s in stores:
        with contextlib.suppress(Exception):
            s.close()


def open_multiplex(spec: MultiplexSpec | str | StoreURI, *, outbox: str | None = None) -> MultiplexStore:
    """Open the primary and the mirrors a spec (or URI) names.

    A best-effort mirror that cannot be opened yet (its server is down) does not stop the
    multiplexer: its writes go to the outbox and it is opened again at its next retry.

    Args:
        spec: A :class:`MultiplexSpec` or a ``multiplex:`` URI.
        outbox: Overrides the spec's outbox path.

    Raises:
        InvalidURIError: The URI is malformed.
        StoreError: The primary (or, under the strict policy, a mirror) cannot be opened.
    """
    from ...registry import open_store

    if not isinstance(spec, MultiplexSpec):
        spec = parse_multiplex(spec)
    primary_uri = parse_uri(spec.primary)
    opened: list[Store] = []
    try:
        primary = open_store(primary_uri)
        opened.append(primary)
        mirrors = []
        for uri in spec.mirrors:
            m = open_mirror(uri, spec.policy, spec.backoff, spec.backoff_max)
            if m.store is not None:
                opened.append(m.store)
            mirrors.append(m)
        return MultiplexStore(
            primary,
            mirrors,
            policy=spec.policy,
            outbox=outbox or spec.outbox,
            close_timeout=spec.close_timeout,
            backoff=spec.backoff,
            backoff_max=spec.backoff_max,
            lock_timeout=spec.lock_timeout,
            primary_name=primary_uri.redacted,
        )
    except BaseException:
        close_all(opened)
        raise


def from_uri(uri: StoreURI) -> MultiplexStore:
    """Registry factory for ``multiplex:?primary=<uri>&mirror=<uri>&...``.

    Options: ``primary`` (required) and ``mirror`` (repeatable), percent-encoded URIs;
    ``policy`` (``best_effort`` or ``strict``); ``outbox`` (a path, or ``:memory:``);
    ``close_timeout``, ``backoff``, ``backoff_max`` and ``lock_timeout`` (seconds).

    Raises:
        InvalidURIError: The URI is malformed.
        StoreError: The primary (or a strict mirror) cannot be opened.
    """
    try:
        return open_multiplex(parse_multiplex(uri))
    except TrackBackendsError:
        raise
    except Exception as e:  # never let the registry print the raw URI (inner passwords are encoded)
        raise StoreError(f"could not open a multiplex: store: {one_line(e)}") from e


__all__ = ["close_all", "from_uri", "open_mirror", "open_multiplex"]
