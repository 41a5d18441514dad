"""Mirroring metric points: the primary decides, the mirrors append the same points, misses are repaired whole.

* **Appending** (:func:`append_points`): the points are appended on the primary first, with the
  fenced ``update`` (e.g. the metric summary) in the same call; when that update matches
  nothing, the primary writes nothing and neither does any mirror. Otherwise every mirror gets
  the primary's updated document (whole, as for any write) and then the same points, under the
  same attempt.
* **Deleting** (:func:`delete_points`): on the primary, then on every mirror.
* **The mirroring lock is held across the primary's write.** An append is not idempotent, and a
  replay copies the primary's *current* series; holding the lock from the primary's write to
  the mirrors' makes the two exclusive, so a point is never both in a replayed copy and appended
  again. (When the lock cannot be had within ``lock_timeout``, the write goes to the primary
  alone and the uid is recorded for every mirror.)
* **A miss** (a failed append or delete, a mirror backing off) is recorded in the outbox as a
  ``points`` entry for the uid (plus a document entry when the document was updated). Replaying
  it replaces all of the mirror's points of the uid with the primary's, attempt by attempt
  (:func:`~.series.replace_series`): idempotent, and right however many appends were missed or
  half-applied. Points entries replay after document entries.
* **Policies** apply as for documents: ``strict`` raises :class:`~.state.MirrorError` after
  recording, ``best_effort`` records, warns and backs off.

Caveat: deleting a *document* (which deletes its points on each store) is mirrored as a
document write, outside this lock; points appended concurrently with the deletion of their own
document may survive on one side until the uid's next repair.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from ...errors import LockTimeoutError
from ...query.equality import diff_update
from ...store import Document, Query, Store
from ..points import check_strings
from .mirroring import DRAIN_PER_WRITE, Mirroring
from .state import Mirror, MirrorError, one_line
from .sync import PrimaryReadError, read_primary, sync

_POINTS = "the points of "


def _hold(mirroring: Mirroring, stack: ExitStack) -> str | None:
    """Take the mirroring lock into ``stack``; return why it could not be taken, or ``None``.

    Raises:
        StoreError: The lock file cannot be opened.
    """
    try:
        stack.enter_context(mirroring.locked())
    except LockTimeoutError as e:
        return one_line(e)
    return None


def _record_all(
    mirroring: Mirroring, collection: str, uid_list: list[str], error: str, doc: bool, locked: bool
) -> list[MirrorError]:
    """Record a miss of these uids' points (and documents) for every mirror; return the errors."""
    for m in mirroring.mirrors:
        if doc:
            mirroring.record(m, collection, uid_list, error, locked)
        mirroring.record(m, collection, uid_list, error, locked, kind="points")
    return [mirroring.missed(m, collection, uid_list, error, _POINTS) for m in mirroring.mirrors]


def append_points(
    mirroring: Mirroring,
    collection: str,
    uid: str,
    points: Sequence[Any],
    *,
    attempt: int,
    query: Query,
    update: Document | None,
) -> bool:
    """Append on the primary (fenced by ``update``), then on every mirror, per the policy.

    Returns:
        ``False`` when ``update`` matched nothing on the primary (nothing was written anywhere).

    Raises:
        QueryError: A point, the query or the update is malformed (nothing is written).
        EncodingError: A name, step or value cannot be stored (nothing is written).
        MirrorError: Under the strict policy, a mirror missed the points (the primary has them).
    """
    primary = mirroring.primary
    pts = list(points)
    if not mirroring.mirrors:
        return primary.append_points(collection, uid, pts, attempt=attempt, query=query, update=update)
    errors: list[MirrorError] = []
    with ExitStack() as stack:
        busy = _hold(mirroring, stack)
        if not primary.append_points(collection, uid, pts, attempt=attempt, query=query, update=update):
            return False
        if busy is not None:
            errors = _record_all(mirroring, collection, [uid], busy, update is not None, locked=False)
        else:
            errors = _to_mirrors(mirroring, collection, uid, pts, attempt, update is not None)
    mirroring.raise_first(errors)
    return True


def _to_mirrors(
    mirroring: Mirroring, collection: str, uid: str, pts: list[Any], attempt: int, updated: bool
) -> list[MirrorError]:
    """Copy the primary's document (if ``updated``) and append ``pts`` to every mirror (lock held)."""
    current: dict[str, Document] | None = None
    if updated:
        try:
            current = read_primary(mirroring.primary, collection, [uid])
        except PrimaryReadError as e:
            reason = f"cannot re-read the document from the primary: {one_line(e.error)}"
            return _record_all(mirroring, collection, [uid], reason, True, locked=True)

    def copy(store: Store) -> None:
        if current is None or not _append_with_update(store, collection, uid, current.get(uid), pts, attempt):
            if current is not None:
                sync(store, collection, [uid], current, False)
            store.append_points(collection, uid, pts, attempt=attempt)

    def record(m: Mirror, reason: str) -> None:
        if current is not None:
            mirroring.record(m, collection, [uid], reason)
        mirroring.record(m, collection, [uid], reason, kind="points")

    def error(m: Mirror, reason: str) -> MirrorError:
        return mirroring.missed(m, collection, [uid], reason, _POINTS)

    errors: list[MirrorError] = []
    what = f"appending {len(pts)} point(s) to {uid!r} of {collection!r}"
    for m in mirroring.mirrors:
        if mirroring.attempt(m, copy, what=what, record=record, error=error, errors=errors):
            mirroring.succeeded(m)
            mirroring.catch_up(m, limit=DRAIN_PER_WRITE)
    return errors


def _append_with_update(
    store: Store, collection: str, uid: str, new: Document | None, pts: list[Any], attempt: int
) -> bool:
    """Bring the mirror's document in line and append, in one ``append_points`` (one record on journals).

    Returns:
        ``False`` when the mirror lacks the document (or lost it meanwhile) and nothing was written.
    """
    old = store.find_one(collection, {"uid": uid}) if new is not None else None
    if old is None or new is None:
        return False
    update = diff_update(old, new)
    if not update:
        return store.append_points(collection, uid, pts, attempt=attempt)
    return store.append_points(collection, uid, pts, attempt=attempt, query={"uid": uid}, update=update)


def delete_points(mirroring: Mirroring, collection: str, uids: Sequence[str]) -> int:
    """Delete the points of ``uids`` on the primary, then on every mirror, per the policy.

    Returns:
        What the primary's ``delete_points`` returned.

    Raises:
        QueryError: The collection name or a uid is malformed.
        MirrorError: Under the strict policy, a mirror missed the deletion.
    """
    todo = check_strings(uids, "uid")
    primary = mirroring.primary
    if not mirroring.mirrors or not todo:
        return primary.delete_points(collection, todo)

    def delete(store: Store) -> None:
        store.delete_points(collection, todo)

    def record(m: Mirror, reason: str) -> None:
        mirroring.record(m, collection, todo, reason, kind="points")

    def error(m: Mirror, reason: str) -> MirrorError:
        return mirroring.missed(m, collection, todo, reason, _POINTS)

    errors: list[MirrorError] = []
    with ExitStack() as stack:
        busy = _hold(mirroring, stack)
        n = primary.delete_points(collection, todo)
        if busy is not None:
            errors = _record_all(mirroring, collection, todo, busy, False, locked=False)
        else:
            what = f"deleting the points of {len(todo)} document(s) of {collection!r}"
            for m in mirroring.mirrors:
                if mirroring.attempt(m, delete, what=what, record=record, error=error, errors=errors):
                    mirroring.succeeded(m)
                    mirroring.catch_up(m, limit=DRAIN_PER_WRITE)
    mirroring.raise_first(errors)
    return n


__all__ = ["append_points", "delete_points"]
