"""The durable outbox of the multiplexer: which documents (and blobs) each mirror still has to receive.

An entry names a mirror, a collection and a document uid, never the document itself: replaying
an entry re-reads the *current* document from the primary (or finds it gone and deletes it on the
mirror). Entries are keyed by ``(mirror, collection, uid)``, so a document that fails to reach a
mirror a thousand times is one entry, and replaying it once is enough. A ``points`` entry says
the mirror missed some of the document's metric points: replaying it replaces all of the
mirror's points of that document with the primary's (idempotent, whatever was missed).

Recording and replaying normally both run under the multiplexer's mirroring lock (shared by the
processes that share the outbox file), so a failure for a document that already has an entry
costs a read and no write. A failure recorded without that lock (its wait timed out) increments
the entry's sequence number instead, and removing entries after a replay is guarded by that
number, so such a failure is never removed by a replay that was running at the time.

The outbox is a :class:`~track_backends.stores.journal.JournalStore` (``pickled`` codec) when it
has a path: every recorded failure is fsync'd before the write that caused it returns, and any
number of processes can share it. Without a path it lives in memory (used for an ``ephemeral:``
primary, whose documents cannot outlive the process either).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import DuplicateKeyError
from ...store import Store
from ..journal import JournalStore
from ..memory import MemoryStore

ENTRIES = "entries"
META = "meta"
MEMORY_OUTBOX = ":memory:"
"""The ``outbox`` argument (or URI option) for an outbox in memory."""
_CHUNK = 500


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


def entry_key(mirror: str, collection: str, kind: str, name: str) -> str:
    """The uid of the entry for one document (``kind="doc"``) or index (``kind="index"``)."""
    return json.dumps([mirror, collection, kind, name], separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Entry:
    """One thing a mirror missed: a document (by uid) or an index.

    Attributes:
        key: The entry's uid in the outbox.
        mirror: The mirror's name (its URI with the password masked).
        collection: The collection.
        kind: ``"doc"``, ``"points"`` (the document's points), ``"blob"`` or ``"index"``.
        uid: The document's uid (``kind="doc"`` or ``"points"``), the blob's sha256
            (``kind="blob"``), else ``""``.
        keys: The index paths (``kind="index"``), else ``()``.
        unique: Whether the index is unique.
        seq: Incremented at each recorded failure; removal is guarded by it.
        attempts: How many failures were recorded for it.
        error: The last failure, one line.
    """

    key: str
    mirror: str
    collection: str
    kind: str
    uid: str
    keys: tuple[str, ...]
    unique: bool
    seq: int
    attempts: int
    error: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Entry:
        return cls(
            key=doc["uid"],
            mirror=doc["mirror"],
            collection=doc["collection"],
            kind=doc["kind"],
            uid=doc.get("doc_uid") or "",
            keys=tuple(doc.get("keys") or ()),
            unique=bool(doc.get("unique")),
            seq=int(doc["seq"]),
            attempts=int(doc.get("attempts", 0)),
            error=str(doc.get("error", "")),
        )


def open_outbox(
    outbox: str | os.PathLike[str] | Outbox | None, primary: Store, primary_name: str, lock_timeout: float
) -> Outbox:
    """The outbox a multiplexer's ``outbox`` argument names.

    Args:
        outbox: An :class:`Outbox`; a path; ``":memory:"``; or ``None`` for
            :func:`default_outbox`.
        primary: The primary store.
        primary_name: Its redacted name.
        lock_timeout: Seconds to wait for the file lock of a shared outbox.

    Raises:
        StoreError: The outbox file cannot be created or opened.
    """
    if isinstance(outbox, Outbox):
        return outbox
    if outbox is None:
        path = default_outbox(primary, primary_name)
    else:
        path = None if os.fspath(outbox) == MEMORY_OUTBOX else os.fspath(outbox)
    return Outbox(path, lock_timeout=lock_timeout)


class Outbox:
    """Failed mirror writes, keyed by ``(mirror, collection, uid)``.

    Args:
        path: The outbox file (a ``pickled`` journal, created if missing; its directory is
            created too), or ``None`` for an outbox in memory.
        lock_timeout: Seconds to wait for the file lock of a shared outbox.

    Raises:
        StoreError: The file cannot be created or opened.
        CorruptStoreError: The file exists and is not a pickled journal.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, lock_timeout: float = 30.0) -> None:
        self.path: str | None = None
        self.store: Store
        if path is None:
            self.store = MemoryStore()
        else:
            self.path = os.path.abspath(os.fspath(path))
            directory = os.path.dirname(self.path)
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError:
                pass  # JournalStore names the missing directory
            self.store = JournalStore(self.path, "pickled", lock_timeout=lock_timeout)
        self.store.ensure_index(ENTRIES, "mirror")

    # -- metadata --------------------------------------------------------------------------------
    def describe(self, primary: str, mirrors: Sequence[str]) -> None:
        """Record the (redacted) URIs of the primary and mirrors, for ``replay --outbox``."""
        doc = {"primary": primary, "mirrors": list(mirrors), "updated": time.time()}
        current = self.store.find_one(META, {"uid": "multiplex"})
        if current is None or current.get("primary") != primary or current.get("mirrors") != list(mirrors):
            self.store.update(META, {"uid": "multiplex"}, {"$set": doc}, upsert=True)

    def description(self) -> dict[str, Any] | None:
        """Return ``{"primary": uri, "mirrors": [uri, ...]}`` as last recorded, or ``None``."""
        return self.store.find_one(META, {"uid": "multiplex"})

    # -- recording -------------------------------------------------------------------------------
    def record(self, mirror: str, collection: str, uids: Iterable[str], error: str, *, bump: bool = True) -> None:
        """Record that ``mirror`` missed these documents (one entry per uid, however often).

        Args:
            mirror: The mirror's name.
            collection: The collection.
            uids: The documents' uids.
            error: The failure, one line.
            bump: Also count the failure on entries that exist already (incrementing their
                sequence number). Not needed when no replay can run meanwhile (under the
                mirroring lock): existing entries are then left alone, with no write at all.

        Raises:
            StoreError: The outbox could not be written (the failure must then be reported).
        """
        keys = {entry_key(mirror, collection, "doc", u): {"doc_uid": u} for u in uids}
        self._record(keys, error, {"mirror": mirror, "collection": collection, "kind": "doc", "rank": 1}, bump)

    def record_points(
        self, mirror: str, collection: str, uids: Iterable[str], error: str, *, bump: bool = True
    ) -> None:
        """Record that ``mirror`` missed points of these documents (``bump`` as in :meth:`record`).

        Replaying the entry replaces all of the mirror's points of the document with the
        primary's, so one entry per uid is enough however many appends it missed.

        Raises:
            StoreError: The outbox could not be written.
        """
        keys = {entry_key(mirror, collection, "points", u): {"doc_uid": u} for u in uids}
        self._record(keys, error, {"mirror": mirror, "collection": collection, "kind": "points", "rank": 2}, bump)

    def record_blobs(self, mirror: str, collection: str, shas: Iterable[str], error: str, *, bump: bool = True) -> None:
        """Record that ``mirror`` missed blobs, by sha256 (``bump`` as in :meth:`record`).

        Replaying the entry copies the blob from the primary if the primary holds it, and
        deletes it from the mirror otherwise (idempotent). Blob entries replay before documents.

        Raises:
            StoreError: The outbox could not be written.
        """
        keys = {entry_key(mirror, collection, "blob", s): {"doc_uid": s} for s in shas}
        self._record(keys, error, {"mirror": mirror, "collection": collection, "kind": "blob", "rank": 0.5}, bump)

    def record_index(
        self, mirror: str, collection: str, keys: Sequence[str], unique: bool, error: str, *, bump: bool = True
    ) -> None:
        """Record that ``mirror`` missed an ``ensure_index`` (``bump`` as in :meth:`record`)."""
        key = entry_key(mirror, collection, "index", json.dumps(list(keys)))
        fields = {
            "mirror": mirror,
            "collection": collection,
            "kind": "index",
            "rank": 0,
            "keys": list(keys),
            "unique": bool(unique),
        }
        self._record({key: {}}, error, fields, bump)

    def _record(self, keys: dict[str, dict[str, Any]], error: str, fields: dict[str, Any], bump: bool) -> None:
        if not keys:
            return
        now = time.time()
        error = error[:500]
        all_keys = list(keys)
        for i in range(0, len(all_keys), _CHUNK):
            chunk = all_keys[i : i + _CHUNK]
            existing = {d["uid"] for d in self.store.find(ENTRIES, {"uid": {"$in": chunk}}, projection=["uid"])}
            if existing and bump:
                self.store.update(
                    ENTRIES,
                    {"uid": {"$in": sorted(existing)}},
                    {"$inc": {"seq": 1, "attempts": 1}, "$set": {"error": error, "last_failure": now}},
                    many=True,
                )
            new = [
                {
                    "uid": k,
                    **fields,
                    **keys[k],
                    "seq": 1,
                    "attempts": 1,
                    "first_failure": now,
                    "last_failure": now,
                    "error": error,
                }
                for k in chunk
                if k not in existing
            ]
            if new:
                try:
                    self.store.insert_many(ENTRIES, new)
                except DuplicateKeyError:  # another process recorded one of them meanwhile: one by one
                    for doc in new:
                        self.store.update(
                            ENTRIES,
                            {"uid": doc["uid"]},
                            {
                                "$inc": {"seq": 1, "attempts": 1},
                                "$set": {"error": error, "last_failure": now},
                                "$setOnInsert": {
                                    k: v
                                    for k, v in doc.items()
                                    if k not in ("uid", "seq", "attempts", "error", "last_failure")
                                },
                            },
                            upsert=True,
                        )

    def note_failure(self, entries: Sequence[Entry], error: str) -> None:
        """Count one more failed replay of these entries (their sequence numbers stay)."""
        keys = [e.key for e in entries]
        for i in range(0, len(keys), _CHUNK):
            self.store.update(
                ENTRIES,
                {"uid": {"$in": keys[i : i + _CHUNK]}},
                {"$inc": {"attempts": 1}, "$set": {"error": error[:500], "last_failure": time.time()}},
                many=True,
            )

    # -- replaying -------------------------------------------------------------------------------
    def pending(self, mirror: str, limit: int | None = None) -> list[Entry]:
        """Return the mirror's entries: indexes, blobs, documents, then points; oldest failure first.

        (Entries written before points were mirrored have no ``rank`` and come first.)
        """
        order = [("rank", 1), ("kind", -1), ("first_failure", 1)]
        docs = self.store.find(ENTRIES, {"mirror": mirror}, sort=order, limit=limit)
        return [Entry.from_doc(d) for d in docs]

    def remove(self, entries: Sequence[Entry]) -> int:
        """Remove replayed entries, unless a failure was recorded for them since they were read."""
        by_seq: dict[int, list[str]] = {}
        for e in entries:
            by_seq.setdefault(e.seq, []).append(e.key)
        removed = 0
        for seq, keys in by_seq.items():
            for i in range(0, len(keys), _CHUNK):
                removed += self.store.delete(ENTRIES, {"uid": {"$in": keys[i : i + _CHUNK]}, "seq": seq})
        return removed

    def depth(self, mirror: str | None = None) -> int:
        """Return how many entries wait for ``mirror`` (or for every mirror)."""
        return self.store.count(ENTRIES, {"mirror": mirror} if mirror is not None else None)

    def mirrors(self) -> list[str]:
        """Return the names of the mirrors that have entries."""
        return sorted({d["mirror"] for d in self.store.find(ENTRIES, projection=["mirror"])})

    def close(self) -> None:
        """Close the outbox file."""
        self.store.close()

    def __repr__(self) -> str:
        return f"<Outbox {self.path or 'in memory'}>"
