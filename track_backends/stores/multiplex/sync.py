"""Making one store hold exactly the primary's current documents, by uid."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ...errors import DuplicateKeyError, StoreError
from ...query.equality import diff_update
from ...store import Document, Store

CHUNK = 500
"""Documents read or written per call to a store."""
RETRIES = 16
"""Attempts at a write whose documents keep changing under it."""


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size``."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def by_uid(uids: Sequence[str]) -> Document:
    """The query for these uids."""
    return {"uid": uids[0]} if len(uids) == 1 else {"uid": {"$in": list(uids)}}


class PrimaryReadError(Exception):
    """Re-reading the touched documents from the primary failed (not the mirror's fault)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def read_primary(primary: Store, collection: str, uids: Sequence[str]) -> dict[str, Document]:
    """The primary's current documents among ``uids``, by uid (a missing uid was deleted).

    Raises:
        PrimaryReadError: The primary could not be read.
    """
    current: dict[str, Document] = {}
    try:
        for chunk in chunks(uids):
            for d in primary.find(collection, by_uid(chunk)):
                current[d["uid"]] = d
    except Exception as e:
        raise PrimaryReadError(e) from e
    return current


def sync(store: Store, collection: str, uids: Sequence[str], current: dict[str, Document], fresh: bool) -> None:
    """Make ``store`` hold exactly the primary's ``current`` documents for ``uids``.

    Args:
        store: The mirror.
        collection: The collection.
        uids: The documents to bring in line.
        current: The primary's documents among them (a uid missing here is deleted).
        fresh: The documents were just inserted on the primary: try one ``insert_many`` first.

    Raises:
        Exception: Whatever the mirror raises.
    """
    for chunk in chunks(uids):
        if fresh:
            docs = [current[u] for u in chunk if u in current]
            if len(docs) == len(chunk):
                try:
                    store.insert_many(collection, docs)
                    continue
                except DuplicateKeyError:
                    pass
        existing = {d["uid"]: d for d in store.find(collection, by_uid(chunk))}
        gone = [u for u in chunk if u not in current and u in existing]
        if gone:
            store.delete(collection, by_uid(gone))
        inserts = []
        for u in chunk:
            new = current.get(u)
            if new is None:
                continue
            old = existing.get(u)
            update = diff_update(old, new) if old is not None else None
            if old is None or (update and not store.update(collection, {"uid": u}, update)):
                inserts.append(new)  # missing, or deleted meanwhile by someone else
        if inserts:
            try:
                store.insert_many(collection, inserts)
            except DuplicateKeyError:
                for doc in inserts:
                    replace_one(store, collection, doc)


def replace_one(store: Store, collection: str, doc: Document) -> None:
    """Make ``store`` hold ``doc`` (inserted, or updated to it), retrying while others change it.

    Raises:
        StoreError: The document kept changing on the mirror.
    """
    for _ in range(RETRIES):
        old = store.find_one(collection, {"uid": doc["uid"]})
        if old is None:
            try:
                store.insert(collection, doc)
                return
            except DuplicateKeyError:
                continue
        update = diff_update(old, doc)
        if not update or store.update(collection, {"uid": doc["uid"]}, update):
            return
    raise StoreError(f"document {doc['uid']!r} kept changing on the mirror while it was being replaced")


__all__ = ["CHUNK", "PrimaryReadError", "by_uid", "chunks", "read_primary", "replace_one", "sync"]
