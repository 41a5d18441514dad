"""One notion of document equality, its checksum, and the update that turns one document into another.

Two documents are the same when they hold the same values of the same types: ``1``, ``1.0``,
``True`` and ``"1"`` differ, the order of keys in a mapping does not count, the order of lists
does. :func:`same_value` compares two documents in memory; :func:`document_checksum` gives the
same verdict from a digest, for comparing documents that live in two stores.

>>> same_value({"a": 1, "b": [1.0]}, {"b": [1.0], "a": 1}), same_value({"a": 1}, {"a": 1.0})
(True, False)
>>> document_checksum({"a": 1, "b": 2}) == document_checksum({"b": 2, "a": 1})
True
>>> diff_update({"uid": "x", "a": 1, "b": 2}, {"uid": "x", "a": 1, "c": 3})
{'$set': {'c': 3}, '$unset': {'b': ''}}
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from ..model import _canonical

STORE_FIELDS: frozenset[str] = frozenset({"_id"})
"""Top-level fields a store adds on its own (MongoDB's ``_id``); never part of a document's content."""

_KEEP = frozenset({"uid"}) | STORE_FIELDS
_MISSING = object()


def same_value(a: Any, b: Any) -> bool:
    """Type-strict equality of JSON-like values; key order does not count, and NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same_value(v, b[k]) for k, v in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if type(a) is float and a != a:
        return math.isnan(b)
    return bool(a == b)


def strip_store_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """Return ``doc`` without store-specific top-level fields (``_id``); a shallow copy if needed."""
    if STORE_FIELDS.isdisjoint(doc):
        return doc
    return {k: v for k, v in doc.items() if k not in STORE_FIELDS}


def checksum(value: Any) -> str:
    """The canonical digest of a valid stored value (no validating copy is made)."""
    out: list[bytes] = []
    _canonical([value], out)
    return hashlib.sha256(b"".join(out)).hexdigest()[:32]


def document_checksum(doc: dict[str, Any]) -> str:
    """Type-aware checksum of a document's content (store-specific fields left out).

    Equal checksums mean :func:`same_value` documents (``0.0`` and ``-0.0`` aside, which the
    checksum tells apart).
    """
    return checksum(strip_store_fields(doc))


def diff_update(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The ``$set``/``$unset`` update that turns ``old`` into ``new`` (``{}`` when they are the same).

    ``uid`` and store-specific fields are left alone.
    """
    sets = {k: v for k, v in new.items() if k not in _KEEP and not same_value(old.get(k, _MISSING), v)}
    unsets = {k: "" for k in old if k not in new and k not in _KEEP}
    update: dict[str, Any] = {}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return update
