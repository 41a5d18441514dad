"""From the shared query language to what the MongoDB driver is sent.

Every query, update and projection is validated by :mod:`track_backends.query` first, so a
malformed one raises the same :class:`~track_backends.errors.QueryError` as on every other
backend and never reaches the server. Queries are sent as written, with values normalised to
plain Python (NumPy scalars, tuples); updates as the normalised document of the validated
:class:`~track_backends.query.Update`. ``$min`` and ``$max`` go to MongoDB as they are (it compares
in BSON order across types, as the shared engine does); only a ``$min``/``$max`` below a scalar
can fail, so those with a dotted path count among the updates that may fail
(:func:`~track_backends.query.analysis.update_may_fail`) and are checked client-side first where
that is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...encoding import encode
from ...errors import QueryError
from ...query import parse, parse_projection
from ...query.analysis import only_uid, update_may_fail
from ...query.ast import Node
from ...query.update import Update

NO_ID: dict[str, Any] = {"_id": 0}
"""The projection that leaves out MongoDB's own key."""

ID_RESERVED = "'_id' is reserved for MongoDB's own key: documents identify themselves by 'uid'"


def plain(value: Any) -> Any:
    """A validated query as plain Python: NumPy scalars and arrays, tuples and subclasses converted."""
    t = type(value)
    if t is dict:
        return {k: plain(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [plain(v) for v in value]
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    return encode(value)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A validated query.

    Attributes:
        node: Its AST.
        filter: The filter to send (plain Python; shared, never to be mutated).
        uid: The uid when the query is ``{"uid": "<str>"}`` (at most one document), else ``None``.
    """

    node: Node
    filter: dict[str, Any]
    uid: str | None


def plan_query(query: Any) -> QueryPlan:
    """Validate a query with the shared parser.

    Raises:
        QueryError: The query is malformed (an unknown operator, a bad value, ...).
    """
    node = parse(query or {})
    return QueryPlan(node, plain(query) if query else {}, only_uid(node))


def server_projection(projection: Any) -> tuple[dict[str, Any], bool]:
    """The projection to send and whether ``uid`` must be dropped from the results.

    ``uid`` is kept unless excluded, as ``_id`` is in MongoDB; MongoDB cannot exclude a field
    other than ``_id`` from an inclusion, so such a ``uid`` is fetched and dropped client-side.

    Raises:
        QueryError: The projection is malformed.
    """
    p = parse_projection(projection)
    if p is None:
        return NO_ID, False
    if p.include:
        return {**{".".join(parts): 1 for parts in p.paths}, "uid": 1, "_id": 0}, not p.keep_uid
    out = {".".join(parts): 0 for parts in p.paths}
    if not p.keep_uid:
        out["uid"] = 0
    return {**out, "_id": 0}, False


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """A validated update, ready to send.

    Attributes:
        update: The validated update (applied client-side when documents are checked first).
        doc: The normalised MongoDB update document.
        may_fail: Applying it can fail on some documents (``$inc`` of a string, ...).
        fields: The projection of the top-level fields it touches, for client-side checks.
        min_max: It holds ``$min`` or ``$max`` (which compare in BSON order, across types).
    """

    update: Update
    doc: dict[str, Any]
    may_fail: bool
    fields: dict[str, int]
    min_max: bool = False


def plan_update(update: Update) -> UpdatePlan:
    """Translate a validated update into the document MongoDB is sent.

    Raises:
        QueryError: The update changes ``_id``.
    """
    doc: dict[str, dict[str, Any]] = {}
    tops: dict[str, int] = {}
    for (op, parts, _), (_, path, value) in zip(update.ops, update.to_record()):
        if parts[0] == "_id":
            raise QueryError(f"'_id' is MongoDB's own key and cannot be changed by an update ({op} {path!r})")
        if op in ("$push", "$addToSet"):
            value = {"$each": value}
        elif op == "$unset":
            value = ""
        doc.setdefault(op, {})[path] = value
        tops[parts[0]] = 1
    min_max = "$min" in doc or "$max" in doc
    return UpdatePlan(update, doc, update_may_fail(update), {**tops, "_id": 0}, min_max)
