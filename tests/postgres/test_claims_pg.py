"""Claims walk the (group_id, status.name) index whatever the planner's statistics say.

A claim costs O(1) only as a plain index scan (the entries of claimed trials are marked dead
and skipped). The statistics a sweep leaves behind used to steer PostgreSQL elsewhere: after an
ANALYZE that saw every trial pending, a sequential scan that re-reads every claimed trial; after
a VACUUM of the empty table, a bitmap scan that collects every entry, dead ones included. These
tests put the table in each state and check the plans (no timing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from track_backends import get_protocol
from track_backends.bench.workload import CLAIM_UPDATE, PENDING, trial_doc
from track_backends.protocol.updates import pending_query, reserve_update
from track_backends.registry import open_store
from track_backends.store import TRIALS

N = 2000


@pytest.fixture
def store(pg_uri: str) -> Iterator[Any]:
    s = open_store(pg_uri)
    yield s
    s.close()


def _stale(store: Any, pg_admin: Any, state: str) -> None:
    """Fill the trials table with ``N`` pending trials and leave the statistics in ``state``."""
    table = f'"{store.schema}".trials'
    store.insert(TRIALS, trial_doc(-1))
    store.delete(TRIALS, {})
    if state == "vacuumed-empty":
        pg_admin.execute(f"VACUUM ANALYZE {table}")
    store.insert_many(TRIALS, [trial_doc(i) for i in range(N)])
    if state == "analyzed-pending":
        pg_admin.execute(f"ANALYZE {table}")


def _walks_the_index(plan: str) -> bool:
    return "Index Scan" in plan and "Seq Scan" not in plan and "Bitmap" not in plan


@pytest.mark.parametrize("state", ["analyzed-pending", "vacuumed-empty", "never-analyzed"])
def test_claims_walk_the_index(store: Any, pg_admin: Any, state: str) -> None:
    _stale(store, pg_admin, state)
    for _ in range(N // 2):
        assert store.find_one_and_update(TRIALS, PENDING, CLAIM_UPDATE) is not None
    plan = store.explain(TRIALS, PENDING, claim=CLAIM_UPDATE)
    assert _walks_the_index(plan), plan


@pytest.mark.parametrize("state", ["analyzed-pending", "vacuumed-empty"])
def test_reservations_pick_through_the_index(pg_uri: str, pg_admin: Any, state: str) -> None:
    with get_protocol(pg_uri) as proto:
        _stale(proto.store, pg_admin, state)
        for _ in range(N // 4):
            assert proto.reserve_trial({"group_id": "g"}, lease=600, owner="w") is not None
        query = {"group_id": "g", **pending_query()}
        plan = proto.store.explain(TRIALS, query, claim=reserve_update(0.0, 600, "w"))  # type: ignore[attr-defined]
        assert _walks_the_index(plan), plan


def test_the_status_key_column_has_no_statistics(store: Any, pg_admin: Any) -> None:
    store.insert(TRIALS, trial_doc(0))
    targets = dict(
        pg_admin.execute(
            "SELECT attname, attstattarget FROM pg_attribute WHERE attrelid = %s::regclass AND attname LIKE 'k\\_%%'",
            (f'"{store.schema}".trials',),
        ).fetchall()
    )
    assert targets.pop("k_d9e62284168a9864") == 0  # status.name
    assert targets and all(v != 0 for v in targets.values())  # group_id and hash keep theirs


def test_the_claim_pool_is_the_only_one_that_never_scans(store: Any) -> None:
    store.insert_many(TRIALS, [trial_doc(i) for i in range(5)])
    assert store.find_one_and_update(TRIALS, PENDING, CLAIM_UPDATE) is not None
    assert "Seq Scan" in store.explain(TRIALS, {"parameters.id": 3})  # finds plan as before
    assert store.find_one_and_update(TRIALS, {"parameters.id": 3}, CLAIM_UPDATE)["uid"] == trial_doc(3)["uid"]
