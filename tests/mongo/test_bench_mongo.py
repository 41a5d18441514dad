"""The benchmark on a MongoDB-wire server (SecantusDB): raw pymongo rows, K-worker claims."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from track_backends.cli import main


@pytest.fixture
def bench_mongo_uri(mongo_wire_uri: str, mongo_wire_client: Any) -> Iterator[str]:
    """A ``mongodb://`` URI of a fresh database on the wire server (dropped afterwards)."""
    if "?" in mongo_wire_uri or "@" in mongo_wire_uri:
        pytest.skip("this test builds its database URI from a plain mongodb://host:port/ URI")
    name = f"tb_bench_{uuid.uuid4().hex[:12]}"
    yield mongo_wire_uri.rstrip("/") + "/" + name
    mongo_wire_client.drop_database(name)


def test_json_has_the_raw_pymongo_rows_and_workers_claim_exactly_n(
    bench_mongo_uri: str, mongo_wire_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "mongo.json"
    argv = ["bench", bench_mongo_uri, "--n", "60,120", "--level", "store", "--workers", "1,2", "--repeat", "1"]
    assert main([*argv, "--json", str(path), "-q", "--no-peers", "--artifact-mib", "3", "--no-record"]) == 0
    report = json.loads(path.read_text())
    (art,) = report["artifacts"]
    assert art["reference"] == "ref:GridFS" and art["mib"] == 3
    assert all(art[k] > 0 for k in ("up_mib_s", "down_mib_s", "ref_up_mib_s", "ref_down_mib_s", "down_ratio"))
    by_level = {(r["level"], r["n"]): r for r in report["rows"]}
    assert set(by_level) == {(lv, n) for lv in ("store", "ref:pymongo") for n in (60, 120)}
    for n in (60, 120):
        ref, row = by_level[("ref:pymongo", n)], by_level[("store", n)]
        assert ref["claimed"] == n and ref["ratio"] is None
        assert row["reference"] == "ref:pymongo" and all(v > 0 for v in row["ratio"].values())
    workers = {(w["k"], w["n"]): w for w in report["workers"]}
    assert set(workers) == {(k, n) for k in (1, 2) for n in (60, 120)}
    for (k, n), w in workers.items():
        assert w["claimed"] == n and sum(w["per_worker"]) == n and len(w["per_worker"]) == k
    whats = {c["what"] for c in report["checks"]}
    assert {"inserts / raw pymongo >= 0.85", "claims / raw pymongo >= 0.85"} <= whats
    db = bench_mongo_uri.rsplit("/", 1)[1]
    assert mongo_wire_client[db]["trials"].count_documents({}) == 0  # store and reference cleaned up
