"""The storage layout of one namespace (the URI's ``schema`` and table ``prefix``).

One table per collection, ``uid text COLLATE "C" PRIMARY KEY, doc jsonb``, named
``<prefix><collection>``, and beside it the table of its documents' metric points,
``<prefix><collection>$points`` (:mod:`.series`). Two bookkeeping tables, ``<prefix>tb$meta``
(the layout version) and ``<prefix>tb$indexes`` (collections and their indexes), and the helper
functions of :mod:`.functions` are created on first use; an older layout version is migrated
forward (:mod:`.migrations`) under an advisory lock (PostgreSQL) or by SERIALIZABLE retries
(CockroachDB).

Layout versions: 1, documents only (trials held their points in ``metrics``); 2, points tables,
trials with ``metric_summary``, no statistics on the ``status.name`` key column
(:data:`.indexes.QUEUE_PATHS`); 3, the blob tables ``<prefix>tb$blobs`` and
``<prefix>tb$blob_chunks`` (:mod:`.blobstore`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from ...errors import QueryError, StoreError
from ...store import DEFAULT_INDEXES, check_collection
from .connection import RETRY_SQLSTATES, wrap_error
from .functions import create_functions, function_names
from .indexes import Collection, Index, create_index, name_hash
from .migrations import to_layout_2, to_layout_3
from .options import Options
from .series import create_points_table, points_table_name

SCHEMA_VERSION = 3
"""The layout version this package writes; older stored versions are migrated forward."""

Migration = Callable[["Layout", psycopg.Connection], None]
MIGRATIONS: dict[int, Migration] = {1: to_layout_2, 2: to_layout_3}
"""``MIGRATIONS[v](layout, conn)`` upgrades a namespace from version ``v`` to ``v + 1`` (inside a transaction)."""

_RACING_SQLSTATES = RETRY_SQLSTATES + ("23505", "42P07")  # two processes creating the same thing


class Layout:
    """The tables of one namespace and what this process knows of them.

    Attributes:
        collections: The collections' tables, by name (reloaded by :meth:`load_registry`).
        functions: The helper functions' names for :mod:`.updates` (``None`` on CockroachDB).
    """

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.schema = opts.schema
        self.prefix = opts.prefix
        self.cockroach = opts.cockroach
        self.meta = sql.Identifier(self.schema, f"{self.prefix}tb$meta")
        self.registry = sql.Identifier(self.schema, f"{self.prefix}tb$indexes")
        self.blobs = sql.Identifier(self.schema, f"{self.prefix}tb$blobs")
        self.chunks = sql.Identifier(self.schema, f"{self.prefix}tb$blob_chunks")
        self.functions: dict[str, sql.Identifier] | None = (
            None if self.cockroach else function_names(self.schema, self.prefix)
        )
        self.collections: dict[str, Collection] = {}

    def table_name(self, collection: str) -> str:
        return f"{self.prefix}{collection}"

    def table(self, collection: str) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table_name(collection))

    def points_table(self, collection: str) -> sql.Identifier:
        """The table of the metric points of ``collection``'s documents."""
        return sql.Identifier(self.schema, points_table_name(self.prefix, collection))

    def create_points(self, conn: psycopg.Connection, collection: str) -> None:
        """Create the points table of ``collection`` (in the caller's transaction)."""
        create_points_table(conn, self.points_table(collection), cockroach=self.cockroach)

    def create_blobs(self, conn: psycopg.Connection) -> None:
        """Create the blob tables of :mod:`.blobstore` (in the caller's transaction)."""
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (sha256 text PRIMARY KEY, size bigint NOT NULL, created float8 NOT NULL,"
                " id bigint NOT NULL UNIQUE)"
            ).format(self.blobs)
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint NOT NULL, seq integer NOT NULL, data bytea NOT NULL, PRIMARY KEY (id, seq))"
            ).format(self.chunks)
        )

    def lock(self, conn: psycopg.Connection) -> None:
        """Serialise layout changes of this namespace (PostgreSQL: a transaction advisory lock)."""
        if not self.cockroach:
            key = int(name_hash("track_backends", self.schema, self.prefix)[:15], 16)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    # -- bootstrap -----------------------------------------------------------------------------
    def bootstrap(self, conn: psycopg.Connection) -> None:
        """Create or migrate the bookkeeping tables and helper functions; load the collections.

        Raises:
            StoreError: The stored layout is newer than this library's, or the server failed.
        """
        for attempt in range(self.opts.max_retries + 1):
            try:
                with conn.transaction():
                    self.lock(conn)
                    self._create_bookkeeping(conn)
                    self._migrate(conn, self._stored_version(conn))
                    self.load_registry(conn)
                return
            except psycopg.Error as e:
                if getattr(e, "sqlstate", None) in _RACING_SQLSTATES and attempt < self.opts.max_retries:
                    time.sleep(random.uniform(0, 0.05))
                    continue
                raise wrap_error(e, self.opts) from e

    def _create_bookkeeping(self, conn: psycopg.Connection) -> None:
        if not conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (self.schema,)
        ).fetchone():
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value jsonb NOT NULL)").format(self.meta)
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (collection text NOT NULL, paths text[] NOT NULL,"
                " is_unique boolean NOT NULL, PRIMARY KEY (collection, paths))"
            ).format(self.registry)
        )

    def _stored_version(self, conn: psycopg.Connection) -> int:
        """The namespace's layout version; a new namespace gets this library's (and its functions)."""
        row = conn.execute(sql.SQL("SELECT value FROM {} WHERE key = 'schema_version'").format(self.meta)).fetchone()
        if row is not None:
            return int(row[0])
        if not self.cockroach:
            create_functions(conn, self.schema, self.prefix)
        self.create_blobs(conn)
        conn.execute(
            sql.SQL("INSERT INTO {} (key, value) VALUES ('schema_version', %s::jsonb)").format(self.meta),
            (json.dumps(SCHEMA_VERSION),),
        )
        return SCHEMA_VERSION

    def _migrate(self, conn: psycopg.Connection, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the {self.opts.scheme} store at {self.opts.where} (schema {self.schema!r}, prefix {self.prefix!r})"
                f" has layout version {version}, newer than this library's {SCHEMA_VERSION}: upgrade it"
            )
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](self, conn)
            version += 1
            conn.execute(
                sql.SQL("UPDATE {} SET value = %s::jsonb WHERE key = 'schema_version'").format(self.meta),
                (json.dumps(version),),
            )

    # -- collections and indexes -----------------------------------------------------------------
    def load_registry(self, conn: psycopg.Connection) -> None:
        """Reload the collections and their indexes (bumping the generation of each)."""
        rows = conn.execute(sql.SQL("SELECT collection, paths, is_unique FROM {}").format(self.registry)).fetchall()
        colls: dict[str, Collection] = {}
        for name, paths, unique in rows:
            c = colls.get(name) or colls.setdefault(name, Collection(name, self.table(name), self.points_table(name)))
            if paths:
                c.indexes.append(Index(tuple(paths), bool(unique)))
        for name, c in colls.items():
            old = self.collections.get(name)
            c.generation = (old.generation + 1) if old else 0
            self.collections[name] = c

    def check_new(self, name: str) -> None:
        """Refuse a collection name that is invalid or too long for a table name.

        Raises:
            QueryError: The name is invalid, or too long with the prefix.
        """
        check_collection(name)
        if len(self.prefix) + len(name) > 63:
            raise QueryError(f"collection name {name!r} is too long with the table prefix {self.prefix!r}")

    def create_collection(self, conn: psycopg.Connection, name: str) -> None:
        """Create a collection's table and default indexes unless it exists (in a transaction)."""
        with conn.transaction():
            self.lock(conn)
            known = conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE collection = %s LIMIT 1").format(self.registry), (name,)
            ).fetchone()
            if known is None:
                self._create_table(conn, name)
            self.load_registry(conn)

    def _create_table(self, conn: psycopg.Connection, name: str) -> None:
        table = self.table(name)
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (self.schema, self.table_name(name)),
        ).fetchone()
        if exists:
            raise StoreError(
                f"table {self.schema}.{self.table_name(name)} exists but was not created by track_backends;"
                " use another schema or prefix"
            )
        collate = sql.SQL("") if self.cockroach else sql.SQL(' COLLATE "C"')
        conn.execute(sql.SQL("CREATE TABLE {} (uid text{} PRIMARY KEY, doc jsonb NOT NULL)").format(table, collate))
        self.create_points(conn, name)
        conn.execute(
            sql.SQL("INSERT INTO {} (collection, paths, is_unique) VALUES (%s, '{{}}', false)").format(self.registry),
            (name,),
        )
        for paths, unique in DEFAULT_INDEXES.get(name, ()):
            self._create_index(conn, Collection(name, table), paths, unique)

    def _create_index(self, conn: psycopg.Connection, c: Collection, paths: tuple[str, ...], unique: bool) -> None:
        create_index(
            conn, c, paths, unique, schema=self.schema, table=self.table_name(c.name), cockroach=self.cockroach
        )
        conn.execute(
            sql.SQL("INSERT INTO {} (collection, paths, is_unique) VALUES (%s, %s, %s)").format(self.registry),
            (c.name, list(paths), unique),
        )

    def ensure_index(self, conn: psycopg.Connection, c: Collection, paths: tuple[str, ...], unique: bool) -> None:
        """Create an index unless the registry has it (in a transaction).

        Raises:
            QueryError: An index on the same paths exists with the other ``unique``.
        """
        with conn.transaction():
            self.lock(conn)
            row = conn.execute(
                sql.SQL("SELECT is_unique FROM {} WHERE collection = %s AND paths = %s").format(self.registry),
                (c.name, list(paths)),
            ).fetchone()
            if row is None:
                self._create_index(conn, c, paths, unique)
            elif bool(row[0]) != unique:
                raise QueryError(f"an index on {list(paths)} of {c.name!r} exists with unique={row[0]}")
            self.load_registry(conn)


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Layout", "Migration"]
