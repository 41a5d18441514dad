"""What the multiplexer knows about each mirror: its store, its backoff, and how it is reported."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidURIError, StoreError
from ...store import Store
from ...uri import StoreURI, mask_password

_OPENING = threading.Lock()

POLICIES = ("strict", "best_effort")
DEFAULT_POLICY = "best_effort"
DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`MultiplexStore.close` waits for the outbox to drain."""
DEFAULT_BACKOFF = 1.0
"""Seconds a best-effort mirror is left alone after its first failure (doubled at each failure)."""
DEFAULT_BACKOFF_MAX = 60.0
"""Longest backoff, in seconds."""
DEFAULT_LOCK_TIMEOUT = 30.0
"""Seconds a write waits for the mirroring lock before it only records its documents."""


def check_policy(policy: Any) -> str:
    """Return ``policy`` if it names a policy.

    Raises:
        InvalidURIError: It does not.
    """
    if policy not in POLICIES:
        raise InvalidURIError(f"unknown multiplex policy {policy!r}; expected one of {', '.join(POLICIES)}")
    return str(policy)


def check_seconds(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number of seconds >= 0.

    Raises:
        InvalidURIError: It is not.
    """
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise InvalidURIError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def one_line(e: BaseException | str) -> str:
    """An error as one line of at most 500 characters, passwords masked."""
    text = e if isinstance(e, str) else (f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
    return " ".join(mask_password(text).split())[:500]


class MirrorError(StoreError):
    """A mirror missed a write (strict policy), or its miss could not even be recorded.

    The primary has the write. The documents the mirror missed are in the outbox (unless the
    message says the outbox failed too), so ``track-backends replay`` repairs the mirror.

    Attributes:
        mirror: The mirror's name (its URI, password masked).
        missed: ``(collection, uid)`` pairs the mirror missed.
        outbox: The outbox file, or ``None`` for an in-memory outbox.
    """

    def __init__(self, message: str, *, mirror: str, missed: Sequence[tuple[str, str]], outbox: str | None) -> None:
        super().__init__(message)
        self.mirror = mirror
        self.missed = list(missed)
        self.outbox = outbox

    @property
    def uids(self) -> list[str]:
        """The uids the mirror missed."""
        return [u for _, u in self.missed]


@dataclass(frozen=True)
class MirrorStatus:
    """What :meth:`MultiplexStore.status` reports for one mirror.

    Attributes:
        name: The mirror's URI, password masked.
        outbox_depth: Documents (and indexes) waiting in the outbox for this mirror.
        down: Whether its last attempt failed.
        retry_in: Seconds until writes try it again (0 when it is not backing off).
        failures: Consecutive failures.
        last_error: The last failure, one line, or ``None``.
    """

    name: str
    outbox_depth: int
    down: bool
    retry_in: float
    failures: int
    last_error: str | None


def describe_status(status: dict[str, MirrorStatus]) -> str:
    """Format a status report as lines ``mirror NAME: N pending[, down: error]``."""
    lines = []
    for s in status.values():
        line = f"mirror {s.name}: {s.outbox_depth} pending"
        if s.down:
            line += f", down ({s.failures} failure(s), retry in {s.retry_in:.1f} s): {s.last_error}"
        lines.append(line)
    return "\n".join(lines)


class Mirror:
    """One mirror: its store (opened lazily when given as a URI) and its backoff state.

    Attributes:
        name: The mirror's name in messages and in the outbox.
        store: The store, or ``None`` until it can be opened.
        failures: Consecutive failures (0: healthy).
        delay: The current backoff, in seconds.
        next_try: ``time.monotonic()`` before which a best-effort write leaves it alone.
        last_error: The last failure, one line, or ``None``.
        backlog: Whether the outbox may hold entries for it.
    """

    def __init__(self, name: str, store: Store | None = None, uri: StoreURI | None = None) -> None:
        self.name = name
        self.store = store
        self.uri = uri
        self.failures = 0
        self.delay = 0.0
        self.next_try = 0.0
        self.last_error: str | None = None
        self.backlog = True  # unknown until the outbox is asked

    def get(self) -> Store:
        """The mirror's store, opening it now if it could not be opened before.

        Raises:
            StoreError: It still cannot be opened.
        """
        if self.store is None:
            from ...registry import open_store

            with _OPENING:  # blob copies run outside the mirroring lock: open it once
                if self.store is None:
                    assert self.uri is not None
                    self.store = open_store(self.uri)
        return self.store

    def backing_off(self, now: float) -> bool:
        """Whether writes should leave the mirror alone at ``now`` (``time.monotonic()``)."""
        return self.failures > 0 and now < self.next_try

    def failed(self, error: str, backoff: float, backoff_max: float) -> bool:
        """Record a failure; return True when it starts a new episode (worth a warning)."""
        first = self.failures == 0
        self.failures += 1
        self.delay = backoff if first else min(self.delay * 2, backoff_max)
        self.next_try = time.monotonic() + self.delay
        self.last_error = error
        return first

    def succeeded(self) -> bool:
        """Record a success; return True when it ends a failure episode."""
        recovered = self.failures > 0
        self.failures = 0
        self.delay = 0.0
        self.next_try = 0.0
        self.last_error = None
        return recovered

    def status(self, depth: int, now: float) -> MirrorStatus:
        """The mirror's :class:`MirrorStatus`, given its outbox depth."""
        return MirrorStatus(
            name=self.name,
            outbox_depth=depth,
            down=self.failures > 0,
            retry_in=max(0.0, self.next_try - now) if self.failures else 0.0,
            failures=self.failures,
            last_error=self.last_error,
        )

    def __repr__(self) -> str:
        return f"<Mirror {self.name} failures={self.failures}>"
