"""NaN and ±infinity on PostgreSQL: stored exactly, and queried and sorted as a MongoDB-wire server does."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from nan_cases import NAN_DOCS, NAN_SORTS, nan_queries, same_values

from track_backends import open_store
from track_backends.store import Store


@pytest.fixture(scope="module")
def wire(mongo_wire_db: Any) -> Any:
    c = mongo_wire_db["nan_cases_pg"]
    c.drop()
    c.insert_many([{"_id": d["uid"], **copy.deepcopy(d)} for d in NAN_DOCS])
    return c


@pytest.fixture
def pg(pg_uri: str) -> Iterator[Store]:
    s = open_store(pg_uri)
    s.insert_many("things", copy.deepcopy(NAN_DOCS))
    yield s
    s.close()


def test_queries_and_sorts_match_mongodb(wire: Any, pg: Store) -> None:
    bad = []
    for query in nan_queries():
        want = sorted(d["uid"] for d in wire.find(query))
        got = sorted(d["uid"] for d in pg.find("things", query))
        if got != want:
            bad.append(f"{query!r}: postgres {got}, MongoDB {want}")
    for sort in NAN_SORTS:
        want = [d["uid"] for d in wire.find({}).sort(sort)]
        got = [d["uid"] for d in pg.find("things", sort=sort)]
        if got != want:
            bad.append(f"sort {sort}: postgres {got}, MongoDB {want}")
    assert bad == []


def test_values_come_back_exactly(pg: Store) -> None:
    for d in NAN_DOCS:
        assert same_values(pg.find_one("things", {"uid": d["uid"]}), d)


def test_updates_with_nan_and_infinity(pg: Store) -> None:
    pg.update("things", {"uid": "one"}, {"$set": {"x": float("nan")}, "$push": {"l": float("-inf")}})
    pg.update("things", {"uid": "zero"}, {"$inc": {"x": float("inf")}})
    assert same_values(pg.find_one("things", {"uid": "one"}), {"uid": "one", "x": float("nan"), "l": [float("-inf")]})
    assert pg.find_one("things", {"uid": "zero"}) == {"uid": "zero", "x": float("inf")}
