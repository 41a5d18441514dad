"""PostgreSQL and CockroachDB store (``postgresql://``, ``postgres://``, ``cockroach://``, ``cockroachdb://``).

Layout: one table per collection, ``uid text COLLATE "C" PRIMARY KEY, doc jsonb``, in the URI's
``schema`` with the URI's table ``prefix``. Documents are encoded by :func:`track_backends.query.sql.dumps`
(key order kept in ``"$o"`` lists, floats kept as floats). Two bookkeeping tables,
``<prefix>tb$meta`` (the schema version) and ``<prefix>tb$indexes`` (collections and their
indexes), are created on first use; an older schema version is migrated forward under an
advisory lock.

Indexes: ``ensure_index(paths)`` adds, per path, two generated columns, ``k_<hash>`` (the
text at the path) and ``o_<hash>`` (an array lies on the path), a b-tree over the ``k`` columns
and a partial index over the rows whose ``o`` is true. A query that pins every path of an index
to strings (``{"group_id": g, "status.name": {"$in": [...]}}``) is answered through the b-tree
plus the (usually empty) overflow index, and then checked exactly. Unique indexes are
expression indexes over the memory engine's key. Trials get ``(group_id, status.name)`` and
``hash`` by default.

Concurrency: single statements run in autocommit; a claim is one
``UPDATE ... WHERE uid = (SELECT uid ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING doc``.
Updates that SQL cannot express (``$inc``; everything on CockroachDB, which lacks PL/pgSQL
recursion) lock the rows ``FOR UPDATE`` and apply the update in Python in the same
transaction. Serialization failures (40001) and deadlocks (40P01) are retried a bounded number
of times; CockroachDB always runs SERIALIZABLE, PostgreSQL when ``isolation=serializable``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors as pgerr
from psycopg import sql
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from ..encoding import encode
from ..errors import (
    DuplicateKeyError,
    EncodingError,
    InvalidURIError,
    LockTimeoutError,
    QueryError,
    StoreError,
    StoreUnavailableError,
)
from ..query import apply_update, parse, parse_projection, parse_sort, parse_update, predicate_for, project
from ..query import sql as qsql
from ..query.ast import Compare, Node
from ..query.cache import ParseCache, cache_key
from ..query.sort import sort_documents
from ..query.update import Update, upsert_seed
from ..store import DEFAULT_INDEXES, Document, Query, Store, check_collection, check_index_keys, check_limit
from ..uri import StoreURI, mask_password

SCHEMA_VERSION = 1
"""The layout version this module writes; older stored versions are migrated forward."""

Migration = Callable[["PostgresStore", psycopg.Connection], None]
MIGRATIONS: dict[int, Migration] = {}
"""``MIGRATIONS[v]`` upgrades a namespace from version ``v`` to ``v + 1`` (inside a transaction)."""

_PASSTHROUGH = (
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "application_name",
    "target_session_attrs",
)
_OPTIONS = frozenset(
    _PASSTHROUGH
    + (
        "host",
        "options",
        "connect_timeout",
        "pool_min",
        "pool_max",
        "pool_timeout",
        "isolation",
        "max_retries",
        "schema",
        "prefix",
        "lock_timeout",
        "statement_timeout",
        "prepare_threshold",
    )
)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_PREFIX_RE = re.compile(r"^[a-z0-9_]{0,30}$")
_ISOLATIONS = {"read_committed": "read committed", "repeatable_read": "repeatable read", "serializable": "serializable"}
_RETRY_SQLSTATES = ("40001", "40P01")
_QUERY_SQLSTATE = "TB001"
_CACHE_SIZE = 512


def _h(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass
class _Index:
    paths: tuple[str, ...]
    unique: bool


@dataclass
class _Coll:
    """What this process knows of one collection's table."""

    name: str
    table: sql.Identifier
    indexes: list[_Index] = field(default_factory=list)
    generation: int = 0
    insert_sql: str | None = None

    def ordinary(self) -> list[_Index]:
        return [ix for ix in self.indexes if not ix.unique]


def _kcol(path: str) -> sql.Identifier:
    return sql.Identifier(f"k_{_h(path)}")


def _ocol(path: str) -> sql.Identifier:
    return sql.Identifier(f"o_{_h(path)}")


@dataclass
class _Stmt:
    """A rendered statement with its parameters, cached per query shape."""

    text: str
    params: dict[str, Any]
    exact: bool = True
    node: Node | None = None
    nbrackets: int = 0


class PostgresStore(Store):
    """A :class:`~track_backends.store.Store` on PostgreSQL or CockroachDB (see the module docstring)."""

    scheme = "postgresql"

    def __init__(self, uri: StoreURI) -> None:
        uri.check_options(_OPTIONS)
        self.uri = uri
        self.scheme = uri.scheme
        self.cockroach = uri.scheme in ("cockroach", "cockroachdb")
        self.dialect = qsql.COCKROACH if self.cockroach else qsql.POSTGRES
        self.schema = uri.option("schema", "public")
        self.prefix = uri.option("prefix", "")
        if not _NAME_RE.match(self.schema):
            raise InvalidURIError(f"schema={self.schema!r} in {uri.redacted}: use letters, digits and '_'")
        if not _PREFIX_RE.match(self.prefix):
            raise InvalidURIError(f"prefix={self.prefix!r} in {uri.redacted}: use lower-case letters, digits and '_'")
        self.connect_timeout = uri.option("connect_timeout", 5.0, float)
        self.pool_min = uri.option("pool_min", 1, int)
        self.pool_max = uri.option("pool_max", 4, int)
        self.pool_timeout = uri.option("pool_timeout", 30.0, float)
        self.max_retries = uri.option("max_retries", 20, int)
        iso = uri.option("isolation", "serializable" if self.cockroach else "read_committed").lower()
        if iso not in _ISOLATIONS:
            raise InvalidURIError(f"isolation={iso!r} in {uri.redacted}: use one of {sorted(_ISOLATIONS)}")
        self.isolation = iso
        if self.pool_min < 0 or self.pool_max < max(1, self.pool_min) or self.connect_timeout <= 0:
            raise InvalidURIError(f"bad pool or timeout options in {uri.redacted}")
        host = uri.host or uri.params.get("host") or "localhost"
        port = uri.port or (26257 if self.cockroach else 5432)
        self.where = f"{host}:{port}"
        conn_kw: dict[str, Any] = {
            "host": host,
            "port": str(port),
            "dbname": uri.path.lstrip("/") or None,
            "user": uri.username or None,
            "connect_timeout": str(max(1, int(-(-self.connect_timeout // 1)))),
        }
        for name in _PASSTHROUGH:
            if name in uri.params:
                conn_kw[name] = uri.params[name]
        options = [uri.params["options"]] if "options" in uri.params else []
        if not self.cockroach or iso != "serializable":
            options.append(f"-c default_transaction_isolation={_ISOLATIONS[iso].replace(' ', chr(92) + ' ')}")
        for opt in ("lock_timeout", "statement_timeout"):
            if opt in uri.params:
                options.append(f"-c {opt}={int(uri.option(opt, 0.0, float) * 1000)}")
        if options:
            conn_kw["options"] = " ".join(options)
        self._conninfo = psycopg.conninfo.make_conninfo(**{k: v for k, v in conn_kw.items() if v is not None})
        self._password = uri.password
        self._prepare_threshold = uri.option("prepare_threshold", 5, int)
        self._pool: ConnectionPool | None = None
        self._open_lock = threading.Lock()
        self._closed = False
        self._colls: dict[str, _Coll] = {}
        self._stmts: dict[Any, _Stmt] = {}
        self._nodes: ParseCache[Node] = ParseCache(lambda q: parse(q or {}))
        self._updates: ParseCache[Update] = ParseCache(parse_update)
        self.retries = 0
        """How many transactions were retried after a serialization failure or deadlock."""
        ident = sql.Identifier
        self._meta = ident(self.schema, f"{self.prefix}tb$meta")
        self._registry = ident(self.schema, f"{self.prefix}tb$indexes")
        self._functions: dict[str, sql.Composable] | None = (
            None
            if self.cockroach
            else {n: ident(self.schema, f"{self.prefix}tb${n}") for n in ("set", "unset", "push")}
        )

    # -- connections ---------------------------------------------------------------------------
    def _connect_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"autocommit": True, "prepare_threshold": self._prepare_threshold}
        if self._password is not None:
            kw["password"] = self._password
        return kw

    def _configure(self, conn: psycopg.Connection) -> None:
        set_json_loads(qsql.loads, conn)

    def _unavailable(self, e: BaseException | str) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"cannot reach the {self.scheme} server at {self.where}: {mask_password(str(e)).strip()}"
        )

    def _open(self) -> ConnectionPool:
        pool = self._pool
        if pool is not None:
            return pool
        if self._closed:
            raise StoreUnavailableError(f"the {self.scheme} store at {self.where} is closed")
        with self._open_lock:
            if self._pool is not None:
                return self._pool
            try:
                conn = psycopg.connect(self._conninfo, **self._connect_kwargs())
            except psycopg.OperationalError as e:
                raise self._unavailable(e) from e
            except psycopg.Error as e:
                raise StoreError(f"cannot open the {self.scheme} store at {self.where}: {mask_password(str(e))}") from e
            try:
                self._configure(conn)
                self._bootstrap(conn)
            finally:
                conn.close()
            pool = ConnectionPool(
                self._conninfo,
                kwargs=self._connect_kwargs(),
                min_size=self.pool_min,
                max_size=self.pool_max,
                timeout=self.pool_timeout,
                configure=self._configure,
                open=False,
                name=f"track_backends:{self.where}",
                reconnect_timeout=max(self.connect_timeout * 3, 10.0),
            )
            try:
                pool.open(wait=self.pool_min > 0, timeout=self.connect_timeout * 2 + 1)
            except PoolTimeout as e:
                pool.close()
                raise self._unavailable(e) from e
            self._pool = pool
            return pool

    def _run(self, fn: Callable[[psycopg.Connection], Any], *, read: bool = False) -> Any:
        """Run ``fn(conn)`` on a pooled connection, retrying serialization failures and deadlocks."""
        pool = self._pool or self._open()
        attempt = 0
        while True:
            try:
                conn = pool.getconn(timeout=self.pool_timeout)
                try:
                    return fn(conn)
                finally:
                    pool.putconn(conn)
            except psycopg.Error as e:
                state = getattr(e, "sqlstate", None)
                if state in _RETRY_SQLSTATES and attempt < self.max_retries:
                    attempt += 1
                    self.retries += 1
                    time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))
                    continue
                if read and attempt == 0 and isinstance(e, psycopg.OperationalError) and not self._closed:
                    attempt += 1  # a dropped connection: the pool replaces it; reads are safe to repeat
                    continue
                raise self._wrap(e) from e
            except PoolTimeout as e:
                if self._closed:
                    raise StoreUnavailableError(f"the {self.scheme} store at {self.where} is closed") from e
                raise self._unavailable(f"no connection within {self.pool_timeout} s ({e})") from e
            except PoolClosed as e:  # the pool was closed under us
                raise StoreUnavailableError(f"the {self.scheme} store at {self.where} is closed") from e
            except UnicodeEncodeError as e:  # a lone surrogate cannot be sent as UTF-8
                raise EncodingError(f"PostgreSQL cannot store this value: {e}") from e

    def _wrap(self, e: psycopg.Error) -> Exception:
        state = getattr(e, "sqlstate", None)
        msg = mask_password(str(e)).strip()
        if isinstance(e, pgerr.UniqueViolation):
            return DuplicateKeyError(msg)
        if state == _QUERY_SQLSTATE:
            return QueryError(msg)
        if state in ("22P05", "22P02", "22021", "54000") and "unicode" in msg.lower():
            return EncodingError(f"PostgreSQL cannot store this value: {msg}")
        if state == "55P03":
            return LockTimeoutError(msg)
        if state in _RETRY_SQLSTATES:
            return StoreError(f"gave up after {self.max_retries} retries: {msg}")
        if isinstance(e, psycopg.OperationalError) or (state or "").startswith("08") or state in ("57P01", "57P02"):
            return self._unavailable(e)
        return StoreError(msg)

    # -- schema ----------------------------------------------------------------------------------
    def _lock(self, conn: psycopg.Connection) -> None:
        if not self.cockroach:
            key = int(_h("track_backends", self.schema, self.prefix)[:15], 16)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))

    def _bootstrap(self, conn: psycopg.Connection) -> None:
        """Create or migrate the bookkeeping tables and helper functions; load the collections."""
        for attempt in range(self.max_retries + 1):
            try:
                with conn.transaction():
                    self._lock(conn)
                    if not conn.execute(
                        "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (self.schema,)
                    ).fetchone():
                        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                    conn.execute(
                        sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value jsonb NOT NULL)").format(
                            self._meta
                        )
                    )
                    conn.execute(
                        sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} (collection text NOT NULL, paths text[] NOT NULL,"
                            " is_unique boolean NOT NULL, PRIMARY KEY (collection, paths))"
                        ).format(self._registry)
                    )
                    row = conn.execute(
                        sql.SQL("SELECT value FROM {} WHERE key = 'schema_version'").format(self._meta)
                    ).fetchone()
                    if row is None:
                        self._create_functions(conn)
                        version = SCHEMA_VERSION
                        conn.execute(
                            sql.SQL("INSERT INTO {} (key, value) VALUES ('schema_version', %s::jsonb)").format(
                                self._meta
                            ),
                            (json.dumps(version),),
                        )
                    else:
                        version = int(row[0])
                    if version > SCHEMA_VERSION:
                        raise StoreError(
                            f"the {self.scheme} store at {self.where} (schema {self.schema!r}, prefix {self.prefix!r})"
                            f" has layout version {version}, newer than this library's {SCHEMA_VERSION}: upgrade it"
                        )
                    while version < SCHEMA_VERSION:
                        MIGRATIONS[version](self, conn)
                        version += 1
                        conn.execute(
                            sql.SQL("UPDATE {} SET value = %s::jsonb WHERE key = 'schema_version'").format(self._meta),
                            (json.dumps(version),),
                        )
                    self._load_registry(conn)
                return
            except psycopg.Error as e:
                if getattr(e, "sqlstate", None) in _RETRY_SQLSTATES + ("23505", "42P07") and attempt < self.max_retries:
                    time.sleep(random.uniform(0, 0.05))
                    continue
                raise self._wrap(e) from e

    def _load_registry(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(sql.SQL("SELECT collection, paths, is_unique FROM {}").format(self._registry)).fetchall()
        colls: dict[str, _Coll] = {}
        for name, paths, unique in rows:
            c = colls.get(name) or colls.setdefault(name, _Coll(name, self._table(name)))
            if paths:
                c.indexes.append(_Index(tuple(paths), bool(unique)))
        for name, c in colls.items():
            old = self._colls.get(name)
            c.generation = (old.generation + 1) if old else 0
            self._colls[name] = c

    def _create_functions(self, conn: psycopg.Connection) -> None:
        if self.cockroach:
            return
        f = {n: sql.Identifier(self.schema, f"{self.prefix}tb${n}") for n in ("put", "arrput", "set", "unset", "push")}
        for text in _FUNCTIONS:
            conn.execute(sql.SQL(text).format(**f))

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, f"{self.prefix}{name}")

    def _coll(self, name: str, create: bool) -> _Coll | None:
        """The collection's table: created (with default indexes) when ``create``, else None if absent."""
        c = self._colls.get(name)
        if c is not None or not create:
            return c
        check_collection(name)
        if len(self.prefix) + len(name) > 63:
            raise QueryError(f"collection name {name!r} is too long with the table prefix {self.prefix!r}")

        def create_table(conn: psycopg.Connection) -> None:
            with conn.transaction():
                self._lock(conn)
                known = conn.execute(
                    sql.SQL("SELECT 1 FROM {} WHERE collection = %s LIMIT 1").format(self._registry), (name,)
                ).fetchone()
                if known is None:
                    table = self._table(name)
                    exists = conn.execute(
                        "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                        (self.schema, f"{self.prefix}{name}"),
                    ).fetchone()
                    if exists:
                        raise StoreError(
                            f"table {self.schema}.{self.prefix}{name} exists but was not created by track_backends;"
                            " use another schema or prefix"
                        )
                    collate = sql.SQL(' COLLATE "C"') if not self.cockroach else sql.SQL("")
                    conn.execute(
                        sql.SQL("CREATE TABLE {} (uid text{} PRIMARY KEY, doc jsonb NOT NULL)").format(table, collate)
                    )
                    conn.execute(
                        sql.SQL("INSERT INTO {} (collection, paths, is_unique) VALUES (%s, '{{}}', false)").format(
                            self._registry
                        ),
                        (name,),
                    )
                    for paths, unique in DEFAULT_INDEXES.get(name, ()):
                        self._create_index(conn, _Coll(name, table), paths, unique)
                self._load_registry(conn)

        self._run(create_table)
        return self._colls[name]

    def _create_index(self, conn: psycopg.Connection, c: _Coll, paths: tuple[str, ...], unique: bool) -> None:
        doc = sql.Identifier("doc")
        stem = f"{self.prefix}{c.name}"[:40]
        name = sql.Identifier(f"{stem}_{'u' if unique else 'x'}{_h(c.name, paths, unique)[:12]}")
        if unique:
            conn.execute(
                sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
                    name, c.table, sql.SQL(", ").join(qsql.unique_key(p, doc) for p in paths)
                )
            )
        else:
            have = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                    (self.schema, f"{self.prefix}{c.name}"),
                ).fetchall()
            }
            adds = []
            for p in paths:
                if f"k_{_h(p)}" not in have:
                    adds.append(
                        sql.SQL("ADD COLUMN {} text GENERATED ALWAYS AS {} STORED").format(
                            _kcol(p), qsql.key_text(p, doc)
                        )
                    )
                    adds.append(
                        sql.SQL("ADD COLUMN {} boolean GENERATED ALWAYS AS {} STORED").format(
                            _ocol(p), qsql.overflow(p, doc)
                        )
                    )
            if adds:
                conn.execute(sql.SQL("ALTER TABLE {} ").format(c.table) + sql.SQL(", ").join(adds))
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} ({})").format(name, c.table, sql.SQL(", ").join(_kcol(p) for p in paths))
            )
            oname = sql.Identifier(f"{stem}_o{_h(c.name, paths)[:12]}")
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} (uid) WHERE {}").format(
                    oname, c.table, sql.SQL(" OR ").join(_ocol(p) for p in paths)
                )
            )
        conn.execute(
            sql.SQL("INSERT INTO {} (collection, paths, is_unique) VALUES (%s, %s, %s)").format(self._registry),
            (c.name, list(paths), unique),
        )

    # -- compiling ---------------------------------------------------------------------------------
    def _node(self, query: Query, key: str | None = None) -> Node:
        return self._nodes.get(query, key)

    def _update(self, update: Any, key: str | None = None) -> Update:
        return self._updates.get(update, key)

    def _where(self, c: _Coll, node: Node, params: qsql.Params) -> tuple[sql.Composable, bool, Any]:
        """The WHERE condition, its exactness, and the (index, overflow) pair when an index applies."""
        uid = qsql.uid_condition(node, params, sql.Identifier("uid"))
        if uid is not None:
            return uid.sql, True, None
        cond = qsql.compile_condition(node, params, dialect=self.dialect)
        pinned = qsql.pins(node)
        best: _Index | None = None
        for ix in c.ordinary():
            if all(p in pinned for p in ix.paths) and (best is None or len(ix.paths) > len(best.paths)):
                best = ix
        if best is None:
            return cond.sql, cond.exact, None
        keys = []
        for p in best.paths:
            vals = pinned[p]
            if len(vals) == 1:
                keys.append(sql.SQL("{} = {}").format(_kcol(p), params.text(vals[0])))
            else:
                keys.append(sql.SQL("{} = ANY({})").format(_kcol(p), params.add(vals, "text[]")))
        idx = sql.SQL(" AND ").join(keys)
        ovf = sql.SQL(" OR ").join(_ocol(p) for p in best.paths)
        where = sql.SQL("(({}) OR ({})) AND {}").format(idx, ovf, cond.sql)
        return where, cond.exact, (idx, ovf, cond.sql)

    def _stmt(
        self, key: tuple[Any, ...], build: Callable[[qsql.Params], tuple[sql.Composable, dict[str, Any]]]
    ) -> _Stmt:
        hit = self._stmts.get(key)
        if hit is None:
            params = qsql.Params()
            composed, extra = build(params)
            hit = _Stmt(composed.as_string(None), params.values, **extra)
            if None in key:  # a query or update without an exact text (e.g. NumPy values)
                return hit
            if len(self._stmts) >= _CACHE_SIZE:
                self._stmts.clear()
            self._stmts[key] = hit
        return hit

    def _find_stmt(self, c: _Coll, qkey: str, node: Node, spec: Any, limit: int | None, lock: str) -> _Stmt:
        def build(params: qsql.Params) -> tuple[sql.Composable, dict[str, Any]]:
            where, exact, _ = self._where(c, node, params)
            cols = [sql.SQL("t.uid"), sql.SQL("t.doc")]
            joins: sql.Composable = sql.SQL("")
            order: sql.Composable = sql.SQL("")
            nb = 0
            if spec:
                s = qsql.compile_sort(spec, params, doc=sql.SQL("t.doc"), uid=sql.SQL("t.uid"), dialect=self.dialect)
                joins, order = s.joins, sql.SQL(" ORDER BY ") + s.order_by
                cols.extend(s.brackets)
                nb = len(s.brackets)
            lim = (
                sql.SQL(" LIMIT {}").format(params.add(limit, "bigint")) if limit is not None and exact else sql.SQL("")
            )
            locking = sql.SQL(lock) if lock else sql.SQL("")
            text = sql.SQL("SELECT {} FROM {} t{} WHERE {}{}{}{}").format(
                sql.SQL(", ").join(cols), c.table, joins, where, order, lim, locking
            )
            return text, {"exact": exact, "node": node, "nbrackets": nb}

        return self._stmt(("find", c.name, c.generation, qkey, repr(spec), limit, lock), build)

    def _fetch(
        self, conn: psycopg.Connection, c: _Coll, query: Query, node: Node, spec: Any, limit: int | None, lock: str = ""
    ) -> list[tuple[str, Document]]:
        """Matching ``(uid, doc)`` rows in ``spec`` order, at most ``limit``, exactly (re-checked)."""
        qshape, subst = _shape(node, cache_key(query))
        st = self._find_stmt(c, qshape, node, spec, limit, lock)
        rows = conn.execute(st.text, {**st.params, **subst}).fetchall()
        if spec and st.nbrackets and any(b in (4, 5) for r in rows for b in r[2 : 2 + st.nbrackets]):
            if limit is not None and st.exact:  # documents or arrays as sort keys: sort in Python
                st = self._find_stmt(c, qshape, node, spec, None, lock)
                rows = conn.execute(st.text, {**st.params, **subst}).fetchall()
            out = [(r[0], r[1]) for r in rows]
            if not st.exact:
                pred = predicate_for(node)
                out = [r for r in out if pred(r[1])]
            docs = sort_documents([r[1] for r in out], spec)
            uids = {id(d): u for u, d in out}
            out = [(uids[id(d)], d) for d in docs]
        else:
            out = [(r[0], r[1]) for r in rows]
            if not st.exact:
                pred = predicate_for(node)
                out = [r for r in out if pred(r[1])]
        return out[:limit] if limit is not None else out

    # -- Store API --------------------------------------------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document (see :meth:`Store.insert`)."""
        prepared = _prepare(doc)
        uid = prepared["uid"]
        text = qsql.dumps(prepared, owned=True)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None
        stmt = c.insert_sql
        if stmt is None:
            stmt = c.insert_sql = (
                sql.SQL("INSERT INTO {} (uid, doc) VALUES (%s, %s::jsonb)").format(c.table).as_string(None)
            )
        self._run(lambda conn: conn.execute(stmt, (uid, text)))

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert documents, all or none (see :meth:`Store.insert_many`)."""
        check_collection(collection)
        prepared = [_prepare(d) for d in docs]
        if not prepared:
            return 0
        uids = [d["uid"] for d in prepared]
        texts = [qsql.dumps(d, owned=True) for d in prepared]
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
        """Return copies of matching documents (see :meth:`Store.find`)."""
        check_collection(collection)
        node = self._node(query)
        spec = parse_sort(sort)
        lim = check_limit(limit)
        proj = parse_projection(projection)
        c = self._coll(collection, False) or self._refresh(collection)
        if c is None:
            return []
        rows = self._run(lambda conn: self._fetch(conn, c, query, node, spec, lim), read=True)
        docs = [d for _, d in rows]
        if proj is not None:
            docs = [project(d, proj) for d in docs]
        return docs

    def _refresh(self, collection: str) -> _Coll | None:
        """Reload the registry (another process may have created the collection)."""
        check_collection(collection)
        self._run(lambda conn: self._load_registry(conn), read=True)
        return self._colls.get(collection)

    def _where_stmt(self, kind: str, collection: str, query: Query, template: str) -> tuple[_Coll, Node, _Stmt] | None:
        """The cached statement ``template`` (``{table}``, ``{where}``) over a query, or None if no table."""
        check_collection(collection)
        node = self._node(query)
        c = self._coll(collection, False) or self._refresh(collection)
        if c is None:
            return None

        def build(params: qsql.Params) -> tuple[sql.Composable, dict[str, Any]]:
            where, exact, _ = self._where(c, node, params)
            return sql.SQL(template).format(table=c.table, where=where), {"exact": exact}

        return c, node, self._stmt((kind, c.name, c.generation, cache_key(query)), build)

    def count(self, collection: str, query: Query = None) -> int:
        """Count matching documents (see :meth:`Store.count`)."""
        found = self._where_stmt("count", collection, query, "SELECT count(*) FROM {table} t WHERE {where}")
        if found is None:
            return 0
        c, node, st = found
        if st.exact:
            return int(self._run(lambda conn: conn.execute(st.text, st.params).fetchone()[0], read=True))
        return len(self._run(lambda conn: self._fetch(conn, c, query, node, (), None), read=True))

    def _write_back(self, conn: psycopg.Connection, c: _Coll, changes: list[tuple[str, Document]]) -> None:
        stmt = sql.SQL("UPDATE {} SET doc = %s::jsonb WHERE uid = %s").format(c.table).as_string(None)
        rows = [(qsql.dumps(d), u) for u, d in changes]
        if len(rows) == 1:
            conn.execute(stmt, rows[0])
        else:
            conn.cursor().executemany(stmt, rows)

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update the first or every match (see :meth:`Store.update`)."""
        check_collection(collection)
        qkey, ukey = cache_key(query), cache_key(update)
        node = self._node(query, qkey)
        upd = self._update(update, ukey)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None

        def build(params: qsql.Params) -> tuple[sql.Composable, dict[str, Any]]:
            where, exact, _ = self._where(c, node, params)
            expr = (
                qsql.compile_update(upd, params, doc=sql.SQL("t.doc"), functions=self._functions)
                if self._functions is not None
                else None
            )
            if expr is None or not exact:
                return sql.SQL(""), {"exact": False}
            if many or _by_uid(node):  # one uid is at most one row
                text = sql.SQL("UPDATE {} t SET doc = {} WHERE {}").format(c.table, expr, where)
            else:
                text = sql.SQL(
                    "UPDATE {tb} t SET doc = {e} WHERE t.uid = (SELECT t.uid FROM {tb} t WHERE {w} LIMIT 1 FOR UPDATE)"
                ).format(tb=c.table, e=expr, w=where)
            return text, {"exact": True}

        qshape, subst = _shape(node, qkey)
        st = self._stmt(("update", c.name, c.generation, qshape, qsql.update_shape(upd), many), build)
        if st.exact:
            params = {**st.params, **subst, **qsql.update_values(upd)}
        for _ in range(5):
            if st.exact:
                n = self._run(lambda conn: conn.execute(st.text, params).rowcount)
            else:

                def python_update(conn: psycopg.Connection) -> int:
                    with conn.transaction():
                        rows = self._fetch(conn, c, query, node, (), None if many else 1, " FOR UPDATE OF t")
                        if not rows:
                            return 0
                        changes = []
                        for u, d in rows:
                            apply_update(d, upd)
                            changes.append((u, encode(d)))
                        self._write_back(conn, c, changes)
                        return len(rows)

                n = self._run(python_update)
            if n or not upsert:
                return n
            if self._upsert(c, node, upd):
                return 1
        raise StoreError(f"upsert into {collection!r} kept colliding with concurrent inserts")

    def _upsert(self, c: _Coll, node: Node, upd: Update) -> bool:
        new = upsert_seed(node)
        apply_update(new, upd, inserting=True)
        new = _prepare(new)
        text = qsql.dumps(new)
        stmt = (
            sql.SQL("INSERT INTO {} (uid, doc) VALUES (%s, %s::jsonb) ON CONFLICT (uid) DO NOTHING")
            .format(c.table)
            .as_string(None)
        )
        return bool(self._run(lambda conn: conn.execute(stmt, (new["uid"], text)).rowcount))

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match and return it (see :meth:`Store.find_one_and_update`)."""
        check_collection(collection)
        qkey, ukey = cache_key(query), cache_key(update)
        node = self._node(query, qkey)
        upd = self._update(update, ukey)
        spec = parse_sort(sort)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None

        def build(params: qsql.Params) -> tuple[sql.Composable, dict[str, Any]]:
            if spec:
                return sql.SQL(""), {"exact": False}
            where, exact, branches = self._where(c, node, params)
            expr = (
                qsql.compile_update(upd, params, doc=sql.SQL("t.doc"), functions=self._functions)
                if self._functions is not None
                else None
            )
            if expr is None or not exact:
                return sql.SQL(""), {"exact": False}
            if branches is not None:
                idx, ovf, cond = branches
                pick = sql.SQL(
                    "COALESCE((SELECT t.uid FROM {tb} t WHERE {idx} AND {cond} LIMIT 1 FOR UPDATE SKIP LOCKED),"
                    " (SELECT t.uid FROM {tb} t WHERE ({ovf}) AND {cond} LIMIT 1 FOR UPDATE SKIP LOCKED))"
                ).format(tb=c.table, idx=idx, ovf=ovf, cond=cond)
            else:
                pick = sql.SQL("(SELECT t.uid FROM {} t WHERE {} LIMIT 1 FOR UPDATE SKIP LOCKED)").format(
                    c.table, where
                )
            text = sql.SQL("UPDATE {} t SET doc = {} WHERE t.uid = {} RETURNING t.doc").format(c.table, expr, pick)
            return text, {"exact": True}

        qshape, subst = _shape(node, qkey)
        st = self._stmt(("claim", c.name, c.generation, qshape, qsql.update_shape(upd)), build)
        if st.exact:
            params = {**st.params, **subst, **qsql.update_values(upd)}
            row = self._run(lambda conn: conn.execute(st.text, params).fetchone())
            return row[0] if row else None

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

    def delete(self, collection: str, query: Query) -> int:
        """Delete matching documents (see :meth:`Store.delete`)."""
        found = self._where_stmt("delete", collection, query, "DELETE FROM {table} t WHERE {where}")
        if found is None:
            return 0
        c, node, st = found
        if st.exact:
            return int(self._run(lambda conn: conn.execute(st.text, st.params).rowcount))
        stmt = sql.SQL("DELETE FROM {} WHERE uid = ANY(%s)").format(c.table).as_string(None)

        def delete(conn: psycopg.Connection) -> int:
            with conn.transaction():
                uids = [u for u, _ in self._fetch(conn, c, query, node, (), None, " FOR UPDATE OF t")]
                if uids:
                    conn.execute(stmt, (uids,))
                return len(uids)

        return int(self._run(delete))

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create an index if it does not exist yet (see :meth:`Store.ensure_index`)."""
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

        def create(conn: psycopg.Connection) -> None:
            with conn.transaction():
                self._lock(conn)
                row = conn.execute(
                    sql.SQL("SELECT is_unique FROM {} WHERE collection = %s AND paths = %s").format(self._registry),
                    (collection, list(paths)),
                ).fetchone()
                if row is None:
                    self._create_index(conn, c, paths, bool(unique))
                elif bool(row[0]) != bool(unique):
                    raise QueryError(f"an index on {list(paths)} of {collection!r} exists with unique={row[0]}")
                self._load_registry(conn)

        self._run(create)

    def explain(self, collection: str, query: Query = None, *, claim: Document | None = None) -> str:
        """Return PostgreSQL's plan for ``find(collection, query)`` (or a claim with update ``claim``).

        The plan is computed with ``EXPLAIN`` (nothing is executed), for checking that a query
        uses an index.
        """
        check_collection(collection)
        node = self._node(query)
        c = self._coll(collection, False) or self._refresh(collection)
        if c is None:
            raise QueryError(f"collection {collection!r} does not exist")
        qkey = cache_key(query)
        if claim is not None:
            self._update(claim)  # validates it
            st = self._stmts.get(
                ("claim", c.name, c.generation, _shape(node, qkey)[0], qsql.update_shape(self._update(claim)))
            )
            if st is None or not st.exact:
                raise QueryError("this claim does not run as one SQL statement (or has not run yet)")
        else:
            st = self._find_stmt(c, qkey, node, (), None, "")
        rows = self._run(lambda conn: conn.execute("EXPLAIN " + st.text, st.params).fetchall(), read=True)
        return "\n".join(r[0] for r in rows)

    def close(self) -> None:
        """Close the connection pool; later calls raise StoreUnavailableError."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uri.redacted}>"


def _shape(node: Node, qkey: str) -> tuple[str, dict[str, Any]]:
    """The statement-cache key of a query and the parameters to substitute per execution.

    ``{"uid": x}`` queries share one statement: their only parameter is ``p0`` (the first one
    the WHERE clause adds).
    """
    if _by_uid(node):
        return "<uid>", {"p0": node.value}  # type: ignore[attr-defined]
    return qkey, {}


def _by_uid(node: Node) -> bool:
    """True for ``{"uid": "<string>"}``: the query names at most one document."""
    return isinstance(node, Compare) and node.path == "uid" and node.op == "$eq" and type(node.value) is str


def _prepare(doc: Any) -> Document:
    if not isinstance(doc, dict):
        raise EncodingError(f"a document must be a dict, got {type(doc).__name__}")
    out = encode(doc)
    uid = out.get("uid")
    if type(uid) is not str or not uid:
        raise EncodingError(f"a document needs a non-empty string 'uid', got {uid!r:.80}")
    return out


_FUNCTIONS = [
    r"""
CREATE OR REPLACE FUNCTION {put}(obj jsonb, k text, v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE o jsonb;
BEGIN
  IF obj ? k THEN RETURN jsonb_set(obj, ARRAY[k], v); END IF;
  o := obj -> '$o';
  IF o IS NULL THEN
    SELECT jsonb_agg(x) INTO o FROM jsonb_object_keys(obj) AS x;
    IF o IS NULL THEN RETURN jsonb_build_object(k, v); END IF;
  END IF;
  RETURN obj || jsonb_build_object(k, v, '$o', o || to_jsonb(k));
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {arrput}(arr jsonb, i int, v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE n int := jsonb_array_length(arr);
BEGIN
  IF i < n THEN RETURN jsonb_set(arr, ARRAY[i::text], v); END IF;
  RETURN arr || COALESCE((SELECT jsonb_agg('null'::jsonb) FROM generate_series(1, i - n)), '[]'::jsonb)
             || jsonb_build_array(v);
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {set}(cur jsonb, path text[], v jsonb) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
-- update._container(create=True) + _put: missing fields become documents, indexes past the end
-- pad with nulls; null, a scalar or an array addressed by a field name in the way raise.
DECLARE k text := path[1]; t text := jsonb_typeof(cur); child jsonb; i int;
BEGIN
  IF cardinality(path) = 1 THEN
    IF t = 'object' THEN RETURN {put}(cur, k, v); END IF;
    IF t = 'array' AND k ~ '^[0-9]+$' THEN RETURN {arrput}(cur, k::int, v); END IF;
  ELSIF t = 'object' THEN
    RETURN {put}(cur, k, {set}(COALESCE(cur -> k, '{{}}'::jsonb), path[2:], v));
  ELSIF t = 'array' AND k ~ '^[0-9]+$' THEN
    i := k::int;
    RETURN {arrput}(cur, i, {set}(COALESCE(cur -> i, '{{}}'::jsonb), path[2:], v));
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'TB001',
    MESSAGE = format('cannot create field %s inside %s', k, COALESCE(t, 'nothing'));
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {unset}(cur jsonb, path text[]) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $f$
-- update._container(create=False): a path that does not fully exist changes nothing.
DECLARE k text := path[1]; t text := jsonb_typeof(cur); child jsonb; o jsonb;
BEGIN
  IF t = 'object' THEN
    IF NOT cur ? k THEN RETURN cur; END IF;
    IF cardinality(path) > 1 THEN RETURN jsonb_set(cur, ARRAY[k], {unset}(cur -> k, path[2:])); END IF;
    o := cur -> '$o';
    cur := cur - k;
    IF o IS NOT NULL THEN
      o := o - k;
      IF jsonb_array_length(o) < 2 THEN cur := cur - '$o'; ELSE cur := jsonb_set(cur, '{{$o}}', o); END IF;
    END IF;
    RETURN cur;
  END IF;
  IF t = 'array' AND k ~ '^[0-9]+$' AND k::numeric < jsonb_array_length(cur) THEN
    IF cardinality(path) > 1 THEN RETURN jsonb_set(cur, ARRAY[k], {unset}(cur -> k::int, path[2:])); END IF;
    RETURN jsonb_set(cur, ARRAY[k], 'null'::jsonb);
  END IF;
  RETURN cur;
END $f$""",
    r"""
CREATE OR REPLACE FUNCTION {push}(cur jsonb, path text[], items jsonb, uniq boolean) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE k text := path[1]; t text := jsonb_typeof(cur); i int; old jsonb; it jsonb;
BEGIN
  IF cardinality(path) > 1 THEN
    IF t = 'object' THEN
      RETURN {put}(cur, k, {push}(COALESCE(cur -> k, '{{}}'::jsonb), path[2:], items, uniq));
    END IF;
    IF t = 'array' AND k ~ '^[0-9]+$' THEN
      i := k::int;
      RETURN {arrput}(cur, i, {push}(COALESCE(cur -> i, '{{}}'::jsonb), path[2:], items, uniq));
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'TB001',
      MESSAGE = format('cannot create field %s inside %s', k, COALESCE(t, 'nothing'));
  END IF;
  IF t = 'object' THEN
    old := cur -> k;
  ELSIF t = 'array' AND k ~ '^[0-9]+$' THEN
    old := cur -> k::int;
  ELSE
    RAISE EXCEPTION USING ERRCODE = 'TB001',
      MESSAGE = format('cannot create field %s inside %s', k, COALESCE(t, 'nothing'));
  END IF;
  IF old IS NULL THEN
    old := '[]'::jsonb;
  ELSIF jsonb_typeof(old) <> 'array' THEN
    RAISE EXCEPTION USING ERRCODE = 'TB001',
      MESSAGE = format('cannot push onto %s: it holds %s, not an array', k, jsonb_typeof(old));
  END IF;
  IF uniq THEN
    FOR it IN SELECT value FROM jsonb_array_elements(items) WITH ORDINALITY AS e(value, n) ORDER BY n LOOP
      IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(old) AS x WHERE x = it) THEN
        old := old || jsonb_build_array(it);
      END IF;
    END LOOP;
  ELSE
    old := old || items;
  END IF;
  IF t = 'object' THEN RETURN {put}(cur, k, old); END IF;
  RETURN {arrput}(cur, k::int, old);
END $f$""",
]


def from_uri(uri: StoreURI) -> PostgresStore:
    """Registry factory for ``postgresql:``, ``postgres:``, ``cockroach:`` and ``cockroachdb:``."""
    return PostgresStore(uri)
