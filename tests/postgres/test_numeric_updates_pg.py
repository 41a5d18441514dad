"""``$inc``, ``$min`` and ``$max`` in SQL give what the memory store gives, or fall back to Python.

SQL applies ``$inc`` by an integer to a missing field or an integer, and ``$min``/``$max`` by a
finite number to a missing field or a number; every other case (float arithmetic, NaN, the
infinities, other types, overflow) is applied in Python. Both must be indistinguishable from
the memory store, through ``update``, ``find_one_and_update`` and ``append_points``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from track_backends import errors
from track_backends.query.equality import same_value
from track_backends.registry import open_store
from track_backends.store import TRIALS, Store
from track_backends.stores.memory import MemoryStore

INF, NAN, BIG = math.inf, math.nan, 2**63 - 1
STORED: list[Any] = [1, -5, 0, BIG, -BIG - 1, 1.5, 1e16, -0.0, NAN, INF, -INF, "7", None, True, [1, 2], {"a": 1}]
UPDATES: list[dict[str, Any]] = [
    {"$inc": {"x": 1}},
    {"$inc": {"x": -3}},
    {"$inc": {"x": 2.5}},
    {"$inc": {"x": BIG}},
    {"$min": {"x": 0}},
    {"$min": {"x": 1}},
    {"$min": {"x": 1.0}},
    {"$max": {"x": 0.5}},
    {"$max": {"x": 2**62}},
    {"$max": {"x": 1e16}},
    {"$min": {"x": -INF}},
    {"$max": {"x": NAN}},
    {"$min": {"x": -0.0}},
    {"$inc": {"x.y": 1}},
    {"$max": {"x.0": 3}},
    {"$inc": {"s.loss.count": 1}, "$set": {"s.loss.last": 0.5}, "$min": {"s.loss.min": 0.5}, "$max": {"s.loss.max": 7}},
]


@pytest.fixture
def store(pg_uri: str) -> Iterator[Store]:
    s = open_store(pg_uri)
    yield s
    s.close()


def _docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [{"uid": "missing"}]
    docs += [{"uid": f"v{i}", "x": v} for i, v in enumerate(STORED)]
    docs.append({"uid": "summary", "s": {"loss": {"count": 4, "last": 1.0, "min": 0.25, "max": 3}}})
    return docs


def _outcome(store: Store, how: str, uid: str, update: dict[str, Any]) -> Any:
    try:
        if how == "update":
            store.update(TRIALS, {"uid": uid}, update)
        elif how == "claim":
            store.find_one_and_update(TRIALS, {"uid": uid}, update)
        else:
            assert store.append_points(TRIALS, uid, [("loss", 0, 1.0)], update=update)
    except errors.QueryError:
        return "QueryError"
    return store.find_one(TRIALS, {"uid": uid})


@pytest.mark.parametrize("how", ["update", "claim", "points"])
def test_numeric_updates_match_the_memory_store(store: Store, how: str) -> None:
    mem = MemoryStore()
    for update in UPDATES:
        store.delete(TRIALS, {})
        mem.delete(TRIALS, {})
        store.insert_many(TRIALS, _docs())
        mem.insert_many(TRIALS, _docs())
        for doc in _docs():
            want = _outcome(mem, how, doc["uid"], update)
            got = _outcome(store, how, doc["uid"], update)
            assert same_value(got, want), (update, doc, got, want)


def test_integer_increments_claim_in_one_statement(store: Store) -> None:
    store.insert_many(TRIALS, [{"uid": f"t{i}", "g": "a", "status": {"name": "Created"}, "n": i} for i in range(3)])
    query = {"g": "a", "status.name": "Created"}
    update = {"$set": {"status.name": "Running"}, "$inc": {"n": 10, "tries": 1}}
    assert store.find_one_and_update(TRIALS, query, update)["tries"] == 1  # type: ignore[index]
    assert store.explain(TRIALS, query, claim=update).startswith("Update on")  # type: ignore[attr-defined]
    store.update(TRIALS, {"uid": "t1"}, {"$set": {"n": 0.5}})  # a float: the claim takes the Python path
    store.update(TRIALS, {"uid": "t2"}, {"$set": {"n": 0.5}})
    got = store.find_one_and_update(TRIALS, query, update)
    assert got is not None and got["n"] == 10.5 and got["status"]["name"] == "Running"
