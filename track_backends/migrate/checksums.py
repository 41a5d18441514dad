"""How a migration compares a source document with the destination's.

The rule itself lives in :mod:`track_backends.query.equality`: :func:`document_checksum` is the
type-aware canonical hash of a document without its store-specific fields (``_id``), so ``1``,
``1.0`` and ``True`` differ, and so do ``0.0`` and ``-0.0``, while the order of keys in a mapping
does not count. This module adds the one comparison that is the migration's own: a bumped copy
of a trial is the same trial apart from its ``uid``, ``revision`` and ``metadata.migrated_from``.

A trial's metric points are compared by :func:`series_checksum`: the same
:func:`~track_backends.query.equality.checksum` over ``{name: [[step, value], ...]}`` as read by
``fetch_points`` (every attempt, in order).
"""

from __future__ import annotations

from ..query.equality import STORE_FIELDS, checksum, document_checksum, strip_store_fields
from ..store import Document
from ..stores.multiplex.series import series_checksum

MIGRATED_FROM = "migrated_from"
"""Key under ``metadata`` that records the source uid of a bumped trial."""


def bump_checksum(doc: Document) -> str:
    """Checksum of a trial ignoring ``uid``, ``revision`` and ``metadata.migrated_from``.

    Args:
        doc: A trial document, from either store.

    Returns:
        Equal for a source trial and its bumped copy.
    """
    rest = {k: v for k, v in doc.items() if k not in STORE_FIELDS and k not in ("uid", "revision")}
    meta = rest.get("metadata")
    if isinstance(meta, dict) and MIGRATED_FROM in meta:
        rest["metadata"] = {k: v for k, v in meta.items() if k != MIGRATED_FROM}
    return checksum(rest)


__all__ = [
    "MIGRATED_FROM",
    "STORE_FIELDS",
    "bump_checksum",
    "checksum",
    "document_checksum",
    "series_checksum",
    "strip_store_fields",
]
