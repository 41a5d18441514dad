"""Reference rows: the floor each store is compared with, measured in the same run.

* ``ref:dict`` (memory): plain dict operations on the same documents.
* ``ref:fsync`` (journals): ``os.write`` + ``os.fdatasync`` of the records the journal writes.
* ``ref:psycopg`` (``postgresql://``): the very SQL statements the store sent, with the same
  parameters, replayed on one plain autocommit psycopg connection to the same server and table.
  The statements are recorded during an untimed pass of the store over the same workload (every
  ``psycopg.Connection.execute`` is captured), so the reference cannot drift from the store's
  SQL. The ratio store/raw is what the store adds in Python: validation, encoding, statement
  cache, pool checkout, and decoding documents with key order.
* ``ref:pymongo`` (``mongodb://``): ``insert_one``, ``find``, ``update_one`` with ``$push`` and
  ``find_one_and_update`` with the same documents, filters and updates, through a plain
  ``pymongo.MongoClient`` on the same server, database and collection.
"""

from __future__ import annotations

import contextlib
import functools
import json
import marshal
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..query import parse_update
from ..store import DEFAULT_INDEXES, TRIALS, Document, Store
from ..uri import StoreURI
from .workload import (
    CLAIM_UPDATE,
    GROUP,
    INTERRUPT_UPDATE,
    LOG_OPS,
    PENDING,
    BenchError,
    Result,
    check,
    interrupted_indexes,
    log_args,
    log_update,
    result,
    start,
    time_query,
    trial_doc,
)

FSYNC_REF_CAP = 10_000
"""At most this many append+fsync calls per phase in a journal reference (its rate does not depend on n)."""
_PENDING_NAMES = ("Created", "Interrupted")


# -- memory and journals ---------------------------------------------------------------------------
def _dict_scan(docs: dict[str, Document]) -> list[Document]:
    return [d for d in docs.values() if d["group_id"] == GROUP and d["status"]["name"] in _PENDING_NAMES]


def _interrupt(docs: dict[str, Document], uids: list[str]) -> int:
    for u in uids:
        docs[u]["status"] = {"name": "Interrupted", "value": 201}
    return len(uids)


def dict_reference(n: int) -> Result:
    """The floor for an in-memory store: plain dict operations on the same documents.

    insert = a dict insert of a (marshal) deep copy, query = a list-comprehension scan, log = a
    list append, claim = a dict pop plus setting the status, group query = the same scan once
    a few trials are pending again.
    """
    docs = [trial_doc(i) for i in range(n)]
    store: dict[str, Document] = {}
    t = start()
    for d in docs:
        store[d["uid"]] = marshal.loads(marshal.dumps(d))
    t_insert = time.perf_counter() - t

    t = start()
    found = _dict_scan(store)
    query_ms = (time.perf_counter() - t) * 1e3
    check("reference scan", len(found), n)

    n_log = min(n, LOG_OPS)
    t = start()
    for i in range(n_log):
        store[docs[i]["uid"]]["metrics"].setdefault("loss", []).append(list(log_args(i)))
    t_log = time.perf_counter() - t

    pending = dict(store)
    running = CLAIM_UPDATE["$set"]["status"]
    got = 0
    t = start()
    while pending:
        _, d = pending.popitem()
        d["status"] = dict(running)
        got += 1
    t_claim = time.perf_counter() - t
    check("reference claims", got, n)

    back = _interrupt(store, [docs[i]["uid"] for i in interrupted_indexes(n)])
    start()
    group_ms = time_query(lambda: len(_dict_scan(store)), back)
    return result(n, t_insert, query_ms, n_log, t_log, t_claim, group_ms)


def record_codec(scheme: str) -> Callable[[Any], bytes]:
    """Return how a journal of ``scheme`` frames a record: the journal's own codec when present.

    Falls back to a bare pickle, or one JSON line, if :mod:`track_backends.stores.codecs` is absent.
    """
    try:
        from ..stores.codecs import CODECS

        return CODECS[scheme].frame
    except (ImportError, KeyError):
        pass
    if scheme == "pickled":
        return lambda rec: pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL)
    return lambda rec: json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def _update_record(update: dict[str, Any]) -> Any:
    """An update document in the form a journal record holds."""
    return parse_update(update).to_record()


def _append_fsync(fd: int, records: list[bytes]) -> float:
    t = start()
    for data in records:
        os.write(fd, data)
        os.fdatasync(fd)
    return time.perf_counter() - t


def fsync_reference(n: int, scheme: str, directory: str, cap: int = FSYNC_REF_CAP) -> Result:
    """The floor for a durable journal: ``os.write`` + ``os.fdatasync`` of each record's bytes.

    The records are the ones the journal writes (insert, ``$push``, claim ``$set``), encoded
    with the scheme's codec, appended to a temporary file in ``directory``. The query floors
    are dict scans (journal stores answer queries from memory). At most ``cap`` records are
    written per phase; the rate of append+fsync does not depend on ``n``.
    """
    encode = record_codec(scheme)
    docs = [trial_doc(i) for i in range(n)]
    k = min(n, cap)
    inserts = [encode(["insert", TRIALS, [d]]) for d in docs[:k]]
    n_log = min(n, LOG_OPS)
    logs = [encode(["update", TRIALS, [docs[i]["uid"]], _update_record(log_update(i))]) for i in range(n_log)]
    claim = _update_record(CLAIM_UPDATE)
    claims = [encode(["update", TRIALS, [d["uid"]], claim]) for d in docs[:k]]
    fd, path = tempfile.mkstemp(prefix="track-backends-ref-", dir=directory)
    try:
        t_insert = _append_fsync(fd, inserts) * n / k
        t_log = _append_fsync(fd, logs)
        t_claim = _append_fsync(fd, claims) * n / k
    finally:
        os.close(fd)
        os.unlink(path)
    by_uid = {d["uid"]: d for d in docs}
    t = start()
    check("reference scan", len(_dict_scan(by_uid)), n)
    query_ms = (time.perf_counter() - t) * 1e3
    for d in docs:
        d["status"] = dict(CLAIM_UPDATE["$set"]["status"])
    back = _interrupt(by_uid, [docs[i]["uid"] for i in interrupted_indexes(n)])
    start()
    group_ms = time_query(lambda: len(_dict_scan(by_uid)), back)
    return result(n, t_insert, query_ms, n_log, t_log, t_claim, group_ms)


# -- PostgreSQL: the store's own statements, replayed with plain psycopg ---------------------------
_STORE_ONLY_OPTIONS = frozenset(
    {
        "schema",
        "prefix",
        "pool_min",
        "pool_max",
        "pool_timeout",
        "isolation",
        "max_retries",
        "lock_timeout",
        "statement_timeout",
        "prepare_threshold",
    }
)

Statement = tuple[Any, Any]


def libpq_conninfo(uri: StoreURI) -> str:
    """A libpq connection string for the server of a ``postgresql://`` store URI.

    The store's own options (``schema``, ``prefix``, pool sizes, ...) are dropped; libpq's
    (``host``, ``sslmode``, ``options``, ...) are kept.
    """
    import psycopg

    kw: dict[str, Any] = {
        "host": uri.host or uri.params.get("host") or "localhost",
        "port": str(uri.port or 5432),
        "dbname": uri.path.lstrip("/") or None,
        "user": uri.username or None,
        "password": uri.password,
    }
    for k, v in uri.params.items():
        if k not in _STORE_ONLY_OPTIONS and k != "host":
            kw[k] = v
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in kw.items() if v is not None})


def vacuum(uri: StoreURI) -> None:
    """``VACUUM ANALYZE`` the store's trials table, so that the next run does not inherit dead rows.

    Errors are ignored (a missing table, or a user without the right to vacuum it).
    """
    import psycopg
    from psycopg import sql

    table = sql.Identifier(uri.params.get("schema", "public"), uri.params.get("prefix", "") + TRIALS)
    with contextlib.suppress(psycopg.Error), psycopg.connect(libpq_conninfo(uri), autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))


class _Recorder:
    """Capture every ``psycopg.Connection.execute(query, params)`` while :meth:`recording`."""

    def __init__(self) -> None:
        self.calls: list[Statement] = []

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        import psycopg

        original = psycopg.Connection.execute
        calls = self.calls

        def execute(conn: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            calls.append((query, params))
            return original(conn, query, params, **kw)

        psycopg.Connection.execute = execute  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            psycopg.Connection.execute = original  # type: ignore[method-assign]

    def one(self, what: str, call: Callable[[], Any]) -> tuple[Statement, Any]:
        """Run ``call`` and return the single statement it executed, and its result."""
        before = len(self.calls)
        out = call()
        got = self.calls[before:]
        del self.calls[before:]
        if len(got) != 1:
            raise BenchError(f"ref:psycopg: the store's {what} ran {len(got)} statements, not one; no raw reference")
        return got[0], out


def _dedupe(stmts: list[Statement]) -> list[Statement]:
    """Share equal parameter objects (claims repeat one statement with one parameter set)."""
    last: Any = None
    out = []
    for q, p in stmts:
        if p == last:
            p = last
        last = p
        out.append((q, p))
    return out


def record_postgres(store: Store, n: int) -> dict[str, list[Statement]]:
    """Run the workload's Store calls on ``store`` (untimed) and return the statements, per phase.

    ``store`` must be an empty PostgreSQL store whose table exists. Each Store call must run as
    exactly one SQL statement.
    """
    rec = _Recorder()
    docs = [trial_doc(i) for i in range(n)]
    phases: dict[str, list[Statement]] = {k: [] for k in ("insert", "query", "log", "claim", "interrupt", "group")}
    with rec.recording():
        for d in docs:
            phases["insert"].append(rec.one("insert", functools.partial(store.insert, TRIALS, d))[0])
        phases["query"].append(rec.one("find", lambda: store.find(TRIALS, PENDING))[0])
        for i in range(min(n, LOG_OPS)):
            log = rec.one("update", functools.partial(store.update, TRIALS, {"uid": docs[i]["uid"]}, log_update(i)))
            phases["log"].append(log[0])
        while True:
            stmt, doc = rec.one("find_one_and_update", lambda: store.find_one_and_update(TRIALS, PENDING, CLAIM_UPDATE))
            phases["claim"].append(stmt)
            if doc is None:
                break
        for i in interrupted_indexes(n):
            phases["interrupt"].append(
                rec.one("update", functools.partial(store.update, TRIALS, {"uid": docs[i]["uid"]}, INTERRUPT_UPDATE))[0]
            )
        phases["group"].append(rec.one("find", lambda: store.find(TRIALS, PENDING))[0])
    phases["claim"] = _dedupe(phases["claim"])
    return phases


def psycopg_reference(uri: StoreURI, store: Store, n: int) -> Result:
    """The floor for ``postgresql://``: the store's statements replayed with plain psycopg.

    Args:
        uri: The store's URI (for the server's address and credentials).
        store: An open, empty store on that URI (its table and indexes exist, or are created).
        n: Number of trials.

    Raises:
        BenchError: A phase did not return the expected rows, or a Store call was not one statement.
    """
    import psycopg

    store.insert(TRIALS, trial_doc(0))  # prime: table, indexes, statement cache
    store.find(TRIALS, PENDING)
    store.update(TRIALS, {"uid": trial_doc(0)["uid"]}, log_update(0))
    store.find_one_and_update(TRIALS, PENDING, CLAIM_UPDATE)
    store.delete(TRIALS, {"group_id": GROUP})
    phases = record_postgres(store, n)
    store.delete(TRIALS, {"group_id": GROUP})
    vacuum(uri)  # the replay starts on a table as clean as the store's runs do
    with psycopg.connect(libpq_conninfo(uri), autocommit=True) as conn:
        conn.execute("SELECT 1")
        t = start()
        for q, p in phases["insert"]:
            conn.execute(q, p)
        t_insert = time.perf_counter() - t

        ((q, p),) = phases["query"]
        t = start()
        rows = conn.execute(q, p).fetchall()
        query_ms = (time.perf_counter() - t) * 1e3
        check("ref:psycopg pending query", len(rows), n)
        del rows

        t = start()
        for q, p in phases["log"]:
            if conn.execute(q, p).rowcount != 1:
                raise BenchError("ref:psycopg: a metric update changed no row")
        t_log = time.perf_counter() - t

        got = 0
        t = start()
        for q, p in phases["claim"]:
            if conn.execute(q, p).fetchone() is not None:
                got += 1
        t_claim = time.perf_counter() - t
        check("ref:psycopg claims", got, n)

        for q, p in phases["interrupt"]:
            conn.execute(q, p)
        ((q, p),) = phases["group"]
        start()
        group_ms = time_query(lambda: len(conn.execute(q, p).fetchall()), len(phases["interrupt"]))
    return result(n, t_insert, query_ms, len(phases["log"]), t_log, t_claim, group_ms)


# -- MongoDB: the same calls with plain pymongo ---------------------------------------------------
def mongo_database(uri: StoreURI) -> str:
    """The database a ``mongodb://`` URI names (the store's default, ``track``, when none)."""
    return uri.path.strip("/") or "track"


def pymongo_reference(uri: StoreURI, n: int) -> Result:
    """The floor for ``mongodb://``: the workload's calls through a plain ``pymongo.MongoClient``.

    ``insert_one`` of each document, ``find`` (without ``_id``), ``update_one`` with the
    ``$push``, and ``find_one_and_update`` returning the document after the update (without
    ``_id``), on the ``trials`` collection of the same database. The collection must hold no
    trials of the bench's group; the reference deletes its own afterwards.
    """
    import pymongo

    client: Any = pymongo.MongoClient(uri.raw, serverSelectionTimeoutMS=5000)
    try:
        coll = client[mongo_database(uri)][TRIALS]
        coll.create_index("uid", unique=True)  # the store's indexes (it made them already, unless raw runs first)
        for paths, unique in DEFAULT_INDEXES.get(TRIALS, ()):
            coll.create_index([(p, 1) for p in paths], unique=unique)
        no_id = {"_id": 0}
        docs = [trial_doc(i) for i in range(n)]
        updates = [log_update(i) for i in range(min(n, LOG_OPS))]
        try:
            t = start()
            for d in docs:
                coll.insert_one(d)
            t_insert = time.perf_counter() - t

            t = start()
            found = list(coll.find(PENDING, no_id))
            query_ms = (time.perf_counter() - t) * 1e3
            check("ref:pymongo pending query", len(found), n)
            del found

            t = start()
            for i, upd in enumerate(updates):
                if coll.update_one({"uid": docs[i]["uid"]}, upd).matched_count != 1:
                    raise BenchError("ref:pymongo: a metric update matched no document")
            t_log = time.perf_counter() - t

            after = pymongo.ReturnDocument.AFTER
            got = 0
            t = start()
            while coll.find_one_and_update(PENDING, CLAIM_UPDATE, projection=no_id, return_document=after) is not None:
                got += 1
            t_claim = time.perf_counter() - t
            check("ref:pymongo claims", got, n)

            back = interrupted_indexes(n)
            for i in back:
                coll.update_one({"uid": docs[i]["uid"]}, INTERRUPT_UPDATE)
            start()
            group_ms = time_query(lambda: len(list(coll.find(PENDING, no_id))), len(back))
        finally:
            coll.delete_many({"group_id": GROUP})
    finally:
        client.close()
    return result(n, t_insert, query_ms, len(updates), t_log, t_claim, group_ms)
