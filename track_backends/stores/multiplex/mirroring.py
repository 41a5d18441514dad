"""Copying the primary's documents to the mirrors: on each write, from the outbox, per the policy.

A write names the uids it touched; :meth:`Mirroring.propagate` re-reads them from the primary
and makes every mirror hold exactly those documents (:func:`~.sync.sync`), under the mirroring
lock so that the last copy of a document is always of its latest state. What a mirror misses goes
to the outbox, and :meth:`Mirroring.drain` replays it later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from ...blobs import copy_blob
from ...errors import LockTimeoutError, StoreUnavailableError, TrackBackendsError
from ...store import Store
from ..filelock import FileLock
from .outbox import Entry, Outbox
from .series import SeriesSplitError, read_series, replace_series
from .state import Mirror, MirrorError, MirrorStatus, one_line
from .sync import CHUNK, PrimaryReadError, read_primary, sync

log = logging.getLogger("track_backends.multiplex")

DRAIN_PER_WRITE = 500
"""At most this many outbox entries are replayed by one ordinary write."""
_LOCK_HOLDER = "another process is mirroring; raise lock_timeout=... to wait longer"


class MirroringLock:
    """Serialises mirroring between threads, and between processes that share an outbox file.

    A thread lock, plus an exclusive :class:`~track_backends.stores.filelock.FileLock` on
    ``<outbox>.mirrors.lock`` (none for an outbox in memory). Re-entrant within a thread.
    """

    def __init__(self, outbox_path: str | None, timeout: float) -> None:
        self.timeout = timeout
        self.path = outbox_path + ".mirrors.lock" if outbox_path else None
        self._file = FileLock(self.path, holder=_LOCK_HOLDER, backoff_max=5e-3) if self.path else None
        self._thread = threading.RLock()
        self._depth = 0

    @contextmanager
    def __call__(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the lock for a ``with`` block, waiting at most ``timeout`` seconds (default: the lock's).

        Raises:
            LockTimeoutError: Another thread or process held it all that time.
            StoreError: The lock file cannot be opened.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self._thread.acquire(timeout=timeout):
            raise LockTimeoutError(f"timed out after {timeout:g} s waiting for the mirroring lock (another thread)")
        try:
            if self._depth == 0 and self._file is not None:
                self._file.acquire(True, timeout, deadline)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._file is not None:
                    self._file.release()
        finally:
            self._thread.release()

    def close(self) -> None:
        """Close the lock file (it stays on disk)."""
        if self._file is not None:
            self._file.close()


class Mirroring:
    """The mirrors of one multiplexer, their outbox, and the policy that decides what a failure does.

    Args:
        primary: The store documents are copied from.
        primary_name: Its redacted name.
        mirrors: The mirrors.
        outbox: Where misses are recorded.
        policy: ``"best_effort"`` or ``"strict"``.
        backoff: First backoff of a failing best-effort mirror, in seconds.
        backoff_max: Longest backoff, in seconds.
        lock_timeout: Seconds to wait for the mirroring lock.
    """

    def __init__(
        self,
        primary: Store,
        primary_name: str,
        mirrors: list[Mirror],
        outbox: Outbox,
        *,
        policy: str,
        backoff: float,
        backoff_max: float,
        lock_timeout: float,
    ) -> None:
        self.primary = primary
        self.primary_name = primary_name
        self.mirrors = mirrors
        self.outbox = outbox
        self.policy = policy
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.locked = MirroringLock(outbox.path, lock_timeout)

    @property
    def where(self) -> str:
        """The outbox, for messages."""
        return self.outbox.path or "(in memory)"

    # -- what a failure does ---------------------------------------------------------------------
    def record(
        self, mirror: Mirror, collection: str, uids: Sequence[str], error: str, locked: bool = True, kind: str = "doc"
    ) -> None:
        """Put uids in the outbox for ``mirror``: their documents (``kind="doc"``), points or blobs (sha256s).

        Raises:
            MirrorError: Even the outbox failed (a miss is never dropped silently).
        """
        try:
            if kind == "points":
                self.outbox.record_points(mirror.name, collection, uids, error, bump=not locked)
            elif kind == "blob":
                self.outbox.record_blobs(mirror.name, collection, uids, error, bump=not locked)
            else:
                self.outbox.record(mirror.name, collection, uids, error, bump=not locked)
        except Exception as e:
            raise MirrorError(
                f"mirror {mirror.name} missed {len(uids)} document(s) of {collection!r} ({error}), and the "
                f"outbox {self.where} could not record them: {one_line(e)}; "
                f"uids: {list(uids)[:10]}{' ...' if len(uids) > 10 else ''}",
                mirror=mirror.name,
                missed=[(collection, u) for u in uids],
                outbox=self.outbox.path,
            ) from e
        mirror.backlog = True

    def failed(self, mirror: Mirror, error: str, what: str) -> None:
        """Count a failure (backing the mirror off) and warn when it starts an episode."""
        if mirror.failed(error, self.backoff, self.backoff_max) or self.policy == "strict":
            retry = f"; retrying in {mirror.delay:g} s" if self.policy == "best_effort" else ""
            log.warning(
                "multiplex: mirror %s failed (%s): %s; recorded in the outbox %s%s",
                mirror.name,
                what,
                error,
                self.where,
                retry,
            )

    def succeeded(self, mirror: Mirror) -> None:
        """Count a success, and say so when it ends a failure episode."""
        if mirror.succeeded():
            log.warning("multiplex: mirror %s is reachable again", mirror.name)

    def missed(self, mirror: Mirror, collection: str, uids: Sequence[str], error: str, what: str = "") -> MirrorError:
        """The error that says ``mirror`` missed these documents (``what="the points of "``: their points)."""
        shown = ", ".join(repr(u) for u in uids[:10]) + (f" and {len(uids) - 10} more" if len(uids) > 10 else "")
        return MirrorError(
            f"mirror {mirror.name} failed: {error}; it missed {what}{len(uids)} document(s) of {collection!r}: {shown} "
            f"(recorded in the outbox {self.where}; run track-backends replay)",
            mirror=mirror.name,
            missed=[(collection, u) for u in uids],
            outbox=self.outbox.path,
        )

    def attempt(
        self,
        mirror: Mirror,
        action: Callable[[Store], Any],
        *,
        what: str,
        record: Callable[[Mirror, str], None] | None,
        error: Callable[[Mirror, str], MirrorError],
        errors: list[MirrorError],
    ) -> bool:
        """Run ``action`` on a mirror as the policy says; return whether it ran and worked.

        A best-effort mirror that is backing off is not tried: ``record(mirror, reason)`` only
        notes what it misses. A failure is recorded likewise, counted (backing the mirror off) and
        logged, and ``error(mirror, reason)`` is added to ``errors``, which :meth:`raise_first`
        raises under the strict policy.

        Raises:
            MirrorError: The outbox cannot record the miss.
            BaseException: A ``KeyboardInterrupt`` or the like, after the miss is recorded.
        """
        if self.policy == "best_effort" and mirror.backing_off(time.monotonic()):
            if record is not None:
                record(mirror, mirror.last_error or "backing off")
            return False
        try:
            action(mirror.get())
        except BaseException as e:
            reason = one_line(e)
            if record is not None:
                record(mirror, reason)
            self.failed(mirror, reason, what)
            if not isinstance(e, Exception):
                raise
            errors.append(error(mirror, reason))
            return False
        return True

    def raise_first(self, errors: list[MirrorError]) -> None:
        """Under the strict policy, raise the first error, naming the other mirrors that failed."""
        if errors and self.policy == "strict":
            first = errors[0]
            if len(errors) > 1:
                others = ", ".join(e.mirror for e in errors[1:])
                first.args = (f"{first.args[0]} (mirrors {others} failed too)",)
            raise first

    def failure(self, mirror: Mirror, message: str) -> MirrorError:
        """A :class:`MirrorError` about ``mirror`` that names no documents."""
        return MirrorError(message, mirror=mirror.name, missed=[], outbox=self.outbox.path)

    def _record_everywhere(self, collection: str, uids: list[str], error: str, locked: bool) -> list[MirrorError]:
        for m in self.mirrors:
            self.record(m, collection, uids, error, locked)
        log.warning("multiplex: %s; %d document(s) recorded in the outbox", error, len(uids))
        return [self.missed(m, collection, uids, error) for m in self.mirrors]

    # -- mirroring writes ------------------------------------------------------------------------
    def propagate(self, collection: str, uids: Iterable[str], *, fresh: bool = False) -> None:
        """Copy the primary's current state of ``uids`` to every mirror, per the policy.

        Raises:
            MirrorError: Under the strict policy, a mirror missed them; under any policy, the
                outbox could not record a miss.
        """
        todo = list(dict.fromkeys(uids))
        if not self.mirrors or not todo:
            return

        def record(m: Mirror, reason: str) -> None:
            self.record(m, collection, todo, reason)

        def error(m: Mirror, reason: str) -> MirrorError:
            return self.missed(m, collection, todo, reason)

        errors: list[MirrorError] = []
        what = f"writing {len(todo)} document(s) of {collection!r}"
        try:
            with self.locked():
                try:
                    current = read_primary(self.primary, collection, todo)
                except PrimaryReadError as e:
                    reason = f"cannot re-read the documents from the primary: {one_line(e.error)}"
                    errors = self._record_everywhere(collection, todo, reason, locked=True)
                    if self.policy == "strict":
                        raise errors[0] from e.error
                    return
                copy = partial(sync, collection=collection, uids=todo, current=current, fresh=fresh)
                for m in self.mirrors:
                    if self.attempt(m, copy, what=what, record=record, error=error, errors=errors):
                        self.succeeded(m)
                        self.catch_up(m, limit=DRAIN_PER_WRITE)
        except LockTimeoutError as e:
            errors = self._record_everywhere(collection, todo, one_line(e), locked=False)
        self.raise_first(errors)

    def catch_up(self, mirror: Mirror, limit: int | None) -> None:
        """Replay up to ``limit`` of the mirror's outbox entries if it has a backlog (failures are logged)."""
        if mirror.backlog:
            try:
                self.drain(mirror, limit=limit)
            except TrackBackendsError as e:  # the entries stay in the outbox
                log.warning("multiplex: replaying the outbox of %s failed: %s", mirror.name, one_line(e))

    def ensure_index(self, collection: str, keys: str | Sequence[str], unique: bool) -> None:
        """Create the index on every mirror, per the policy (a miss is recorded in the outbox).

        Raises:
            MirrorError: Under the strict policy, a mirror failed to create it.
        """
        paths = [keys] if isinstance(keys, str) else list(keys)

        def create(store: Store) -> None:
            store.ensure_index(collection, keys, unique=unique)

        def record(m: Mirror, reason: str) -> None:
            self.outbox.record_index(m.name, collection, paths, unique, reason, bump=False)
            m.backlog = True

        def error(m: Mirror, reason: str) -> MirrorError:
            return self.failure(
                m,
                f"mirror {m.name} failed to create the index {paths} on {collection!r}: {reason} "
                f"(recorded in the outbox {self.where})",
            )

        errors: list[MirrorError] = []
        what = f"creating an index on {collection!r}"
        with self.locked():
            for m in self.mirrors:
                if self.attempt(m, create, what=what, record=record, error=error, errors=errors):
                    self.succeeded(m)
        self.raise_first(errors)

    def commit(self) -> None:
        """Commit the mirrors, and replay the outbox to those not backing off.

        A commit that works does not count as a success: on many stores it does nothing.

        Raises:
            MirrorError: Under the strict policy, a mirror failed to commit or to catch up.
        """

        def error(m: Mirror, reason: str) -> MirrorError:
            return self.failure(m, f"mirror {m.name} failed to commit: {reason}")

        errors: list[MirrorError] = []
        with self.locked():
            for m in self.mirrors:
                if m.store is None and not m.backlog:
                    continue  # never opened, and nothing to send
                if not self.attempt(m, _commit, what="commit", record=None, error=error, errors=errors):
                    continue
                if m.backlog:
                    self.drain(m)
                    if m.backlog and m.failures:
                        depth = self.outbox.depth(m.name)
                        message = f"could not catch up: {depth} document(s) wait in the outbox {self.where}"
                        errors.append(self.failure(m, f"mirror {m.name} {message}: {m.last_error}"))
        self.raise_first(errors)

    # -- replaying the outbox --------------------------------------------------------------------
    def drain(self, mirror: Mirror, *, limit: int | None = None, deadline: float | None = None) -> int:
        """Replay the mirror's outbox entries (under the mirroring lock); return how many were replayed.

        Stops at the first failure (the mirror then backs off) and when ``limit`` entries or the
        ``deadline`` (``time.monotonic()``) is reached.

        Raises:
            StoreUnavailableError: The primary cannot be read.
            StoreError: The outbox cannot be read.
        """
        replayed = 0
        while deadline is None or time.monotonic() < deadline:
            want = CHUNK if limit is None else min(CHUNK, limit - replayed)
            if want <= 0:
                break
            batch = self.outbox.pending(mirror.name, limit=want)
            if not batch:
                mirror.backlog = False
                break
            if not self._replay_batch(mirror, batch):
                break
            replayed += len(batch)
        return replayed

    def _replay_batch(self, mirror: Mirror, batch: list[Entry]) -> bool:
        """Replay entries: indexes, blobs, then documents (whole), then points (each uid's replaced whole)."""
        docs: dict[str, list[str]] = {}
        points: dict[str, list[str]] = {}
        indexes: list[Entry] = []
        blobs: dict[str, bool] = {}
        for entry in batch:
            if entry.kind == "index":
                indexes.append(entry)
            elif entry.kind == "blob":
                blobs[entry.uid] = False
            else:
                (points if entry.kind == "points" else docs).setdefault(entry.collection, []).append(entry.uid)
        try:
            current = {c: read_primary(self.primary, c, uids) for c, uids in docs.items()}
            series = {c: read_series(self.primary, c, uids) for c, uids in points.items()}
            for sha in blobs:
                blobs[sha] = _primary_has(self.primary, sha)
        except PrimaryReadError as e:
            raise StoreUnavailableError(
                f"cannot replay the outbox: the primary {self.primary_name} cannot be read: {one_line(e.error)}"
            ) from e.error
        except SeriesSplitError as e:  # the entries stay, and say why
            return self._batch_failed(mirror, batch, one_line(e))
        try:
            store = mirror.get()
            for ix in indexes:
                store.ensure_index(ix.collection, list(ix.keys), unique=ix.unique)
            for sha, present in blobs.items():
                replay_blob(self.primary, present, store, sha)
            for c, uids in docs.items():
                sync(store, c, uids, current[c], False)
            for c, by_uid in series.items():
                replace_series(store, c, by_uid)
        except Exception as e:
            return self._batch_failed(mirror, batch, one_line(e))
        self.succeeded(mirror)
        self.outbox.remove(batch)
        return True

    def _batch_failed(self, mirror: Mirror, batch: list[Entry], error: str) -> bool:
        self.outbox.note_failure(batch, error)
        self.failed(mirror, error, f"replaying {len(batch)} outbox entries")
        return False

    # -- closing -------------------------------------------------------------------------------
    def finish(self, timeout: float, deadline: float) -> None:
        """Replay the outbox until ``deadline``, then close the mirrors (in the close worker)."""
        if timeout > 0 and any(m.backlog for m in self.mirrors):
            try:
                with self.locked(timeout=max(0.0, deadline - time.monotonic())):
                    for m in self.mirrors:
                        if m.backlog:
                            self.drain(m, deadline=deadline)
            except Exception as e:  # reported through the outbox depth
                log.warning("multiplex: replaying the outbox at close failed: %s", one_line(e))
        for m in self.mirrors:
            if m.store is not None:
                try:
                    m.store.close()
                except Exception as e:
                    log.warning("multiplex: closing mirror %s failed: %s", m.name, one_line(e))

    def warn_left(self) -> None:
        """Warn about what is left in the outbox at close (or that the outbox cannot be read)."""
        try:
            left = {m.name: d for m in self.mirrors if (d := self.outbox.depth(m.name))}
        except Exception as e:
            log.warning("multiplex: cannot read the outbox at close: %s", one_line(e))
            return
        if left:
            log.warning(
                "multiplex: closing with documents not yet mirrored (%s); they stay in the outbox %s "
                "until `track-backends replay` or the next run",
                ", ".join(f"{n}: {d}" for n, d in left.items()),
                self.outbox.path or "(in memory: they are lost with this process)",
            )

    def status(self) -> dict[str, MirrorStatus]:
        """Each mirror's outbox depth and health, by name, in the order the mirrors were given."""
        now = time.monotonic()
        return {m.name: m.status(self.outbox.depth(m.name), now) for m in self.mirrors}


def _commit(store: Store) -> None:
    store.commit()


def _primary_has(primary: Store, sha256: str) -> bool:
    """Whether the primary holds a blob.

    Raises:
        PrimaryReadError: The primary cannot be asked.
    """
    try:
        return primary.stat_blob(sha256) is not None
    except Exception as e:
        raise PrimaryReadError(e) from e


def replay_blob(primary: Store, present: bool, store: Store, sha256: str) -> None:
    """Make a mirror agree with the primary about one blob: copy it if ``present``, else delete it.

    Raises:
        Exception: Whatever the stores raise (the entry then stays in the outbox).
    """
    if present:
        copy_blob(primary, store, sha256)
    else:
        store.delete_blob(sha256)


__all__ = ["DRAIN_PER_WRITE", "Mirroring", "MirroringLock"]
