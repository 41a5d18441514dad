"""Copy projects, groups and trials from one store to another: ``migrate(src, dst)``.

The copy streams: each collection is read in pages of ``batch`` documents by keyset pagination
on ``uid`` (``{"uid": {"$gt": last}}``, sorted by ``uid``), so memory holds one page at a time
on every backend. It is idempotent: documents are matched by ``uid``, and a destination document
whose content checksum equals the source's is left alone, so a second run writes nothing and an
interrupted run resumes without duplicates. At the end every selected source document is looked
up again in the destination and compared by checksum, and the counts are compared.

Selection:

* without ``query``, every project, group and trial is copied;
* with ``query`` (a MongoDB-style filter), the trials matching it are copied, together with the
  groups they reference (``group_id``) and the projects that those trials and groups reference
  (``project_id``). Finding the references takes one extra pass over the matching trials that
  reads only ``uid``, ``group_id`` and ``project_id``; it holds the *distinct* referenced ids in
  memory, not the trials.

Only the three collections ``projects``, ``groups`` and ``trials`` are copied; indexes beyond
the defaults every store creates (``uid``, and ``(group_id, status.name)`` and ``hash`` on
trials) are not.

Checksums: :func:`document_checksum` is :func:`track_backends.model.canonical_hash` of the whole
document without store-specific fields (``_id``). It is type-aware (``1``, ``1.0`` and ``True``
differ, and so do ``0.0`` and ``-0.0``) and ignores the order of keys in a mapping.

Conflicts (a destination document with the same ``uid`` and different content), by
``on_conflict``:

* ``skip`` (default): keep the destination's document and count it as *skipped*; verification
  counts it as *kept*, not as a mismatch. (A document that this run inserted and that reads
  back different is a mismatch; on a rerun it is a conflict like any other.)
* ``overwrite``: replace the destination's document by the source's, in one atomic
  ``update(..., upsert=True)`` (``$set`` of the source's fields, ``$unset`` of the others). The
  destination's top-level field order is kept for fields both have.
* ``bump`` (trials only, like Orion's ``bump``): store the source trial as the next free revision
  of its ``hash`` in the destination: ``revision`` becomes one more than the highest revision of
  that hash in either store, ``uid`` becomes ``f"{hash}_{revision}"``, and
  ``metadata.migrated_from`` records the source uid. A rerun recognises the bumped copy (same
  hash, ``metadata.migrated_from`` equal to the source uid, and equal content apart from
  ``uid``, ``revision`` and ``metadata.migrated_from``) and does not bump again. Projects and
  groups cannot be bumped: their conflicts are treated as ``skip``.
* ``fail``: raise :class:`MigrationConflictError` naming the uid. Nothing from that page on is
  written; earlier pages stay, and a rerun resumes.

A document that the destination refuses (e.g. a value that it cannot encode) is counted as
*failed* with its message, the migration goes on, and verification reports it missing.

Verification: after the copy, the selection is read again page by page; each source document is
looked up in the destination by uid (a bumped trial by its ``metadata.migrated_from``) and
compared by checksum. It fails when a document is missing, or differs without this run having
kept it on purpose. It also catches a destination that does not store a value faithfully:
PostgreSQL's JSONB, for example, turns ``-0.0`` into ``0.0``.

Memory: one page of documents, plus the uids of the conflicts this run skipped, plus (with
``query``) the distinct referenced group and project ids, plus, when the source is an in-process
engine, a sorted list of its uids (see :func:`iter_pages`).

Dry run: nothing is written and a ``pickled:`` or ``file:`` destination that does not exist is not
created (opening a server store may still create its empty bookkeeping tables).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from .errors import DuplicateKeyError, EncodingError, NotFoundError, QueryError, StoreError, TrackBackendsError
from .model import _canonical
from .registry import open_store
from .store import GROUPS, PROJECTS, TRIALS, Document, Store
from .uri import parse_uri

COLLECTIONS: tuple[str, ...] = (PROJECTS, GROUPS, TRIALS)
"""The collections a migration copies, in the order it copies them (parents first)."""

ON_CONFLICT: tuple[str, ...] = ("skip", "overwrite", "bump", "fail")
"""The conflict policies."""

DEFAULT_BATCH = 500
STORE_FIELDS: frozenset[str] = frozenset({"_id"})
"""Store-specific top-level fields that are neither copied nor checksummed."""

MIGRATED_FROM = "migrated_from"
"""Key under ``metadata`` that records the source uid of a bumped trial."""

MAX_PROBLEMS = 20
"""How many problem messages a collection report keeps (the counts are always complete)."""

_JOURNAL_SCHEMES = ("pickled", "file")
PROG = "track-backends"
_BUMP_ATTEMPTS = 8

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called after each page; labels are a collection name, or
``"verify <collection>"`` during verification."""


class MigrationError(TrackBackendsError, ValueError):
    """A migration cannot run as asked (bad ``batch`` or ``on_conflict``, same store twice)."""


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


# -- checksums ------------------------------------------------------------------------------------
def strip_store_fields(doc: Document) -> Document:
    """Return ``doc`` without store-specific top-level fields (``_id``); a shallow copy if needed."""
    if STORE_FIELDS.isdisjoint(doc):
        return doc
    return {k: v for k, v in doc.items() if k not in STORE_FIELDS}


def document_checksum(doc: Document) -> str:
    """Type-aware checksum of a document's content (store-specific fields left out).

    Args:
        doc: A document as a store returns it.

    Returns:
        :func:`~track_backends.model.canonical_hash` of the document: ``1``, ``1.0``, ``True``
        and ``"1"`` differ, so do ``0.0`` and ``-0.0``; the order of keys in a mapping does not
        count, the order of lists does.
    """
    return _hash(strip_store_fields(doc))


def _hash(doc: Document) -> str:
    """``canonical_hash(doc)`` without its validating copy (documents from a store are valid)."""
    out: list[bytes] = []
    _canonical([doc], out)
    return hashlib.sha256(b"".join(out)).hexdigest()[:32]


def _bump_checksum(doc: Document) -> str:
    """Checksum of a trial ignoring ``uid``, ``revision`` and ``metadata.migrated_from``."""
    rest = {k: v for k, v in doc.items() if k not in STORE_FIELDS and k not in ("uid", "revision")}
    meta = rest.get("metadata")
    if isinstance(meta, dict) and MIGRATED_FROM in meta:
        rest["metadata"] = {k: v for k, v in meta.items() if k != MIGRATED_FROM}
    return _hash(rest)


# -- reports --------------------------------------------------------------------------------------
@dataclass
class CollectionReport:
    """What a migration did to one collection.

    Attributes:
        name: The collection.
        source: Matching source documents when the migration started.
        copied: Inserted into the destination (new uid there).
        unchanged: Already in the destination with the same content (or, with ``bump``, a bumped
            copy of it already there); nothing written.
        skipped: Conflicts left as the destination has them (``skip``, or ``bump`` on projects
            and groups).
        overwritten: Conflicts replaced by the source's document (``overwrite``).
        bumped: Conflicting trials stored as a new revision (``bump``).
        failed: Documents the destination refused; see ``problems``.
        scanned: Source documents looked at by verification.
        verified: Found in the destination with the source's checksum (or as a bumped copy).
        kept: Found with other content, kept on purpose (``skip``).
        missing: Not found in the destination.
        differing: Found with other content although the policy should have copied it.
        problems: The first :data:`MAX_PROBLEMS` messages about failed or mismatched documents.
        conflicts: The uids of the first :data:`MAX_PROBLEMS` conflicts that were skipped.
    """

    name: str
    source: int = 0
    copied: int = 0
    unchanged: int = 0
    skipped: int = 0
    overwritten: int = 0
    bumped: int = 0
    failed: int = 0
    scanned: int = 0
    verified: int = 0
    kept: int = 0
    missing: int = 0
    differing: int = 0
    problems: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        """Record a problem message (only the first :data:`MAX_PROBLEMS` are kept)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)

    @property
    def mismatched(self) -> bool:
        """Whether verification found a document missing or different, or a write failed."""
        return bool(self.missing or self.differing or self.failed)


@dataclass
class MigrationReport:
    """The outcome of :func:`migrate`.

    Attributes:
        source: The source, as a URI with its password masked (or the store's ``repr``).
        destination: The destination, likewise.
        on_conflict: The conflict policy.
        dry_run: Nothing was written; the counts say what would have happened.
        verification: ``True`` when every check passed, ``False`` on a mismatch, ``None`` when
            verification did not run (dry run, or ``verify=False``).
        collections: Per collection (:data:`COLLECTIONS`), what happened.
        seconds: Wall time of the migration.
    """

    source: str
    destination: str
    on_conflict: str
    dry_run: bool
    verification: bool | None = None
    collections: dict[str, CollectionReport] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No write failed and verification (when it ran) passed."""
        return self.verification is not False and not any(c.failed for c in self.collections.values())

    def total(self, attr: str) -> int:
        """Sum of one counter over the collections, e.g. ``report.total("copied")``."""
        return sum(getattr(c, attr) for c in self.collections.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "source": self.source,
            "destination": self.destination,
            "on_conflict": self.on_conflict,
            "dry_run": self.dry_run,
            "verification": self.verification,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "collections": {
                name: {k: v for k, v in vars(c).items() if k != "name"} for name, c in self.collections.items()
            },
        }

    def summary(self) -> str:
        """A human-readable table of the counts and the verification verdict."""
        what = "dry run: nothing was written; counts say what would happen" if self.dry_run else "migrated"
        lines = [f"{what}: {self.source} -> {self.destination} (on conflict: {self.on_conflict})"]
        cols = ["source", "copied", "unchanged", "skipped", "overwritten", "bumped", "failed"]
        if self.verification is not None:
            cols += ["verified", "kept", "missing", "differing"]
        header = ["collection", *cols]
        rows = [[c.name, *(str(getattr(c, k)) for k in cols)] for c in self.collections.values()]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            lines.append("  ".join(r[0].ljust(widths[0]) if i == 0 else r[i].rjust(widths[i]) for i in range(len(r))))
        if self.verification is None:
            lines.append("verification: not run" + (" (dry run)" if self.dry_run else ""))
        elif self.verification:
            n = self.total("scanned")
            lines.append(f"verification: OK ({n} source documents: counts and checksums match)")
        else:
            bad = [
                f"{c.name}: {c.missing} missing, {c.differing} differing"
                for c in self.collections.values()
                if c.missing or c.differing
            ]
            lines.append("verification: MISMATCH (" + ("; ".join(bad) or "counts differ") + ")")
        for c in self.collections.values():
            if c.scanned != c.source and self.verification is not None:
                lines.append(
                    f"note: {c.name}: the source had {c.source} documents at the start, {c.scanned} at the end"
                )
            for p in c.problems:
                lines.append(f"{c.name}: {p}")
            if c.skipped:
                more = f" and {c.skipped - len(c.conflicts)} more" if c.skipped > len(c.conflicts) else ""
                lines.append(
                    f"{c.name}: {c.skipped} conflicts kept as the destination has them: {', '.join(c.conflicts)}{more}"
                )
        if any(c.failed for c in self.collections.values()):
            lines.append(f"failed: {self.total('failed')} documents were refused by the destination")
        lines.append(f"time: {self.seconds:.2f} s")
        return "\n".join(lines)


# -- reading --------------------------------------------------------------------------------------
def _and(base: dict[str, Any] | None, extra: dict[str, Any]) -> dict[str, Any]:
    return {"$and": [base, extra]} if base else extra


def _snapshot_uids(store: Store, collection: str) -> list[str] | None:
    """The sorted uids of an in-process engine's collection, or ``None`` for other stores.

    The ``ephemeral:``, ``pickled:`` and ``file:`` engines hold their documents in this process
    and index them by hash only, so a ``{"uid": {"$gt": last}}`` page scans and sorts the whole
    collection. For them a sorted list of the uids (one reference per document, no copies) is
    taken once, and pages are read by ``uid $in``, which their uid index answers directly.
    """
    from .stores.memory import MemoryStore

    return store.uids(collection) if isinstance(store, MemoryStore) else None


def iter_pages(
    store: Store,
    collection: str,
    query: dict[str, Any] | None = None,
    batch: int = DEFAULT_BATCH,
    projection: list[str] | None = None,
) -> Iterator[list[Document]]:
    """Yield the documents matching ``query`` in pages of at most ``batch``, in ``uid`` order.

    Keyset pagination: each page is ``find({"$and": [query, {"uid": {"$gt": last}}]},
    sort=[("uid", 1)], limit=batch)``, one indexed query on server stores, and memory holds one
    page. In-process engines are paged over a sorted snapshot of their uids instead (see
    :func:`_snapshot_uids`); documents they gain meanwhile are not visited.

    Args:
        store: The store to read.
        collection: The collection.
        query: A filter, or ``None`` for every document.
        batch: The page size.
        projection: Fields to read (``uid`` is always included), or ``None`` for whole documents.

    Raises:
        StoreError: The store returned uids out of order (pagination would not end).
    """
    fields = None if projection is None else ["uid", *(f for f in projection if f != "uid")]
    uids = _snapshot_uids(store, collection)
    if uids is not None:
        for chunk in _chunks(uids, batch):
            page = store.find(collection, _and(query, {"uid": {"$in": chunk}}), projection=fields)
            if page:
                page.sort(key=lambda d: d["uid"])
                yield page
        return
    last: str | None = None
    while True:
        q = query if last is None else _and(query, {"uid": {"$gt": last}})
        page = store.find(collection, q or None, sort=[("uid", 1)], limit=batch, projection=fields)
        if not page:
            return
        first, end = page[0].get("uid"), page[-1].get("uid")
        if type(end) is not str or (last is not None and not (type(first) is str and first > last)):
            raise StoreError(f"{collection}: the source returned uids out of order after {last!r}; cannot page")
        yield page
        if len(page) < batch:
            return
        last = end


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _selection(src: Store, query: dict[str, Any] | None, batch: int) -> dict[str, list[dict[str, Any] | None]]:
    """The source filters of each collection (see the module docstring for what is selected)."""
    if query is None:
        return {c: [None] for c in COLLECTIONS}
    groups: set[str] = set()
    projects: set[str] = set()
    for page in iter_pages(src, TRIALS, query, batch, ["group_id", "project_id"]):
        for d in page:
            if type(d.get("group_id")) is str:
                groups.add(d["group_id"])
            if type(d.get("project_id")) is str:
                projects.add(d["project_id"])
    for chunk in _chunks(sorted(groups), batch):
        for page in iter_pages(src, GROUPS, {"uid": {"$in": chunk}}, batch, ["project_id"]):
            projects.update(d["project_id"] for d in page if type(d.get("project_id")) is str)
    return {
        PROJECTS: [{"uid": {"$in": c}} for c in _chunks(sorted(projects), batch)],
        GROUPS: [{"uid": {"$in": c}} for c in _chunks(sorted(groups), batch)],
        TRIALS: [query],
    }


# -- writing --------------------------------------------------------------------------------------
class _Migration:
    def __init__(
        self, src: Store, dst: Store, on_conflict: str, dry_run: bool, batch: int, progress: Progress | None
    ) -> None:
        self.src = src
        self.dst = dst
        self.policy = on_conflict
        self.dry_run = dry_run
        self.batch = batch
        self.progress = progress
        self.skipped: dict[str, set[str]] = {c: set() for c in COLLECTIONS}
        """The uids of the conflicts this run kept on purpose (verification calls them kept)."""

    # conflicts
    def _bumped_copy(self, doc: Document) -> Document | None:
        """The destination's bumped copy of a source trial, if a previous run stored one."""
        h = doc.get("hash")
        if type(h) is not str:
            return None
        want = _bump_checksum(doc)
        for other in self.dst.find(TRIALS, {"hash": h, f"metadata.{MIGRATED_FROM}": doc["uid"]}):
            if _bump_checksum(other) == want:
                return other
        return None

    def _bump(self, doc: Document, rep: CollectionReport) -> None:
        h, rev, meta = doc.get("hash"), doc.get("revision"), doc.get("metadata", {})
        if type(h) is not str or type(rev) is not int or not isinstance(meta, dict):
            rep.failed += 1
            rep.problem(
                f"{doc['uid']}: cannot bump a trial without a string 'hash', an int 'revision' and a dict 'metadata'"
            )
            return
        if self.dry_run:
            rep.bumped += 1
            return
        for _ in range(_BUMP_ATTEMPTS):
            revs = [
                d.get("revision")
                for s in (self.dst, self.src)
                for d in s.find(TRIALS, {"hash": h}, projection=["revision"])
            ]
            nxt = max([r for r in revs if type(r) is int] + [rev]) + 1
            copy = dict(doc)
            copy["uid"] = f"{h}_{nxt}"
            copy["revision"] = nxt
            copy["metadata"] = {**meta, MIGRATED_FROM: doc["uid"]}
            try:
                self.dst.insert(TRIALS, copy)
            except DuplicateKeyError:
                continue  # another writer took that revision: look again
            except (EncodingError, QueryError) as e:
                rep.failed += 1
                rep.problem(f"{doc['uid']}: the destination refused the bumped copy: {e}")
                return
            rep.bumped += 1
            return
        rep.failed += 1
        rep.problem(f"{doc['uid']}: no free revision found after {_BUMP_ATTEMPTS} attempts")

    def _overwrite(self, coll: str, doc: Document, old: Document, rep: CollectionReport) -> None:
        if not self.dry_run:
            fields = {k: v for k, v in doc.items() if k != "uid"}
            gone = {k: "" for k in old if k not in doc and k != "uid" and k not in STORE_FIELDS}
            update: dict[str, Any] = {}
            if fields:
                update["$set"] = fields
            if gone:
                update["$unset"] = gone
            try:
                self.dst.update(coll, {"uid": doc["uid"]}, update, upsert=True)
            except (EncodingError, QueryError, DuplicateKeyError) as e:
                rep.failed += 1
                rep.problem(f"{doc['uid']}: the destination refused the overwrite: {e}")
                return
        rep.overwritten += 1

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
        for d in docs:  # one at a time: find the refused ones, resolve races
            try:
                self.dst.insert(coll, d)
                rep.copied += 1
            except DuplicateKeyError as e:
                if retry:  # someone stored this uid meanwhile: classify it again, once
                    self._page(coll, [d], rep, retry=False)
                else:
                    rep.failed += 1
                    rep.problem(f"{d['uid']}: {e}")
            except (EncodingError, QueryError) as e:
                rep.failed += 1
                rep.problem(f"{d['uid']}: the destination refused it: {e}")

    def _page(self, coll: str, page: list[Document], rep: CollectionReport, retry: bool = True) -> None:
        docs = [strip_store_fields(d) for d in page]
        existing = {d["uid"]: d for d in self.dst.find(coll, {"uid": {"$in": [d["uid"] for d in docs]}})}
        new: list[Document] = []
        conflicts: list[tuple[Document, Document]] = []
        for d in docs:
            old = existing.get(d["uid"])
            if old is None:
                new.append(d)
            elif document_checksum(old) == document_checksum(d):
                rep.unchanged += 1
            elif self.policy == "fail":
                raise MigrationConflictError(coll, d["uid"])
            else:
                conflicts.append((d, old))
        if new:
            self._insert(coll, new, rep, retry)
        for d, old in conflicts:
            if self.policy == "overwrite":
                self._overwrite(coll, d, old, rep)
            elif self.policy == "bump" and coll == TRIALS:
                if self._bumped_copy(d) is not None:
                    rep.unchanged += 1
                else:
                    self._bump(d, rep)
            else:
                rep.skipped += 1
                self.skipped[coll].add(d["uid"])
                if len(rep.conflicts) < MAX_PROBLEMS:
                    rep.conflicts.append(d["uid"])

    def copy(self, coll: str, filters: list[dict[str, Any] | None], rep: CollectionReport) -> None:
        done = 0
        if self.progress:
            self.progress(coll, 0, rep.source)
        for f in filters:
            for page in iter_pages(self.src, coll, f, self.batch):
                self._page(coll, page, rep)
                done += len(page)
                if self.progress:
                    self.progress(coll, done, max(done, rep.source))

    def verify(self, coll: str, filters: list[dict[str, Any] | None], rep: CollectionReport) -> None:
        label = f"verify {coll}"
        if self.progress:
            self.progress(label, 0, rep.source)
        for f in filters:
            for page in iter_pages(self.src, coll, f, self.batch):
                docs = [strip_store_fields(d) for d in page]
                found = {d["uid"]: d for d in self.dst.find(coll, {"uid": {"$in": [d["uid"] for d in docs]}})}
                for d in docs:
                    rep.scanned += 1
                    other = found.get(d["uid"])
                    if other is None:
                        rep.missing += 1
                        rep.problem(f"{d['uid']}: missing from the destination")
                    elif document_checksum(other) == document_checksum(d):
                        rep.verified += 1
                    elif self.policy == "bump" and coll == TRIALS and self._bumped_copy(d) is not None:
                        rep.verified += 1
                    elif d["uid"] in self.skipped[coll]:
                        rep.kept += 1
                    else:
                        rep.differing += 1
                        rep.problem(f"{d['uid']}: the destination's copy differs (checksum mismatch)")
                if self.progress:
                    self.progress(label, rep.scanned, max(rep.scanned, rep.source))


def _describe(store: str | Store) -> str:
    return parse_uri(store).redacted if isinstance(store, str) else repr(store)


def open_source(uri: str) -> Store:
    """Open a store to read from; a journal file that does not exist is an error, not created.

    Raises:
        NotFoundError: The URI names a ``pickled:`` or ``file:`` journal that does not exist.
    """
    parsed = parse_uri(uri)
    if parsed.scheme in _JOURNAL_SCHEMES and parsed.path and not os.path.exists(parsed.path):
        raise NotFoundError(f"no store at {parsed.path!r} (from {parsed.redacted})")
    return open_store(parsed)


def _open_destination(uri: str, dry_run: bool) -> Store:
    """Open the destination; in a dry run a journal that does not exist yet is an empty memory store."""
    parsed = parse_uri(uri)
    if dry_run and parsed.scheme in _JOURNAL_SCHEMES and parsed.path and not os.path.exists(parsed.path):
        from .stores.memory import MemoryStore

        return MemoryStore()
    return open_store(parsed)


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
) -> MigrationReport:
    """Copy projects, groups and trials from ``src`` to ``dst``, then verify the copy.

    See the module docstring for what is selected, how conflicts are resolved and how the copy
    is verified. Running it again is a no-op; after an interruption it resumes.

    Args:
        src: The source store, or its URI (opened and closed here; a missing ``pickled:`` or
            ``file:`` journal is an error).
        dst: The destination store, or its URI (opened, created if needed, and closed here).
        query: A MongoDB-style filter on trials; ``None`` copies everything.
        batch: Documents per page read and per ``insert_many`` written.
        on_conflict: ``"skip"``, ``"overwrite"``, ``"bump"`` or ``"fail"``.
        dry_run: Count what would happen without writing anything (no verification).
        verify: Verify counts and checksums at the end.
        progress: Called as ``progress(label, done, total)`` after each page.

    Returns:
        The report; ``report.ok`` is false when a document was refused or verification failed.

    Raises:
        MigrationError: ``batch`` or ``on_conflict`` is invalid, or ``src`` and ``dst`` are the same.
        MigrationConflictError: ``on_conflict="fail"`` and a conflict was found.
        QueryError: ``query`` is malformed.
        StoreError: A store failed (its subclasses for unavailable servers, lock timeouts...).
    """
    if type(batch) is not int or batch < 1:
        raise MigrationError(f"batch must be a positive int, got {batch!r}")
    if on_conflict not in ON_CONFLICT:
        raise MigrationError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}; got {on_conflict!r}")
    if query is not None and not isinstance(query, dict):
        raise QueryError(f"query must be a dict (a MongoDB-style filter), got {type(query).__name__}")
    if src is dst or (isinstance(src, str) and isinstance(dst, str) and src == dst):
        raise MigrationError("the source and the destination are the same store")
    start = time.monotonic()
    report = MigrationReport(_describe(src), _describe(dst), on_conflict, dry_run)
    src_store = open_source(src) if isinstance(src, str) else src
    try:
        dst_store = _open_destination(dst, dry_run) if isinstance(dst, str) else dst
        try:
            filters = _selection(src_store, query, batch)
            for coll in COLLECTIONS:
                rep = report.collections[coll] = CollectionReport(coll)
                rep.source = sum(src_store.count(coll, f) for f in filters[coll])
            job = _Migration(src_store, dst_store, on_conflict, dry_run, batch, progress)
            for coll in COLLECTIONS:
                job.copy(coll, filters[coll], report.collections[coll])
            if not dry_run:
                dst_store.commit()
                if verify:
                    for coll in COLLECTIONS:
                        job.verify(coll, filters[coll], report.collections[coll])
                    report.verification = not any(c.missing or c.differing for c in report.collections.values())
        finally:
            if isinstance(dst, str):
                dst_store.close()
    finally:
        if isinstance(src, str):
            src_store.close()
    report.seconds = time.monotonic() - start
    return report


# -- progress display -----------------------------------------------------------------------------
class LineProgress:
    """Progress as plain lines (``trials: 1500/10000``) for logs and pipes.

    A line is written when a label starts, when it completes, and otherwise at most once per
    ``interval`` seconds.
    """

    def __init__(self, stream: IO[str] | None = None, interval: float = 1.0) -> None:
        self.stream = stream
        self.interval = interval
        self._label: str | None = None
        self._last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if label == self._label and done < total and now - self._last < self.interval:
            return
        self._label, self._last = label, now
        stream = self.stream or sys.stderr
        print(f"{label}: {done}/{total}", file=stream, flush=True)

    def close(self) -> None:
        """Nothing to release (for symmetry with :class:`BarProgress`)."""


class BarProgress:
    """Progress as one tqdm bar per label, for terminals."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        self._label: str | None = None
        self._bar: Any = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self._label:
            self.close()
            from tqdm import tqdm

            self._label = label
            self._bar = tqdm(total=total, desc=label, unit="doc", file=self.stream or sys.stderr, leave=True)
        bar = self._bar
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        """Close the current bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._label = None


def make_progress(stream: IO[str] | None = None) -> LineProgress | BarProgress:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return BarProgress(stream) if isatty is not None and isatty() else LineProgress(stream)


# -- command line ---------------------------------------------------------------------------------
def add_parser(sub: Any, uri_help: str = "") -> argparse.ArgumentParser:
    """Add the ``migrate`` subcommand to the ``track-backends`` subparsers."""
    p = sub.add_parser(
        "migrate",
        help="copy projects, groups and trials from one store to another, then verify",
        description="Copy projects, groups and trials from SRC to DST in batches (upserting by uid, so reruns "
        "are no-ops and an interrupted run resumes), then verify counts and per-document checksums. "
        "Exit status: 0 copied and verified, 1 a document was refused or verification found a mismatch, "
        "2 an error (bad argument, unreachable store, a conflict under --on-conflict fail).",
        epilog=uri_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", metavar="SRC_URI", help="the store to copy from (not modified)")
    p.add_argument("dst", metavar="DST_URI", help="the store to copy into (created if needed)")
    p.add_argument(
        "--query",
        metavar="JSON",
        help="copy only the trials matching this filter (and the groups and projects they reference)",
    )
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, metavar="N", help="documents per batch (default: 500)")
    p.add_argument(
        "--on-conflict",
        choices=ON_CONFLICT,
        default="skip",
        help="same uid, other content: keep the destination's (skip, default), replace it (overwrite), "
        "store the trial as its next revision (bump), or stop (fail)",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be copied without writing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def _parse_query(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        query = json.loads(text)
    except json.JSONDecodeError as e:
        raise MigrationError(f"--query is not valid JSON ({e.msg} at column {e.colno}): {text!r:.80}") from None
    if not isinstance(query, dict):
        raise MigrationError(f'--query must be a JSON object like \'{{"status.name": "Completed"}}\', got {text!r:.80}')
    return query


def cmd_migrate(args: argparse.Namespace) -> int:
    """Run ``track-backends migrate``: print the summary; 0 if verified, 1 on a mismatch."""
    progress = None if args.quiet else make_progress(sys.stderr)
    try:
        report = migrate(
            args.src,
            args.dst,
            query=_parse_query(args.query),
            batch=args.batch,
            on_conflict=args.on_conflict,
            dry_run=args.dry_run,
            progress=progress,
        )
    except KeyboardInterrupt:
        print(f"{PROG} migrate: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        if progress is not None:
            progress.close()
    print(report.summary(), flush=True)
    return 0 if report.ok else 1
