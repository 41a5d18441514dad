"""Updates with ``$min`` or ``$max`` on mongomock, applied by the shared engine.

mongomock's ``$min``/``$max`` use Python's ``min``/``max``: ``True`` counts as 1, a NaN never
moves, and a number against a string raises half-way through the update, after the operators
before it were applied. MongoDB compares in BSON order across types (numbers, then strings,
documents, arrays, booleans; NaN below every number):
https://www.mongodb.com/docs/manual/reference/operator/update/min/ and
https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/. So on mongomock, under
its process-wide lock, such an update reads the matching documents, applies the update with
:func:`track_backends.query.apply_update` (which raises before anything is written when it does
not fit one of them) and writes each document back whole.
"""

from __future__ import annotations

from typing import Any

from ...query import apply_update
from .translate import UpdatePlan


def update_documents(c: Any, filt: dict[str, Any], plan: UpdatePlan, *, limit: int, sort: Any = None) -> list[Any]:
    """Apply ``plan`` to the matching documents of a mongomock collection (call it under the lock).

    Args:
        c: The mongomock collection.
        filt: The validated filter.
        plan: The validated update.
        limit: At most this many documents (0: every match).
        sort: The order in which to pick them.

    Returns:
        The documents after the update, with ``_id`` (an empty list when nothing matches).

    Raises:
        QueryError: The update does not fit one of the documents (nothing was written).
    """
    docs = list(c.find(filt, sort=sort, limit=limit))
    for d in docs:
        apply_update(d, plan.update)
    for d in docs:
        c.replace_one({"_id": d["_id"]}, d)
    return docs
