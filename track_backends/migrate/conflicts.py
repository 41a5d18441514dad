"""What a migration does with a conflict: a destination document with the same uid, other content.

The policies (``on_conflict``):

* ``skip`` (default): keep the destination's document and count it as *skipped*; verification
  counts it as *kept*, not as a mismatch. (A document that this run inserted and that reads
  back different is a mismatch; on a rerun it is a conflict like any other.)
* ``overwrite``: turn the destination's document into the source's with one atomic
  ``update(..., upsert=True)`` (:func:`overwrite_update`): ``$set`` of the fields that differ,
  ``$unset`` of those the source lacks, and ``$setOnInsert`` of the others, so a document deleted
  meanwhile is stored whole. The destination's top-level field order is kept for fields both have.
* ``bump`` (trials only, like Orion's ``bump``): store the source trial as the next free revision
  of its ``hash`` in the destination: ``revision`` becomes one more than the highest revision of
  that hash in either store, ``uid`` becomes :func:`~track_backends.model.trial_uid` of the hash
  and that revision, and ``metadata.migrated_from`` records the source uid. A rerun recognises
  the bumped copy (same hash, ``metadata.migrated_from`` equal to the source uid, and equal
  content apart from ``uid``, ``revision`` and ``metadata.migrated_from``) and does not bump
  again. Projects and groups cannot be bumped: their conflicts are treated as ``skip``.
* ``fail``: raise :class:`MigrationConflictError` naming the uid. Nothing from that page on is
  written; earlier pages stay, and a rerun resumes.
"""

from __future__ import annotations

from typing import Any

from ..errors import DuplicateKeyError, EncodingError, QueryError, TrackBackendsError
from ..model import trial_uid
from ..query.equality import STORE_FIELDS, diff_update
from ..store import TRIALS, Document, Store
from .checksums import MIGRATED_FROM, bump_checksum
from .paging import ALL_COLLECTIONS
from .report import CollectionReport

ON_CONFLICT: tuple[str, ...] = ("skip", "overwrite", "bump", "fail")
"""The conflict policies."""

_BUMP_ATTEMPTS = 8
_REFUSED = (EncodingError, QueryError, DuplicateKeyError)


class MigrationConflictError(TrackBackendsError):
    """With ``on_conflict="fail"``: a destination document has the same uid and other content.

    Attributes:
        collection: The collection.
        uid: The uid of the conflicting document.
    """

    def __init__(self, collection: str, uid: str) -> None:
        super().__init__(
            f"conflict in {collection}: uid {uid!r} exists in the destination with different content "
            "(--on-conflict fail); documents before it were copied, nothing from its batch on was written"
        )
        self.collection = collection
        self.uid = uid


def overwrite_update(old: Document, new: Document) -> dict[str, Any]:
    """The upsert that turns the destination's ``old`` into the source's ``new``.

    :func:`~track_backends.query.equality.diff_update` writes only the fields that differ; the
    fields both already share go in ``$setOnInsert``, so that if ``old`` is deleted meanwhile the
    upsert still stores the whole of ``new``.

    Args:
        old: The destination's document.
        new: The source's document, with the same uid.

    Returns:
        An update document for ``update(..., {"uid": uid}, update, upsert=True)``.
    """
    update = diff_update(old, new)
    sets = update.get("$set", {})
    shared = {k: v for k, v in new.items() if k != "uid" and k not in STORE_FIELDS and k not in sets}
    if shared:
        update["$setOnInsert"] = shared
    return update


class ConflictResolver:
    """Applies one ``on_conflict`` policy to the conflicts of a migration.

    Args:
        src: The source store (read to find the free revisions of a bumped trial).
        dst: The destination store.
        policy: One of :data:`ON_CONFLICT`.
        dry_run: Count what would happen without writing.

    Attributes:
        kept: Per collection, the uids of the conflicts this run kept on purpose (verification
            counts them as kept, not as mismatches).
        bumped: Source uid -> uid of its bumped copy in the destination, for the trials this run
            bumped or found bumped (``None`` for a copy a dry run would have made).
    """

    def __init__(self, src: Store, dst: Store, policy: str, dry_run: bool) -> None:
        self.src = src
        self.dst = dst
        self.policy = policy
        self.dry_run = dry_run
        self.kept: dict[str, set[str]] = {c: set() for c in ALL_COLLECTIONS}
        self.bumped: dict[str, str | None] = {}

    def check(self, collection: str, uid: str) -> None:
        """Raise :class:`MigrationConflictError` for a conflict if the policy is ``fail``."""
        if self.policy == "fail":
            raise MigrationConflictError(collection, uid)

    def resolve(self, collection: str, doc: Document, old: Document, rep: CollectionReport) -> None:
        """Resolve one conflict between the source's ``doc`` and the destination's ``old``."""
        if self.policy == "overwrite":
            self._overwrite(collection, doc, old, rep)
        elif self.policy == "bump" and collection == TRIALS:
            if not self._found_bumped(doc):
                self._bump(doc, rep)
            else:
                rep.unchanged += 1
        else:
            rep.skip(doc["uid"])
            self.kept[collection].add(doc["uid"])

    def bump_target(self, doc: Document, rep: CollectionReport) -> bool:
        """Bump a trial whose points conflict (its document is the same), unless a bumped copy exists.

        Returns:
            Whether :attr:`bumped` now names the copy the source's points go to.
        """
        if not self._found_bumped(doc):
            self._bump(doc, rep)
        return doc["uid"] in self.bumped

    def _found_bumped(self, doc: Document) -> bool:
        copy = self.bumped_copy(doc)
        if copy is not None:
            self.bumped[doc["uid"]] = copy["uid"]
        return copy is not None

    def has_bumped_copy(self, collection: str, doc: Document) -> bool:
        """Whether the policy is ``bump`` and the destination holds a bumped copy of ``doc``."""
        return self.policy == "bump" and collection == TRIALS and self.bumped_copy(doc) is not None

    def bumped_copy(self, doc: Document) -> Document | None:
        """The destination's bumped copy of a source trial, if a previous run stored one."""
        h = doc.get("hash")
        if type(h) is not str:
            return None
        want = bump_checksum(doc)
        for other in self.dst.find(TRIALS, {"hash": h, f"metadata.{MIGRATED_FROM}": doc["uid"]}):
            if bump_checksum(other) == want:
                return other
        return None

    def _bump(self, doc: Document, rep: CollectionReport) -> None:
        h, rev, meta = doc.get("hash"), doc.get("revision"), doc.get("metadata", {})
        if type(h) is not str or type(rev) is not int or not isinstance(meta, dict):
            rep.fail(
                f"{doc['uid']}: cannot bump a trial without a string 'hash', an int 'revision' and a dict 'metadata'"
            )
            return
        if self.dry_run:
            rep.bumped += 1
            self.bumped[doc["uid"]] = None
            return
        for _ in range(_BUMP_ATTEMPTS):
            nxt = self._next_revision(h, rev)
            copy = {**doc, "uid": trial_uid(h, nxt), "revision": nxt, "metadata": {**meta, MIGRATED_FROM: doc["uid"]}}
            try:
                self.dst.insert(TRIALS, copy)
            except DuplicateKeyError:
                continue  # another writer took that revision: look again
            except (EncodingError, QueryError) as e:
                rep.fail(f"{doc['uid']}: the destination refused the bumped copy: {e}")
                return
            rep.bumped += 1
            self.bumped[doc["uid"]] = copy["uid"]
            return
        rep.fail(f"{doc['uid']}: no free revision found after {_BUMP_ATTEMPTS} attempts")

    def _next_revision(self, h: str, rev: int) -> int:
        """One more than the highest revision of hash ``h`` in either store (at least ``rev + 1``)."""
        revs = [
            d.get("revision")
            for s in (self.dst, self.src)
            for d in s.find(TRIALS, {"hash": h}, projection=["revision"])
        ]
        return max([r for r in revs if type(r) is int] + [rev]) + 1

    def _overwrite(self, collection: str, doc: Document, old: Document, rep: CollectionReport) -> None:
        if not self.dry_run:
            try:
                self.dst.update(collection, {"uid": doc["uid"]}, overwrite_update(old, doc), upsert=True)
            except _REFUSED as e:
                rep.fail(f"{doc['uid']}: the destination refused the overwrite: {e}")
                return
        rep.overwritten += 1
