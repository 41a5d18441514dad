"""PostgresStore: the Store interface over the layout of :mod:`.schema`.

Concurrency: single statements run in autocommit; a claim is one
``UPDATE ... WHERE uid = (SELECT uid ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING doc``, on
the claim pool when an index answers it (:data:`.connection.WALK_SETTINGS`). Updates that SQL
cannot express (``$inc``, ``$min``, ``$max``; everything on CockroachDB, which lacks PL/pgSQL
recursion) lock the rows ``FOR UPDATE`` and apply the update in Python in the same transaction
(see :mod:`.core`). Serialization failures (40001) and deadlocks (40P01) are retried a bounded
number of times; CockroachDB always runs SERIALIZABLE, PostgreSQL when ``isolation=serializable``.

Metric points live in a table beside each collection's (:mod:`.series`): appending them with a
summary update is one transaction, and deleting documents deletes their points in the same
statement. Blobs (artifacts' bytes) live in two tables of the namespace (:mod:`.blobstore`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ...encoding import prepare_document
from ...errors import QueryError, StoreError
from ...query import parse_projection, parse_sort, project
from ...query.cache import cache_key
from ...store import Document, Query, check_collection, check_index_keys, check_limit
from ...uri import StoreURI
from .blobstore import BlobsMixin
from .connection import PYTHON_SQLSTATE
from .jsonb import dumps
from .series import delete_sql
from .series_store import SeriesMixin
from .statements import claim_sql, shape
from .updates import update_shape, update_values

_UPSERT_ATTEMPTS = 5
_PYTHON = ("python",)
_DELETE = (
    "WITH gone AS (DELETE FROM {table} t WHERE {where} RETURNING t.uid),"
    " points AS (DELETE FROM {points} p WHERE p.uid IN (SELECT uid FROM gone))"
    " SELECT count(*) FROM gone"
)


class PostgresStore(BlobsMixin, SeriesMixin):
    """A :class:`~track_backends.store.Store` on PostgreSQL or CockroachDB (see the package docstring)."""

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
            return int(self._run(lambda conn: _scalar(conn.execute(st.text, st.params).fetchone()), read=True))
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

        def claim(conn: psycopg.Connection) -> tuple[Any, ...] | None:
            try:
                return conn.execute(st.text, params).fetchone()
            except psycopg.Error as e:
                if getattr(e, "sqlstate", None) != PYTHON_SQLSTATE:
                    raise
                return _PYTHON  # the chosen document holds a value SQL does not update exactly

        row = (self._walk if st.walk else self._run)(claim)
        if row is _PYTHON:
            return self._claim_in_python(c, query, node, upd, spec)
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
            return int(self._run(lambda conn: _scalar(conn.execute(st.text, st.params).fetchone())))
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

        The plan of a claim whose update runs in Python is the plan of the statement that picks
        and locks its document.

        The plan is computed with ``EXPLAIN`` (nothing is executed), for checking that a query
        uses an index; a claim's on the connections it runs on.

        Raises:
            QueryError: The query or update is invalid, the collection does not exist, or the
                claim has not run yet, or picks its document in Python.
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
            qshape = shape(node, qkey)[0]
            st = self._stmts.peek(("claim", c.name, c.generation, qshape, update_shape(upd)))
            if st is None or not st.exact:  # an update in Python: the statement that picks the document
                st = self._stmts.peek(("pick", c.name, c.generation, qshape))
            if st is None or not st.exact:
                raise QueryError("this claim does not pick its document with one SQL statement (or has not run yet)")
        else:
            st = self._find_stmt(c, qkey, node, (), None, "")
        run = self._walk if claim is not None and st.walk else self._run
        rows = run(lambda conn: conn.execute("EXPLAIN " + st.text, st.params).fetchall(), read=True)
        return "\n".join(r[0] for r in rows)

    def close(self) -> None:
        """Close the connection pools; later calls raise StoreUnavailableError. Closing twice is harmless."""
        self._conns.close()
        if self._walks is not None:
            self._walks.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri.redacted}>"


def from_uri(uri: StoreURI) -> PostgresStore:
    """Registry factory for ``postgresql:``, ``postgres:``, ``cockroach:`` and ``cockroachdb:``.

    Raises:
        InvalidURIError: The URI carries an unknown or invalid option.
    """
    return PostgresStore(uri)


def _scalar(row: tuple[Any, ...] | None) -> Any:
    """The one value of a one-row, one-column result."""
    assert row is not None
    return row[0]
