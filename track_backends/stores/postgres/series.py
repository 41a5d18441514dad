"""Metric points in a table beside each collection's (see :meth:`~track_backends.store.Store.append_points`).

Collection ``c`` keeps its documents' points in ``<prefix>c$points``::

    uid text, attempt bigint, seq bigserial, name text, step jsonb, value jsonb,
    PRIMARY KEY (uid, attempt, seq)

A batch is one ``INSERT ... SELECT`` over the elements of one JSON array parameter, whatever its
size, and a point costs the same at the millionth as at the first (a row, not a document that
grows). ``seq`` keeps the logging order. Steps and values are encoded as documents are
(:mod:`.jsonb`), so NaN, the infinities and the float/int distinction survive.

A read of many documents' series is one statement: the uids (with the attempt each may show) are
unnested and joined to the points through the primary key; ``names``, ``start``/``stop`` (numeric
steps, compared as ``numeric``, where the infinities exist) and ``last`` (a window function) are
applied in SQL, so ``last=10`` of a long series sends ten points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...encoding import SPECIAL_KEY
from .indexes import name_hash

Series = dict[str, list[tuple[Any, Any]]]
"""``{name: [(step, value), ...]}``."""

_MAX_NAME = 63


def points_table_name(prefix: str, collection: str) -> str:
    """The name of the points table of ``collection`` (hashed when the plain one is too long)."""
    name = f"{prefix}{collection}$points"
    return name if len(name) <= _MAX_NAME else f"{prefix}tb$points_{name_hash(collection)}"


def create_points_table(conn: psycopg.Connection, table: sql.Identifier, *, cockroach: bool) -> None:
    """Create a points table (in the caller's transaction).

    Raises:
        psycopg.Error: The table exists, or the server refused.
    """
    collate = sql.SQL("") if cockroach else sql.SQL(' COLLATE "C"')
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (uid text{} NOT NULL, attempt bigint NOT NULL, seq bigserial NOT NULL,"
            " name text NOT NULL, step jsonb NOT NULL, value jsonb NOT NULL, PRIMARY KEY (uid, attempt, seq))"
        ).format(table, collate)
    )


def insert_sql(table: sql.Identifier) -> str:
    """``INSERT`` of a batch: parameters ``(uid, attempt, JSON array of [name, step, value])``."""
    return (
        sql.SQL(
            "INSERT INTO {} (uid, attempt, name, step, value)"
            " SELECT %s::text, %s::bigint, e ->> 0, e -> 1, e -> 2"
            " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n"
        )
        .format(table)
        .as_string(None)
    )


def delete_sql(table: sql.Identifier) -> str:
    """``DELETE`` of every point of some documents: parameter ``uids text[]``."""
    return sql.SQL("DELETE FROM {} WHERE uid = ANY(%s::text[])").format(table).as_string(None)


def _step_number() -> sql.Composable:
    """A point's step as ``numeric`` when it is a number (the infinities included), else NULL."""
    key = sql.Literal(SPECIAL_KEY)
    return sql.SQL(
        "(CASE jsonb_typeof(p.step) WHEN 'number' THEN (p.step)::numeric WHEN 'object' THEN"
        " CASE p.step ->> {} WHEN 'Infinity' THEN 'Infinity'::numeric"
        " WHEN '-Infinity' THEN '-Infinity'::numeric END END)"
    ).format(key)


def numeric_text(bound: int | float) -> str:
    """A ``start``/``stop`` bound as ``numeric`` input: floats by their shortest repr, as stored."""
    if type(bound) is int:
        return str(bound)
    if math.isinf(bound):
        return "Infinity" if bound > 0 else "-Infinity"
    return repr(float(bound))


def fetch_sql(
    table: sql.Identifier, *, names: bool, start: bool, stop: bool, last: bool
) -> tuple[str, tuple[str, ...]]:
    """The read of many series, and the names of its parameters in order.

    Parameters: ``uids text[]``, ``attempts bigint[]`` (NULL elements: every attempt), then, when
    asked for, ``names text[]``, ``start``, ``stop`` (``numeric`` text) and ``last``. Rows are
    ``(uid, name, step, value)`` in the order of the uids, then attempt, then logging order.
    """
    params = ["uids", "attempts"]
    conds: list[sql.Composable] = [sql.SQL("(q.att IS NULL OR p.attempt = 0 OR p.attempt = q.att)")]
    if names:
        conds.append(sql.SQL("p.name = ANY(%(names)s::text[])"))
        params.append("names")
    for flag, name, op in ((start, "start", ">="), (stop, "stop", "<")):
        if flag:
            conds.append(sql.SQL("{} {} %({})s::numeric").format(_step_number(), sql.SQL(op), sql.SQL(name)))
            params.append(name)
    inner = sql.SQL(
        "SELECT q.ord, q.uid, p.attempt, p.seq, p.name, p.step, p.value{rn}"
        " FROM unnest(%(uids)s::text[], %(attempts)s::bigint[]) WITH ORDINALITY AS q(uid, att, ord)"
        " JOIN {table} p ON p.uid = q.uid WHERE {conds}"
    )
    rn = sql.SQL("")
    if last:
        rn = sql.SQL(", row_number() OVER (PARTITION BY q.ord, p.name ORDER BY p.attempt DESC, p.seq DESC) AS rn")
        params.append("last")
    query = inner.format(rn=rn, table=table, conds=sql.SQL(" AND ").join(conds))
    where = sql.SQL(" WHERE x.rn <= %(last)s::bigint") if last else sql.SQL("")
    text = sql.SQL("SELECT x.uid, x.name, x.step, x.value FROM ({}) x{} ORDER BY x.ord, x.attempt, x.seq").format(
        query, where
    )
    return text.as_string(None), tuple(params)


def group_rows(rows: Sequence[tuple[str, str, Any, Any]], empty: bool) -> dict[str, Series]:
    """``{uid: {name: [(step, value), ...]}}`` from the rows of :func:`fetch_sql`.

    Args:
        rows: The rows, in order.
        empty: ``last=0`` was asked for: keep the names, with no points.
    """
    out: dict[str, Series] = {}
    for uid, name, step, value in rows:
        series = out.get(uid)
        if series is None:
            series = out[uid] = {}
        got = series.get(name)
        if got is None:
            got = series[name] = []
        if not empty:
            got.append((step, value))
    return out
