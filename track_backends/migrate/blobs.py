"""Copying the blobs that the copied documents reference, and pointing those documents at the right trial.

Artifacts and cache entries are documents of the reference collections
(:data:`~track_backends.migrate.paging.REFERENCE_COLLECTIONS`) that name a blob by its
``sha256``. A migration copies them in three steps:

1. **Blobs** (:meth:`BlobCopier.copy`), before the documents that reference them, so that the
   destination never holds a reference to a blob it lacks: the distinct ``sha256`` of the
   selected reference documents are collected (one pass that reads only ``sha256`` and ``size``;
   memory holds the distinct addresses), then each blob the destination lacks is streamed from
   the source with :func:`~track_backends.blobs.copy_blob` (verified against its sha256; the
   destination makes it visible only when whole). Content shared by many artifacts is copied
   once; a blob the destination holds already is skipped. With ``all_blobs``, every other blob
   of the source follows (from ``list_blobs``).
2. **Documents**, like any collection (by uid and checksum; conflicts as ``on_conflict`` says),
   after :func:`retarget`: a reference of a trial that this run bumped names the bumped copy,
   and a reference of a trial whose conflict was kept (``skip``) is kept as the destination has
   it, since it would attach the source's artifact to another trial.
3. **Verification** (:meth:`BlobCopier.verify`): each referenced blob must be in the destination
   with the size its reference document gives (else the source's); the documents themselves,
   which carry ``sha256`` and ``size``, are compared by checksum like the others.

Resuming: a blob is copied whole or not at all, and one the destination holds is skipped, so a
run that was killed resumes where it stopped; a second run copies nothing. A blob missing or
damaged in the source is counted as *failed* (the migration goes on).
"""

from __future__ import annotations

from typing import Any

from ..blobs import check_sha, copy_blob
from ..errors import CorruptStoreError, NotFoundError, QueryError
from ..store import TRIALS, Document, Store
from .conflicts import ConflictResolver
from .paging import REFERENCE_COLLECTIONS, Filters, iter_pages
from .progress import Progress
from .report import BlobReport, CollectionReport

BLOBS_LABEL = "blobs"
"""The progress label of the blob copy (``"verify blobs"`` during verification)."""


def _valid(sha: Any) -> bool:
    try:
        check_sha(sha)
    except QueryError:
        return False
    return True


class BlobCopier:
    """Copies and verifies the blobs of a migration (see the module docstring).

    Args:
        src: The source store.
        dst: The destination store.
        dry_run: Count without writing.
        batch: Page size when reading reference documents.
        progress: Called as ``progress(label, done, total)``.
    """

    def __init__(self, src: Store, dst: Store, dry_run: bool, batch: int, progress: Progress | None) -> None:
        self.src = src
        self.dst = dst
        self.dry_run = dry_run
        self.batch = batch
        self.progress = progress
        self.sizes: dict[str, int | None] = {}

    def collect(self, filters: Filters) -> None:
        """Find the distinct blobs the selected reference documents name (with the size they give)."""
        for coll in REFERENCE_COLLECTIONS:
            for f in filters[coll]:
                for page in iter_pages(self.src, coll, f, self.batch, ["sha256", "size"]):
                    for d in page:
                        sha, size = d.get("sha256"), d.get("size")
                        if isinstance(sha, str) and _valid(sha) and self.sizes.get(sha) is None:
                            self.sizes[sha] = size if type(size) is int and size >= 0 else None

    def copy(self, rep: BlobReport, all_blobs: bool = False) -> None:
        """Copy each referenced blob (then, with ``all_blobs``, every other one) the destination lacks.

        Raises:
            StoreError: A store failed (e.g. it keeps no blobs).
        """
        todo: list[tuple[str, int | None]] = sorted(self.sizes.items())
        if all_blobs:
            todo += sorted((b.sha256, b.size) for b in self.src.list_blobs() if b.sha256 not in self.sizes)
        rep.source = len(todo)
        if not todo:
            return
        self._tick(0, len(todo))
        for i, (sha, size) in enumerate(todo, 1):
            self._one(sha, size, rep)
            self._tick(i, len(todo))

    def _tick(self, done: int, total: int, label: str = BLOBS_LABEL) -> None:
        if self.progress:
            self.progress(label, done, total)

    def _one(self, sha: str, size: int | None, rep: BlobReport) -> None:
        """Copy one blob unless the destination has it; count what happened."""
        try:
            there = self.dst.stat_blob(sha)
            if there is not None:
                rep.skipped += 1
                rep.bytes_skipped += there.size
                return
            stat = self.src.stat_blob(sha)
            if stat is None:
                rep.fail(f"{sha}: missing from the source (an artifact or cache entry refers to it)")
                return
            if not self.dry_run:
                copy_blob(self.src, self.dst, sha)
        except (NotFoundError, CorruptStoreError) as e:
            rep.fail(f"{sha}: cannot be copied: {e}")
            return
        rep.copied += 1
        rep.bytes_copied += stat.size

    def verify(self, rep: BlobReport) -> None:
        """Check that each referenced blob is in the destination with the right size."""
        total = len(self.sizes)
        if not total:
            return
        self._tick(0, total, f"verify {BLOBS_LABEL}")
        for i, (sha, size) in enumerate(sorted(self.sizes.items()), 1):
            there = self.dst.stat_blob(sha)
            if size is None:
                mine = self.src.stat_blob(sha)
                size = None if mine is None else mine.size
            if there is None:
                rep.missing += 1
                rep.problem(f"{sha}: missing from the destination")
            elif size is not None and there.size != size:
                rep.differing += 1
                rep.problem(f"{sha}: {there.size} bytes in the destination, {size} expected")
            else:
                rep.verified += 1
            self._tick(i, total, f"verify {BLOBS_LABEL}")


def retarget(
    conflicts: ConflictResolver, coll: str, docs: list[Document], rep: CollectionReport | None
) -> list[Document]:
    """The reference documents to copy, pointed at the trial they belong to in the destination.

    A document whose ``trial`` this run bumped names the bumped copy instead (its uid
    ``<trial>/<name>`` too); one whose trial's conflict was kept is left out, counted as
    *skipped* (in ``rep``, when given) and as kept for verification. Other documents are
    returned as they are.

    Args:
        conflicts: The migration's conflict resolver (what it bumped and kept).
        coll: The reference collection.
        docs: A page of its source documents (store fields stripped).
        rep: Where skips are counted (``None`` during verification).
    """
    bumped, kept = conflicts.bumped, conflicts.kept[TRIALS]
    if not bumped and not kept:
        return docs
    out = []
    for d in docs:
        trial = d.get("trial")
        if type(trial) is not str or (trial not in bumped and trial not in kept):
            out.append(d)
        elif trial in kept:
            conflicts.kept[coll].add(d["uid"])
            if rep is not None:
                rep.skip(d["uid"])
        elif (copy := bumped[trial]) is None:  # a dry run's bump: counted as copied
            out.append(d)
        else:
            uid = d["uid"]
            if uid.startswith(trial + "/"):
                uid = copy + uid[len(trial) :]
            out.append({**d, "uid": uid, "trial": copy})
    return out


__all__ = ["BLOBS_LABEL", "BlobCopier", "retarget"]
