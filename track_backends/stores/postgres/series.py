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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ...encoding import SPECIAL_KEY
from ...errors import QueryError
from ...store import Document, Query, check_collection
from ..points import check_points, check_range
from .indexes import name_hash
from .jsonb import dumps

if TYPE_CHECKING:
    from ...query.ast import Node
    from ...query.update import Update
    from .indexes import Collection

Series = dict[str, list[tuple[Any, Any]]]

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
    conds = [sql.SQL("(q.att IS NULL OR p.attempt = 0 OR p.attempt = q.att)")]
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


class SeriesMixin:
    """The points primitives of :class:`~.store.PostgresStore` (see the module docstring).

    The store provides ``_run``, ``_colls``, ``_coll``, ``_existing``, ``_nodes``, ``_updates``
    and ``_updater``.
    """

    if TYPE_CHECKING:
        _run: Callable[..., Any]
        _colls: dict[str, Collection]
        _nodes: Any
        _updates: Any

        def _coll(self, name: str, create: bool) -> Collection | None: ...

        def _existing(self, collection: str) -> Collection | None: ...

        def _updater(
            self, c: Collection, query: Query, node: Node, upd: Update, many: bool
        ) -> Callable[[psycopg.Connection], int]: ...

    def append_points(
        self,
        collection: str,
        uid: str,
        points: Sequence[tuple[str, Any, Any]],
        *,
        attempt: int = 0,
        query: Query = None,
        update: Document | None = None,
    ) -> bool:
        """Append points and apply ``update`` in one transaction (see :meth:`Store.append_points`).

        The update runs first, on the document matching ``query`` *and* ``{"uid": uid}``; when it
        matches nothing the transaction ends without inserting a point.

        Raises:
            QueryError: The collection name, a point, ``uid``, ``attempt``, the query or the update
                is malformed, or the update does not apply to the document (nothing is written).
            EncodingError: A name, step or value cannot be stored.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        if type(uid) is not str or not uid:
            raise QueryError(f"uid must be a non-empty string, got {uid!r:.80}")
        if type(attempt) is not int:
            raise QueryError(f"attempt must be an int, got {attempt!r:.80}")
        pts = check_points(points)
        payload = dumps(pts, owned=True) if pts else None
        node = upd = target = None
        if update is not None:
            target = query if query is not None else {"uid": uid}
            if not (isinstance(target, dict) and target.get("uid") == uid):
                target = {"$and": [{"uid": uid}, target]}
            node, upd = self._nodes.get(target), self._updates.get(update)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None and c.points is not None
        apply = self._updater(c, target, node, upd, False) if upd is not None and node is not None else None
        if payload is None and apply is None:
            return True
        stmt = c.cache.get("points_insert")
        if stmt is None:
            stmt = c.cache["points_insert"] = insert_sql(c.points)

        def write(conn: psycopg.Connection) -> bool:
            with conn.transaction():
                if apply is not None and not apply(conn):
                    return False
                if payload is not None:
                    conn.execute(stmt, (uid, attempt, payload))
            return True

        return bool(self._run(write))

    def fetch_points(
        self,
        collection: str,
        uids: Sequence[str],
        *,
        names: Sequence[str] | None = None,
        start: Any = None,
        stop: Any = None,
        last: int | None = None,
        attempts: dict[str, int] | None = None,
    ) -> dict[str, Series]:
        """Read many documents' series in one statement (see :meth:`Store.fetch_points`).

        Raises:
            QueryError: The collection name, a uid, a name, an attempt, ``start``, ``stop`` or
                ``last`` is malformed.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        check_range(start, stop, last)
        wanted = _strings(uids, "uid")
        names = None if names is None else _strings(names, "metric name")
        atts = None if attempts is None else [attempts.get(u, 0) for u in wanted]
        if atts is not None and any(type(a) is not int for a in atts):
            raise QueryError("attempts maps uids to int attempts")
        if not wanted or names == [] or any(b is not None and b != b for b in (start, stop)):
            return {}  # a NaN bound keeps no step
        c = self._existing(collection)
        if c is None or c.points is None:
            return {}
        key = ("points_fetch", names is not None, start is not None, stop is not None, last is not None)
        built = c.cache.get(key)
        if built is None:
            built = c.cache[key] = fetch_sql(c.points, names=key[1], start=key[2], stop=key[3], last=key[4])
        text, order = built
        values: dict[str, Any] = {
            "uids": wanted,
            "attempts": atts if atts is not None else [None] * len(wanted),
            "names": names,
            "start": None if start is None else numeric_text(start),
            "stop": None if stop is None else numeric_text(stop),
            "last": None if last is None else max(last, 1),
        }
        params = {k: values[k] for k in order}
        rows = self._run(lambda conn: conn.execute(text, params).fetchall(), read=True)
        return group_rows(rows, last == 0)

    def delete_points(self, collection: str, uids: Sequence[str]) -> int:
        """Delete every point of the given documents; return how many points were deleted.

        Raises:
            QueryError: The collection name or a uid is malformed.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        wanted = _strings(uids, "uid")
        c = self._existing(collection)
        if c is None or c.points is None or not wanted:
            return 0
        stmt = delete_sql(c.points)
        return int(self._run(lambda conn: conn.execute(stmt, (wanted,)).rowcount))


def _strings(values: Any, what: str) -> list[str]:
    """Distinct strings, in order.

    Raises:
        QueryError: ``values`` is a string, or holds something else than strings.
    """
    if isinstance(values, (str, bytes)):
        raise QueryError(f"expected a list of {what}s, got {values!r:.80}")
    out = list(dict.fromkeys(values))
    for v in out:
        if type(v) is not str:
            raise QueryError(f"a {what} must be a string, got {v!r:.80}")
    return out
