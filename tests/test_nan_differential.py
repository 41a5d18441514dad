"""NaN and ±infinity: the memory engine answers queries and sorts as a MongoDB-wire server does."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from nan_cases import NAN_DOCS, NAN_SORTS, nan_queries, same_values

from track_backends.stores.memory import MemoryStore


@pytest.fixture(scope="module")
def wire(mongo_wire_db: Any) -> Any:
    c = mongo_wire_db["nan_cases"]
    c.drop()
    c.insert_many([{"_id": d["uid"], **copy.deepcopy(d)} for d in NAN_DOCS])
    return c


@pytest.fixture(scope="module")
def memory() -> MemoryStore:
    s = MemoryStore()
    s.insert_many("things", copy.deepcopy(NAN_DOCS))
    return s


@pytest.mark.parametrize("query", nan_queries(), ids=repr)
def test_queries_match_mongodb(wire: Any, memory: MemoryStore, query: dict[str, Any]) -> None:
    want = sorted(d["uid"] for d in wire.find(query))
    assert sorted(d["uid"] for d in memory.find("things", query)) == want


@pytest.mark.parametrize("sort", NAN_SORTS, ids=repr)
def test_sorts_match_mongodb(wire: Any, memory: MemoryStore, sort: list[tuple[str, int]]) -> None:
    want = [d["uid"] for d in wire.find({}).sort(sort)]
    assert [d["uid"] for d in memory.find("things", sort=sort)] == want


def test_values_come_back_exactly(wire: Any, memory: MemoryStore) -> None:
    for d in NAN_DOCS:
        got = memory.find_one("things", {"uid": d["uid"]})
        assert got is not None and same_values(got, d)
        server = wire.find_one({"_id": d["uid"]})
        assert same_values({k: v for k, v in server.items() if k != "_id"}, d)


def test_nan_in_a_list_matches_any_nan_object() -> None:
    """A NaN from JSON or pickle is another object than the query's: ``$in`` must still find it."""
    s = MemoryStore()
    s.insert("c", {"uid": "a", "x": float("nan")})
    s.insert("c", {"uid": "b", "x": 1})
    assert [d["uid"] for d in s.find("c", {"x": {"$in": [float("nan")]}})] == ["a"]
    assert [d["uid"] for d in s.find("c", {"x": {"$nin": [float("nan"), 2]}})] == ["b"]
