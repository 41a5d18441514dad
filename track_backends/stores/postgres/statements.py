"""The statements a store runs, built once per query shape and cached as text.

A statement is cached under its kind, the collection and its index generation, and the exact
text of the query (and update shape): see :func:`~track_backends.query.cache.cache_key`. Queries
without an exact text (NumPy values...) are compiled every time. ``{"uid": x}`` queries share
one statement whatever ``x`` is (see :func:`shape`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg.sql import Composable

from ...query.analysis import choose_index, only_uid, pins, uid_terms
from ...query.ast import Node
from ...query.cache import CACHE_SIZE
from ...query.sort import SortSpec
from ...query.update import Update
from .conditions import compile_condition, storable_string, uid_condition
from .fragments import Dialect, Params
from .indexes import Collection, key_column, overflow_column
from .sort import compile_sort
from .updates import compile_update

Built = tuple[sql.Composable, dict[str, Any]]
Build = Callable[[Params], Built]

_UID = sql.Identifier("uid")
_DOC = sql.SQL("t.doc")
_NOT_SQL: Built = (sql.SQL(""), {"exact": False})


@dataclass
class Stmt:
    """A rendered statement with its parameters.

    Attributes:
        exact: The statement answers the call by itself; when false, the caller fetches the
            candidate rows and finishes in Python (a re-check, a sort or an update).
        node: The query (for the Python re-check).
        nbrackets: How many sort-key brackets follow ``uid, doc`` in each row.
        walk: A claim through an index, for the claim pool (:data:`.connection.WALK_SETTINGS`).
    """

    text: str
    params: dict[str, Any]
    exact: bool = True
    node: Node | None = None
    nbrackets: int = 0
    walk: bool = False


class StatementCache:
    """A bounded map from statement keys to rendered statements."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._hits: dict[Any, Stmt] = {}

    def get(self, key: tuple[Any, ...], build: Build) -> Stmt:
        """The statement under ``key``, built by ``build(params)`` on a miss.

        A key holding ``None`` (a query or update without an exact text) is never cached.
        """
        hit = self._hits.get(key)
        if hit is None:
            params = Params()
            composed, extra = build(params)
            hit = Stmt(composed.as_string(None), params.values, **extra)
            if None in key:
                return hit
            if len(self._hits) >= self._size:
                self._hits.clear()
            self._hits[key] = hit
        return hit

    def peek(self, key: tuple[Any, ...]) -> Stmt | None:
        """The statement under ``key`` if it was built, else ``None``."""
        return self._hits.get(key)


def shape(node: Node, qkey: str | None) -> tuple[str | None, dict[str, Any]]:
    """The statement-cache key of a query and the parameters to substitute per execution.

    ``{"uid": x}`` queries share one statement: their only parameter is ``p0`` (the first one
    the WHERE clause adds, see :func:`.conditions.uid_condition`).
    """
    uid = only_uid(node)
    if uid is not None:
        return "<uid>", {"p0": uid}
    return qkey, {}


@dataclass(frozen=True)
class Where:
    """A compiled WHERE condition.

    Attributes:
        sql: The condition.
        exact: False when it is a superset of the matches, to re-check in Python.
        index: ``(keys, overflow, condition, flat)`` when an index answers the query: the rows
            whose index keys are pinned, the rows with an array on an indexed path, the
            condition, and the condition compiled for the rows the keys find (no array lies on
            an indexed path there, so those paths need no array fallback).
    """

    sql: Composable
    exact: bool
    index: tuple[Composable, Composable, Composable, Composable] | None = None


def where_clause(c: Collection, node: Node, params: Params, dialect: Dialect) -> Where:
    """The WHERE condition of ``node`` on the table of ``c``, through an index when one applies."""
    terms = uid_terms(node)
    if terms is not None:
        return Where(uid_condition(terms, params, _UID).sql, True)
    cond = compile_condition(node, params, dialect=dialect)
    pinned = pins(node, key=storable_string).paths
    best = choose_index(c.indexes, pinned, unique=lambda ix: ix.unique)
    if best is None:
        return Where(cond.sql, cond.exact)
    keys = []
    for p in best.paths:
        vals = pinned[p]
        if len(vals) == 1:
            keys.append(sql.SQL("{} = {}").format(key_column(p), params.text(vals[0])))
        else:
            keys.append(sql.SQL("{} IN ({})").format(key_column(p), sql.SQL(", ").join(params.text(v) for v in vals)))
    idx = sql.SQL(" AND ").join(keys)
    ovf = sql.SQL(" OR ").join(overflow_column(p) for p in best.paths)
    where = sql.SQL("(({}) OR ({})) AND {}").format(idx, ovf, cond.sql)
    flat = compile_condition(node, params, dialect=dialect, flat=frozenset(best.paths))
    return Where(where, cond.exact and flat.exact, (idx, ovf, cond.sql, flat.sql))


def find_sql(
    c: Collection, node: Node, spec: SortSpec, limit: int | None, lock: str, params: Params, dialect: Dialect
) -> Built:
    """``SELECT uid, doc[, brackets]`` of the matches in ``spec`` order, at most ``limit``, locked by ``lock``."""
    where = where_clause(c, node, params, dialect)
    cols: list[sql.Composable] = [sql.SQL("t.uid"), _DOC]
    joins: sql.Composable = sql.SQL("")
    order: sql.Composable = sql.SQL("")
    nb = 0
    if spec:
        s = compile_sort(spec, params, doc=_DOC, uid=sql.SQL("t.uid"), dialect=dialect)
        joins, order = s.joins, sql.SQL(" ORDER BY ") + s.order_by
        cols.extend(s.brackets)
        nb = len(s.brackets)
    lim = sql.SQL(" LIMIT {}").format(params.add(limit, "bigint")) if limit is not None and where.exact else sql.SQL("")
    text = sql.SQL("SELECT {} FROM {} t{} WHERE {}{}{}{}").format(
        sql.SQL(", ").join(cols), c.table, joins, where.sql, order, lim, sql.SQL(lock)
    )
    return text, {"exact": where.exact, "node": node, "nbrackets": nb}


def template_sql(c: Collection, node: Node, template: str, params: Params, dialect: Dialect) -> Built:
    """The statement ``template`` (with ``{table}``, ``{where}`` and ``{points}``) over the matches of ``node``."""
    where = where_clause(c, node, params, dialect)
    points = c.points if c.points is not None else sql.SQL("")
    return sql.SQL(template).format(table=c.table, where=where.sql, points=points), {"exact": where.exact}


def update_sql(
    c: Collection,
    node: Node,
    upd: Update,
    many: bool,
    params: Params,
    dialect: Dialect,
    functions: dict[str, sql.Identifier] | None,
) -> Built:
    """One ``UPDATE`` applying ``upd`` to the first (or every) match, when SQL can do it all."""
    where = where_clause(c, node, params, dialect)
    expr = compile_update(upd, params, doc=_DOC, functions=functions) if functions is not None else None
    if expr is None or not where.exact:
        return _NOT_SQL
    if many or only_uid(node) is not None:  # one uid is at most one row
        text = sql.SQL("UPDATE {} t SET doc = {} WHERE {}").format(c.table, expr, where.sql)
    else:
        text = sql.SQL(
            "UPDATE {tb} t SET doc = {e} WHERE t.uid = (SELECT t.uid FROM {tb} t WHERE {w} LIMIT 1 FOR UPDATE)"
        ).format(tb=c.table, e=expr, w=where.sql)
    return text, {"exact": True}


def claim_sql(
    c: Collection,
    node: Node,
    upd: Update,
    params: Params,
    dialect: Dialect,
    functions: dict[str, sql.Identifier] | None,
) -> Built:
    """One ``UPDATE ... WHERE uid = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING doc`` (see :func:`_pick`)."""
    where = where_clause(c, node, params, dialect)
    expr = compile_update(upd, params, doc=_DOC, functions=functions) if functions is not None else None
    if expr is None or not where.exact:
        return _NOT_SQL
    text = sql.SQL("UPDATE {} t SET doc = {} WHERE t.uid = {} RETURNING t.doc").format(c.table, expr, _pick(c, where))
    return text, {"exact": True, "walk": where.index is not None}


def pick_sql(c: Collection, node: Node, params: Params, dialect: Dialect) -> Built:
    """``SELECT uid, doc`` of one match, locked as :func:`claim_sql` locks it, for an update in Python.

    Only for an exact query through an index (else one ``OR`` over the index and the overflow
    rows would make the planner scan the table or build a bitmap of every match).
    """
    where = where_clause(c, node, params, dialect)
    if where.index is None or not where.exact:
        return _NOT_SQL
    text = sql.SQL("SELECT t.uid, t.doc FROM {} t WHERE t.uid = {} FOR UPDATE OF t").format(c.table, _pick(c, where))
    return text, {"exact": True, "walk": True}


def _pick(c: Collection, where: Where) -> sql.Composable:
    """The uid of one match, locked ``FOR UPDATE SKIP LOCKED`` (NULL when every match is taken).

    Through an index, the rows whose keys match are tried before the rows with an array on an
    indexed path, so that each sub-select can walk its own index.
    """
    if where.index is None:
        return sql.SQL("(SELECT t.uid FROM {} t WHERE {} LIMIT 1 FOR UPDATE SKIP LOCKED)").format(c.table, where.sql)
    idx, ovf, cond, flat = where.index
    return sql.SQL(
        "COALESCE((SELECT t.uid FROM {tb} t WHERE {idx} AND {flat} LIMIT 1 FOR UPDATE SKIP LOCKED),"
        " (SELECT t.uid FROM {tb} t WHERE ({ovf}) AND {cond} LIMIT 1 FOR UPDATE SKIP LOCKED))"
    ).format(tb=c.table, idx=idx, ovf=ovf, cond=cond, flat=flat)
