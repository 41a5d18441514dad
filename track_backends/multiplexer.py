"""ProtocolMultiplexer: track's Protocol over a primary store mirrored to other stores.

The mirroring itself is a Store (:class:`~track_backends.stores.multiplex.MultiplexStore`); this
module only builds one from URIs, stores or protocols, and puts the Protocol on top.
"""

from __future__ import annotations

import os

from .errors import InvalidURIError
from .protocol import DocumentProtocol
from .store import Store
from .stores.multiplex import MirrorStatus, MultiplexStore, open_multiplex
from .stores.multiplex.open import close_all, open_mirror
from .stores.multiplex.state import (
    DEFAULT_BACKOFF,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_POLICY,
    Mirror,
    check_policy,
    describe_status,
)
from .stores.multiplex.store import store_name
from .uri import StoreURI, parse_uri


def _as_store(obj: Store | DocumentProtocol | str | StoreURI) -> tuple[Store, str]:
    """The store a URI, store or protocol names, and its password-free name."""
    from .registry import open_store

    if isinstance(obj, DocumentProtocol):
        obj = obj.store
    if isinstance(obj, Store):
        return obj, store_name(obj)
    parsed = obj if isinstance(obj, StoreURI) else parse_uri(obj)
    if parsed.scheme == "multiplex":
        raise InvalidURIError("multiplex: stores cannot be nested")
    return open_store(parsed), parsed.redacted


class ProtocolMultiplexer(DocumentProtocol):
    """track's Protocol over a primary store mirrored to other stores.

    ``ProtocolMultiplexer(primary, *mirrors, policy=...)`` is
    ``DocumentProtocol(MultiplexStore(...))``: every Protocol method behaves as on the primary
    alone, and the mirrors follow. See :mod:`track_backends.stores.multiplex` for the semantics.

    Args:
        primary: A URI, a :class:`~track_backends.store.Store` or a protocol over one.
        *mirrors: Likewise, for each mirror. A best-effort mirror given as a URI that cannot be
            opened yet is retried later.
        policy: ``"best_effort"`` (default) or ``"strict"``.
        outbox: The outbox file (default: see
            :func:`~track_backends.stores.multiplex.default_outbox`), or ``":memory:"``.
        close_timeout: Seconds :meth:`close` spends replaying the outbox at most.
        backoff: First backoff of a failing mirror, in seconds (doubled at each failure).
        backoff_max: Longest backoff, in seconds.

    Raises:
        InvalidURIError: A malformed URI, a nested ``multiplex:``, or a bad policy or number.
        StoreError: The primary (or, under the strict policy, a mirror) cannot be opened.

    Example:
        >>> with ProtocolMultiplexer("pickled:///data/t.pkl", "mongodb://db/track") as proto:  # doctest: +SKIP
        ...     proto.new_project(Project("mnist"))
        ...     print(proto.status())
    """

    store: MultiplexStore

    def __init__(
        self,
        primary: Store | DocumentProtocol | str | StoreURI,
        *mirrors: Store | DocumentProtocol | str | StoreURI,
        policy: str = DEFAULT_POLICY,
        outbox: str | os.PathLike[str] | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        backoff: float = DEFAULT_BACKOFF,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> None:
        check_policy(policy)
        opened: list[Store] = []
        try:
            primary_store, primary_name = _as_store(primary)
            opened.append(primary_store)
            built: list[Mirror] = []
            for m in mirrors:
                if isinstance(m, (str, StoreURI)):
                    mirror = open_mirror(m if isinstance(m, str) else m.raw, policy, backoff, backoff_max)
                else:
                    store, name = _as_store(m)
                    mirror = Mirror(name, store)
                if mirror.store is not None:
                    opened.append(mirror.store)
                built.append(mirror)
            multiplexed = MultiplexStore(
                primary_store,
                built,
                policy=policy,
                outbox=outbox,
                close_timeout=close_timeout,
                backoff=backoff,
                backoff_max=backoff_max,
                primary_name=primary_name,
            )
        except BaseException:
            close_all(opened)
            raise
        super().__init__(multiplexed)

    @classmethod
    def from_uri(cls, uri: str | StoreURI) -> ProtocolMultiplexer:
        """Open a ``multiplex:?primary=...&mirror=...`` URI as a :class:`ProtocolMultiplexer`.

        Raises:
            InvalidURIError: The URI is malformed.
            StoreError: The primary (or a strict mirror) cannot be opened.
        """
        self = cls.__new__(cls)
        DocumentProtocol.__init__(self, open_multiplex(uri))
        return self

    def status(self) -> dict[str, MirrorStatus]:
        """Each mirror's outbox depth and health (see :meth:`MultiplexStore.status`)."""
        return self.store.status()

    def replay(self, timeout: float | None = None) -> dict[str, MirrorStatus]:
        """Replay the outbox now (see :meth:`MultiplexStore.replay`).

        Raises:
            StoreUnavailableError: The primary cannot be read.
        """
        return self.store.replay(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Replay the outbox for at most ``timeout`` seconds, then close (see :meth:`MultiplexStore.close`)."""
        self.store.close(timeout)

    def __repr__(self) -> str:
        return f"ProtocolMultiplexer({self.store!r})"


__all__ = ["ProtocolMultiplexer", "describe_status"]
