"""What a parsed query says about the documents it can match, shared by every backend.

Backends answer a query faster when it pins a uid or the keys of an index. These rules are
worked out here, once, on the AST; a backend only maps the answer onto its own structures.

>>> from track_backends.query import parse
>>> uid_pin(parse({"uid": "a", "status.name": "Created"}))
'a'
>>> only_uid(parse({"uid": "a"})), only_uid(parse({"uid": "a", "x": 1}))
('a', None)
>>> p = pins(parse({"group_id": "g", "status.name": {"$in": ["Created", "Interrupted"]}}))
>>> p.paths, sorted(p.exact)
({'group_id': ['g'], 'status.name': ['Created', 'Interrupted']}, ['group_id', 'status.name'])
>>> choose_index([("group_id",), ("group_id", "status.name")], p.paths, paths=lambda ix: ix)
('group_id', 'status.name')
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .ast import And, Compare, In, Node
from .update import Update

T = TypeVar("T")

UID = "uid"


def conjuncts(node: Node) -> tuple[Node, ...]:
    """The top-level conditions of a query (the children of an implicit or explicit ``$and``)."""
    return node.children if isinstance(node, And) else (node,)


def uid_pin(node: Node) -> str | None:
    """The uid a query pins by a top-level string equality, whatever else it asks; else ``None``."""
    for n in conjuncts(node):
        if isinstance(n, Compare) and n.path == UID and n.op == "$eq" and type(n.value) is str:
            return n.value
    return None


def only_uid(node: Node) -> str | None:
    """The uid when the whole query is ``{"uid": "<str>"}`` (at most one document), else ``None``."""
    if isinstance(node, Compare) and node.path == UID and node.op == "$eq" and type(node.value) is str:
        return node.value
    return None


@dataclass(frozen=True)
class UidTerm:
    """One top-level condition on ``uid``: ``uid`` is (``negate``: is not) one of ``values``."""

    values: tuple[Any, ...]
    negate: bool


def uid_terms(node: Node) -> list[UidTerm] | None:
    """The conditions of a query that constrains nothing but ``uid`` by ``$eq/$ne/$in/$nin``.

    Returns ``None`` for any other query (including the empty one). ``uid`` is always a non-empty
    string, so these conditions are answered by the uid key alone.
    """
    nodes = conjuncts(node)
    if not nodes:
        return None
    out = []
    for n in nodes:
        if isinstance(n, Compare) and n.path == UID and n.op in ("$eq", "$ne"):
            out.append(UidTerm((n.value,), n.op == "$ne"))
        elif isinstance(n, In) and n.path == UID:
            out.append(UidTerm(tuple(n.values), n.negate))
        else:
            return None
    return out


@dataclass(frozen=True)
class Pins:
    """The paths a query pins to index keys.

    Attributes:
        paths: For each pinned path, the keys (one per value) a matching document must reach.
            Two constraints on one path keep the intersection.
        exact: The pinned paths when the query is nothing but these pins, each value answered by
            its key alone (an index over exactly these paths answers the query without a
            re-check); else ``None``.
    """

    paths: dict[str, list[Any]]
    exact: frozenset[str] | None


def _identity(value: Any) -> Any:
    return value


def pins(node: Node, key: Callable[[Any], Any] = _identity) -> Pins:
    """Find the paths a query pins by top-level ``$eq`` and ``$in``.

    Args:
        node: The parsed query.
        key: Maps a query value to the key an index holds for it, or to ``None`` when an index
            cannot answer that value alone (``null`` also matches missing fields, an array
            matches element-wise, a backend may index only strings...). A path with such a
            value is not pinned.
    """
    out: dict[str, list[Any]] = {}
    exact = True
    for n in conjuncts(node):
        if isinstance(n, Compare) and n.op == "$eq":
            vals: tuple[Any, ...] = (n.value,)
        elif isinstance(n, In) and not n.negate and n.values:
            vals = n.values
        else:
            exact = False
            continue
        keys = list(dict.fromkeys(key(v) for v in vals))
        if any(k is None for k in keys):
            exact = False
            continue
        if n.path in out:
            keys = [k for k in out[n.path] if k in keys]
            exact = False
        out[n.path] = keys
    return Pins(out, frozenset(out) if exact and out else None)


def choose_index(
    indexes: Iterable[T],
    pinned: dict[str, list[Any]],
    *,
    paths: Callable[[T], tuple[str, ...]] = lambda ix: ix.paths,  # type: ignore[attr-defined]
    unique: Callable[[T], bool] = lambda ix: False,
) -> T | None:
    """Pick the non-unique index with the most paths, every one of them pinned by the query."""
    best: T | None = None
    best_len = 0
    for ix in indexes:
        ps = paths(ix)
        if unique(ix) or not all(p in pinned for p in ps):
            continue
        if best is None or len(ps) > best_len:
            best, best_len = ix, len(ps)
    return best


def index_keys(index_paths: tuple[str, ...], pinned: dict[str, list[Any]]) -> list[Any]:
    """The keys to look up in an index over ``index_paths`` (tuples for compound indexes)."""
    if len(index_paths) == 1:
        return pinned[index_paths[0]]
    return [tuple(c) for c in itertools.product(*(pinned[p] for p in index_paths))]


def update_may_fail(update: Update) -> bool:
    """Whether applying ``update`` can fail on some documents.

    ``$inc`` of a string, ``$push`` to a non-array or ``$set`` below a scalar fail, so a
    multi-document update that holds one must check every document first.
    """
    return any(
        op in ("$inc", "$push", "$addToSet") or (op in ("$set", "$min", "$max") and len(parts) > 1)
        for op, parts, _ in update.ops
    )
