"""Differential tests: the MongoDB store against the memory store, on the generated queries.

The generator (``tests/querygen.py``) and the catalogues of known deviations come from
``tests/test_query_differential.py``; nothing is duplicated here:

* On each real server (the wire server: SecantusDB, or ``$TRACK_BACKENDS_MONGO_URI``; and the
  testcontainers MongoDB where Docker answers) every generated query, sort, projection and
  update sequence must give, through ``mongodb://``, exactly the memory store's answer.
  SecantusDB's own deviations from MongoDB's documentation (``SECANTUS_DEVIATIONS``)
  are handled as there: the store is sent the query's documented equivalent
  (``documented_form``), and updated documents are compared without field order
  (``update-field-order``). Against a real MongoDB the queries go as generated.
* SecantusDB also answers some queries wrongly *when an index serves them*
  (:data:`SECANTUS_INDEX_DEVIATIONS`, found by these tests, which query an indexed copy of the
  documents). Those queries are sent to the indexed collection as ``{"$and": [query]}``, which
  MongoDB documents as the same query and which SecantusDB answers without the index; each
  category must still be observed on the query as generated, so a fix upstream is noticed.
* Through ``mongomock://`` every query must agree too, except those in a known mongomock
  deviation category (``MONGOMOCK_DEVIATIONS``); a disagreement outside them fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from mongo_helpers import Server, fresh_name, require, with_database
from test_query_differential import (
    COMPOUND_RANGE,
    DOCS,
    INDEXED_PATHS,
    MANUAL,
    PROJECTIONS,
    QUERIES,
    SECANTUS_DEVIATIONS,
    SORTS,
    UPDATE_STEPS,
    Deviation,
    atoms,
    canon,
    documented_form,
    mongomock_deviations,
    report,
    show,
    uids_of,
)

from track_backends import open_store
from track_backends.errors import QueryError, TrackBackendsError
from track_backends.store import Store
from track_backends.stores.memory import MemoryStore

UPDATE_FIELD_ORDER = next(d for d in SECANTUS_DEVIATIONS if d.name == "update-field-order")

# MongoDB cannot build a compound index over two fields that both hold arrays in one document
# (https://www.mongodb.com/docs/manual/core/indexes/index-types/index-multikey/#compound-multikey-indexes),
# and the generated documents do that for ("m.x", "n"); the memory store indexes them fine.
MONGO_INDEXED_PATHS = [p for p in INDEXED_PATHS if p != ("m.x", "n")]


INDEXED_SINGLE = {p for p in MONGO_INDEXED_PATHS if isinstance(p, str)}

SECANTUS_INDEX_DEVIATIONS = [
    Deviation(
        "null-through-index",
        f"{MANUAL}/tutorial/query-for-null-fields/",
        "{f: null} matches documents where f is null or missing, also when a dotted path reaches no "
        "value inside an array of documents; answered from an index on f, SecantusDB skips those "
        "where f is missing.",
    ),
    Deviation(
        "multikey-range-through-index",
        f"{MANUAL}/tutorial/query-arrays/#query-an-array-with-compound-filter-conditions-on-the-array-elements",
        "{f: {$gt: a, $lt: b}} on an array matches when some element is > a and some (maybe other) "
        "element is < b; answered from a multikey index, SecantusDB requires one element to satisfy both.",
    ),
]


def secantus_index_deviations(query: dict[str, Any]) -> list[str]:
    """The :data:`SECANTUS_INDEX_DEVIATIONS` categories ``query`` falls into."""
    found = set()
    for a in atoms(query):
        if a.path not in INDEXED_SINGLE:
            continue
        operands = a.arg if a.op in ("$in", "$nin", "$all") and isinstance(a.arg, list) else [a.arg]
        if a.op not in ("$exists", "$size", "$regex", "$options", "$not", "$elemMatch") and None in operands:
            found.add("null-through-index")
        if a.op == COMPOUND_RANGE:
            found.add("multikey-range-through-index")
    return sorted(found)


@pytest.fixture(scope="module")
def memory() -> MemoryStore:
    store = MemoryStore()
    store.insert_many("docs", DOCS)
    return store


def _fill(store: Store) -> Store:
    store.insert_many("docs", DOCS)
    for keys in MONGO_INDEXED_PATHS:
        store.ensure_index("indexed", keys)
    store.insert_many("indexed", DOCS)
    return store


@pytest.fixture(scope="module")
def wire(server: Server) -> Iterator[Store]:
    """A ``mongodb://`` store on a real server holding the generated documents twice."""
    name = fresh_name()
    store = open_store(with_database(server.uri, name))
    try:
        yield _fill(store)
    finally:
        store.close()
        server.client.drop_database(name)


@pytest.fixture(scope="module")
def mock() -> Iterator[Store]:
    require("mongomock")
    from track_backends.stores.mongo.drivers import shared_mongomock_client

    name = fresh_name()
    store = open_store(f"mongomock://{name}")
    try:
        yield _fill(store)
    finally:
        store.close()
        shared_mongomock_client().drop_database(name)


def _answer(store: Store, coll: str, query: Any) -> list[str] | str:
    try:
        return uids_of(store.find(coll, query))
    except QueryError as e:
        return f"error: {e}"


def _agree(got: list[str] | str, want: list[str] | str) -> bool:
    if isinstance(got, str) or isinstance(want, str):
        return isinstance(got, str) == isinstance(want, str)
    return got == want


def test_find_and_count_match_memory(wire: Store, server: Server, memory: MemoryStore) -> None:
    failures = []
    observed: Counter[str] = Counter()
    secantus = server.kind == "secantus"
    for q in QUERIES:
        sent = documented_form(q) if secantus else q
        want = _answer(memory, "docs", q)
        index_devs = secantus_index_deviations(q) if secantus else []
        for coll in ("docs", "indexed"):
            got = _answer(wire, coll, {"$and": [sent]} if coll == "indexed" and index_devs else sent)
            if not _agree(got, want):
                failures.append(f"[{coll}] {show(q)}\n    mongo:  {got}\n    memory: {want}")
        if index_devs and not _agree(_answer(wire, "indexed", sent), want):
            observed.update(index_devs)
        if isinstance(want, list) and wire.count("docs", sent) != len(want):
            failures.append(f"[count] {show(q)}: {wire.count('docs', sent)} != {len(want)}")
    assert not failures, report("queries where the mongo store disagrees with the memory store", failures)
    if secantus:
        stale = [d.name for d in SECANTUS_INDEX_DEVIATIONS if not observed[d.name]]
        assert not stale, f"SecantusDB index deviations never observed (fixed upstream? remove them): {stale}"


def test_mongomock_matches_memory_outside_known_deviations(mock: Store, memory: MemoryStore) -> None:
    failures = []
    checked = 0
    seen: Counter[str] = Counter()
    for q in QUERIES:
        want = _answer(memory, "docs", q)
        known = mongomock_deviations(q)
        for coll in ("docs", "indexed"):
            try:
                got: list[str] | str = uids_of(mock.find(coll, q))
            except TrackBackendsError as e:  # mongomock's own failures arrive as StoreError
                got = f"error: {e}"
            if _agree(got, want):
                checked += not known and coll == "docs"
            elif known:
                seen.update(known)
            else:
                failures.append(f"[{coll}] {show(q)}\n    mongomock: {got}\n    memory:    {want}")
    assert not failures, report("queries where mongomock:// deviates outside the known categories", failures)
    assert checked >= 75, f"only {checked} queries were checked against mongomock outside the known deviations"


def test_sort_and_limit_match_memory(wire: Store, memory: MemoryStore) -> None:
    failures = []
    filters: list[dict[str, Any] | None] = [None, {"rank": {"$gte": 5}}, {"tags": {"$exists": True}}]
    for i, spec in enumerate(SORTS):
        full = [*spec, ("uid", 1)]
        query = filters[i % len(filters)]
        limit = 7 if i % 4 == 3 else None
        want = [d["uid"] for d in memory.find("docs", query, sort=full, limit=limit)]
        for coll in ("docs", "indexed"):
            got = [d["uid"] for d in wire.find(coll, query, sort=full, limit=limit)]
            if got != want:
                failures.append(f"[{coll}] sort={full} query={show(query)} limit={limit}\n    {got}\n    {want}")
    assert not failures, report("sorts where the mongo store disagrees with the memory store", failures)


def test_projection_matches_memory(wire: Store, memory: MemoryStore) -> None:
    failures = []
    for projection in [*PROJECTIONS, {}, ["n", "m.x"], {"uid": 0}, {"uid": 1}, {"m": 1, "uid": 0}]:
        want = memory.find("docs", {}, sort=[("uid", 1)], projection=projection)
        got = wire.find("docs", {}, sort=[("uid", 1)], projection=projection)
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            if canon(w) != canon(g):  # types and field order
                failures.append(f"projection={show(projection)} #{i}\n    mongo:  {show(g)}\n    memory: {show(w)}")
    assert not failures, report("projected documents that differ", failures)


def unordered(value: Any) -> Any:
    """``canon`` without field order (types still count: 1, 1.0 and True differ)."""
    if isinstance(value, dict):
        return ["doc", sorted([k, unordered(v)] for k, v in value.items())]
    if isinstance(value, list):
        return ["arr", [unordered(v) for v in value]]
    return [type(value).__name__, value]


def _step(store: Store, step: dict[str, Any]) -> tuple[str, Any]:
    try:
        if step["kind"] == "find_one_and_update":
            return ("doc", store.find_one_and_update("steps", step["query"], step["update"], sort=step["sort"]))
        n = store.update("steps", step["query"], step["update"], many=step["many"], upsert=step["upsert"])
        return ("count", n)
    except QueryError:
        return ("error", None)


def test_update_sequence_matches_memory(server: Server) -> None:
    """The generated update steps, applied through both stores, leave the same documents.

    Failing updates (many=True included) must change nothing on either side: the mongo store
    checks an update_many against every matching document before sending it. On SecantusDB,
    documents are compared without field order (its deviation ``update-field-order``).
    """
    name = fresh_name()
    store = open_store(with_database(server.uri, name))
    memory = MemoryStore()
    try:
        store.insert_many("steps", DOCS)
        memory.insert_many("steps", DOCS)
        form = unordered if server.kind == "secantus" else canon  # UPDATE_FIELD_ORDER.url
        failures: list[str] = []
        errors = 0
        for i, step in enumerate(UPDATE_STEPS):
            want = _step(memory, step)
            got = _step(store, step)
            errors += want[0] == "error"
            label = f"step {i}: {show(step)}"
            if form(got) != form(want):
                failures.append(f"{label}\n    mongo:  {show(got)}\n    memory: {show(want)}")
            after_mongo = {d["uid"]: form(d) for d in store.find("steps")}
            after_memory = {d["uid"]: form(d) for d in memory.find("steps")}
            if after_mongo != after_memory:
                diff = sorted(
                    u for u in set(after_mongo) | set(after_memory) if after_mongo.get(u) != after_memory.get(u)
                )
                failures.append(f"{label}\n    documents differ afterwards: {diff[:10]}")
                break  # the states diverged: later steps would only repeat the difference
        assert not failures, report("update steps where the mongo store disagrees with the memory store", failures)
        assert errors >= 10, f"only {errors} failing steps: the sequence no longer tests failures"
    finally:
        store.close()
        server.client.drop_database(name)
