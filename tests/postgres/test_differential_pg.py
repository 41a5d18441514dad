"""Differential tests: PostgreSQL against the memory store (exactly) and mongomock (second opinion).

Every query, sort, projection and update scenario comes from :mod:`querygen` (fixed seeds, so
a failure names a replayable case). The memory store is the reference the SQL compiler must
reproduce exactly. mongomock must agree wherever it agrees with the memory store; where the
two disagree, mongomock deviates from MongoDB's documented behaviour (see
``tests/test_query_differential.py``), and the case is only counted.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import querygen
from conftest import with_options

from track_backends.errors import QueryError
from track_backends.registry import open_store
from track_backends.store import Store
from track_backends.stores.memory import MemoryStore

COLL = "things"
DOCS = querygen.documents()
QUERIES = querygen.queries()


@pytest.fixture(scope="module")
def pg_uri_module(pg_server_uri: str, pg_admin: Any) -> Iterator[str]:
    name = f"d_{uuid.uuid4().hex[:10]}"
    yield with_options(pg_server_uri, schema=name)
    pg_admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="module")
def stores(pg_uri_module: str) -> Iterator[tuple[Store, MemoryStore]]:
    pg = open_store(pg_uri_module)
    mem = MemoryStore()
    pg.insert_many(COLL, copy.deepcopy(DOCS))
    mem.insert_many(COLL, copy.deepcopy(DOCS))
    yield pg, mem
    pg.close()


@pytest.fixture(scope="module")
def mongomock_coll() -> Any:
    mongomock = pytest.importorskip("mongomock")
    coll = mongomock.MongoClient().db[COLL]
    coll.insert_many(copy.deepcopy(DOCS))
    return coll


def _uids(store: Store, query: Any) -> set[str] | str:
    try:
        return {d["uid"] for d in store.find(COLL, query)}
    except QueryError as e:
        return f"QueryError: {type(e).__name__}"


def test_generated_queries_match_memory_and_mongomock(stores: tuple[Store, MemoryStore], mongomock_coll: Any) -> None:
    pg, mem = stores
    failures, mongomock_deviations = [], 0
    for q in QUERIES:
        want, got = _uids(mem, q), _uids(pg, q)
        if got != want:
            show = lambda r: sorted(r) if isinstance(r, set) else r  # noqa: E731
            failures.append(f"{q!r}: postgres {show(got)} memory {show(want)}")
            continue
        if isinstance(want, set):
            if pg.count(COLL, q) != len(want):
                failures.append(f"{q!r}: count {pg.count(COLL, q)} != {len(want)}")
            try:
                mm = {d["uid"] for d in mongomock_coll.find(copy.deepcopy(q))}
            except Exception:  # noqa: BLE001 - mongomock refuses some valid queries
                mm = None
            if mm != want:
                mongomock_deviations += 1  # memory is MongoDB's documented behaviour; mongomock is not
    assert not failures, f"{len(failures)} of {len(QUERIES)} queries differ:\n" + "\n".join(failures[:30])
    assert mongomock_deviations < len(QUERIES) // 3, f"mongomock disagrees on {mongomock_deviations} queries"


def test_generated_queries_with_indexes(pg_server_uri: str, pg_admin: Any) -> None:
    """The same answers when indexes (and their overflow branches) take part."""
    name = f"i_{uuid.uuid4().hex[:10]}"
    pg = open_store(with_options(pg_server_uri, schema=name))
    mem = MemoryStore()
    try:
        for keys in ("a", "s", "tags", "arr.k", "m.x", ("m.x", "s"), ("tags", "arr.k")):
            pg.ensure_index(COLL, keys)
            mem.ensure_index(COLL, keys)
        pg.insert_many(COLL, copy.deepcopy(DOCS))
        mem.insert_many(COLL, copy.deepcopy(DOCS))
        extra = [{"tags": "x", "arr.k": "p"}, {"m.x": "p", "s": {"$in": ["apple", "kiwi"]}}, {"s": "apple"}]
        extra += [{"tags": {"$in": ["x", "y"]}, "arr.k": {"$in": ["p", "q"]}}, {"a": "a"}, {"m.x": "p"}]
        failures = [q for q in QUERIES + extra if _uids(pg, q) != _uids(mem, q)]
        assert not failures, failures[:20]
    finally:
        pg.close()
        pg_admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.mark.parametrize("limit", [None, 1, 5])
def test_sorts_match_memory(stores: tuple[Store, MemoryStore], limit: int | None) -> None:
    pg, mem = stores
    failures = []
    for spec in querygen.sorts():
        full = list(spec) + [("uid", 1)]
        for q in (None, {"n": {"$exists": True}}, {"tags": "x"}):
            want = [d["uid"] for d in mem.find(COLL, q, sort=full, limit=limit)]
            got = [d["uid"] for d in pg.find(COLL, q, sort=full, limit=limit)]
            if got != want:
                failures.append(f"sort {full} query {q}: postgres {got} memory {want}")
    assert not failures, f"{len(failures)} sorts differ:\n" + "\n".join(failures[:20])


def test_projections_match_memory(stores: tuple[Store, MemoryStore]) -> None:
    pg, mem = stores
    for proj in querygen.projections():
        want = sorted(mem.find(COLL, None, projection=proj), key=repr)
        got = sorted(pg.find(COLL, None, projection=proj), key=repr)
        assert got == want, proj


def test_key_order_is_kept(stores: tuple[Store, MemoryStore]) -> None:
    pg, mem = stores
    for d_pg, d_mem in zip(pg.find(COLL, sort=[("uid", 1)]), mem.find(COLL, sort=[("uid", 1)])):
        assert list(d_pg) == list(d_mem)
        for k, v in d_mem.items():
            if isinstance(v, dict):
                assert list(d_pg[k]) == list(v)


def _snapshot(store: Store) -> list[dict[str, Any]]:
    return sorted(store.find(COLL), key=lambda d: d["uid"])


def test_update_scenarios_match_memory(pg_server_uri: str, pg_admin: Any) -> None:
    name = f"u_{uuid.uuid4().hex[:10]}"
    pg = open_store(with_options(pg_server_uri, schema=name))
    mem = MemoryStore()
    try:
        pg.insert_many(COLL, copy.deepcopy(DOCS))
        mem.insert_many(COLL, copy.deepcopy(DOCS))
        for i, step in enumerate(querygen.update_steps()):
            results = []
            for store in (mem, pg):
                try:
                    if step["kind"] == "update":
                        r: Any = store.update(
                            COLL, step["query"], step["update"], many=step["many"], upsert=step["upsert"]
                        )
                    else:
                        r = store.find_one_and_update(COLL, step["query"], step["update"], sort=step["sort"])
                except QueryError as e:
                    r = type(e).__name__
                results.append(r)
            assert results[0] == results[1], (i, step, results)
            assert list((results[1] or {}).keys() if isinstance(results[1], dict) else []) == list(
                (results[0] or {}).keys() if isinstance(results[0], dict) else []
            ), (i, step)
        assert _snapshot(pg) == _snapshot(mem)
        for a, b in zip(_snapshot(pg), _snapshot(mem)):
            assert repr(a) == repr(b)  # same key order and the same int/float types
    finally:
        pg.close()
        pg_admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
