"""The Store primitives every backend implements: values, queries, updates, isolation, errors, indexes."""

from __future__ import annotations

import copy
import math
import threading
from typing import Any

import pytest

from .. import errors
from ..encoding import MAX_DEPTH
from ..query.equality import same_value
from ..store import Store
from ..stores.memory import MemoryStore
from .base import _RUNNING, PENDING, _Base, _pending_doc, _strip, snapshot
from .data import BAD_DOCUMENTS, BAD_QUERIES, BAD_UPDATES, COLL, DOCS, QUERY_CASES, UPDATE_CASES


class StoreContract(_Base):
    """The Store primitives: values, queries, updates, isolation, errors and indexes."""

    def test_insert_and_find_round_trip(self, filled: Store) -> None:
        assert snapshot(filled) == sorted(DOCS, key=lambda d: d["uid"])
        assert filled.count(COLL) == len(DOCS)

    def test_values_keep_their_types(self, store: Store) -> None:
        doc = {"uid": "t", "i": 1, "f": 1.0, "b": True, "big": -(2**63), "u": "é\u4e2d\U0001f600", "n": None}
        store.insert(COLL, doc)
        got = _strip(store.find_one(COLL, {"uid": "t"}))
        assert got == doc
        assert [type(got[k]) for k in ("i", "f", "b", "big")] == [int, float, bool, int]  # type: ignore[index]

    @pytest.mark.parametrize("query,expected", QUERY_CASES, ids=[repr(q) for q, _ in QUERY_CASES])
    def test_query_operators(self, filled: Store, query: dict[str, Any], expected: set[str]) -> None:
        assert {d["uid"] for d in filled.find(COLL, query)} == expected
        assert filled.count(COLL, query) == len(expected)

    @pytest.mark.parametrize("query,error", BAD_QUERIES, ids=[repr(q) for q, _ in BAD_QUERIES])
    def test_bad_queries_are_refused(self, filled: Store, query: Any, error: str) -> None:
        before = snapshot(filled)
        for call in (
            lambda: filled.find(COLL, query),
            lambda: filled.update(COLL, query, {"$set": {"x": 1}}),
            lambda: filled.find_one_and_update(COLL, query, {"$set": {"x": 1}}),
            lambda: filled.delete(COLL, query),
        ):
            with pytest.raises(getattr(errors, error)):
                call()
        assert snapshot(filled) == before

    def test_sort_limit_projection(self, filled: Store) -> None:
        got = filled.find(COLL, {"s": {"$exists": True}}, sort=[("s", 1)], limit=3, projection=["s"])
        assert [_strip(d) for d in got] == [
            {"uid": "b", "s": "Banana"},
            {"uid": "e", "s": "Elder"},
            {"uid": "a", "s": "apple"},
        ]
        desc = filled.find(COLL, None, sort={"uid": -1}, limit=2)
        assert [d["uid"] for d in desc] == ["g", "f"]
        multi = filled.find(COLL, {"tags": "y"}, sort=[("b", -1), ("uid", 1)])
        assert [d["uid"] for d in multi] == ["a", "b", "f", "g"]  # booleans sort after numbers, missing first
        excl = _strip(filled.find(COLL, {"uid": "a"}, projection={"sub": 0})[0])
        assert excl is not None and "sub" not in excl and excl["s"] == "apple"
        nested = filled.find(COLL, {"uid": "a"}, projection={"sub.k": 1})[0]
        assert _strip(nested) == {"uid": "a", "sub": {"k": 1}}

    @pytest.mark.parametrize("update,expected", UPDATE_CASES, ids=[repr(u) for u, _ in UPDATE_CASES])
    def test_update_operators(self, filled: Store, update: dict[str, Any], expected: dict[str, Any]) -> None:
        assert filled.update(COLL, {"uid": "a"}, update) == 1
        assert _strip(filled.find_one(COLL, {"uid": "a"})) == expected
        others = [d for d in snapshot(filled) if d["uid"] != "a"]
        assert others == sorted(DOCS[1:], key=lambda d: d["uid"])

    @pytest.mark.parametrize("update,error", BAD_UPDATES, ids=[repr(u) for u, _ in BAD_UPDATES])
    def test_bad_updates_change_nothing(self, filled: Store, update: Any, error: str) -> None:
        before = snapshot(filled)
        with pytest.raises(getattr(errors, error)):
            filled.update(COLL, {}, update, many=True)
        with pytest.raises(getattr(errors, error)):
            filled.find_one_and_update(COLL, {"uid": "a"}, update)
        assert snapshot(filled) == before

    def test_update_many_is_all_or_nothing(self, filled: Store) -> None:
        before = snapshot(filled)
        with pytest.raises(errors.QueryError):  # "n" is a string in "e": the whole update fails
            filled.update(COLL, {}, {"$inc": {"n": 1}}, many=True)
        assert snapshot(filled) == before
        assert filled.update(COLL, {"tags": "x"}, {"$set": {"hit": True}}, many=True) == 3
        assert {d["uid"] for d in filled.find(COLL, {"hit": True})} == {"a", "d", "g"}

    @pytest.mark.parametrize("doc,error", BAD_DOCUMENTS, ids=[repr(d) for d, _ in BAD_DOCUMENTS])
    def test_bad_documents_are_refused(self, filled: Store, doc: Any, error: str) -> None:
        before = snapshot(filled)
        with pytest.raises(getattr(errors, error)):
            filled.insert(COLL, doc)
        with pytest.raises(getattr(errors, error)):
            filled.insert_many(COLL, [{"uid": "fine"}, doc])
        assert snapshot(filled) == before

    def test_duplicate_uid(self, filled: Store) -> None:
        before = snapshot(filled)
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert(COLL, {"uid": "a"})
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert_many(COLL, [{"uid": "new1"}, {"uid": "b"}])
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert_many(COLL, [{"uid": "new2"}, {"uid": "new2"}])
        assert snapshot(filled) == before

    def test_unique_index(self, filled: Store) -> None:
        filled.ensure_index(COLL, "s", unique=True)
        filled.ensure_index(COLL, "s", unique=True)  # idempotent
        before = snapshot(filled)
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert(COLL, {"uid": "z", "s": "apple"})
        with pytest.raises(errors.DuplicateKeyError):
            filled.update(COLL, {"uid": "b"}, {"$set": {"s": "apple"}})
        with pytest.raises(errors.DuplicateKeyError):
            filled.find_one_and_update(COLL, {"uid": "b"}, {"$set": {"s": "apple"}})
        assert snapshot(filled) == before
        filled.update(COLL, {"uid": "b"}, {"$set": {"s": "blueberry"}})
        filled.insert(COLL, {"uid": "z", "s": "Banana"})  # freed by the update
        with pytest.raises(errors.DuplicateKeyError):
            filled.ensure_index(COLL, "tags.0", unique=True)  # "a" and "g" collide already

    def test_indexes_keep_answers(self, filled: Store) -> None:
        for keys in ("n", "s", "tags", "b", ["sub.k", "n"], "sub.arr.v"):
            filled.ensure_index(COLL, keys)
        for query, expected in QUERY_CASES:
            assert {d["uid"] for d in filled.find(COLL, query)} == expected, query
        filled.update(COLL, {"uid": "a"}, {"$set": {"n": 2.5, "tags": "x"}})
        assert {d["uid"] for d in filled.find(COLL, {"n": 2.5})} == {"a", "b"}
        assert {d["uid"] for d in filled.find(COLL, {"tags": "x"})} == {"a", "d", "g"}

    def test_copy_isolation(self, store: Store) -> None:
        doc: dict[str, Any] = {"uid": "iso", "nested": {"list": [1, {"x": 1}]}}
        store.insert(COLL, doc)
        doc["nested"]["list"].append(99)
        got = store.find_one(COLL, {"uid": "iso"})
        assert _strip(got) == {"uid": "iso", "nested": {"list": [1, {"x": 1}]}}
        got["nested"]["list"][1]["x"] = 2  # type: ignore[index]
        after = store.find_one_and_update(COLL, {"uid": "iso"}, {"$set": {"y": 1}})
        assert after is not None and after["nested"]["list"][1] == {"x": 1}
        after["nested"]["list"].clear()
        upd = {"$set": {"z": {"deep": [1]}}}
        store.update(COLL, {"uid": "iso"}, upd)
        upd["$set"]["z"]["deep"].append(2)
        assert _strip(store.find_one(COLL, {"uid": "iso"})) == {
            "uid": "iso",
            "nested": {"list": [1, {"x": 1}]},
            "y": 1,
            "z": {"deep": [1]},
        }

    def test_numpy_values_are_never_confused(self, store: Store) -> None:
        np = pytest.importorskip("numpy")
        a = list(range(2000))
        b = a[:1000] + [-1] + a[1001:]  # the same abridged repr as ``a`` in NumPy
        assert repr(np.array(a)) == repr(np.array(b))
        store.insert_many(COLL, [{"uid": "a", "v": a}, {"uid": "b", "v": b}])
        assert [d["uid"] for d in store.find(COLL, {"v": np.array(a)})] == ["a"]
        assert [d["uid"] for d in store.find(COLL, {"v": np.array(b)})] == ["b"]
        store.update(COLL, {"uid": "a"}, {"$set": {"w": np.array(a)}})
        store.update(COLL, {"uid": "a"}, {"$set": {"w": np.array(b)}})
        assert store.find_one(COLL, {"uid": "a"})["w"] == b  # type: ignore[index]

    def test_find_one_and_update(self, filled: Store) -> None:
        got = filled.find_one_and_update(COLL, {"tags": "x"}, {"$inc": {"claims": 1}}, sort=[("s", -1)])
        assert got is not None and got["uid"] == "g" and got["claims"] == 1  # document after the update
        assert filled.find_one_and_update(COLL, {"s": "nothing"}, {"$set": {"x": 1}}) is None

    def test_upsert(self, filled: Store) -> None:
        assert filled.update(COLL, {"uid": "new"}, {"$set": {"v": 1}, "$setOnInsert": {"born": True}}, upsert=True) == 1
        assert _strip(filled.find_one(COLL, {"uid": "new"})) == {"uid": "new", "v": 1, "born": True}
        assert filled.update(COLL, {"uid": "new"}, {"$set": {"v": 2}, "$setOnInsert": {"born": False}}, upsert=True)
        assert _strip(filled.find_one(COLL, {"uid": "new"})) == {"uid": "new", "v": 2, "born": True}

    def test_delete_and_count(self, filled: Store) -> None:
        assert filled.delete(COLL, {"tags": "x"}) == 3
        assert filled.count(COLL) == len(DOCS) - 3
        assert filled.count(COLL, {"tags": "x"}) == 0
        assert filled.delete(COLL, {"tags": "x"}) == 0
        filled.insert(COLL, {"uid": "a"})  # a deleted uid can be used again
        assert filled.count("emptycoll") == 0 and filled.find("emptycoll") == []

    def test_bad_collection_name(self, store: Store) -> None:
        for bad in ("", "Has Space", "x;drop", "$x", None):
            with pytest.raises(errors.QueryError):
                store.insert(bad, {"uid": "a"})  # type: ignore[arg-type]

    def test_threads_claim_each_document_once(self, store: Store) -> None:
        store.insert_many("trials", [_pending_doc(i) for i in range(400)])
        claimed: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            while True:
                doc = store.find_one_and_update("trials", {"group_id": "g", **PENDING}, _RUNNING)
                if doc is None:
                    return
                with lock:
                    claimed.append(doc["uid"])

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(claimed) == sorted(f"t{i:05d}" for i in range(400))
        assert store.count("trials", {"status.name": "Running"}) == 400

    def test_nesting_limit(self, store: Store) -> None:
        deep: Any = 1
        for _ in range(MAX_DEPTH - 1):  # the document is level 1; "v" nests 99 lists below it
            deep = [deep]
        store.insert(COLL, {"uid": "ok", "v": deep})
        assert _strip(store.find_one(COLL, {"uid": "ok"})) == {"uid": "ok", "v": deep}
        with pytest.raises(errors.EncodingError, match=f"{MAX_DEPTH} levels"):
            store.insert(COLL, {"uid": "deep", "v": [deep]})
        with pytest.raises(errors.EncodingError, match=f"{MAX_DEPTH} levels"):
            store.update(COLL, {"uid": "ok"}, {"$set": {"w": [[deep]]}})
        query: dict[str, Any] = {"uid": "ok"}
        for _ in range(300):
            query = {"$and": [query]}
        with pytest.raises(errors.QueryError, match=f"{MAX_DEPTH} levels"):
            store.find(COLL, query)
        assert snapshot(store) == [{"uid": "ok", "v": deep}]

    def test_nan_and_infinity(self, store: Store) -> None:
        docs: list[dict[str, Any]] = [
            {"uid": "nan", "x": math.nan, "l": [math.nan, 1]},
            {"uid": "inf", "x": math.inf, "l": [math.inf]},
            {"uid": "ninf", "x": -math.inf},
            {"uid": "one", "x": 1},
            {"uid": "half", "x": 0.5, "sub": {"m": math.nan}},
            {"uid": "str", "x": "a"},
            {"uid": "missing"},
        ]
        store.insert_many(COLL, copy.deepcopy(docs))
        for d in docs:
            assert same_value(_strip(store.find_one(COLL, {"uid": d["uid"]})), d)
        reference = MemoryStore()  # checked against a MongoDB-wire server in the differential tests
        reference.insert_many(COLL, copy.deepcopy(docs))
        queries: list[dict[str, Any]] = [
            {"x": {op: v}}
            for op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
            for v in (math.nan, math.inf, -math.inf, 1)
        ]
        queries += [{"x": {"$in": [math.nan, 1]}}, {"l": math.nan}, {"sub.m": math.nan}, {"x": {"$nin": [math.nan]}}]
        for q in queries:
            want = sorted(d["uid"] for d in reference.find(COLL, q))
            assert sorted(d["uid"] for d in store.find(COLL, q)) == want, q
        for direction in (1, -1):
            sort = [("x", direction), ("uid", 1)]
            assert [d["uid"] for d in store.find(COLL, sort=sort)] == [
                d["uid"] for d in reference.find(COLL, sort=sort)
            ]
        store.update(COLL, {"uid": "one"}, {"$set": {"x": math.nan}, "$push": {"l": -math.inf}})
        got = _strip(store.find_one(COLL, {"uid": "one"}))
        assert same_value(got, {"uid": "one", "x": math.nan, "l": [-math.inf]})
