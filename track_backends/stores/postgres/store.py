"""PostgresStore: the Store interface over the layout of :mod:`.schema`.

Concurrency: single statements run in autocommit; a claim is one
``UPDATE ... WHERE uid = (SELECT uid ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING doc``.
Updates that SQL cannot express (``$inc``, ``$min``, ``$max``; everything on CockroachDB, which
lacks PL/pgSQL recursion) lock the rows ``FOR UPDATE`` and apply the update in Python in the same
transaction. Serialization failures (40001) and deadlocks (40P01) are retried a bounded number
of times; CockroachDB always runs SERIALIZABLE, PostgreSQL when ``isolation=serializable``.

Metric points live in a table beside each collection's (:mod:`.series`): appending them with a
summary update is one transaction, and deleting documents deletes their points in the same
statement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg import pq, sql

from ...clock import ServerClock
from ...encoding import encode, prepare_document
from ...errors import QueryError, StoreError
from ...query import apply_update, parse_projection, parse_sort, predicate_for, project
from ...query.ast import Node
from ...query.cache import QUERIES, UPDATES, cache_key
from ...query.sort import SortSpec, sort_documents
from ...query.update import Update, upsert_seed
from ...store import Document, Query, Store, check_collection, check_index_keys, check_limit
from ...uri import StoreURI
from .connection import Connections
from .fragments import COCKROACH, POSTGRES
from .indexes import Collection
from .jsonb import dumps
from .options import Options
from .schema import Layout
from .series import SeriesMixin, delete_sql
from .sort import UNORDERED_BRACKETS
from .statements import StatementCache, Stmt, claim_sql, find_sql, shape, template_sql, update_sql
from .updates import update_shape, update_values

Row = tuple[str, Document]
_UPSERT_ATTEMPTS = 5
_DELETE = (
    "WITH gone AS (DELETE FROM {table} t WHERE {where} RETURNING t.uid),"
    " points AS (DELETE FROM {points} p WHERE p.uid IN (SELECT uid FROM gone))"
    " SELECT count(*) FROM gone"
)


class PostgresStore(SeriesMixin, Store):
    """A :class:`~track_backends.store.Store` on PostgreSQL or CockroachDB (see the package docstring)."""

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
        return self._conns.retries

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
        self, conn: psycopg.Connection, c: Collection, query: Query, node: Node, upd: Update, limit: int | None
    ) -> int:
        """Lock the matches, apply ``upd`` in Python and write them back (the caller's transaction, or one)."""
        idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
        with conn.transaction() if idle else contextlib.nullcontext():
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
        self, c: Collection, query: Query, node: Node, upd: Update, many: bool
    ) -> Callable[[psycopg.Connection], int]:
        """A function of a connection applying ``upd`` to the first (or every) match; it returns the count."""
        qshape, subst = shape(node, cache_key(query))
        st = self._stmts.get(
            ("update", c.name, c.generation, qshape, update_shape(upd), many),
            lambda params: update_sql(c, node, upd, many, params, self.dialect, self._layout.functions),
        )
        if st.exact:
            params = {**st.params, **subst, **update_values(upd)}
            return lambda conn: conn.execute(st.text, params).rowcount
        limit = None if many else 1
        return lambda conn: self._python_update(conn, c, query, node, upd, limit)

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
        def claim(conn: psycopg.Connection) -> Document | None:
            with conn.transaction():
                rows = self._fetch(conn, c, query, node, spec, 1, " FOR UPDATE OF t SKIP LOCKED")
                if not rows:
                    return None
                uid, doc = rows[0]
                apply_update(doc, upd)
                doc = encode(doc)
                self._write_back(conn, c, [(uid, doc)])
                return doc

        return self._run(claim)

    # -- Store API --------------------------------------------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document (see :meth:`Store.insert`).

        Raises:
            QueryError: The collection name is invalid.
            EncodingError: The document cannot be stored or has no non-empty string ``uid``.
            DuplicateKeyError: A document with the same ``uid`` (or unique key) exists.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        prepared = prepare_document(doc)
        uid = prepared["uid"]
        text = dumps(prepared, owned=True)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None
        stmt = c.insert_sql
        if stmt is None:
            stmt = c.insert_sql = (
                sql.SQL("INSERT INTO {} (uid, doc) VALUES (%s, %s::jsonb)").format(c.table).as_string(None)
            )
        self._run(lambda conn: conn.execute(stmt, (uid, text)))

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert documents, all or none (see :meth:`Store.insert_many`).

        Raises:
            QueryError: The collection name is invalid.
            EncodingError: A document cannot be stored or has no non-empty string ``uid``.
            DuplicateKeyError: A document collides with a stored one or another one.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        prepared = [prepare_document(d) for d in docs]
        if not prepared:
            return 0
        uids = [d["uid"] for d in prepared]
        texts = [dumps(d, owned=True) for d in prepared]
        c = self._coll(collection, True)
        assert c is not None
        if self.cockroach:
            stmt = sql.SQL("INSERT INTO {} (uid, doc) VALUES (%s, %s::jsonb)").format(c.table).as_string(None)

            def write(conn: psycopg.Connection) -> None:
                with conn.transaction():
                    conn.cursor().executemany(stmt, list(zip(uids, texts)))

        else:
            stmt = (
                sql.SQL("INSERT INTO {} (uid, doc) SELECT * FROM unnest(%s::text[], %s::text[]::jsonb[])")
                .format(c.table)
                .as_string(None)
            )

            def write(conn: psycopg.Connection) -> None:
                conn.execute(stmt, (uids, texts))

        self._run(write)
        return len(prepared)

    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Return copies of matching documents (see :meth:`Store.find`).

        Raises:
            QueryError: The collection name, query, sort, limit or projection is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        node = self._nodes.get(query)
        spec = parse_sort(sort)
        lim = check_limit(limit)
        proj = parse_projection(projection)
        c = self._existing(collection)
        if c is None:
            return []
        rows = self._run(lambda conn: self._fetch(conn, c, query, node, spec, lim), read=True)
        docs = [d for _, d in rows]
        if proj is not None:
            docs = [project(d, proj) for d in docs]
        return docs

    def count(self, collection: str, query: Query = None) -> int:
        """Count matching documents (see :meth:`Store.count`).

        Raises:
            QueryError: The collection name or query is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        found = self._template("count", collection, query, "SELECT count(*) FROM {table} t WHERE {where}")
        if found is None:
            return 0
        c, node, st = found
        if st.exact:
            return int(self._run(lambda conn: conn.execute(st.text, st.params).fetchone()[0], read=True))
        return len(self._run(lambda conn: self._fetch(conn, c, query, node, (), None), read=True))

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update the first or every match (see :meth:`Store.update`).

        Raises:
            QueryError: The collection name, query or update is invalid, or the update does not
                apply to a matching document (then nothing is changed).
            EncodingError: An updated document cannot be stored.
            DuplicateKeyError: An updated or upserted document breaks a unique index.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server, or an upsert that kept colliding with
                concurrent inserts.
        """
        check_collection(collection)
        node = self._nodes.get(query)
        upd = self._updates.get(update)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None
        apply = self._updater(c, query, node, upd, many)
        for _ in range(_UPSERT_ATTEMPTS):
            n = self._run(apply)
            if n or not upsert:
                return n
            if self._upsert(c, node, upd):
                return 1
        raise StoreError(f"upsert into {collection!r} kept colliding with concurrent inserts")

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match and return it (see :meth:`Store.find_one_and_update`).

        Raises:
            QueryError: The collection name, query, update or sort is invalid, or the update
                does not apply to the selected document (then nothing is changed).
            EncodingError: The updated document cannot be stored.
            DuplicateKeyError: The updated document breaks a unique index.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        qkey = cache_key(query)
        node = self._nodes.get(query, qkey)
        upd = self._updates.get(update)
        spec = parse_sort(sort)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None
        if spec:  # the claim statement picks any match: a sorted claim runs in Python
            return self._claim_in_python(c, query, node, upd, spec)
        qshape, subst = shape(node, qkey)
        st = self._stmts.get(
            ("claim", c.name, c.generation, qshape, update_shape(upd)),
            lambda params: claim_sql(c, node, upd, params, self.dialect, self._layout.functions),
        )
        if not st.exact:
            return self._claim_in_python(c, query, node, upd, spec)
        params = {**st.params, **subst, **update_values(upd)}
        row = self._run(lambda conn: conn.execute(st.text, params).fetchone())
        return row[0] if row else None

    def delete(self, collection: str, query: Query) -> int:
        """Delete matching documents and their metric points (see :meth:`Store.delete`).

        Raises:
            QueryError: The collection name or query is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        found = self._template("delete", collection, query, _DELETE)
        if found is None:
            return 0
        c, node, st = found
        if st.exact:
            return int(self._run(lambda conn: conn.execute(st.text, st.params).fetchone()[0]))
        stmt = sql.SQL("DELETE FROM {} WHERE uid = ANY(%s)").format(c.table).as_string(None)
        points = delete_sql(c.points) if c.points is not None else None

        def delete(conn: psycopg.Connection) -> int:
            with conn.transaction():
                uids = [u for u, _ in self._fetch(conn, c, query, node, (), None, " FOR UPDATE OF t")]
                if uids:
                    conn.execute(stmt, (uids,))
                    if points is not None:
                        conn.execute(points, (uids,))
                return len(uids)

        return int(self._run(delete))

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create an index if it does not exist yet (see :meth:`Store.ensure_index`).

        Raises:
            QueryError: The collection name or keys are invalid, or an index on the same paths
                exists with the other ``unique``.
            DuplicateKeyError: ``unique`` is asked for and stored documents already collide.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        paths = check_index_keys(keys)
        if paths == ("uid",):
            return
        c = self._coll(collection, True)
        assert c is not None
        for ix in c.indexes:
            if ix.paths == paths:
                if ix.unique != bool(unique):
                    raise QueryError(f"an index on {list(paths)} of {collection!r} exists with unique={ix.unique}")
                return
        self._run(lambda conn: self._layout.ensure_index(conn, c, paths, bool(unique)))

    def explain(self, collection: str, query: Query = None, *, claim: Document | None = None) -> str:
        """Return PostgreSQL's plan for ``find(collection, query)`` (or a claim with update ``claim``).

        The plan is computed with ``EXPLAIN`` (nothing is executed), for checking that a query
        uses an index.

        Raises:
            QueryError: The query or update is invalid, the collection does not exist, or the
                claim has not run yet as one SQL statement.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        node = self._nodes.get(query)
        c = self._existing(collection)
        if c is None:
            raise QueryError(f"collection {collection!r} does not exist")
        qkey = cache_key(query)
        if claim is not None:
            upd = self._updates.get(claim)  # validates it
            st = self._stmts.peek(("claim", c.name, c.generation, shape(node, qkey)[0], update_shape(upd)))
            if st is None or not st.exact:
                raise QueryError("this claim does not run as one SQL statement (or has not run yet)")
        else:
            st = self._find_stmt(c, qkey, node, (), None, "")
        rows = self._run(lambda conn: conn.execute("EXPLAIN " + st.text, st.params).fetchall(), read=True)
        return "\n".join(r[0] for r in rows)

    def close(self) -> None:
        """Close the connection pool; later calls raise StoreUnavailableError. Closing twice is harmless."""
        self._conns.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri.redacted}>"


def from_uri(uri: StoreURI) -> PostgresStore:
    """Registry factory for ``postgresql:``, ``postgres:``, ``cockroach:`` and ``cockroachdb:``.

    Raises:
        InvalidURIError: The URI carries an unknown or invalid option.
    """
    return PostgresStore(uri)
