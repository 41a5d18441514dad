r"""Collections' tables and their indexes.

``ensure_index(paths)`` adds, per path, two generated columns, ``k_<hash>`` (the text at the
path, :func:`key_text`) and ``o_<hash>`` (an array lies on the path, :func:`overflow`), a b-tree
over the ``k`` columns and a partial index over the rows whose ``o`` is true. A query that pins
every path of an index to strings is answered through the b-tree plus the (usually empty)
overflow index, and then checked exactly. Unique indexes are expression indexes over the memory
engine's key (:func:`unique_key`).

The key column of a work-queue state (:data:`QUEUE_PATHS`, i.e. ``status.name``) carries no
planner statistics. A sweep changes that distribution much faster than ``ANALYZE`` follows it:
a snapshot taken while every trial was pending made PostgreSQL pick a sequential scan for the
``LIMIT 1 ... SKIP LOCKED`` claim (expecting a match on the first page), which then walked past
every trial claimed since, so claims slowed down linearly with the table. Without statistics,
the planner assumes that a pinned status is selective, and walks the ``(group_id, status.name)``
index, in custom and generic plans alike.

DDL cannot take parameters, so these expressions quote validated paths with
:class:`psycopg.sql.Literal`:

>>> key_text("status.name", sql.Identifier("doc")).as_string()
'("doc" #>> \'{status,name}\'::text[])'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ...query.paths import split_path


def name_hash(*parts: Any) -> str:
    """A short stable hash of JSON-able parts, for names of columns, indexes and locks."""
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass
class Index:
    paths: tuple[str, ...]
    unique: bool


QUEUE_PATHS = frozenset({"status.name"})
"""Paths holding a work-queue state, whose key columns get no planner statistics (see above)."""


@dataclass
class Collection:
    """What this process knows of one collection's table.

    Attributes:
        points: The table of its documents' metric points (see :mod:`.series`).
        generation: Grows each time the indexes are reloaded; compiled statements key on it.
        insert_sql: The rendered ``INSERT`` statement, once built.
        cache: Other rendered statements of this table (and of its points table).
    """

    name: str
    table: sql.Identifier
    points: sql.Identifier | None = None
    indexes: list[Index] = field(default_factory=list)
    generation: int = 0
    insert_sql: str | None = None
    cache: dict[Any, Any] = field(default_factory=dict)


def key_column(path: str) -> sql.Identifier:
    """The generated column holding the text at ``path``."""
    return sql.Identifier(f"k_{name_hash(path)}")


def overflow_column(path: str) -> sql.Identifier:
    """The generated column telling that an array lies on ``path``."""
    return sql.Identifier(f"o_{name_hash(path)}")


def _lit_path(parts: tuple[str, ...]) -> sql.Composable:
    return sql.SQL("{}::text[]").format(sql.Literal(list(parts)))


def key_text(path: str, doc: sql.Composable) -> sql.Composable:
    """The text an ordinary index keeps for ``path``: ``doc #>> '{a,b}'``."""
    return sql.SQL("({} #>> {})").format(doc, _lit_path(split_path(path)))


def overflow(path: str, doc: sql.Composable) -> sql.Composable:
    """True when an array lies on ``path`` (then :func:`key_text` does not describe the values)."""
    parts = split_path(path)
    return (
        sql.SQL("(")
        + sql.SQL(" OR ").join(
            sql.SQL("COALESCE(jsonb_typeof({} #> {}) = 'array', false)").format(doc, _lit_path(parts[:i]))
            for i in range(1, len(parts) + 1)
        )
        + sql.SQL(")")
    )


def unique_key(path: str, doc: sql.Composable) -> sql.Composable:
    """The JSONB key a unique index keeps for ``path`` (the memory engine's key, see ``indexes``).

    Missing and null are the same key; a path through an array keys on the whole array and the
    rest of the path; documents compare in key order (their order lists are part of the value).
    """
    parts = split_path(path)
    whens = []
    for i in range(1, len(parts)):
        pre = sql.SQL("({} #> {})").format(doc, _lit_path(parts[:i]))
        via = sql.Literal(json.dumps({"$via": [None, list(parts[i:])]}))
        whens.append(  # jsonb_set, not jsonb_build_object: index expressions must be IMMUTABLE
            sql.SQL("WHEN jsonb_typeof({pre}) = 'array' THEN jsonb_set({via}::jsonb, '{{$via,0}}', {pre})").format(
                pre=pre, via=via
            )
        )
        whens.append(sql.SQL("WHEN jsonb_typeof({pre}) IS DISTINCT FROM 'object' THEN 'null'::jsonb").format(pre=pre))
    final = sql.SQL("COALESCE({} #> {}, 'null'::jsonb)").format(doc, _lit_path(parts))
    if not whens:
        return sql.SQL("(") + final + sql.SQL(")")
    return sql.SQL("(CASE ") + sql.SQL(" ").join(whens) + sql.SQL(" ELSE ") + final + sql.SQL(" END)")


_DOC = sql.Identifier("doc")


def forget_statistics(conn: psycopg.Connection, table: sql.Composable, path: str, *, rebuild: bool) -> None:
    """Stop collecting planner statistics on the key column of ``path`` (see :data:`QUEUE_PATHS`).

    Args:
        conn: A connection, in the transaction that changes the layout.
        table: The collection's table.
        path: The indexed path.
        rebuild: Also drop the statistics collected so far (``ANALYZE`` keeps them otherwise):
            changing the column to its own type does, and rebuilds the indexes that use it.
    """
    col = key_column(path)
    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS 0").format(table, col))
    if rebuild:
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text").format(table, col))


def _create_ordinary(
    conn: psycopg.Connection, c: Collection, paths: tuple[str, ...], schema: str, table: str, cockroach: bool
) -> None:
    """Add the missing generated columns, the b-tree over the keys and the overflow index."""
    have = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).fetchall()
    }
    adds = []
    for p in paths:
        if f"k_{name_hash(p)}" not in have:
            adds.append(
                sql.SQL("ADD COLUMN {} text GENERATED ALWAYS AS {} STORED").format(key_column(p), key_text(p, _DOC))
            )
            adds.append(
                sql.SQL("ADD COLUMN {} boolean GENERATED ALWAYS AS {} STORED").format(
                    overflow_column(p), overflow(p, _DOC)
                )
            )
    if adds:
        conn.execute(sql.SQL("ALTER TABLE {} ").format(c.table) + sql.SQL(", ").join(adds))
    if not cockroach:
        for p in paths:
            if p in QUEUE_PATHS and f"k_{name_hash(p)}" not in have:
                forget_statistics(conn, c.table, p, rebuild=False)
    stem = table[:40]
    name = sql.Identifier(f"{stem}_x{name_hash(c.name, paths, False)[:12]}")
    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} ({})").format(name, c.table, sql.SQL(", ").join(key_column(p) for p in paths))
    )
    oname = sql.Identifier(f"{stem}_o{name_hash(c.name, paths)[:12]}")
    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} (uid) WHERE {}").format(
            oname, c.table, sql.SQL(" OR ").join(overflow_column(p) for p in paths)
        )
    )


def create_index(
    conn: psycopg.Connection,
    c: Collection,
    paths: tuple[str, ...],
    unique: bool,
    *,
    schema: str,
    table: str,
    cockroach: bool = False,
) -> None:
    """Create an index over ``paths`` on the table of ``c`` (named ``table`` in ``schema``)."""
    if not unique:
        _create_ordinary(conn, c, paths, schema, table, cockroach)
        return
    name = sql.Identifier(f"{table[:40]}_u{name_hash(c.name, paths, True)[:12]}")
    conn.execute(
        sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
            name, c.table, sql.SQL(", ").join(unique_key(p, _DOC) for p in paths)
        )
    )
