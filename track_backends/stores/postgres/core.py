"""The parts of :class:`~.store.PostgresStore`: pools, collections, statements, the Python paths.

Concurrency: single statements run in autocommit; a claim is one
``UPDATE ... WHERE uid = (SELECT uid ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING doc``.
Updates that SQL cannot express (``$inc``, ``$min``, ``$max``; everything on CockroachDB, which
lacks PL/pgSQL recursion) lock the rows ``FOR UPDATE`` and apply the update in Python in the same
transaction (the caller's, when it has one: :meth:`StoreCore._updater` is how
:meth:`~.series.SeriesMixin.append_points` runs its summary update). Claims through an index
run on a second pool whose sessions always walk the index (:data:`.connection.WALK_SETTINGS`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import psycopg
from psycopg import pq, sql

from ...clock import ServerClock
from ...encoding import encode, prepare_document
from ...query import apply_update, predicate_for
from ...query.ast import Node
from ...query.cache import QUERIES, UPDATES, cache_key
from ...query.sort import SortSpec, sort_documents
from ...query.update import Update, upsert_seed
from ...store import Document, Query, Store, check_collection
from ...uri import StoreURI
from .connection import PYTHON_SQLSTATE, WALK_SETTINGS, Connections
from .fragments import COCKROACH, POSTGRES
from .indexes import Collection
from .jsonb import dumps
from .options import Options
from .schema import Layout
from .sort import UNORDERED_BRACKETS
from .statements import StatementCache, Stmt, find_sql, pick_sql, shape, template_sql, update_sql
from .updates import update_shape, update_values

Row = tuple[str, Document]


class NeedsPython(Exception):
    """An update statement found a stored value that only the Python path handles (``TB002``)."""


class StoreCore(Store):
    """What :class:`~.store.PostgresStore`'s methods are made of (see the module docstring)."""

    scheme = "postgresql"

    def __init__(self, uri: StoreURI) -> None:
        opts = Options.from_uri(uri)
        self.uri = uri
        self.opts = opts
        self.scheme = opts.scheme
        self.cockroach = opts.cockroach
        self.dialect = COCKROACH if self.cockroach else POSTGRES
        self.schema = opts.schema
        self.prefix = opts.prefix
        self.where = opts.where
        self._layout = Layout(opts)
        self._conns = Connections(opts, self._layout.bootstrap)
        self._run = self._conns.run
        self._walks = None if self.cockroach else Connections(opts, None, settings=WALK_SETTINGS, name="-claims")
        self._walk = self._walks.run if self._walks is not None else self._run
        self._colls = self._layout.collections
        self._stmts = StatementCache()
        self._nodes = QUERIES
        self._updates = UPDATES
        self._clock = ServerClock(self._server_time)

    def _server_time(self) -> float:
        def read(conn: psycopg.Connection) -> float:
            row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
            assert row is not None
            return float(row[0])

        return self._run(read, read=True)

    def now(self) -> float:
        """The server's clock (``clock_timestamp()``), which decides when leases expire.

        Raises:
            StoreUnavailableError: The server cannot be reached, or the store is closed.
        """
        return self._clock.now()

    @property
    def retries(self) -> int:
        """How many transactions were retried after a serialization failure or deadlock."""
        return self._conns.retries + (self._walks.retries if self._walks is not None else 0)

    # -- collections -----------------------------------------------------------------------------
    def _coll(self, name: str, create: bool) -> Collection | None:
        """The collection's table: created (with default indexes) when ``create``, else None if absent."""
        c = self._colls.get(name)
        if c is not None or not create:
            return c
        self._layout.check_new(name)
        self._run(lambda conn: self._layout.create_collection(conn, name))
        return self._colls[name]

    def _existing(self, collection: str) -> Collection | None:
        """The collection's table, reloading the registry once (another process may have made it)."""
        check_collection(collection)
        c = self._colls.get(collection)
        if c is None:
            self._run(self._layout.load_registry, read=True)
            c = self._colls.get(collection)
        return c

    # -- reading ---------------------------------------------------------------------------------
    def _find_stmt(
        self, c: Collection, qkey: str | None, node: Node, spec: SortSpec, limit: int | None, lock: str
    ) -> Stmt:
        return self._stmts.get(
            ("find", c.name, c.generation, qkey, repr(spec), limit, lock),
            lambda params: find_sql(c, node, spec, limit, lock, params, self.dialect),
        )

    def _fetch(
        self,
        conn: psycopg.Connection,
        c: Collection,
        query: Query,
        node: Node,
        spec: SortSpec,
        limit: int | None,
        lock: str = "",
    ) -> list[Row]:
        """Matching ``(uid, doc)`` rows in ``spec`` order, at most ``limit``, exactly (re-checked)."""
        qshape, subst = shape(node, cache_key(query))
        st = self._find_stmt(c, qshape, node, spec, limit, lock)
        rows = conn.execute(st.text, {**st.params, **subst}).fetchall()
        python_sort = bool(spec and st.nbrackets) and any(
            b in UNORDERED_BRACKETS for r in rows for b in r[2 : 2 + st.nbrackets]
        )
        if python_sort and limit is not None and st.exact:  # the limit must apply after sorting
            st = self._find_stmt(c, qshape, node, spec, None, lock)
            rows = conn.execute(st.text, {**st.params, **subst}).fetchall()
        out = [(r[0], r[1]) for r in rows]
        if not st.exact:
            pred = predicate_for(node)
            out = [r for r in out if pred(r[1])]
        if python_sort:
            uids = {id(d): u for u, d in out}
            out = [(uids[id(d)], d) for d in sort_documents([d for _, d in out], spec)]
        return out[:limit] if limit is not None else out

    def _template(
        self, kind: str, collection: str, query: Query, template: str
    ) -> tuple[Collection, Node, Stmt] | None:
        """The cached statement ``template`` (``{table}``, ``{where}``) over a query, or None if no table."""
        check_collection(collection)
        node = self._nodes.get(query)
        c = self._existing(collection)
        if c is None:
            return None
        key = (kind, c.name, c.generation, cache_key(query))
        return c, node, self._stmts.get(key, lambda params: template_sql(c, node, template, params, self.dialect))

    # -- writing ---------------------------------------------------------------------------------
    def _write_back(self, conn: psycopg.Connection, c: Collection, changes: list[Row]) -> None:
        stmt = sql.SQL("UPDATE {} SET doc = %s::jsonb WHERE uid = %s").format(c.table).as_string(None)
        rows = [(dumps(d), u) for u, d in changes]
        if len(rows) == 1:
            conn.execute(stmt, rows[0])
        else:
            conn.cursor().executemany(stmt, rows)

    def _python_update(
        self,
        conn: psycopg.Connection,
        c: Collection,
        query: Query,
        node: Node,
        upd: Update,
        limit: int | None,
        inside: bool = False,
    ) -> int:
        """Lock the matches, apply ``upd`` in Python, write them back (``inside`` the caller's transaction)."""
        with contextlib.nullcontext() if inside else conn.transaction():
            rows = self._fetch(conn, c, query, node, (), limit, " FOR UPDATE OF t")
            if not rows:
                return 0
            changes = []
            for u, d in rows:
                apply_update(d, upd)
                changes.append((u, encode(d)))
            self._write_back(conn, c, changes)
            return len(rows)

    def _updater(
        self,
        c: Collection,
        query: Query,
        node: Node,
        upd: Update,
        many: bool,
        inside: bool = False,
        python: bool = False,
    ) -> Callable[[psycopg.Connection], int]:
        """A function of a connection applying ``upd`` to the first (or every) match; it returns the count.

        One statement when SQL can apply the update, else (or with ``python``) the Python path.
        When the statement finds a stored value that needs Python (``TB002``), it falls back to
        the Python path; ``inside`` the caller's transaction (possibly in a pipeline, see
        :meth:`.series_store.SeriesMixin.append_points`), whose transaction that aborted, it
        raises :class:`NeedsPython` instead.
        """
        limit = None if many else 1
        qshape, subst = shape(node, cache_key(query))
        st = self._stmts.get(
            ("update", c.name, c.generation, qshape, update_shape(upd), many),
            lambda params: update_sql(c, node, upd, many, params, self.dialect, self._layout.functions),
        )
        if python or not st.exact:
            return lambda conn: self._python_update(conn, c, query, node, upd, limit, inside)
        params = {**st.params, **subst, **update_values(upd)}

        def exact(conn: psycopg.Connection) -> int:
            try:
                cur = conn.execute(st.text, params)
                if conn.info.pipeline_status != pq.PipelineStatus.OFF:
                    with conn.pipeline():  # leaving a nested pipeline block syncs: the row count is known
                        pass
            except psycopg.Error as e:
                if getattr(e, "sqlstate", None) != PYTHON_SQLSTATE:
                    raise
                if inside:
                    raise NeedsPython from e
                return self._python_update(conn, c, query, node, upd, limit)
            return cur.rowcount

        return exact

    def _upsert(self, c: Collection, node: Node, upd: Update) -> bool:
        new = upsert_seed(node)
        apply_update(new, upd, inserting=True)
        new = prepare_document(new)
        text = dumps(new)
        stmt = (
            sql.SQL("INSERT INTO {} (uid, doc) VALUES (%s, %s::jsonb) ON CONFLICT (uid) DO NOTHING")
            .format(c.table)
            .as_string(None)
        )
        return bool(self._run(lambda conn: conn.execute(stmt, (new["uid"], text)).rowcount))

    def _claim_in_python(self, c: Collection, query: Query, node: Node, upd: Update, spec: SortSpec) -> Document | None:
        """Lock one match (the first in ``spec`` order), apply ``upd`` in Python, write it back."""
        pick = None
        if not spec:
            qshape, subst = shape(node, cache_key(query))
            pick = self._stmts.get(
                ("pick", c.name, c.generation, qshape), lambda params: pick_sql(c, node, params, self.dialect)
            )

        def claim(conn: psycopg.Connection) -> Document | None:
            with conn.transaction():
                if pick is not None and pick.exact:
                    rows = conn.execute(pick.text, {**pick.params, **subst}).fetchall()
                else:
                    rows = self._fetch(conn, c, query, node, spec, 1, " FOR UPDATE OF t SKIP LOCKED")
                if not rows:
                    return None
                uid, doc = rows[0]
                apply_update(doc, upd)
                doc = encode(doc)
                self._write_back(conn, c, [(uid, doc)])
                return doc

        return (self._walk if pick is not None and pick.exact else self._run)(claim)
