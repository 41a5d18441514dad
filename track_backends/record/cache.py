"""A cache keyed by parameters (after curifactory): compute once per key, on any machine, then load.

``@cached(proto, group=g)`` on a function stores each result as a blob, under the canonical hash of
the function's name and its bound arguments (defaults applied), the hash trials use
(:func:`~track_backends.model.canonical_hash`): nesting, key boundaries and types all count, so
``f(1)``, ``f(1.0)`` and ``f(True)`` are three keys.

An entry is a document in the ``cache`` collection::

    {"uid": "<group uid>/<name>/<key>", "group": ..., "name": ..., "key": ..., "state": "done",
     "sha256": ..., "size": ..., "serializer": "pickle", "media_type": ..., "owner": "host:pid",
     "token": ..., "expires": None, "created": ..., "computed": ...}

whose ``sha256`` keeps its blob alive through ``track-backends gc``. Computing at most once per key
across processes and machines works by a claim: the first caller inserts the document in state
``"computing"`` (the ``uid`` is unique, so exactly one insert wins) with a lease measured on the
store's clock and extended by a heartbeat thread while the function runs. Others poll until the
entry is ``"done"``, or take over a claim whose lease ran out (its owner died) with one atomic
``find_one_and_update`` conditional on the claim's token. A function that raises releases its
claim (another caller may try) and the exception propagates.

Only the Store and Protocol interfaces are used, so it works on every backend that keeps blobs.
"""

from __future__ import annotations

import functools
import inspect
import io
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Generic, ParamSpec, TypeVar

from ..blobs import CHUNK_SIZE, BlobStat, VerifiedReader
from ..errors import CorruptStoreError, DuplicateKeyError, EncodingError, LockTimeoutError, NotFoundError, StoreError
from ..layout import CACHE
from ..model import canonical_hash
from ..protocol.leases import default_owner
from ..store import Store
from .common import RecordError, group_uid_of
from .serializers import Serializer, get_serializer

P = ParamSpec("P")
R = TypeVar("R")


COMPUTING = "computing"
DONE = "done"
DEFAULT_LEASE = 60.0
"""Seconds a claim lives without a heartbeat; the heartbeat renews it every third of that."""

_MAX_POLL = 1.0


@dataclass(frozen=True)
class CacheEntry:
    """A cache entry, as :meth:`Cached.entry` and :meth:`Cached.entries` return it.

    Attributes:
        key: The canonical hash of the function's name and bound arguments.
        state: ``"computing"`` (claimed, not stored yet) or ``"done"``.
        sha256: The stored value's blob address (``None`` while computing).
        size: Its size in bytes (``None`` while computing).
        serializer: The name of the serializer that wrote it.
        owner: ``host:pid`` of the process that computed (or is computing) it.
        created: When the key was claimed (the store's clock, epoch seconds).
        computed: When the value was stored (``None`` while computing).
        expires: When a computing claim's lease runs out (``None`` once done).
        uid: The document's uid, ``"<group uid>/<name>/<key>"``.
    """

    key: str
    state: str
    sha256: str | None
    size: int | None
    serializer: str
    owner: str
    created: float
    computed: float | None
    expires: float | None
    uid: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> CacheEntry:
        """Build from a ``cache`` document."""
        return cls(
            key=doc["key"],
            state=doc.get("state", ""),
            sha256=doc.get("sha256"),
            size=doc.get("size"),
            serializer=doc.get("serializer", ""),
            owner=doc.get("owner", ""),
            created=doc.get("created", 0.0),
            computed=doc.get("computed"),
            expires=doc.get("expires"),
            uid=doc["uid"],
        )


class _BlobIO(io.RawIOBase):
    """A writable raw stream over a blob upload (commit and abort stay with the caller)."""

    def __init__(self, writer: Any) -> None:
        super().__init__()
        self._writer = writer

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return int(self._writer.write(data))


def store_value(store: Store, serializer: Serializer, value: Any) -> BlobStat:
    """Serialize ``value`` into a new blob of ``store`` (streamed) and return its stat."""
    writer = store.blob_writer()
    try:
        buffered = io.BufferedWriter(_BlobIO(writer), CHUNK_SIZE)
        serializer.dump(value, buffered)
        buffered.flush()
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


def load_value(store: Store, doc: dict[str, Any], where: str) -> Any:
    """Load the value a ``cache`` document points at, verified against its sha256.

    Raises:
        CorruptStoreError: The blob is missing or its bytes do not match.
        RecordError: The entry's serializer is not registered in this process.
    """
    serializer = get_serializer(doc.get("serializer", ""))
    if not isinstance(doc.get("sha256"), str) or not isinstance(doc.get("size"), int):
        raise CorruptStoreError(f"{where} is marked done but references no blob")
    try:
        raw = store.open_blob(doc["sha256"])
    except NotFoundError as e:
        raise CorruptStoreError(f"{where} refers to blob {doc['sha256']}, which is missing") from e
    with io.BufferedReader(VerifiedReader(raw, doc["sha256"], doc["size"], where), CHUNK_SIZE) as reader:
        try:
            value = serializer.load(reader)
        except Exception:
            _drain(reader)  # damaged bytes explain the failure better: CorruptStoreError
            raise
        _drain(reader)  # reading to the end checks the sha256
    return value


def _drain(reader: IO[bytes]) -> None:
    while reader.read(CHUNK_SIZE):
        pass


class _Heartbeat:
    """A daemon thread that renews a computing claim's lease until stopped or lost."""

    def __init__(self, store: Store, uid: str, token: str, lease: float) -> None:
        self.store, self.query, self.lease = store, {"uid": uid, "token": token, "state": COMPUTING}, lease
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cache-heartbeat-{uid[-12:]}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self.lease / 3):
            try:
                if not self.store.update(CACHE, self.query, {"$set": {"expires": self.store.now() + self.lease}}):
                    return  # taken over or invalidated: nothing left to renew
            except StoreError:
                continue  # a passing outage: the next beat may get through before the lease ends

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def default_name(fn: Callable[..., Any]) -> str:
    """A function's cache name: ``module.qualname`` (pass ``name=`` for one that survives renames)."""
    return f"{getattr(fn, '__module__', None) or '?'}.{getattr(fn, '__qualname__', None) or type(fn).__name__}"


class Cached(Generic[P, R]):
    """A function whose results are cached in a store; see :func:`cached`.

    Calling it returns the stored value for the arguments' key, or computes, stores and returns
    it. The computing call returns the value it computed; every later call returns the value loaded
    from the store (the same value, through the serializer: ``json`` gives lists for tuples).
    """

    def __init__(
        self,
        fn: Callable[P, R],
        proto: Any,
        group: str,
        name: str,
        serializer: Serializer,
        lease: float,
        poll: float,
        timeout: float | None,
    ) -> None:
        self.fn, self.proto, self.group, self.name = fn, proto, group, name
        self.serializer, self.lease, self.poll, self.timeout = serializer, lease, poll, timeout
        self._signature = inspect.signature(fn)
        functools.update_wrapper(self, fn, updated=())  # never merge fn.__dict__ into our state

    @property
    def _store(self) -> Store:
        store: Store = self.proto.store
        return store

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call with these arguments is cached under (nothing is computed or read).

        Raises:
            TypeError: The arguments do not fit the function's signature.
            EncodingError: An argument is not a storable value (only those can make a key).
        """
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        try:
            return canonical_hash(self.name, dict(bound.arguments))
        except EncodingError as e:
            raise EncodingError(f"the arguments of {self.name} cannot make a cache key: {e}") from e

    def _uid(self, key: str) -> str:
        return f"{self.group}/{self.name}/{key}"

    def entry(self, *args: P.args, **kwargs: P.kwargs) -> CacheEntry | None:
        """The entry of a call with these arguments, or ``None`` if nothing is stored or claimed."""
        doc = self._store.find_one(CACHE, {"uid": self._uid(self.cache_key(*args, **kwargs))})
        return CacheEntry.from_doc(doc) if doc is not None else None

    def entries(self) -> list[CacheEntry]:
        """Every entry of this function in its group, oldest first."""
        docs = self._store.find(CACHE, {"group": self.group, "name": self.name}, sort=[("created", 1), ("uid", 1)])
        return [CacheEntry.from_doc(d) for d in docs]

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Forget the stored value of a call with these arguments; return whether there was one.

        A claim being computed is left alone. The blob goes at the next ``gc`` if nothing else uses it.
        """
        uid = self._uid(self.cache_key(*args, **kwargs))
        return bool(self._store.delete(CACHE, {"uid": uid, "state": DONE}))

    def clear(self) -> int:
        """Forget every stored value of this function in its group; return how many were removed."""
        return self._store.delete(CACHE, {"group": self.group, "name": self.name, "state": DONE})

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = self.cache_key(*args, **kwargs)
        uid = self._uid(key)
        store = self._store
        delay, deadline = self.poll, None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            doc = store.find_one(CACHE, {"uid": uid})
            if doc is not None and doc.get("state") == DONE:
                result: R = load_value(store, doc, f"cache entry {key} of {self.name} (group {self.group})")
                return result
            token = self._claim(store, uid, key, doc)
            if token is not None:
                return self._compute(store, uid, token, args, kwargs)
            if doc is None:
                continue  # lost the insert race: read the winner's claim at once
            if deadline is not None and time.monotonic() > deadline:
                raise LockTimeoutError(
                    f"waited {self.timeout:g} s for {self.name} (key {key}), which {doc.get('owner')} is computing"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, _MAX_POLL)

    def _claim(self, store: Store, uid: str, key: str, doc: dict[str, Any] | None) -> str | None:
        """Claim the key (insert, or take over an expired claim); return the claim's token or ``None``."""
        token = uuid.uuid4().hex
        now = store.now()
        claim = {"owner": default_owner(), "token": token, "expires": now + self.lease}
        if doc is None:
            try:
                store.insert(
                    CACHE,
                    {"uid": uid, "group": self.group, "name": self.name, "key": key, "state": COMPUTING}
                    | claim
                    | {"created": now},
                )
            except DuplicateKeyError:
                return None
            return token
        expires = doc.get("expires")
        if doc.get("state") == COMPUTING and isinstance(expires, (int, float)) and expires < now:
            query = {"uid": uid, "state": COMPUTING, "token": doc.get("token")}
            if store.find_one_and_update(CACHE, query, {"$set": claim, "$inc": {"takeovers": 1}}) is not None:
                return token
        return None

    def _compute(self, store: Store, uid: str, token: str, args: Any, kwargs: Any) -> R:
        claim = {"uid": uid, "token": token, "state": COMPUTING}
        beat = _Heartbeat(store, uid, token, self.lease)
        try:
            value = self.fn(*args, **kwargs)
            stat = store_value(store, self.serializer, value)
        except BaseException:
            beat.stop()
            try:
                store.delete(CACHE, claim)  # let another caller try
            except StoreError:
                pass  # the lease runs out instead; the function's exception is what matters
            raise
        beat.stop()
        done = {
            "state": DONE,
            "sha256": stat.sha256,
            "size": stat.size,
            "serializer": self.serializer.name,
            "media_type": self.serializer.media_type,
            "computed": store.now(),
            "expires": None,
        }
        store.update(CACHE, claim, {"$set": done})  # matches nothing if the claim was taken over meanwhile
        return value

    def __repr__(self) -> str:
        return f"<cached {self.name} in group {self.group} ({self.serializer.name}) on {self._store!r}>"


def cached(
    proto: Any,
    group: Any,
    name: str | None = None,
    serializer: str | Serializer = "pickle",
    *,
    lease: float = DEFAULT_LEASE,
    poll: float = 0.05,
    timeout: float | None = None,
) -> Callable[[Callable[P, R]], Cached[P, R]]:
    """Cache a function's results in a store, keyed by its arguments (a decorator).

    Example::

        @cached(proto, group=TrialGroup("prep", project_id="p"), name="load", serializer="json")
        def load(path: str, scale: float = 1.0) -> list[float]: ...

    Security: the default ``"pickle"`` serializer runs code when a value is loaded. Read pickled
    caches only from stores you trust as much as your own code; use ``"json"`` or ``"npy"`` for
    stores that others can write to.

    Args:
        proto: The Protocol (e.g. from ``get_protocol(uri)``) whose store keeps the entries.
        group: A :class:`~track_backends.model.TrialGroup` or its uid: the cache's namespace.
        name: The function's name in keys; default ``module.qualname``. Give one so that keys
            survive a rename or a move (and are the same whether the module runs as a script).
        serializer: ``"pickle"``, ``"json"``, ``"npy"``, another registered name, or a serializer
            object (see :mod:`track_backends.record.serializers`).
        lease: Seconds a claim lives without a heartbeat (a heartbeat renews it while computing).
        poll: First wait, in seconds, between reads while another process computes (it grows to 1 s).
        timeout: Give up waiting for another process's computation after this many seconds
            (``LockTimeoutError``); ``None`` waits as long as its claim is alive.

    Returns:
        A decorator turning a function into a :class:`Cached` one, with ``cache_key``, ``entry``,
        ``entries``, ``invalidate`` and ``clear``.

    Raises:
        RecordError: Unknown serializer, a bad name, lease, poll or timeout, or a bad group.
    """
    ser = get_serializer(serializer)
    gid = group_uid_of(group)
    if name is not None and (type(name) is not str or not name or "\x00" in name):
        raise RecordError(f"a cache name is a non-empty str without NUL, got {name!r:.80}")
    for label, value in (("lease", lease), ("poll", poll), ("timeout", timeout)):
        if value is None and label == "timeout":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10**9:
            raise RecordError(f"{label} must be a positive number of seconds, got {value!r}")

    def decorate(fn: Callable[P, R]) -> Cached[P, R]:
        return Cached(fn, proto, gid, name or default_name(fn), ser, float(lease), float(poll), timeout)

    return decorate
