"""Copy projects, groups, trials (with their metric points) and artifacts from one store to another.

The copy streams: each collection is read in pages of ``batch`` documents (see
:mod:`~track_backends.migrate.paging`), so memory holds one page at a time on every backend. It
is idempotent: documents are matched by ``uid``, and a destination document whose content
checksum equals the source's is left alone, so a second run writes nothing and an interrupted run
resumes without duplicates. At the end every selected source document is looked up again in the
destination and compared by checksum, and the counts are compared.

Selection: without ``query`` everything is copied; with ``query`` the matching trials, and the
groups and projects they reference (:func:`~track_backends.migrate.paging.selection`).

Each trial's metric points (every attempt's) follow it: compared per page by a checksum of its
series, written only where the destination's differ, replaced whole, and verified by checksum;
see :mod:`~track_backends.migrate.points`.

Artifacts and cache entries (the reference collections, ``artifacts`` and ``cache``) are
copied after the blobs they reference: each distinct blob the destination lacks is streamed from
the source (verified by sha256), content shared by many artifacts is copied once, and
verification checks that every referenced blob is in the destination with its size; see
:mod:`~track_backends.migrate.blobs`. ``all_blobs=True`` also copies blobs that nothing selected
references.

Only those collections (``projects``, ``groups``, ``trials``, ``artifacts``, ``cache``) are
copied; indexes beyond the defaults every store creates (``uid``, and ``(group_id,
status.name)`` and ``hash`` on trials) are not.

Checksums: :func:`document_checksum` (from :mod:`track_backends.query.equality`) is type-aware
(``1``, ``1.0`` and ``True`` differ, and so do ``0.0`` and ``-0.0``) and ignores the order of keys
in a mapping and store-specific fields (``_id``).

Conflicts (a destination document with the same ``uid`` and different content) are resolved by
``on_conflict``: ``skip`` (default), ``overwrite``, ``bump`` or ``fail``; see
:mod:`~track_backends.migrate.conflicts`.

A document that the destination refuses (e.g. a value that it cannot encode) is counted as
*failed* with its message, the migration goes on, and verification reports it missing.

Verification: after the copy, the selection is read again page by page; each source document is
looked up in the destination by uid (a bumped trial by its ``metadata.migrated_from``) and
compared by checksum. It fails when a document is missing, or differs without this run having
kept it on purpose. It also catches a destination that does not store a value faithfully:
PostgreSQL's JSONB, for example, turns ``-0.0`` into ``0.0``. Each blob that a selected
artifact or cache entry references must be in the destination with its size.

Memory: one page of documents, plus the uids of the conflicts this run skipped, plus (with
``query``) the distinct referenced group and project ids, plus, when the source is an in-process
engine, a sorted list of its uids (see :func:`iter_pages`), plus the metric points of one page of
trials on each side (lower ``batch`` for trials with very long histories), plus the distinct
addresses of the selected blobs (and, with ``query``, the uids of the selected trials). Blobs
are streamed in chunks, never held whole.

Dry run: nothing is written and a ``pickled:`` or ``file:`` destination that does not exist is not
created (opening a server store may still create its empty bookkeeping tables).

>>> from track_backends.stores.memory import MemoryStore
>>> src, dst = MemoryStore(), MemoryStore()
>>> src.insert("trials", {"uid": "t1", "x": 1})
>>> report = migrate(src, dst)
>>> report.total("copied"), report.verification
(1, True)
"""

from __future__ import annotations

from .blobs import BlobCopier
from .checksums import MIGRATED_FROM, STORE_FIELDS, document_checksum, series_checksum, strip_store_fields
from .conflicts import ON_CONFLICT, MigrationConflictError
from .core import JOURNAL_SCHEMES, MigrationError, migrate, open_source, require_existing, same_store
from .paging import ALL_COLLECTIONS, COLLECTIONS, DEFAULT_BATCH, REFERENCE_COLLECTIONS, iter_pages
from .progress import BarProgress, LineProgress, Progress, make_progress
from .report import MAX_PROBLEMS, BlobReport, CollectionReport, MigrationReport

# The public classes name the package, their stable import path, as their module (in reprs,
# tracebacks and pickles); the submodules they are defined in are a layout detail.
_PUBLIC = (BarProgress, BlobReport, CollectionReport, LineProgress, MigrationConflictError, MigrationError)
for _cls in (*_PUBLIC, MigrationReport):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "ALL_COLLECTIONS",
    "COLLECTIONS",
    "DEFAULT_BATCH",
    "JOURNAL_SCHEMES",
    "MAX_PROBLEMS",
    "MIGRATED_FROM",
    "ON_CONFLICT",
    "REFERENCE_COLLECTIONS",
    "STORE_FIELDS",
    "BarProgress",
    "BlobCopier",
    "BlobReport",
    "CollectionReport",
    "LineProgress",
    "MigrationConflictError",
    "MigrationError",
    "MigrationReport",
    "Progress",
    "document_checksum",
    "iter_pages",
    "make_progress",
    "migrate",
    "open_source",
    "require_existing",
    "same_store",
    "series_checksum",
    "strip_store_fields",
]
