"""PostgreSQL store: hostile input, SERIALIZABLE retries, unavailability, indexes, layout versions."""

from __future__ import annotations

import copy
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import with_options
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from track_backends import errors
from track_backends.registry import open_store
from track_backends.stores.memory import MemoryStore
from track_backends.stores.postgres import schema as pgschema
from track_backends.stores.postgres.regex import pg_regex

COLL = "things"
PENDING = {"status.name": {"$in": ["Created", "Interrupted"]}}
RUNNING = {"$set": {"status": {"name": "Running", "value": 101}}}


def _trial(i: int, group: str = "g") -> dict[str, Any]:
    return {"uid": f"t{i:06d}", "group_id": group, "status": {"name": "Created", "value": 0}, "i": i}


@pytest.fixture
def store(pg_uri: str) -> Iterator[Any]:
    s = open_store(pg_uri)
    yield s
    s.close()


# -- hostile names and values ------------------------------------------------------------------

HOSTILE = ["'; DROP TABLE things; --", '"', "'", "\\", "$", "a$b", "%s", "%(p0)s", "{}", "é中😀", "\u202e", "\n"]
names = st.one_of(
    st.sampled_from([h for h in HOSTILE if not h.startswith("$")] + ["k", "0", "01"]),
    st.text(st.characters(blacklist_characters=".$\x00", blacklist_categories=("Cs",)), min_size=1, max_size=12),
).filter(lambda k: not k.startswith("$"))
strings = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
    st.text(alphabet="ab'\"\\$%", min_size=2000, max_size=3000),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3), max_leaves=6
)


@st.composite
def scenario(draw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    keys = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    docs = []
    for i in range(draw(st.integers(1, 5))):
        doc: dict[str, Any] = {"uid": f"u{i}"}
        for k in keys:
            if draw(st.booleans()):
                doc[k] = draw(values)
        docs.append(doc)
    queries = []
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            sub = draw(names)
            path = f"{path}.{sub}"
        probe = draw(st.one_of(values, st.sampled_from([d.get(path) for d in docs if path in d] or [None])))
        probe_str = draw(strings | st.text(max_size=5))  # may hold U+0000: never stored, still a valid query
        op = draw(
            st.sampled_from(["eq", "$ne", "$gt", "$lte", "$in", "$nin", "$exists", "$regex", "$all", "$elemMatch"])
        )
        if op == "eq":
            q: dict[str, Any] = {path: probe}
        elif op == "$regex":
            q = {path: {"$regex": re.escape(probe_str[:50]), "$options": draw(st.sampled_from(["", "i", "m", "s"]))}}
        elif op in ("$in", "$nin", "$all"):
            q = {path: {op: [probe, probe_str]}}
        elif op == "$exists":
            q = {path: {"$exists": draw(st.booleans())}}
        elif op == "$elemMatch":
            q = {path: {"$elemMatch": {"$eq": probe}}}
        else:
            q = {path: {op: draw(st.sampled_from([probe, probe_str]))}}
        queries.append(q)
    return docs, queries


@pytest.fixture(scope="module")
def fuzz_store(pg_server_uri: str, pg_admin: Any) -> Iterator[Any]:
    name = f"f_{uuid.uuid4().hex[:10]}"
    s = open_store(with_options(pg_server_uri, schema=name))
    yield s
    s.close()
    pg_admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenario())
def test_hostile_names_and_values_stay_parameters(fuzz_store: Any, case: Any) -> None:
    docs, queries = case
    mem = MemoryStore()
    fuzz_store.delete(COLL, {})
    fuzz_store.insert_many(COLL, copy.deepcopy(docs))
    mem.insert_many(COLL, copy.deepcopy(docs))
    assert sorted(fuzz_store.find(COLL), key=lambda d: d["uid"]) == sorted(mem.find(COLL), key=lambda d: d["uid"])
    for q in queries:
        want = {d["uid"] for d in mem.find(COLL, q)}
        assert {d["uid"] for d in fuzz_store.find(COLL, q)} == want, q
        assert fuzz_store.count(COLL, q) == len(want), q
    assert fuzz_store.count(COLL) == len(docs)  # the table is still there, with the same rows


def test_hostile_update_paths(store: Any) -> None:
    mem = MemoryStore()
    doc = {"uid": "x", "o": {"'; DROP TABLE things; --": 1, 'q"': [1]}}
    for s in (store, mem):
        s.insert(COLL, copy.deepcopy(doc))
        s.update(COLL, {"uid": "x"}, {"$set": {"o.'; DROP TABLE things; --": "%(p0)s"}, "$push": {'o.q"': "\\"}})
        s.update(COLL, {"uid": "x"}, {"$unset": {"o.{}": ""}, "$addToSet": {"o.é中😀": {"$each": [1, 1.0, True]}}})
    assert repr(store.find(COLL)) == repr(mem.find(COLL))


def test_unstorable_strings(store: Any) -> None:
    store.insert(COLL, {"uid": "a", "s": "b"})
    with pytest.raises(errors.EncodingError):
        store.insert(COLL, {"uid": "nul", "s": "a\x00b"})
    with pytest.raises(errors.EncodingError):
        store.update(COLL, {"uid": "a"}, {"$set": {"s": "\x00"}})
    for query in ({"s": "a\x00b"}, {"s": {"$gt": "a\x00"}}, {"s": {"$ne": "\x00"}}):
        with pytest.raises(errors.QueryError):  # refused on every backend, before reaching SQL
            store.find(COLL, query)
    assert [d["uid"] for d in store.find(COLL, {})] == ["a"]


def test_values_and_key_order_round_trip(store: Any) -> None:
    doc = {"uid": "v", "z": 1, "a": {"y": 1.0, "b": [1e16, -1.5e300, 5e-324, 2.0**62, 2**62, {"q": 1, "p": 2}]}}
    store.insert(COLL, copy.deepcopy(doc))
    got = store.find_one(COLL, {"uid": "v"})
    assert repr(got) == repr(doc)
    assert store.count(COLL, {"a.b": 2**62}) == 1  # 2.0**62 == 2**62, as Python and MongoDB say
    assert store.count(COLL, {"a.b": {"q": 1, "p": 2}}) == 1
    assert store.count(COLL, {"a.b": {"p": 2, "q": 1}}) == 0  # documents compare in field order
    store.update(COLL, {"uid": "v"}, {"$set": {"a.c": 3, "m": {"k2": 1, "k1": 2}}, "$unset": {"z": ""}})
    assert list(store.find_one(COLL, {"uid": "v"})) == ["uid", "a", "m"]
    assert list(store.find_one(COLL, {"uid": "v"})["a"]) == ["y", "b", "c"]


# -- claims under SERIALIZABLE ------------------------------------------------------------------


def test_serializable_contention_retries_and_claims_once(pg_uri: str) -> None:
    uri = with_options(pg_uri, isolation="serializable", pool_max="1")
    with open_store(uri) as s:
        s.insert_many("trials", [_trial(i) for i in range(400)])
    stores = [open_store(uri) for _ in range(4)]
    claimed: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def work(i: int) -> None:
        barrier.wait()
        while True:
            doc = stores[i].find_one_and_update("trials", {"group_id": "g", **PENDING}, RUNNING)
            if doc is None:
                return
            claimed[i].append(doc["uid"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    retries = sum(s.retries for s in stores)
    for s in stores:
        s.close()
    flat = [u for c in claimed for u in c]
    assert sorted(flat) == [f"t{i:06d}" for i in range(400)], "a trial was lost or claimed twice"
    assert retries > 0, "no serialization failure happened: the retry path was not exercised"


# -- unavailable servers --------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "10.255.255.1"])
def test_unreachable_server_fails_fast_without_the_password(host: str) -> None:
    port = _closed_port()
    store = open_store(f"postgresql://alice:s3cr3t-pw@{host}:{port}/db?connect_timeout=2")
    start = time.monotonic()
    with pytest.raises(errors.StoreUnavailableError) as info:
        store.count("trials")
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert f"{host}:{port}" in str(info.value)
    assert "s3cr3t-pw" not in str(info.value) and "s3cr3t-pw" not in repr(store)
    store.close()


def test_closed_store_is_unavailable(store: Any) -> None:
    store.insert(COLL, {"uid": "a"})
    store.close()
    store.close()
    with pytest.raises(errors.StoreUnavailableError):
        store.find(COLL)


def test_uri_options(pg_uri: str) -> None:
    with pytest.raises(errors.InvalidURIError):
        open_store(with_options(pg_uri, nonsense="1"))
    with pytest.raises(errors.InvalidURIError):
        open_store(with_options(pg_uri, isolation="chaos"))
    with open_store(with_options(pg_uri, pool_min="0", pool_max="2", prefix="x_", lock_timeout="2")) as s:
        s.insert(COLL, {"uid": "a"})
        assert s.count(COLL) == 1
    with open_store(with_options(pg_uri, prefix="y_")) as s:
        assert s.count(COLL) == 0  # another prefix is another namespace


def test_driver_errors_are_wrapped(store: Any, pg_admin: Any) -> None:
    store.insert(COLL, {"uid": "a"})
    with pytest.raises(errors.DuplicateKeyError):
        store.insert(COLL, {"uid": "a"})
    pg_admin.execute(f'DROP TABLE "{store.schema}"."{COLL}"')
    with pytest.raises(errors.StoreError) as info:
        store.find(COLL)
    assert not isinstance(info.value, errors.StoreUnavailableError)


# -- indexes --------------------------------------------------------------------------------------


def test_pending_query_and_claim_use_the_index(store: Any, pg_admin: Any) -> None:
    store.insert_many("trials", [_trial(i, f"g{i % 50}") for i in range(5000)])
    pg_admin.execute(f'ANALYZE "{store.schema}"."trials"')
    query = {"group_id": "g7", **PENDING}
    plan = store.explain("trials", query)
    assert "Seq Scan" not in plan and "Index" in plan, plan
    assert store.find_one_and_update("trials", query, RUNNING)["group_id"] == "g7"
    claim_plan = store.explain("trials", query, claim=RUNNING)
    assert "Seq Scan" not in claim_plan and "Index Scan using" in claim_plan, claim_plan
    assert store.count("trials", query) == 99


def test_index_overflow_branch_keeps_array_matches(store: Any) -> None:
    store.insert_many("trials", [_trial(i) for i in range(5)])
    store.insert("trials", {"uid": "arr", "group_id": ["x", "g"], "status": [{"name": "Created"}]})
    query = {"group_id": "g", **PENDING}
    assert store.count("trials", query) == 6
    got = {store.find_one_and_update("trials", query, RUNNING)["uid"] for _ in range(6)}
    assert "arr" in got and store.find_one_and_update("trials", query, RUNNING) is None


# -- layout versions ------------------------------------------------------------------------------


def test_old_layout_is_migrated_and_newer_refused(pg_uri: str, pg_admin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(pg_uri) as s:
        s.insert(COLL, {"uid": "a"})
        schema = s.schema
    ran: list[int] = []
    current = pgschema.SCHEMA_VERSION

    def next_version(layout: Any, conn: Any) -> None:
        ran.append(current)
        conn.execute(f'ALTER TABLE "{schema}"."{COLL}" ADD COLUMN migrated boolean DEFAULT true')

    monkeypatch.setattr(pgschema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(pgschema.MIGRATIONS, current, next_version)
    for _ in range(2):
        with open_store(pg_uri) as s:
            assert s.count(COLL) == 1
    assert ran == [current]
    version = pg_admin.execute(f'SELECT value FROM "{schema}"."tb$meta" WHERE key = %s', ("schema_version",)).fetchone()
    assert version[0] == current + 1
    monkeypatch.setattr(pgschema, "SCHEMA_VERSION", current)
    with pytest.raises(errors.StoreError, match="newer"):
        open_store(pg_uri).count(COLL)


# -- the compiler on its own ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,options,subject",
    [("a$", "", "xa\n"), ("^b", "m", "a\nb"), ("a.c", "", "a\nc"), ("a.c", "s", "a\nc"), (r"\bx\b", "", "a x b")],
)
def test_regex_translation_matches_python(store: Any, pattern: str, options: str, subject: str) -> None:
    assert pg_regex(pattern, options) is not None
    store.insert(COLL, {"uid": "r", "s": subject})
    want = bool(re.search(pattern, subject, sum(f for c, f in (("m", re.M), ("s", re.S)) if c in options)))
    assert store.count(COLL, {"s": {"$regex": pattern, "$options": options}}) == int(want)


def test_sorted_claim_after_an_unsorted_one_keeps_its_order(store: Any) -> None:
    store.insert_many("trials", [_trial(i) for i in range(5)])
    query = {"group_id": "g", **PENDING}
    first = store.find_one_and_update("trials", query, RUNNING)  # caches the one-statement claim
    assert first is not None
    store.update("trials", {"uid": first["uid"]}, {"$set": {"status.name": "Created"}})
    got = store.find_one_and_update("trials", query, RUNNING, sort=[("i", -1)])
    assert got["uid"] == "t000004"
