"""The multiplexer: one primary store, mirrored to any number of other stores.

:class:`MultiplexStore` is a :class:`~track_backends.store.Store` over Stores, so the Protocol
stays written once: :class:`ProtocolMultiplexer` is just
``DocumentProtocol(MultiplexStore(...))``.

* **Reads, queries and claims** (``find``, ``count``, ``find_one_and_update``, hence every
  ``get_*``, ``fetch_*`` and ``fetch_and_update_*``) run on the primary only. A claim is decided
  once, by the primary, and its result is mirrored, so the stores can never hand out different
  trials.
* **Mirroring**: after every write the primary has accepted, each document the write touched is
  re-read from the primary and written whole to every mirror, by uid: inserted if the mirror
  lacks it, brought in line field by field (``$set`` of changed top-level fields, ``$unset`` of
  fields the primary no longer has) if it differs, deleted if the primary no longer has it. A
  mirror therefore converges to the primary's current state, whatever it missed before.
* **Which documents a write touched**: ``insert*`` and ``find_one_and_update`` know their uids.
  An ``update`` or ``delete`` whose query pins ``uid`` to a string (every Protocol write) touches
  at most that uid. Any other ``update``/``delete`` first finds the matching uids on the primary,
  then runs restricted to them (``{"$and": [query, {"uid": {"$in": found}}]}``; a single update
  retries when its document stopped matching in between). Caveat: with concurrent writers, a
  document that starts to match between the two steps is left out, as if the write had happened
  just before it changed.
* **Order**: the mirroring step of each write runs under a lock (a thread lock, plus an ``flock``
  on ``<outbox>.mirrors.lock`` that every process sharing the outbox takes) and re-reads the
  primary under it, so the last mirroring of a document always copies its latest state, even
  when several threads or processes write the same document.
* **Policies**: ``"strict"`` raises :class:`MirrorError` (naming the mirror and the uids it
  missed) when a mirror write fails; the failure is also recorded in the outbox, so
  ``replay`` can repair the mirror. ``"best_effort"`` (the default) records the failure in the
  durable outbox, logs a warning, and retries later, with exponential backoff in time: while a
  mirror is backing off, writes do not try it at all, they only record what it missed. The first
  write after the backoff expires tries again and, if that works, replays (part of) the backlog;
  :meth:`MultiplexStore.commit` replays all of it; ``track-backends replay`` and
  :meth:`MultiplexStore.replay` replay it regardless of the backoff.
* **The outbox** (:class:`~track_backends.stores.outbox.Outbox`) records ``(mirror, collection,
  uid)``, not documents: replaying re-reads the current document from the primary. Its file is
  the ``outbox`` argument, else ``<primary file>.outbox`` for a ``pickled:``/``file:`` primary,
  else ``$TRACK_BACKENDS_DATA_DIR`` (default ``$XDG_DATA_HOME/track_backends``, i.e.
  ``~/.local/share/track_backends``) ``/outbox/<hash of the primary's URI>.outbox``. An
  ``ephemeral:`` primary gets an outbox in memory (its documents die with the process too).
* **Bounded waits**: :meth:`MultiplexStore.close` replays the outbox for at most
  ``close_timeout`` seconds (in a worker thread, so even a mirror that hangs cannot hold it up),
  then leaves what is left on disk for ``track-backends replay``. A single mirror call is bounded
  only by that mirror's own driver timeouts (e.g. ``serverSelectionTimeoutMS`` for MongoDB,
  ``connect_timeout`` for PostgreSQL): keep them short for mirrors.
* **Unavailable primary**: its error (e.g. :class:`~track_backends.errors.StoreUnavailableError`)
  propagates unchanged and nothing is sent to the mirrors, so the caller can retry the same call.

The stores' passwords never appear in ``repr``, messages or logs: mirrors are named by their
URIs with the password masked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ..errors import (
    DuplicateKeyError,
    InvalidURIError,
    LockTimeoutError,
    StoreError,
    StoreUnavailableError,
    TrackBackendsError,
)
from ..protocol import DocumentProtocol
from ..query import parse as parse_query
from ..query import parse_update, upsert_seed
from ..store import Document, Query, Store, check_collection
from ..uri import StoreURI, mask_password, parse_uri
from .journal import JournalStore
from .memory import MemoryStore
from .outbox import Entry, Outbox

log = logging.getLogger("track_backends.multiplex")

POLICIES = ("strict", "best_effort")
DEFAULT_POLICY = "best_effort"
DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`MultiplexStore.close` waits for the outbox to drain."""
DEFAULT_BACKOFF = 1.0
"""Seconds a best-effort mirror is left alone after its first failure (doubled at each failure)."""
DEFAULT_BACKOFF_MAX = 60.0
"""Longest backoff, in seconds."""
DEFAULT_LOCK_TIMEOUT = 30.0
DRAIN_PER_WRITE = 500
"""At most this many outbox entries are replayed by one ordinary write."""
MEMORY_OUTBOX = ":memory:"
_CHUNK = 500
_RETRIES = 16
_SKIP = frozenset({"uid", "_id"})
_URI_OPTIONS = frozenset(
    {"primary", "mirror", "policy", "outbox", "close_timeout", "backoff", "backoff_max", "lock_timeout"}
)
_MISSING = object()


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


def _one_line(e: BaseException | str) -> str:
    text = e if isinstance(e, str) else (f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
    return " ".join(mask_password(text).split())[:500]


def _same(a: Any, b: Any) -> bool:
    """Type-strict equality of JSON-like values (``1``, ``1.0`` and ``True`` differ; key order does not)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _diff(old: Document, new: Document) -> Document:
    """The update that turns the mirror's ``old`` into the primary's ``new`` (empty if equal)."""
    sets = {k: v for k, v in new.items() if k not in _SKIP and not _same(old.get(k, _MISSING), v)}
    unsets = {k: "" for k in old if k not in new and k not in _SKIP}
    update: Document = {}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return update


def _by_uid(uids: Sequence[str]) -> Document:
    return {"uid": uids[0]} if len(uids) == 1 else {"uid": {"$in": list(uids)}}


def _restrict(query: Query, uids: Sequence[str]) -> Document:
    return {"$and": [query or {}, {"uid": {"$in": list(uids)}}]}


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _pinned_uid(query: Query) -> str | None:
    """The uid a query pins by top-level equality (``{"uid": "x", ...}``), else ``None``."""
    if type(query) is dict:
        uid = query.get("uid")
        if type(uid) is str:
            return uid
    return None


def store_name(store: Store) -> str:
    """A password-free name for a store given as an object (not a URI).

    ``scheme://path`` for journal stores, ``ephemeral:`` for memory stores, else the store's
    ``repr`` with passwords masked (pass ``names=`` when that is not stable across runs).
    """
    if isinstance(store, JournalStore):
        return f"{store.scheme}://{store.path}"
    if type(store) is MemoryStore:
        return "ephemeral:"
    if isinstance(store, MultiplexStore):
        return store.name
    return mask_password(repr(store))


def data_dir() -> str:
    """The directory for default outboxes: ``$TRACK_BACKENDS_DATA_DIR``, else the XDG data dir."""
    env = os.environ.get("TRACK_BACKENDS_DATA_DIR")
    if env:
        return os.path.abspath(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "track_backends")


def default_outbox(primary: Store, primary_name: str) -> str | None:
    """Where the outbox of a primary goes by default (``None``: in memory).

    ``<path>.outbox`` next to a journal primary; in memory for an ``ephemeral:`` primary; else
    ``<data_dir()>/outbox/<sha256 of the primary's redacted URI, 16 hex digits>.outbox``.
    """
    if isinstance(primary, JournalStore):
        return primary.path + ".outbox"
    if type(primary) is MemoryStore:
        return None
    digest = hashlib.sha256(primary_name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return os.path.join(data_dir(), "outbox", f"{digest}.outbox")


class _Mirror:
    """One mirror: its store (opened lazily when given as a URI) and its backoff state."""

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
        """The mirror's store, opening it now if it could not be opened before."""
        if self.store is None:
            from ..registry import open_store

            assert self.uri is not None
            self.store = open_store(self.uri)
        return self.store

    def backing_off(self, now: float) -> bool:
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


class _PrimaryReadError(Exception):
    """Re-reading the touched documents from the primary failed (not the mirror's fault)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class MultiplexStore(Store):
    """A store that writes to a primary and mirrors every touched document to other stores.

    See the module docstring for the semantics. The multiplexer owns the stores: closing it
    closes them.

    Args:
        primary: The store that decides everything (reads, queries, claims).
        mirrors: Stores that receive a copy of every document the primary writes.
        policy: ``"best_effort"`` (default; failures go to the outbox and are retried) or
            ``"strict"`` (a mirror failure raises :class:`MirrorError`, after recording it).
        outbox: The outbox file; ``":memory:"`` for an outbox in memory; an
            :class:`~track_backends.stores.outbox.Outbox`; or ``None`` for the default (see
            :func:`default_outbox`).
        close_timeout: Seconds :meth:`close` spends replaying the outbox at most.
        backoff: Seconds a failing best-effort mirror is left alone, doubled at each further
            failure up to ``backoff_max``.
        backoff_max: The longest backoff, in seconds.
        lock_timeout: Seconds to wait for the mirroring lock shared with other processes; after
            that the write's documents are only recorded in the outbox.
        names: Names of the mirrors for messages and the outbox (default: their masked URIs
            or ``repr``). They must stay the same across runs for the outbox to find its entries.
        primary_name: Name of the primary (default likewise).

    Raises:
        InvalidURIError: A bad policy, timeout or backoff.
        StoreError: The outbox cannot be opened.
    """

    scheme = "multiplex"

    def __init__(
        self,
        primary: Store,
        mirrors: Sequence[Store] = (),
        *,
        policy: str = DEFAULT_POLICY,
        outbox: str | os.PathLike[str] | Outbox | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        backoff: float = DEFAULT_BACKOFF,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        names: Sequence[str] | None = None,
        primary_name: str | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise InvalidURIError(f"unknown multiplex policy {policy!r}; expected one of {', '.join(POLICIES)}")
        for label, value in (
            ("close_timeout", close_timeout),
            ("backoff", backoff),
            ("backoff_max", backoff_max),
            ("lock_timeout", lock_timeout),
        ):
            if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
                raise InvalidURIError(f"{label} must be a finite number of seconds >= 0, got {value!r}")
        self.primary = primary
        self.primary_name = primary_name or store_name(primary)
        self.policy = policy
        self.close_timeout = float(close_timeout)
        self.backoff = float(backoff)
        self.backoff_max = max(float(backoff_max), float(backoff))
        self.lock_timeout = float(lock_timeout)
        self.mirrors: list[_Mirror] = []
        given = list(mirrors)
        if names is not None and len(names) != len(given):
            raise InvalidURIError(f"{len(names)} names for {len(given)} mirrors")
        seen: set[str] = set()
        for i, m in enumerate(given):
            mirror = m if isinstance(m, _Mirror) else _Mirror(names[i] if names else store_name(m), m)
            base, n = mirror.name, 1
            while mirror.name in seen:
                n += 1
                mirror.name = f"{base}#{n}"
            seen.add(mirror.name)
            self.mirrors.append(mirror)
        self.closed = False
        self._tlock = threading.RLock()
        self._depth = 0
        self._lock_fd: int | None = None
        self._pid = os.getpid()
        if isinstance(outbox, Outbox):
            self.outbox = outbox
        else:
            path: str | None
            if outbox is None:
                path = default_outbox(primary, self.primary_name)
            elif os.fspath(outbox) == MEMORY_OUTBOX:
                path = None
            else:
                path = os.fspath(outbox)
            self.outbox = Outbox(path, lock_timeout=self.lock_timeout)
        self.lock_path = self.outbox.path + ".mirrors.lock" if self.outbox.path else None
        try:
            if self.mirrors:
                self.outbox.describe(self.primary_name, [m.name for m in self.mirrors])
            for m in self.mirrors:
                m.backlog = self.outbox.depth(m.name) > 0
                if m.backlog:
                    log.warning(
                        "multiplex: %d document(s) wait in the outbox %s for mirror %s",
                        self.outbox.depth(m.name),
                        self.outbox.path or "(in memory)",
                        m.name,
                    )
        except BaseException:
            self.outbox.close()
            raise

    # -- naming ------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """A password-free description: ``multiplex:?primary=...&mirror=...`` (inner URIs masked)."""
        parts = [f"primary={quote(self.primary_name, safe=':/@*')}"]
        parts += [f"mirror={quote(m.name, safe=':/@*')}" for m in self.mirrors]
        parts.append(f"policy={self.policy}")
        return "multiplex:?" + "&".join(parts)

    def __repr__(self) -> str:
        mirrors = ", ".join(m.name for m in self.mirrors)
        state = " closed" if self.closed else ""
        return f"<MultiplexStore{state} primary={self.primary_name} mirrors=[{mirrors}] policy={self.policy}>"

    # -- locking -----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise StoreUnavailableError("the multiplex: store is closed")

    @contextlib.contextmanager
    def _locked(self, timeout: float | None = None) -> Iterator[None]:
        """Serialise mirroring with other threads and with other processes sharing the outbox."""
        timeout = self.lock_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        if not self._tlock.acquire(timeout=timeout):
            raise LockTimeoutError(f"timed out after {timeout:g} s waiting for the mirroring lock (another thread)")
        try:
            if self._depth == 0 and self.lock_path is not None:
                self._flock(deadline, timeout)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_fd is not None:
                    with contextlib.suppress(OSError):
                        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._tlock.release()

    def _flock(self, deadline: float, timeout: float) -> None:
        assert self.lock_path is not None
        if self._lock_fd is None or os.getpid() != self._pid:  # a forked child needs its own description
            self._pid = os.getpid()
            try:
                self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError as e:
                raise StoreError(f"cannot open the mirroring lock {self.lock_path}: {e.strerror}") from e
        delay = 50e-6
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            except OSError as e:
                raise StoreError(f"cannot lock {self.lock_path}: {e.strerror}") from e
            now = time.monotonic()
            if now >= deadline:
                raise LockTimeoutError(
                    f"timed out after {timeout:g} s waiting for the mirroring lock {self.lock_path} "
                    "(another process is mirroring)"
                )
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 5e-3)

    # -- mirroring -----------------------------------------------------------------------------------
    def _read_primary(self, collection: str, uids: Sequence[str]) -> dict[str, Document]:
        current: dict[str, Document] = {}
        try:
            for chunk in _chunks(uids):
                for d in self.primary.find(collection, _by_uid(chunk)):
                    current[d["uid"]] = d
        except Exception as e:
            raise _PrimaryReadError(e) from e
        return current

    @staticmethod
    def _sync(store: Store, collection: str, uids: Sequence[str], current: dict[str, Document], fresh: bool) -> None:
        """Make ``store`` hold exactly the primary's ``current`` documents for ``uids``."""
        for chunk in _chunks(uids):
            if fresh:  # just inserted on the primary: most likely new on the mirror too
                docs = [current[u] for u in chunk if u in current]
                if len(docs) == len(chunk):
                    try:
                        store.insert_many(collection, docs)
                        continue
                    except DuplicateKeyError:
                        pass
            existing = {d["uid"]: d for d in store.find(collection, _by_uid(chunk))}
            gone = [u for u in chunk if u not in current and u in existing]
            if gone:
                store.delete(collection, _by_uid(gone))
            inserts = []
            for u in chunk:
                new = current.get(u)
                if new is None:
                    continue
                old = existing.get(u)
                if old is None:
                    inserts.append(new)
                    continue
                update = _diff(old, new)
                if update and not store.update(collection, {"uid": u}, update):
                    inserts.append(new)  # deleted meanwhile by someone else
            if not inserts:
                continue
            try:
                store.insert_many(collection, inserts)
            except DuplicateKeyError:
                for doc in inserts:
                    MultiplexStore._replace_one(store, collection, doc)

    @staticmethod
    def _replace_one(store: Store, collection: str, doc: Document) -> None:
        for _ in range(_RETRIES):
            old = store.find_one(collection, {"uid": doc["uid"]})
            if old is None:
                try:
                    store.insert(collection, doc)
                    return
                except DuplicateKeyError:
                    continue
            update = _diff(old, doc)
            if not update or store.update(collection, {"uid": doc["uid"]}, update):
                return
        raise StoreError(f"document {doc['uid']!r} kept changing on the mirror while it was being replaced")

    def _record(self, mirror: _Mirror, collection: str, uids: Sequence[str], error: str, locked: bool = True) -> None:
        """Put uids in the outbox; if even that fails, raise (a failure is never dropped)."""
        try:
            self.outbox.record(mirror.name, collection, uids, error, bump=not locked)
        except Exception as e:
            raise MirrorError(
                f"mirror {mirror.name} missed {len(uids)} document(s) of {collection!r} ({error}), and the "
                f"outbox {self.outbox.path or '(in memory)'} could not record them: {_one_line(e)}; "
                f"uids: {list(uids)[:10]}{' ...' if len(uids) > 10 else ''}",
                mirror=mirror.name,
                missed=[(collection, u) for u in uids],
                outbox=self.outbox.path,
            ) from e
        mirror.backlog = True

    def _failed(self, mirror: _Mirror, error: str, what: str) -> None:
        if mirror.failed(error, self.backoff, self.backoff_max) or self.policy == "strict":
            retry = f"; retrying in {mirror.delay:g} s" if self.policy == "best_effort" else ""
            log.warning(
                "multiplex: mirror %s failed (%s): %s; recorded in the outbox %s%s",
                mirror.name,
                what,
                error,
                self.outbox.path or "(in memory)",
                retry,
            )

    def _succeeded(self, mirror: _Mirror) -> None:
        if mirror.succeeded():
            log.warning("multiplex: mirror %s is reachable again", mirror.name)

    def _mirror_error(self, mirror: _Mirror, collection: str, uids: Sequence[str], error: str) -> MirrorError:
        shown = ", ".join(repr(u) for u in uids[:10]) + (f" and {len(uids) - 10} more" if len(uids) > 10 else "")
        return MirrorError(
            f"mirror {mirror.name} failed: {error}; it missed {len(uids)} document(s) of {collection!r}: {shown} "
            f"(recorded in the outbox {self.outbox.path or '(in memory)'}; run track-backends replay)",
            mirror=mirror.name,
            missed=[(collection, u) for u in uids],
            outbox=self.outbox.path,
        )

    def _propagate(self, collection: str, uids: Iterable[str], *, fresh: bool = False) -> None:
        """Copy the primary's current state of ``uids`` to every mirror, per the policy."""
        if not self.mirrors:
            return
        todo = list(dict.fromkeys(uids))
        if not todo:
            return
        errors: list[MirrorError] = []
        try:
            with self._locked():
                try:
                    current = self._read_primary(collection, todo)
                except _PrimaryReadError as e:
                    error = f"cannot re-read the documents from the primary: {_one_line(e.error)}"
                    for m in self.mirrors:
                        self._record(m, collection, todo, error)
                        errors.append(self._mirror_error(m, collection, todo, error))
                    log.warning("multiplex: %s; %d document(s) recorded in the outbox", error, len(todo))
                    if self.policy == "strict":
                        raise errors[0] from e.error
                    return
                now = time.monotonic()
                for m in self.mirrors:
                    if self.policy == "best_effort" and m.backing_off(now):
                        self._record(m, collection, todo, m.last_error or "backing off")
                        continue
                    try:
                        self._sync(m.get(), collection, todo, current, fresh)
                    except BaseException as e:
                        error = _one_line(e)
                        self._record(m, collection, todo, error)
                        self._failed(m, error, f"writing {len(todo)} document(s) of {collection!r}")
                        if not isinstance(e, Exception):
                            raise
                        errors.append(self._mirror_error(m, collection, todo, error))
                        continue
                    self._succeeded(m)
                    if m.backlog:
                        try:
                            self._drain(m, limit=DRAIN_PER_WRITE)
                        except TrackBackendsError as e:  # the entries stay in the outbox
                            log.warning("multiplex: replaying the outbox of %s failed: %s", m.name, _one_line(e))
        except LockTimeoutError as e:
            error = _one_line(e)
            for m in self.mirrors:
                self._record(m, collection, todo, error, locked=False)
                errors.append(self._mirror_error(m, collection, todo, error))
            log.warning("multiplex: %s; %d document(s) recorded in the outbox", error, len(todo))
        if errors and self.policy == "strict":
            first = errors[0]
            if len(errors) > 1:
                others = ", ".join(e.mirror for e in errors[1:])
                first.args = (f"{first.args[0]} (mirrors {others} failed too)",)
            raise first

    def _drain(self, mirror: _Mirror, *, limit: int | None = None, deadline: float | None = None) -> int:
        """Replay the mirror's outbox entries (under the mirroring lock); return how many were replayed.

        Stops at the first failure (the mirror then backs off) and when ``limit`` entries or the
        ``deadline`` (``time.monotonic()``) is reached.

        Raises:
            StoreError: The primary cannot be read (or the outbox cannot be).
        """
        replayed = 0
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                return replayed
            want = _CHUNK if limit is None else min(_CHUNK, limit - replayed)
            if want <= 0:
                return replayed
            batch = self.outbox.pending(mirror.name, limit=want)
            if not batch:
                mirror.backlog = False
                return replayed
            docs: dict[str, list[str]] = {}
            indexes: list[Entry] = []
            for e in batch:
                if e.kind == "index":
                    indexes.append(e)
                else:
                    docs.setdefault(e.collection, []).append(e.uid)
            try:
                current = {c: self._read_primary(c, uids) for c, uids in docs.items()}
            except _PrimaryReadError as e:
                raise StoreUnavailableError(
                    f"cannot replay the outbox: the primary {self.primary_name} cannot be read: {_one_line(e.error)}"
                ) from e.error
            try:
                store = mirror.get()
                for e in indexes:
                    store.ensure_index(e.collection, list(e.keys), unique=e.unique)
                for c, uids in docs.items():
                    self._sync(store, c, uids, current[c], False)
            except Exception as e:
                error = _one_line(e)
                self.outbox.note_failure(batch, error)
                self._failed(mirror, error, f"replaying {len(batch)} outbox entries")
                return replayed
            self._succeeded(mirror)
            self.outbox.remove(batch)
            replayed += len(batch)

    # -- Store API: reads on the primary -----------------------------------------------------------
    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Query the primary (see :meth:`Store.find`)."""
        self._check_open()
        return self.primary.find(collection, query, sort=sort, limit=limit, projection=projection)

    def find_one(self, collection: str, query: Query = None, *, sort: Any = None) -> Document | None:
        """Return the first match on the primary (see :meth:`Store.find_one`)."""
        self._check_open()
        return self.primary.find_one(collection, query, sort=sort)

    def count(self, collection: str, query: Query = None) -> int:
        """Count on the primary (see :meth:`Store.count`)."""
        self._check_open()
        return self.primary.count(collection, query)

    # -- Store API: writes on the primary, then mirrored ---------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert on the primary, then mirror the document (see :meth:`Store.insert`)."""
        self._check_open()
        self.primary.insert(collection, doc)
        self._propagate(collection, [doc["uid"]], fresh=True)

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert on the primary, all or none, then mirror the documents (see :meth:`Store.insert_many`)."""
        self._check_open()
        docs = list(docs)
        n = self.primary.insert_many(collection, docs)
        if n:
            self._propagate(collection, [d["uid"] for d in docs], fresh=True)
        return n

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update on the primary, then mirror the touched documents (see :meth:`Store.update`)."""
        self._check_open()
        uid = _pinned_uid(query)
        if uid is not None:  # every Protocol write: the uid is known
            n = self.primary.update(collection, query, update, many=many, upsert=upsert)
            if n:
                self._propagate(collection, [uid])
            return n
        check_collection(collection)
        parse_update(update)  # validation first, even when nothing matches
        for _ in range(_RETRIES):
            found = [d["uid"] for d in self.primary.find(collection, query, limit=0 if many else 1, projection=["uid"])]
            if not found:
                if not upsert:
                    return 0
                break
            n = self.primary.update(collection, _restrict(query, found), update, many=many)
            if n:
                self._propagate(collection, found)
                return n
            # what we found stopped matching in between: look again
        # an upsert that inserts (or a query that keeps changing under us): run it as given,
        # then mirror whatever it may have touched
        n = self.primary.update(collection, query, update, many=many, upsert=upsert)
        touched: list[str] = []
        if upsert:
            with contextlib.suppress(TrackBackendsError):
                seed = upsert_seed(parse_query(query or {}))
                if type(seed.get("uid")) is str:
                    touched.append(seed["uid"])
        touched += [d["uid"] for d in self.primary.find(collection, query, projection=["uid"])]
        self._propagate(collection, touched)
        return n

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Claim on the primary only, then mirror the result (see :meth:`Store.find_one_and_update`)."""
        self._check_open()
        doc = self.primary.find_one_and_update(collection, query, update, sort=sort)
        if doc is not None:
            self._propagate(collection, [doc["uid"]])
        return doc

    def delete(self, collection: str, query: Query) -> int:
        """Delete on the primary, then on the mirrors (see :meth:`Store.delete`)."""
        self._check_open()
        uid = _pinned_uid(query)
        if uid is not None:
            n = self.primary.delete(collection, query)
            if n:
                self._propagate(collection, [uid])
            return n
        found = [d["uid"] for d in self.primary.find(collection, query, projection=["uid"])]
        if not found:
            return 0
        n = self.primary.delete(collection, _restrict(query, found))
        self._propagate(collection, found)
        return n

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create the index on the primary, then on every mirror (see :meth:`Store.ensure_index`)."""
        self._check_open()
        self.primary.ensure_index(collection, keys, unique=unique)
        paths = [keys] if isinstance(keys, str) else list(keys)
        errors = []
        with self._locked():
            now = time.monotonic()
            for m in self.mirrors:
                if self.policy == "best_effort" and m.backing_off(now):
                    self.outbox.record_index(
                        m.name, collection, paths, unique, m.last_error or "backing off", bump=False
                    )
                    m.backlog = True
                    continue
                try:
                    m.get().ensure_index(collection, keys, unique=unique)
                except Exception as e:
                    error = _one_line(e)
                    self.outbox.record_index(m.name, collection, paths, unique, error, bump=False)
                    m.backlog = True
                    self._failed(m, error, f"creating an index on {collection!r}")
                    errors.append(
                        MirrorError(
                            f"mirror {m.name} failed to create the index {paths} on {collection!r}: {error} "
                            f"(recorded in the outbox {self.outbox.path or '(in memory)'})",
                            mirror=m.name,
                            missed=[],
                            outbox=self.outbox.path,
                        )
                    )
                    continue
                self._succeeded(m)
        if errors and self.policy == "strict":
            raise errors[0]

    # -- outbox --------------------------------------------------------------------------------------
    def status(self) -> dict[str, MirrorStatus]:
        """Report each mirror's outbox depth and health.

        Returns:
            Mirror name -> :class:`MirrorStatus`, in the order the mirrors were given.
        """
        now = time.monotonic()
        out = {}
        for m in self.mirrors:
            depth = self.outbox.depth(m.name)
            out[m.name] = MirrorStatus(
                name=m.name,
                outbox_depth=depth,
                down=m.failures > 0,
                retry_in=max(0.0, m.next_try - now) if m.failures else 0.0,
                failures=m.failures,
                last_error=m.last_error,
            )
        return out

    def replay(self, timeout: float | None = None) -> dict[str, MirrorStatus]:
        """Replay the outbox to every mirror now, whatever their backoff.

        Each mirror's replay stops at its first failure (which is counted, and backs the mirror
        off again).

        Args:
            timeout: Stop after this many seconds (``None``: until done or failed).

        Returns:
            :meth:`status` afterwards: ``outbox_depth`` is 0 for every mirror that caught up.

        Raises:
            StoreUnavailableError: The primary cannot be read.
        """
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._locked():
            for m in self.mirrors:
                self._drain(m, deadline=deadline)
        return self.status()

    # -- lifecycle -----------------------------------------------------------------------------------
    def commit(self) -> None:
        """Commit the primary, then the mirrors, and replay the outbox to mirrors not backing off.

        Raises:
            MirrorError: Under the strict policy, a mirror failed to commit or to catch up.
        """
        self._check_open()
        self.primary.commit()
        errors = []
        with self._locked():
            now = time.monotonic()
            for m in self.mirrors:
                if self.policy == "best_effort" and m.backing_off(now):
                    continue
                try:
                    if m.store is not None or m.backlog:
                        m.get().commit()
                except Exception as e:
                    error = _one_line(e)
                    self._failed(m, error, "commit")
                    errors.append(
                        MirrorError(
                            f"mirror {m.name} failed to commit: {error}",
                            mirror=m.name,
                            missed=[],
                            outbox=self.outbox.path,
                        )
                    )
                    continue
                if m.backlog:
                    self._drain(m)
                    if m.backlog and m.failures:
                        depth = self.outbox.depth(m.name)
                        errors.append(
                            MirrorError(
                                f"mirror {m.name} could not catch up: {depth} document(s) wait in the outbox "
                                f"{self.outbox.path or '(in memory)'}: {m.last_error}",
                                mirror=m.name,
                                missed=[],
                                outbox=self.outbox.path,
                            )
                        )
        if errors and self.policy == "strict":
            raise errors[0]

    def close(self, timeout: float | None = None) -> None:
        """Replay the outbox for at most ``timeout`` seconds, then close every store.

        Whatever is still in the outbox stays on disk for ``track-backends replay`` (a warning
        says how much). Never waits much longer than ``timeout``, even for a mirror that hangs:
        the replay and the mirrors' ``close`` run in a worker thread that is abandoned when time
        runs out. Closing twice is harmless.

        Args:
            timeout: Seconds to spend (default: ``close_timeout`` given at creation; 0 skips the
                replay).
        """
        if self.closed:
            return
        self.closed = True
        timeout = self.close_timeout if timeout is None else max(0.0, float(timeout))
        deadline = time.monotonic() + timeout
        done = threading.Event()

        def finish() -> None:
            try:
                if timeout > 0 and any(m.backlog for m in self.mirrors):
                    try:
                        with self._locked(timeout=max(0.0, deadline - time.monotonic())):
                            for m in self.mirrors:
                                if m.backlog:
                                    self._drain(m, deadline=deadline)
                    except Exception as e:  # reported below through the outbox depth
                        log.warning("multiplex: replaying the outbox at close failed: %s", _one_line(e))
                for m in self.mirrors:
                    if m.store is not None:
                        try:
                            m.store.close()
                        except Exception as e:
                            log.warning("multiplex: closing mirror %s failed: %s", m.name, _one_line(e))
            finally:
                done.set()

        worker = threading.Thread(target=finish, name="multiplex-close", daemon=True)
        worker.start()
        if not done.wait(max(0.0, deadline - time.monotonic()) + 0.05):
            log.warning(
                "multiplex: close() gave up after %g s on a mirror that does not answer; the outbox keeps what is left",
                timeout,
            )
        try:
            if self.mirrors:
                depths = {m.name: self.outbox.depth(m.name) for m in self.mirrors}
                left = {name: d for name, d in depths.items() if d}
                if left:
                    log.warning(
                        "multiplex: closing with documents not yet mirrored (%s); they stay in the outbox %s "
                        "until `track-backends replay` or the next run",
                        ", ".join(f"{n}: {d}" for n, d in left.items()),
                        self.outbox.path or "(in memory: they are lost with this process)",
                    )
        except Exception as e:
            log.warning("multiplex: cannot read the outbox at close: %s", _one_line(e))
        finally:
            with contextlib.suppress(Exception):
                self.outbox.close()
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._lock_fd)
                self._lock_fd = None
            self.primary.close()


# -- building from URIs ------------------------------------------------------------------------------
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
        parts = [f"primary={quote(mask_password(self.primary), safe=':/@*')}"]
        parts += [f"mirror={quote(mask_password(m), safe=':/@*')}" for m in self.mirrors]
        parts.append(f"policy={self.policy}")
        return "multiplex:?" + "&".join(parts)

    def __repr__(self) -> str:
        return f"MultiplexSpec({self.redacted!r})"


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


def parse_multiplex(uri: str | StoreURI) -> MultiplexSpec:
    """Parse ``multiplex:?primary=<uri>&mirror=<uri>&mirror=...&policy=...&outbox=...&close_timeout=...``.

    Inner URIs must be percent-encoded (``quote(uri, safe="")``, or :func:`multiplex_uri`). A
    ``+`` is kept as is (not read as a space), so ``mongodb+srv://`` survives unencoded.

    Raises:
        InvalidURIError: Not a multiplex URI, no primary, an option given twice, an unknown
            option, a nested ``multiplex:``, or a bad value. Messages never show passwords.
    """
    raw = uri.raw if isinstance(uri, StoreURI) else uri
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
        if not part:
            continue
        key, _, value = part.partition("=")
        values.setdefault(unquote(key), []).append(unquote(value))
    unknown = sorted(set(values) - _URI_OPTIONS)
    if unknown:
        raise InvalidURIError(
            f"unknown option(s) {[mask_password(u) for u in unknown]} in a multiplex: URI; "
            f"known: {sorted(_URI_OPTIONS)}"
        )
    for key, vals in values.items():
        if key != "mirror" and len(vals) > 1:
            raise InvalidURIError(f"option {key!r} is given {len(vals)} times in a multiplex: URI")
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
    policy = values.get("policy", [DEFAULT_POLICY])[0].replace("-", "_").lower()
    if policy not in POLICIES:
        raise InvalidURIError(f"unknown multiplex policy {policy!r}; expected one of {', '.join(POLICIES)}")
    options = {
        k: _seconds(k, v[0])
        for k, v in values.items()
        if k in ("close_timeout", "backoff", "backoff_max", "lock_timeout")
    }
    outbox = values.get("outbox", [None])[0] or None
    return MultiplexSpec(primary, mirrors, policy, outbox, **options)


def _open_mirror(uri: str, policy: str) -> _Mirror:
    from ..registry import open_store

    parsed = parse_uri(uri)
    name = parsed.redacted
    try:
        return _Mirror(name, open_store(parsed), parsed)
    except (InvalidURIError, ImportError):
        raise
    except StoreError as e:
        if policy == "strict":
            raise
        log.warning("multiplex: mirror %s cannot be opened yet (%s); its writes go to the outbox", name, _one_line(e))
        mirror = _Mirror(name, None, parsed)
        mirror.last_error = _one_line(e)
        return mirror


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
    from ..registry import open_store

    if not isinstance(spec, MultiplexSpec):
        spec = parse_multiplex(spec)
    primary_uri = parse_uri(spec.primary)
    opened: list[Store] = []
    try:
        primary = open_store(primary_uri)
        opened.append(primary)
        mirrors = []
        for uri in spec.mirrors:
            m = _open_mirror(uri, spec.policy)
            if m.store is not None:
                opened.append(m.store)
            mirrors.append(m)
        if mirrors:
            # a mirror not opened yet counts as failed once, so writes back off from it
            for m in mirrors:
                if m.store is None:
                    m.failed(m.last_error or "cannot be opened", spec.backoff, spec.backoff_max)
        return MultiplexStore(
            primary,
            mirrors,  # type: ignore[arg-type]
            policy=spec.policy,
            outbox=outbox or spec.outbox,
            close_timeout=spec.close_timeout,
            backoff=spec.backoff,
            backoff_max=spec.backoff_max,
            lock_timeout=spec.lock_timeout,
            primary_name=primary_uri.redacted,
        )
    except BaseException:
        for s in opened:
            with contextlib.suppress(Exception):
                s.close()
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
        raise StoreError(f"could not open a multiplex: store: {_one_line(e)}") from e


# -- the Protocol --------------------------------------------------------------------------------------
def _as_store(obj: Store | DocumentProtocol | str | StoreURI) -> tuple[Store, str]:
    from ..registry import open_store

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
        outbox: The outbox file (default: see :func:`default_outbox`), or ``":memory:"``.
        close_timeout: Seconds :meth:`close` spends replaying the outbox at most.
        backoff: First backoff of a failing mirror, in seconds (doubled at each failure).
        backoff_max: Longest backoff, in seconds.

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
        if policy not in POLICIES:
            raise InvalidURIError(f"unknown multiplex policy {policy!r}; expected one of {', '.join(POLICIES)}")
        opened: list[Store] = []
        try:
            primary_store, primary_name = _as_store(primary)
            opened.append(primary_store)
            built: list[_Mirror] = []
            for m in mirrors:
                if isinstance(m, (str, StoreURI)):
                    mirror = _open_mirror(m if isinstance(m, str) else m.raw, policy)
                    if mirror.store is None:
                        mirror.failed(mirror.last_error or "cannot be opened", backoff, backoff_max)
                else:
                    store, name = _as_store(m)
                    mirror = _Mirror(name, store)
                if mirror.store is not None:
                    opened.append(mirror.store)
                built.append(mirror)
            store = MultiplexStore(
                primary_store,
                built,  # type: ignore[arg-type]
                policy=policy,
                outbox=outbox,
                close_timeout=close_timeout,
                backoff=backoff,
                backoff_max=backoff_max,
                primary_name=primary_name,
            )
        except BaseException:
            for s in opened:
                with contextlib.suppress(Exception):
                    s.close()
            raise
        super().__init__(store)

    @classmethod
    def from_uri(cls, uri: str | StoreURI) -> ProtocolMultiplexer:
        """Open a ``multiplex:?primary=...&mirror=...`` URI as a :class:`ProtocolMultiplexer`."""
        self = cls.__new__(cls)
        DocumentProtocol.__init__(self, open_multiplex(uri))
        return self

    def status(self) -> dict[str, MirrorStatus]:
        """Each mirror's outbox depth and health (see :meth:`MultiplexStore.status`)."""
        return self.store.status()

    def replay(self, timeout: float | None = None) -> dict[str, MirrorStatus]:
        """Replay the outbox now (see :meth:`MultiplexStore.replay`)."""
        return self.store.replay(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Replay the outbox for at most ``timeout`` seconds, then close (see :meth:`MultiplexStore.close`)."""
        self.store.close(timeout)

    def __repr__(self) -> str:
        return f"ProtocolMultiplexer({self.store!r})"


def describe_status(status: dict[str, MirrorStatus]) -> str:
    """Format a status report as lines ``mirror NAME: N pending[, down: error]``."""
    lines = []
    for s in status.values():
        line = f"mirror {s.name}: {s.outbox_depth} pending"
        if s.down:
            line += f", down ({s.failures} failure(s), retry in {s.retry_in:.1f} s): {s.last_error}"
        lines.append(line)
    return "\n".join(lines)


__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "MirrorError",
    "MirrorStatus",
    "MultiplexSpec",
    "MultiplexStore",
    "ProtocolMultiplexer",
    "default_outbox",
    "from_uri",
    "multiplex_uri",
    "open_multiplex",
    "parse_multiplex",
]
