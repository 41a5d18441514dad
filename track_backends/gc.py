"""Garbage collection of blobs: delete the blobs that no document references.

Artifacts, cached values and recorded calls reference blobs by their sha256 (the collections in
:data:`~track_backends.blobs.REFERENCES`). Deleting an artifact removes its reference only, since
another artifact may share the same content; :func:`collect_garbage` then deletes what is left
unreferenced. Blobs younger than the grace period are kept, because an upload commits its blob
before it writes the reference (and storing existing content makes its blob young again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .blobs import REFERENCES
from .errors import QueryError
from .store import Store

DEFAULT_GRACE = 3600.0
"""Seconds an unreferenced blob (or a dead upload's leftover) is kept, by default."""


@dataclass
class GcReport:
    """What :func:`collect_garbage` found and did.

    Attributes:
        blobs: Blobs stored before the run.
        referenced: Blobs that a document references (kept).
        young: Unreferenced blobs kept because they are younger than the grace period.
        deleted: Unreferenced blobs deleted (or that would be, in a dry run).
        freed: Bytes of the deleted blobs.
        uploads: Leftovers of dead uploads removed.
        dry_run: Whether nothing was deleted.
    """

    blobs: int = 0
    referenced: int = 0
    young: int = 0
    deleted: int = 0
    freed: int = 0
    uploads: int = 0
    dry_run: bool = False


def referenced_blobs(store: Store) -> set[str]:
    """The sha256 of every blob that a document of :data:`REFERENCES` points at."""
    shas: set[str] = set()
    for coll in REFERENCES:
        for doc in store.find(coll, {"sha256": {"$exists": True}}, projection=["sha256"]):
            if isinstance(doc.get("sha256"), str):
                shas.add(doc["sha256"])
    return shas


def _touched(store: Store, sha256: str, cutoff: float) -> bool:
    """Whether the blob was stored again since it was listed (an upload is about to reference it)."""
    now = store.stat_blob(sha256)
    return now is None or now.created > cutoff


def collect_garbage(
    store: Store,
    *,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> GcReport:
    """Delete blobs that nothing references and that are older than ``grace`` seconds.

    Args:
        store: The store to clean.
        grace: Keep unreferenced blobs (and upload leftovers) younger than this, in seconds.
        dry_run: Count what would be deleted, delete nothing.
        progress: Called as ``progress(label, done, total)`` as blobs are examined (see
            :func:`track_backends.migrate.progress.make_progress`).

    Returns:
        A :class:`GcReport`.

    Raises:
        QueryError: ``grace`` is negative or not a number.
    """
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
        raise QueryError(f"the grace period is a number of seconds >= 0, got {grace!r}")
    report = GcReport(dry_run=dry_run)
    cutoff = store.now() - grace
    keep = referenced_blobs(store)
    blobs = list(store.list_blobs())
    for stat in blobs:
        report.blobs += 1
        if stat.sha256 in keep:
            report.referenced += 1
        elif stat.created > cutoff or _touched(store, stat.sha256, cutoff):
            report.young += 1
        elif dry_run or store.delete_blob(stat.sha256):
            report.deleted += 1
            report.freed += stat.size
        if progress is not None:
            progress("blobs", report.blobs, len(blobs))
    if not dry_run:
        report.uploads = store.clean_uploads(cutoff)
    return report
