"""``migrate(src, dst)``: the copy, its verification, and opening the two stores."""

from __future__ import annotations

import os
import time
from typing import Any

from ..errors import DuplicateKeyError, EncodingError, NotFoundError, QueryError, TrackBackendsError
from ..registry import open_store
from ..store import TRIALS, Document, Store
from ..uri import StoreURI, parse_uri
from .blobs import BlobCopier, retarget
from .checksums import document_checksum, strip_store_fields
from .conflicts import ON_CONFLICT, ConflictResolver
from .paging import ALL_COLLECTIONS, COLLECTIONS, DEFAULT_BATCH, REFERENCE_COLLECTIONS, Filters, iter_pages, selection
from .points import SeriesCopier
from .progress import Progress
from .report import CollectionReport, MigrationReport

JOURNAL_SCHEMES: tuple[str, ...] = ("pickled", "file")
"""Schemes whose URI names a journal file on this machine."""


class MigrationError(TrackBackendsError, ValueError):
    """A migration cannot run as asked (bad ``batch`` or ``on_conflict``, same store twice)."""


class _Migration:
    """One run: copies pages into the destination, then verifies them."""

    def __init__(self, src: Store, dst: Store, conflicts: ConflictResolver, batch: int, progress: Progress | None):
        self.src = src
        self.dst = dst
        self.conflicts = conflicts
        self.dry_run = conflicts.dry_run
        self.batch = batch
        self.progress = progress
        self.series = SeriesCopier(src, dst, conflicts, self.dry_run)
        self.blobs = BlobCopier(src, dst, self.dry_run, batch, progress)

    def _existing(self, coll: str, docs: list[Document]) -> dict[str, Document]:
        return {d["uid"]: d for d in self.dst.find(coll, {"uid": {"$in": [d["uid"] for d in docs]}})}

    def _insert(self, coll: str, docs: list[Document], rep: CollectionReport, retry: bool) -> None:
        if self.dry_run:
            rep.copied += len(docs)
            return
        try:
            self.dst.insert_many(coll, docs)
            rep.copied += len(docs)
            return
        except (DuplicateKeyError, EncodingError, QueryError):
            pass  # all or none: find the refused documents one at a time
        for d in docs:
            try:
                self.dst.insert(coll, d)
                rep.copied += 1
            except DuplicateKeyError as e:
                if retry:  # someone stored this uid meanwhile: classify it again, once
                    self._page(coll, [d], rep, retry=False)
                else:
                    rep.fail(f"{d['uid']}: {e}")
            except (EncodingError, QueryError) as e:
                rep.fail(f"{d['uid']}: the destination refused it: {e}")

    def _page(self, coll: str, page: list[Document], rep: CollectionReport, retry: bool = True) -> None:
        docs = [strip_store_fields(d) for d in page]
        if coll in REFERENCE_COLLECTIONS and retry:  # (a retried document is retargeted already)
            docs = retarget(self.conflicts, coll, docs, rep)
        existing = self._existing(coll, docs)
        new: list[Document] = []
        conflicts: list[tuple[Document, Document]] = []
        for d in docs:
            old = existing.get(d["uid"])
            if old is None:
                new.append(d)
            elif document_checksum(old) == document_checksum(d):
                rep.unchanged += 1
            else:
                self.conflicts.check(coll, d["uid"])
                conflicts.append((d, old))
        if new:
            self._insert(coll, new, rep, retry)
        for d, old in conflicts:
            self.conflicts.resolve(coll, d, old, rep)

    def copy(self, coll: str, filters: list[dict[str, Any] | None], rep: CollectionReport) -> None:
        done = 0
        if self.progress:
            self.progress(coll, 0, rep.source)
        for f in filters:
            for page in iter_pages(self.src, coll, f, self.batch):
                self._page(coll, page, rep)
                if coll == TRIALS:
                    self.series.copy([strip_store_fields(d) for d in page], rep)
                done += len(page)
                if self.progress:
                    self.progress(coll, done, max(done, rep.source))

    def _check(self, coll: str, doc: Document, other: Document | None, rep: CollectionReport) -> None:
        rep.scanned += 1
        if other is None:
            rep.missing += 1
            rep.problem(f"{doc['uid']}: missing from the destination")
        elif document_checksum(other) == document_checksum(doc):
            rep.verified += 1
        elif doc["uid"] in self.conflicts.kept[coll]:
            rep.kept += 1
        elif self.conflicts.has_bumped_copy(coll, doc):
            rep.verified += 1
        else:
            rep.differing += 1
            rep.problem(f"{doc['uid']}: the destination's copy differs (checksum mismatch)")

    def verify(self, coll: str, filters: list[dict[str, Any] | None], rep: CollectionReport) -> None:
        label = f"verify {coll}"
        if self.progress:
            self.progress(label, 0, rep.source)
        for f in filters:
            for page in iter_pages(self.src, coll, f, self.batch):
                docs = [strip_store_fields(d) for d in page]
                if coll in REFERENCE_COLLECTIONS:
                    n = len(docs)
                    docs = retarget(self.conflicts, coll, docs, None)
                    rep.scanned += n - len(docs)  # kept with their trial
                    rep.kept += n - len(docs)
                found = self._existing(coll, docs)
                for d in docs:
                    self._check(coll, d, found.get(d["uid"]), rep)
                if coll == TRIALS:
                    self.series.verify(docs, found, rep)
                if self.progress:
                    self.progress(label, rep.scanned, max(rep.scanned, rep.source))


def _describe(store: str | Store) -> str:
    return parse_uri(store).redacted if isinstance(store, str) else repr(store)


def _missing_journal(parsed: StoreURI) -> bool:
    return parsed.scheme in JOURNAL_SCHEMES and bool(parsed.path) and not os.path.exists(parsed.path)


def require_existing(uri: StoreURI) -> None:
    """Refuse a URI that names a ``pickled:`` or ``file:`` journal that does not exist.

    Args:
        uri: A parsed store URI.

    Raises:
        NotFoundError: The journal file does not exist.
    """
    if _missing_journal(uri):
        raise NotFoundError(f"no store at {uri.path!r} (from {uri.redacted})")


def open_source(uri: str) -> Store:
    """Open a store to read from; a journal file that does not exist is an error, not created.

    Args:
        uri: The store's URI.

    Returns:
        The open store (the caller closes it).

    Raises:
        NotFoundError: The URI names a ``pickled:`` or ``file:`` journal that does not exist.
    """
    parsed = parse_uri(uri)
    require_existing(parsed)
    return open_store(parsed)


def _open_destination(uri: str, dry_run: bool) -> Store:
    """Open the destination; in a dry run a journal that does not exist yet is an empty memory store."""
    parsed = parse_uri(uri)
    if dry_run and _missing_journal(parsed):
        from ..stores.memory import MemoryStore

        return MemoryStore()
    return open_store(parsed)


def same_store(src: str | Store, dst: str | Store) -> bool:
    """Whether ``src`` and ``dst`` name the same store.

    Two journal URIs name the same store when their files resolve to the same path (symlinks
    and relative paths resolved, whatever the codec); other URIs when their text is equal.

    Args:
        src: A store or its URI.
        dst: A store or its URI.

    Returns:
        ``True`` when a migration from one to the other would copy a store onto itself.
    """
    if src is dst:
        return True
    if not (isinstance(src, str) and isinstance(dst, str)):
        return False
    a, b = parse_uri(src), parse_uri(dst)
    if a.scheme in JOURNAL_SCHEMES and b.scheme in JOURNAL_SCHEMES and a.path and b.path:
        return os.path.realpath(a.path) == os.path.realpath(b.path)
    return src == dst


def _validate(src: str | Store, dst: str | Store, query: Any, batch: Any, on_conflict: str) -> None:
    if type(batch) is not int or batch < 1:
        raise MigrationError(f"batch must be a positive int, got {batch!r}")
    if on_conflict not in ON_CONFLICT:
        raise MigrationError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}; got {on_conflict!r}")
    if query is not None and not isinstance(query, dict):
        raise QueryError(f"query must be a dict (a MongoDB-style filter), got {type(query).__name__}")
    if same_store(src, dst):
        raise MigrationError("the source and the destination are the same store")


def _run(job: _Migration, report: MigrationReport, filters: Filters, verify: bool, all_blobs: bool) -> None:
    for coll in ALL_COLLECTIONS:
        rep = report.collections[coll] = CollectionReport(coll)
        rep.source = sum(job.src.count(coll, f) for f in filters[coll])
    for coll in COLLECTIONS:
        job.copy(coll, filters[coll], report.collections[coll])
    job.blobs.collect(filters)
    job.blobs.copy(report.blobs, all_blobs)  # before the references, which must find them
    for coll in REFERENCE_COLLECTIONS:
        job.copy(coll, filters[coll], report.collections[coll])
    if job.dry_run:
        return
    job.dst.commit()
    if verify:
        for coll in ALL_COLLECTIONS:
            job.verify(coll, filters[coll], report.collections[coll])
        job.blobs.verify(report.blobs)
        reps = report.collections.values()
        bad_blobs = report.blobs.missing or report.blobs.differing
        report.verification = not bad_blobs and not any(c.missing or c.differing or c.series_differing for c in reps)


def migrate(
    src: str | Store,
    dst: str | Store,
    *,
    query: dict[str, Any] | None = None,
    batch: int = DEFAULT_BATCH,
    on_conflict: str = "skip",
    dry_run: bool = False,
    verify: bool = True,
    progress: Progress | None = None,
    all_blobs: bool = False,
) -> MigrationReport:
    """Copy projects, groups, trials and their artifacts from ``src`` to ``dst``, then verify the copy.

    See :mod:`track_backends.migrate` for what is selected, how conflicts are resolved and how
    the copy is verified. Running it again is a no-op; after an interruption it resumes.

    Args:
        src: The source store, or its URI (opened and closed here; a missing ``pickled:`` or
            ``file:`` journal is an error).
        dst: The destination store, or its URI (opened, created if needed, and closed here).
        query: A MongoDB-style filter on trials; ``None`` copies everything.
        batch: Documents per page read and per ``insert_many`` written.
        on_conflict: ``"skip"``, ``"overwrite"``, ``"bump"`` or ``"fail"``.
        dry_run: Count what would happen without writing anything (no verification).
        verify: Verify counts and checksums at the end.
        progress: Called as ``progress(label, done, total)`` after each page (and each blob).
        all_blobs: Also copy the source's blobs that no selected document references.

    Returns:
        The report; ``report.ok`` is false when a document was refused or verification failed.

    Raises:
        MigrationError: ``batch`` or ``on_conflict`` is invalid, or ``src`` and ``dst`` are the same.
        MigrationConflictError: ``on_conflict="fail"`` and a conflict was found.
        QueryError: ``query`` is malformed.
        StoreError: A store failed (its subclasses for unavailable servers, lock timeouts...), or
            blobs are to be copied and one of the stores keeps none.
    """
    _validate(src, dst, query, batch, on_conflict)
    start = time.monotonic()
    report = MigrationReport(_describe(src), _describe(dst), on_conflict, dry_run)
    src_store = open_source(src) if isinstance(src, str) else src
    try:
        dst_store = _open_destination(dst, dry_run) if isinstance(dst, str) else dst
        try:
            filters = selection(src_store, query, batch)
            resolver = ConflictResolver(src_store, dst_store, on_conflict, dry_run)
            job = _Migration(src_store, dst_store, resolver, batch, progress)
            _run(job, report, filters, verify, all_blobs)
        finally:
            if isinstance(dst, str):
                dst_store.close()
    finally:
        if isinstance(src, str):
            src_store.close()
    report.seconds = time.monotonic() - start
    return report
