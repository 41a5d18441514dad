"""The benchmark on PostgreSQL: raw psycopg reference rows, K-worker claims (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from track_backends import bench
from track_backends.bench import references
from track_backends.cli import main
from track_backends.registry import open_store
from track_backends.uri import parse_uri


def test_json_has_the_raw_psycopg_rows_and_workers_claim_exactly_n(pg_uri: str, tmp_path: Path) -> None:
    path = tmp_path / "pg.json"
    argv = ["bench", pg_uri, "--n", "120,200", "--level", "store", "--workers", "1,3", "--repeat", "1"]
    assert main([*argv, "--json", str(path), "-q", "--no-peers", "--artifact-mib", "3", "--no-record"]) == 0
    report = json.loads(path.read_text())
    (art,) = report["artifacts"]
    assert art["reference"] == "ref:COPY" and art["mib"] == 3
    assert all(art[k] > 0 for k in ("up_mib_s", "down_mib_s", "ref_up_mib_s", "ref_down_mib_s", "up_ratio"))
    by_level = {(r["level"], r["n"]): r for r in report["rows"]}
    assert set(by_level) == {(lv, n) for lv in ("store", "ref:psycopg") for n in (120, 200)}
    for n in (120, 200):
        ref, row = by_level[("ref:psycopg", n)], by_level[("store", n)]
        assert ref["claimed"] == n and ref["ratio"] is None and ref["group_query_ms"] > 0
        assert row["reference"] == "ref:psycopg" and set(row["ratio"]) == {"insert", "query", "log", "claim", "group"}
        assert all(v > 0 for v in row["ratio"].values())
    workers = {(w["k"], w["n"]): w for w in report["workers"]}
    assert set(workers) == {(k, n) for k in (1, 3) for n in (120, 200)}
    for (k, n), w in workers.items():
        assert w["claimed"] == n and sum(w["per_worker"]) == n and len(w["per_worker"]) == k
    whats = {c["what"] for c in report["checks"]}
    assert "inserts / raw psycopg >= 0.8" in whats and "4 workers' claims/s / 1 worker's >= 1.5" in whats
    with open_store(pg_uri) as store:
        assert store.count("trials") == 0  # the bench removed its trials, artifacts and blobs
        assert store.count("artifacts") == 0 and list(store.list_blobs()) == []


def test_raw_reference_replays_the_stores_own_statements(pg_uri: str) -> None:
    with open_store(pg_uri) as store:
        store.insert("trials", bench.trial_doc(0))  # the table exists
        store.delete("trials", {})
        phases = references.record_postgres(store, 30)
        assert {k: len(v) for k, v in phases.items()} == {
            "insert": 30,
            "query": 1,
            "log": 30,
            "claim": 31,  # the last claim finds nothing
            "interrupt": 10,
            "group": 1,
        }
        assert all("INSERT INTO" in str(q) for q, _ in phases["insert"])
        assert "SKIP LOCKED" in str(phases["claim"][0][0])
        assert store.count("trials", {"status.name": "Running"}) == 20
        store.delete("trials", {})
        res = references.psycopg_reference(parse_uri(pg_uri), store, 40)
        assert res["claimed"] == 40 and res["group_query_ms"] > 0
        assert store.count("trials") == 40  # the replay's trials, all claimed but the 10 set back
        assert store.count("trials", {"status.name": "Interrupted"}) == 10


def test_conninfo_drops_the_stores_own_options() -> None:
    pytest.importorskip("psycopg")
    info = references.libpq_conninfo(
        parse_uri("postgresql://u:secret@db.example:5433/track?schema=s1&prefix=p_&sslmode=require&pool_max=8")
    )
    assert "sslmode=require" in info and "dbname=track" in info and "port=5433" in info
    assert "schema" not in info and "pool_max" not in info and "prefix" not in info
