"""The benchmark: its report has the rows, the claimed counts equal n (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from track_backends import bench
from track_backends.cli import main
from track_backends.stores.memory import MemoryStore

METRICS = ("insert_per_s", "query_ms", "log_per_s", "claim_per_s")


def _assert_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        assert r["claimed"] == r["n"], r
        assert all(r[m] > 0 for m in METRICS), r
        if r["level"] in ("store", "protocol") and r["store"] in ("ephemeral", "pickled", "file"):
            assert set(r["ratio"]) == {"insert", "query", "log", "claim"}
        else:
            assert r["ratio"] is None


def test_json_report_has_rows_and_claims(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    assert main(["bench", "ephemeral:", "--n", "200,400", "--repeat", "1", "--json", str(path), "-q"]) == 0
    assert "claim/s" in capsys.readouterr().out  # the table still goes to stdout
    report = json.loads(path.read_text())
    assert report["meta"]["ns"] == [200, 400]
    got = sorted((r["level"], r["n"]) for r in report["rows"])
    assert got == sorted((lv, n) for lv in ("store", "protocol", "ref:dict") for n in (200, 400))
    _assert_rows(report["rows"])
    flat = {f["level"]: f for f in report["flatness"]}
    assert set(flat) == {"store", "protocol", "ref:dict"}
    assert all(f["n_small"] == 200 and f["n_large"] == 400 and f["insert"] > 0 for f in flat.values())
    checks = {(c["level"], c["what"].split()[0]) for c in report["checks"]}
    assert ("store", "inserts/s") in checks and ("protocol", "new_trial/s") in checks
    assert {c["status"] for c in report["checks"]} <= {"PASS", "MISS"}


def test_run_repeats_and_levels() -> None:
    report = bench.run(["ephemeral:"], [100], levels=["protocol"], repeats=3)
    assert [(r["level"], r["repeats"]) for r in report["rows"]] == [("protocol", 3), ("ref:dict", 3)]
    _assert_rows(report["rows"])
    assert report["flatness"] == []  # one n: nothing to compare
    flat_checks = [c for c in report["checks"] if "cost" in c["what"]]
    assert flat_checks == []  # flatness targets are store-level only


def test_flatness_needs_two_sizes_to_be_checked() -> None:
    report = bench.run(["ephemeral:"], [100], levels=["store"], repeats=1)
    skipped = [c for c in report["checks"] if c["status"] == "SKIP"]
    assert len(skipped) == 2 and all("cost" in c["what"] for c in skipped)


@pytest.mark.parametrize("n", [1, 7, 250])
def test_workloads_claim_exactly_n(n: int) -> None:
    assert bench.store_workload(MemoryStore(), n)["claimed"] == n
    assert bench.protocol_workload(MemoryStore(), n)["claimed"] == n
    assert bench.dict_reference(n)["claimed"] == n


def test_a_double_claim_is_caught() -> None:
    class Leaky(MemoryStore):
        """Claims the second trial but hands out the first one again."""

        first: dict[str, Any] | None = None

        def find_one_and_update(self, collection, query, update, *, sort=None):
            doc = super().find_one_and_update(collection, query, update, sort=sort)
            if self.first is None:
                self.first = doc
            elif doc is not None and doc["uid"] != self.first["uid"] and self.first.get("seen") is None:
                self.first["seen"] = True
                return self.first
            return doc

    with pytest.raises(bench.BenchError, match="distinct claimed uids: expected 10, got 9"):
        bench.store_workload(Leaky(), 10)

    class Extra(MemoryStore):
        """Hands out one trial too many."""

        extra = True

        def find_one_and_update(self, collection, query, update, *, sort=None):
            doc = super().find_one_and_update(collection, query, update, sort=sort)
            if doc is None and self.extra:
                self.extra = False
                return {"uid": "h00000000_0"}
            return doc

    with pytest.raises(bench.BenchError, match="claims: expected 10, got 11"):
        bench.store_workload(Extra(), 10)


def test_a_short_query_is_caught() -> None:
    class Short(MemoryStore):
        def find(self, collection, query=None, **kw):
            return super().find(collection, query, **kw)[:-1]

    with pytest.raises(bench.BenchError, match="pending query: expected 5, got 4"):
        bench.store_workload(Short(), 5)


def test_bad_arguments() -> None:
    with pytest.raises(bench.BenchError):
        bench.run(["ephemeral:"], [0])
    with pytest.raises(bench.BenchError):
        bench.run(["ephemeral:"], [10], levels=["nope"])


@pytest.mark.parametrize("scheme", ["pickled", "file"])
def test_fsync_reference(tmp_path: Path, scheme: str) -> None:
    res = bench.fsync_reference(120, scheme, str(tmp_path), cap=50)
    assert res["claimed"] == 120 and all(res[m] > 0 for m in METRICS)
    assert list(tmp_path.iterdir()) == []


def test_check_targets_classifies_rows() -> None:
    def row(level: str, n: int, ins: float, claim: float, q: float = 1.0, ratio: dict | None = None) -> dict:
        return {
            "store": "pickled" if ratio else "ephemeral",
            "uri": "pickled:///x.pkl" if ratio else "ephemeral:",
            "level": level,
            "n": n,
            "insert_per_s": ins,
            "query_ms": q,
            "log_per_s": 1.0,
            "claim_per_s": claim,
            "claimed": n,
            "ratio": ratio,
        }

    mem = [
        row("store", 1000, 150_000, 40_000, q=3.0),
        row("store", 100_000, 140_000, 20_000, q=300.0),
        row("protocol", 1000, 50_000, 35_000),
    ]
    jr = [
        row("store", 1000, 3000, 2500, ratio={"insert": 0.7, "query": 1, "log": 1, "claim": 1}),
        row("store", 100_000, 3000, 1000, ratio={"insert": 0.5, "query": 1, "log": 1, "claim": 1}),
    ]
    rows = mem + jr
    got = {(c["store"], c["level"], c["what"]): c["status"] for c in bench.check_targets(rows, bench.flatness(rows))}
    assert got[("ephemeral", "store", "inserts/s >= 100,000")] == "PASS"
    assert got[("ephemeral", "store", "claims/s >= 50,000")] == "MISS"
    assert got[("ephemeral", "store", "pending query ms <= 2.0")] == "MISS"
    assert got[("ephemeral", "protocol", "new_trial/s >= 40,000")] == "PASS"
    assert got[("ephemeral", "store", "insert cost(large n)/cost(small n) <= 1.3")] == "PASS"
    assert got[("ephemeral", "store", "claim cost(large n)/cost(small n) <= 1.3")] == "MISS"
    assert got[("pickled", "store", "inserts / raw append+fsync >= 0.6")] == "PASS"  # judged at n=1,000
    assert got[("pickled", "store", "claims/s >= 2,000")] == "PASS"
    assert got[("pickled", "store", "claim cost(large n)/cost(small n) <= 1.3")] == "MISS"


def test_format_report_has_every_row() -> None:
    report = bench.run(["ephemeral:"], [50, 60], repeats=1)
    text = bench.format_report(report, checks=True)
    assert len([line for line in text.splitlines() if line.startswith("ephemeral ")]) == 6 + 3
    assert "flatness" in text and "targets:" in text


def test_default_run_covers_the_embedded_stores() -> None:
    report = bench.run(None, [100], levels=["store"], repeats=1)
    got = [(r["store"], r["level"]) for r in report["rows"]]
    assert got == [
        ("ephemeral", "store"),
        ("ephemeral", "ref:dict"),
        ("pickled", "store"),
        ("pickled", "ref:fsync"),
        ("file", "store"),
        ("file", "ref:fsync"),
    ]
    _assert_rows(report["rows"])


def test_full_run_script_defaults() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_run", Path(__file__).resolve().parents[1] / "benchmarks/run.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = mod.full_run_args(["ephemeral:", "--json", "x.json"])
    assert args[:2] == ["bench", "ephemeral:"]
    assert args[args.index("--n") + 1] == "1000,10000,100000"
    assert "--check" in args and args.count("--json") == 1


def test_json_to_stdout_with_check_puts_targets_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "ephemeral:", "--n", "100", "--repeat", "1", "--json", "--check", "-q"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["rows"]
    assert captured.err.startswith("targets:")
