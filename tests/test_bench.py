"""The benchmark: its report has the rows, the claimed counts equal n (no timing assertions)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from track_backends import bench
from track_backends.cli import main
from track_backends.registry import open_store
from track_backends.stores.memory import MemoryStore

METRICS = ("insert_per_s", "query_ms", "log_per_s", "claim_per_s", "group_query_ms")
RATIOS = {"insert", "query", "log", "claim", "group"}

QUICK = ["--artifact-mib", "0", "--no-record"]
"""Flags that skip the artifacts and record phases, for tests about something else."""


def _assert_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        assert r["claimed"] == r["n"], r
        assert all(r[m] > 0 for m in METRICS), r
        if r["level"] in ("store", "protocol") and r["store"] in ("ephemeral", "pickled", "file"):
            assert set(r["ratio"]) == RATIOS
            assert r["reference"] == bench.REFERENCES[{"ephemeral": "memory"}.get(r["store"], "journal")]
        else:
            assert r["ratio"] is None


def test_json_report_has_rows_and_claims(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bench.json"
    assert main(["bench", "ephemeral:", "--n", "200,400", "--repeat", "1", "--json", str(path), "-q", *QUICK]) == 0
    assert "claim/s" in capsys.readouterr().out  # the table still goes to stdout
    report = json.loads(path.read_text())
    assert report["meta"]["ns"] == [200, 400]
    ours = [r for r in report["rows"] if r["level"] != "peer"]  # peer rows appear where optuna/orion import
    got = sorted((r["level"], r["n"]) for r in ours)
    assert got == sorted((lv, n) for lv in ("store", "protocol", "ref:dict") for n in (200, 400))
    _assert_rows(ours)
    flat = {f["level"]: f for f in report["flatness"] if f["level"] != "peer"}
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
    flat_checks = [c for c in report["checks"] if "cost(large n)" in c["what"]]
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
    with pytest.raises(bench.BenchError, match="workers must be positive"):
        bench.run(["ephemeral:"], [10], workers_k=[0])


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
    assert report["workers"] == []  # none asked for
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
    assert args[args.index("--workers") + 1] == "1,2,4"
    assert mod.full_run_args(["--plot", "p.png"]).count("--plot") == 1


def test_plot_script_merges_reports(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_plot", Path(__file__).resolve().parents[1] / "benchmarks/plot.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    paths = []
    for i, uri in enumerate(["ephemeral:", "ephemeral:"]):
        p = tmp_path / f"r{i}.json"
        p.write_text(json.dumps(bench.run([uri], [50, 60], levels=["store"], repeats=1)))
        paths.append(str(p))
    merged = mod.merge(paths)
    assert len(merged["rows"]) == 8
    assert bench.plot_report(merged, str(tmp_path / "m.png"))


def test_json_to_stdout_with_check_puts_targets_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "ephemeral:", "--n", "100", "--repeat", "1", "--json", "--check", "-q", *QUICK]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["rows"]
    assert captured.err.startswith("targets:")


# -- K-worker claims ------------------------------------------------------------------------------
def test_workers_claim_exactly_n_across_processes_on_a_pickled_file(tmp_path: Path) -> None:
    report = bench.run([f"pickled://{tmp_path}/w.pkl"], [200], levels=["store"], workers_k=[1, 3], repeats=1)
    got = {w["k"]: w for w in report["workers"]}
    assert set(got) == {1, 3}
    for k, w in got.items():
        assert w["claimed"] == 200 and w["n"] == 200 and w["store"] == "pickled"
        assert len(w["per_worker"]) == k and sum(w["per_worker"]) == 200
        assert w["claim_per_s"] > 0 and w["note"] is None
    assert got[1]["speedup"] == 1.0 and got[3]["speedup"] > 0
    assert list(tmp_path.iterdir()) == []  # the scratch files are gone


def test_concurrent_claims_directly(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/c.jsonl"
    with open_store(uri) as store:
        uids = bench.workers.fill(store, 150)
    res = bench.concurrent_claims(uri, 2, uids)
    assert res["claimed"] == 150 and sum(res["per_worker"]) == 150
    with open_store(uri) as store:
        assert store.count("trials", {"status.name": "Running"}) == 150


def test_tally_catches_double_and_missing_claims() -> None:
    uids = ["a", "b", "c"]
    ok = bench.workers.tally([(0, 1.0, 2.0, ["a", "c"], None), (1, 1.5, 3.0, ["b"], None)], uids)
    assert ok["claimed"] == 3 and ok["per_worker"] == [2, 1] and ok["seconds"] == 2.0
    with pytest.raises(bench.BenchError, match="claimed more than once across processes, e.g. b"):
        bench.workers.tally([(0, 1.0, 2.0, ["a", "b"], None), (1, 1.0, 2.0, ["b", "c"], None)], uids)
    with pytest.raises(bench.BenchError, match="expected each of 3 trials claimed once, got 2"):
        bench.workers.tally([(0, 1.0, 2.0, ["a"], None), (1, 1.0, 2.0, ["c"], None)], uids)
    with pytest.raises(bench.BenchError, match="1 of 2 failed; first: boom"):
        bench.workers.tally([(0, 1.0, 2.0, ["a"], None), (1, 0.0, 0.0, [], "boom")], uids)


def test_a_failing_worker_is_reported(tmp_path: Path) -> None:
    with pytest.raises(bench.BenchError, match="failed"):
        bench.concurrent_claims(f"pickled://{tmp_path}/missing-dir/x.pkl", 2, ["h00000000_0"])


@pytest.mark.parametrize("uri", ["ephemeral:", "mongomock://bench_skip"])
def test_workers_are_skipped_with_a_note_for_in_process_stores(uri: str) -> None:
    if uri.startswith("mongomock"):
        pytest.importorskip("mongomock")
    report = bench.run([uri], [50], levels=["store"], workers_k=[1, 2], repeats=1)
    (w,) = report["workers"]
    assert w["k"] is None and w["claimed"] == 0 and "other processes cannot open it" in w["note"]
    assert "other processes cannot open it" in bench.format_report(report)


def test_parse_workers() -> None:
    import argparse

    assert bench.parse_workers("4,1,2,2") == [1, 2, 4]
    assert bench.parse_workers("0") == [] and bench.parse_workers("none") == []
    for bad in ("x", "1,-2"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_workers(bad)


# -- checks for server stores -----------------------------------------------------------------------
def test_check_targets_for_postgres_and_mongo() -> None:
    def row(uri: str, level: str, n: int, claim: float, group: float, ratio: dict | None) -> dict:
        return {
            "store": uri.split(":")[0],
            "uri": uri,
            "level": level,
            "n": n,
            "insert_per_s": 1000.0,
            "query_ms": 1.0,
            "log_per_s": 1000.0,
            "claim_per_s": claim,
            "group_query_ms": group,
            "claimed": n,
            "ratio": ratio,
        }

    pg, mg = "postgresql://h/db", "mongodb://h/db"
    good = {"insert": 0.9, "query": 1.0, "log": 0.7, "claim": 0.9, "group": 1.0}
    rows = [
        row(pg, "store", 1000, 2500, 9.0, good),
        row(pg, "store", 10_000, 2400, 4.0, good),
        row(pg, "ref:psycopg", 1000, 2600, 1.0, None),
        row(mg, "store", 1000, 500, 1.0, {**good, "insert": 0.8}),
        row(mg, "store", 10_000, 100, 1.0, good),
    ]
    workers = [
        {"store": "postgresql", "uri": pg, "n": 10_000, "k": 1, "speedup": 1.0},
        {"store": "postgresql", "uri": pg, "n": 10_000, "k": 4, "speedup": 1.6},
    ]
    checks = bench.check_targets(rows, bench.flatness(rows), workers)
    got = {(c["store"], c["what"]): (c["status"], c["n"]) for c in checks}
    assert got[("postgresql", "inserts / raw psycopg >= 0.8")] == ("PASS", "n=1,000")
    assert got[("postgresql", "metric logs / raw psycopg >= 0.8")] == ("MISS", "n=1,000")
    assert got[("postgresql", "claims/s >= 2,000")] == ("PASS", "n=1,000")
    assert got[("postgresql", "group query ms (10 pending) <= 5.0")] == ("PASS", "n=10,000")  # the largest n
    assert got[("postgresql", "claim cost(large n)/cost(small n) <= 1.3")][0] == "PASS"
    assert got[("postgresql", "4 workers' claims/s / 1 worker's >= 1.5")] == ("PASS", "n=10,000")
    assert got[("mongodb", "inserts / raw pymongo >= 0.85")] == ("MISS", "n=1,000")
    assert got[("mongodb", "claims / raw pymongo >= 0.85")] == ("PASS", "n=1,000")
    assert got[("mongodb", "claim cost(large n)/cost(small n) <= 1.3")][0] == "MISS"
    assert not any(c["level"] == "ref:psycopg" for c in checks)


# -- peers ---------------------------------------------------------------------------------------------
def test_peer_rows_run_where_importable_and_respect_max_n(monkeypatch: pytest.MonkeyPatch) -> None:
    from track_backends.bench import peers, workload

    def fake(n: int, scratch: str) -> dict[str, Any]:
        assert Path(scratch).is_dir()
        return workload.result(n, 1.0, 2.0, 10, 1.0, 4.0, None)

    monkeypatch.setattr(peers, "PEERS", [peers.Peer("fake-peer", "json", 300, fake)])
    report = bench.run(["ephemeral:"], [200, 400], levels=["store"], peers=True, repeats=1)
    prow = [r for r in report["rows"] if r["level"] == "peer"]
    assert [(r["store"], r["n"], r["claimed"]) for r in prow] == [("fake-peer", 200, 200)]
    assert prow[0]["group_query_ms"] is None and prow[0]["ratio"] is None
    assert any("fake-peer skipped at n=400" in n for n in report["notes"])
    assert not any(c["store"] == "fake-peer" for c in report["checks"])
    json.dumps(report, allow_nan=False)  # strict JSON: no NaN for the missing group query


def test_peers_that_do_not_import_leave_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from track_backends.bench import peers

    monkeypatch.setattr(peers, "PEERS", [peers.Peer("nope", "no_such_package_xyz", 10, lambda n, s: {})])
    found, notes = peers.available_peers()
    assert found == [] and "no_such_package_xyz not importable" in notes[0]


def test_peer_workloads_when_installed() -> None:
    from track_backends.bench import peers

    ran = 0
    for peer in peers.available_peers()[0]:
        if peer.name in ("orion-ephemeral", "optuna-inmemory"):
            assert peers.run_peer(peer, 30)["claimed"] == 30
            ran += 1
    if not ran:
        pytest.skip("neither optuna nor orion is installed here (they are not dependencies)")


# -- plot -----------------------------------------------------------------------------------------------
def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench.png"
    path = tmp_path / "bench.json"
    argv = ["bench", "ephemeral:", "--n", "100,200", "--repeat", "1", "-q", "--plot", str(out), "--json", str(path)]
    argv += QUICK
    assert main(argv) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    report = json.loads(path.read_text())
    again = tmp_path / "again.png"
    assert bench.plot_report(report, str(again)) == str(again) and again.stat().st_size > 10_000


def test_plot_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    assert main(["bench", "ephemeral:", "--n", "10", "-q", "--plot", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "track-backends[bench]" in err and "matplotlib" in err


def test_reference_and_levels_are_measured_in_interleaved_rounds() -> None:
    from track_backends.bench import runner

    calls: list[str] = []

    def fn(name: str) -> Any:
        def run() -> dict[str, Any]:
            calls.append(name)
            return {"insert_per_s": float(len(calls)), "group_query_ms": None}

        return run

    out = runner._interleaved({"ref": fn("ref"), "store": fn("store")}, 3, lambda _: None)
    assert calls == ["ref", "store"] * 3
    assert out["ref"] == ({"insert_per_s": 3.0, "group_query_ms": None}, 3)
    assert out["store"][0]["insert_per_s"] == 4.0


def test_history_phase_reports_points_at_scale() -> None:
    report = bench.run(["ephemeral:"], [50], levels=["protocol"], repeats=1, history=True, history_points=3000)
    (h,) = report["history"]
    assert h["store"] == "ephemeral" and h["points"] == 3000 + 300
    assert h["point_us_small"] > 0 and h["point_us_large"] > 0 and h["batch_per_s"] > 0 and h["read_ms"] > 0
    assert h["point_flat"] == pytest.approx(h["point_us_large"] / h["point_us_small"])
    whats = {c["what"].split(" <= ")[0].split(" >= ")[0] for c in report["checks"] if c["level"] == "history"}
    assert "batched points/s" in whats and "read the long series, ms" in whats
    text = bench.format_report(report, checks=True)
    assert "history: metric points in one trial" in text


def test_cli_history_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "ephemeral:", "--n", "50", "--repeat", "1", "--workers", "0", "--no-peers", "--json", "-q", *QUICK]
    assert main([*argv, "--history-points", "2000"]) == 0
    assert len(json.loads(capsys.readouterr().out)["history"]) == 1
    assert main([*argv, "--no-history"]) == 0
    assert json.loads(capsys.readouterr().out)["history"] == []


def test_artifacts_phase_compares_with_a_raw_copy(tmp_path: Path) -> None:
    uris = ["ephemeral:", f"file://{tmp_path}/bench.jsonl"]
    report = bench.run(uris, [50], levels=["store"], repeats=1, artifact_mib=3)
    mem, journal = report["artifacts"]
    assert (mem["store"], mem["reference"], mem["up_ratio"]) == ("ephemeral", None, None)
    assert journal["reference"] == "ref:copy" and journal["mib"] == 3
    for key in ("up_mib_s", "down_mib_s", "ref_up_mib_s", "ref_down_mib_s"):
        assert journal[key] > 0
    assert journal["up_ratio"] == pytest.approx(journal["up_mib_s"] / journal["ref_up_mib_s"])
    checks = [c for c in report["checks"] if c["level"] == "artifacts"]
    assert [c["store"] for c in checks] == ["file", "file"] and all(c["status"] in ("PASS", "MISS") for c in checks)
    assert "artifacts: put_artifact" in bench.format_report(report)
    assert list(tmp_path.glob("*")) == []  # scratch files and stores are removed


def test_cli_artifact_flag(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "ephemeral:", "--n", "50", "--repeat", "1", "--workers", "0", "--no-peers", "--json", "-q"]
    assert main([*argv, "--no-history", "--no-record", "--artifact-mib", "2"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["artifacts"]
    assert row["mib"] == 2 and row["up_mib_s"] > 0
    assert main([*argv, "--no-history", "--artifact-mib", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["artifacts"] == [] and report["record"]["saved_us"] > 0


def test_record_phase_measures_recorder_and_tracing() -> None:
    report = bench.run(["ephemeral:"], [50], levels=["store"], repeats=1, recording=True)
    rec = report["record"]
    for key in ("plain_us", "saved_us", "unsaved_us", "trace_on_us"):
        assert rec[key] > 0
    assert rec["trace_off_us"] >= 0 and rec["saved_us"] > rec["unsaved_us"]
    checks = [c for c in report["checks"] if c["level"] == "record"]
    assert len(checks) == 3 and all(c["status"] in ("PASS", "MISS") for c in checks)
    assert "record: per-call cost" in bench.format_report(report)
    assert bench.run(["ephemeral:"], [50], levels=["store"], repeats=1)["record"] is None


def test_a_failing_raw_reference_is_a_bench_error_without_the_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    from track_backends.bench import artifacts
    from track_backends.bench.workload import BenchError
    from track_backends.uri import parse_uri

    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 100)
    uri = parse_uri("postgresql://user:s3cret-pw@127.0.0.1:1/db?connect_timeout=1")
    with pytest.raises(BenchError) as e:
        artifacts._reference("postgres", uri, str(source), str(tmp_path), 1)
    assert "ref:COPY" in str(e.value) and "s3cret-pw" not in str(e.value)
    assert "s3cret-pw" not in repr(e.value)
