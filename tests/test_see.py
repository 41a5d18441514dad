"""Seeing results: ``ls --metrics/--sort``, ``best``, ``tree``, ``export``, ``plot`` and the analysis frames.

Every test runs on a real ``pickled:`` store in ``tmp_path`` (it survives between command-line
invocations) and checks the output against what the store holds.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from track_backends import Project, Status, Trial, TrialGroup, get_protocol
from track_backends.cli import main
from track_backends.see import ExtraNotInstalledError, export, field_path, parse_sort
from track_backends.see.columns import FIXED, order_columns, trial_row
from track_backends.see.render import table_cell
from track_backends.see.writers import CsvWriter, ParquetWriter
from track_backends.see.writers import text as json_text

ROOT = Path(__file__).resolve().parents[1]
LRS = [0.1, 0.03, 0.01, 0.003, 0.001]


def _loss(lr: float, step: int) -> float:
    return abs(math.log10(lr) + 2.2) + 1.0 / (step + 1)  # best near lr = 0.006


class Sweep:
    """A pickled store: project mnist, group sweep-1 (5 trials, 4 with curves), and a loose trial."""

    def __init__(self, tmp_path: Path) -> None:
        self.uri = f"pickled://{tmp_path}/sweep.pkl"
        statuses = [Status.Completed, Status.Completed, Status.Running, Status.Completed, Status.Created]
        with get_protocol(self.uri) as proto:
            proto.new_project(Project("mnist"))
            self.group = proto.new_trial_group(TrialGroup("sweep-1", project_id="mnist"))
            self.trials = []
            for i, (lr, status) in enumerate(zip(LRS, statuses)):
                t = Trial({"lr": lr, "opt": {"momentum": 0.9, "nesterov": i % 2 == 0}, "layers": [i, 8]})
                t.project_id, t.group_id = "mnist", self.group.uid
                proto.new_trial(t)
                if i < 4:  # the last one has not started: no metric
                    proto.log_trial_metrics_batch(
                        t,
                        {
                            "loss": [(s, _loss(lr, s)) for s in range(6 + i)],
                            "acc": [(s, 0.1 * (i + s)) for s in range(3)],
                        },
                    )
                proto.set_trial_status(t, status)
                self.trials.append(t)
            loose = Trial({"lr": "auto", "seed": 7}, group_id="raw")
            proto.new_trial(loose)
            proto.log_trial_metrics(loose, step=0, loss=float("nan"), acc=float("inf"))
            self.loose = loose

    def docs(self) -> dict[str, dict[str, Any]]:
        with get_protocol(self.uri) as proto:
            return {d["uid"]: d for d in proto.store.find("trials")}

    def points(self) -> dict[str, dict[str, list[tuple[Any, Any]]]]:
        with get_protocol(self.uri) as proto:
            return {t.uid: t.metrics for t in proto.fetch_trials()}


@pytest.fixture
def sweep(tmp_path: Path) -> Sweep:
    return Sweep(tmp_path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def _best_uids(docs: dict[str, dict[str, Any]], metric: str, stat: str, reverse: bool = False) -> list[str]:
    have = [d for d in docs.values() if isinstance(d["metric_summary"].get(metric, {}).get(stat), (int, float))]
    return [d["uid"] for d in sorted(have, key=lambda d: d["metric_summary"][metric][stat], reverse=reverse)]


# -- column names ----------------------------------------------------------------------------------
def test_column_names_map_to_document_paths() -> None:
    assert field_path("loss.min") == "metric_summary.loss.min"
    assert field_path("lr") == field_path("parameters.lr") == "parameters.lr"
    assert field_path("opt.momentum") == "parameters.opt.momentum"
    assert field_path("group") == "group_id" and field_path("status") == "status.name"
    assert field_path("start_time") == "metadata.start_time"
    assert parse_sort("-loss.min, lr") == [("metric_summary.loss.min", -1), ("parameters.lr", 1)]


def test_a_parameter_that_reads_as_another_column_is_prefixed() -> None:
    doc = {"uid": "u", "parameters": {"uid": 1, "loss": {"min": 2}, "status": 3, "lr": 4}, "metric_summary": {}}
    row = trial_row(doc)
    assert row["uid"] == "u" and row["parameters.uid"] == 1 and row["parameters.loss.min"] == 2
    assert row["parameters.status"] == 3 and row["lr"] == 4
    for column in row:  # every column names exactly one document path
        assert column in FIXED or field_path(column).startswith("parameters.")


# -- ls ----------------------------------------------------------------------------------------------
def test_ls_metrics_sorted_puts_the_best_first(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "ls", sweep.uri, "--metrics", "loss", "--sort", "loss.min").splitlines()
    header = out[0].split()
    assert header[:6] == ["uid", "status", "group", "owner", "attempts", "lease"]
    assert header[6:9] == ["loss.last", "loss.min", "loss.max"] and header[-1] == "parameters"
    docs = sweep.docs()
    best = _best_uids(docs, "loss", "min")
    assert [line.split()[0] for line in out[1 : 1 + len(best)]] == best
    # trials without the key come last (MongoDB alone would put them first)
    assert {line.split()[0] for line in out[1 + len(best) :]} == set(docs) - set(best)
    first = out[1].split()
    assert float(first[header.index("loss.min")]) == pytest.approx(docs[best[0]]["metric_summary"]["loss"]["min"])


def test_ls_sort_descending_and_by_parameter(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    docs = sweep.docs()
    out = _run(capsys, "ls", sweep.uri, "--sort=-loss.min", "--metrics", "loss.min").splitlines()[1:]
    worst = _best_uids(docs, "loss", "min", reverse=True)
    assert [line.split()[0] for line in out[: len(worst)]] == worst
    by_lr = [t.uid for t in sorted(sweep.trials, key=lambda t: t.parameters["lr"])]
    for key in ("lr", "parameters.lr"):
        rows = _run(capsys, "ls", sweep.uri, "--sort", key, "--group", "sweep-1").splitlines()[1:]
        assert [line.split()[0] for line in rows] == by_lr


def test_ls_csv_and_json_parse(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    docs = sweep.docs()
    text = _run(capsys, "ls", sweep.uri, "--metrics", "loss.min,acc", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(docs)
    lease = ["uid", "status", "group", "owner", "attempts", "lease"]
    assert list(rows[0]) == [*lease, "loss.min", "acc.last", "acc.min", "acc.max", "parameters"]
    for row in rows:
        d = docs[row["uid"]]
        assert row["status"] == d["status"]["name"] and json.loads(row["parameters"]) == d["parameters"]
        want = d["metric_summary"].get("loss", {}).get("min")
        assert (row["loss.min"] == "") if want is None else float(row["loss.min"]) == want
    objs = json.loads(_run(capsys, "ls", sweep.uri, "--metrics", "loss", "--format", "json"))
    assert {o["uid"] for o in objs} == set(docs)
    for o in objs:
        d = docs[o["uid"]]
        assert o["parameters"] == d["parameters"] and o["lease"] is None and o["owner"] is None
        assert o["loss.min"] == d["metric_summary"].get("loss", {}).get("min")
    loose = next(o for o in objs if o["uid"] == sweep.loose.uid)
    assert loose["loss.last"] == "NaN"  # strict JSON: non-finite numbers as strings


def test_ls_says_how_many_more_when_limit_cuts(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, "ls", sweep.uri, "--limit", "2").splitlines()
    assert len(out) == 4 and out[-1].startswith("... 4 more (of 6)")
    out = _run(capsys, "ls", sweep.uri, "--limit", "2", "--status", "Completed").splitlines()
    assert out[-1].startswith("... 1 more (of 3)")
    assert "more" not in _run(capsys, "ls", sweep.uri, "--limit", "6")
    code = main(["ls", sweep.uri, "--limit", "2", "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 2  # the note goes to stderr
    assert "4 more" in err


def test_ls_status_and_group_filters(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    docs = sweep.docs()

    def uids(*args: str) -> set[str]:
        return {line.split()[0] for line in _run(capsys, "ls", sweep.uri, *args).splitlines()[1:]}

    assert uids("--status", "Completed") == {u for u, d in docs.items() if d["status"]["name"] == "Completed"}
    assert uids("--status", "Running,Created") == {u for u, d in docs.items() if d["status"]["name"] != "Completed"}
    in_group = {t.uid for t in sweep.trials}
    assert uids("--group", "sweep-1") == uids("--group", sweep.group.uid) == in_group
    assert uids("--group", "raw") == {sweep.loose.uid}
    assert uids("--group", "sweep-1", "--status", "Running") == {sweep.trials[2].uid}
    assert "--metrics takes metric names" in _error(capsys, "ls", sweep.uri, "--metrics", ",")


# -- best ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "stat", "reverse"), [("min", "min", False), ("max", "max", True)])
def test_best_orders_by_the_summary(
    sweep: Sweep, capsys: pytest.CaptureFixture[str], mode: str, stat: str, reverse: bool
) -> None:
    docs = sweep.docs()
    want = _best_uids(docs, "acc", stat, reverse=reverse)
    out = _run(capsys, "best", sweep.uri, "--metric", "acc", "--mode", mode, "-k", "3").splitlines()
    header = out[0].split()
    assert header[:5] == ["rank", "uid", f"acc.{stat}", "status", "group"]
    assert {"lr", "opt.momentum", "opt.nesterov", "layers"} <= set(header[5:])
    rows = [line.split() for line in out[1:]]
    assert [r[1] for r in rows] == want[:3] and [r[0] for r in rows] == ["1", "2", "3"]
    for r in rows:
        assert float(r[2]) == pytest.approx(docs[r[1]]["metric_summary"]["acc"][stat])
        assert r[header.index("lr")] == table_cell(docs[r[1]]["parameters"]["lr"])


def test_best_in_a_group_as_json(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    docs = sweep.docs()
    objs = json.loads(_run(capsys, "best", sweep.uri, "--metric", "loss", "--group", "sweep-1", "--format", "json"))
    assert [o["uid"] for o in objs] == _best_uids(docs, "loss", "min")  # 4 of them: k=5 is more than there are
    assert all(o["parameters"] == docs[o["uid"]]["parameters"] for o in objs)
    assert json.loads(_run(capsys, "best", sweep.uri, "--metric", "nothing", "--format", "json")) == []
    assert "-k must be a positive" in _error(capsys, "best", sweep.uri, "--metric", "loss", "-k", "0")


# -- tree ------------------------------------------------------------------------------------------
def test_tree_counts_trials_by_status(sweep: Sweep, capsys: pytest.CaptureFixture[str]) -> None:
    with get_protocol(sweep.uri) as proto:
        proto.new_trial_group(TrialGroup("empty", project_id="mnist"))
        proto.new_trial(Trial({"x": 1}, project_id="mnist", status=Status("Custom", 900)))
    out = _run(capsys, "tree", sweep.uri).splitlines()
    assert out[0].split()[0] == "mnist" and "(2 groups, 6 trials)" in out[0]
    assert out[1].split() == ["empty", "0", "trials"]
    assert out[2].split()[0] == "sweep-1" and out[2].split(None, 1)[1] == "5 trials: Created 1, Running 1, Completed 3"
    assert out[3].split(None, 2)[2] == "1 trial: other 1"  # (no group) of mnist: the custom status
    assert out[4].startswith("(no project)") and out[5].split(None, 2)[2] == "1 trial: Created 1"
    tree = json.loads(_run(capsys, "tree", sweep.uri, "--format", "json"))
    groups = {(n["project"], g["name"]): g["counts"] for n in tree for g in n["groups"]}
    assert groups[("mnist", "sweep-1")] == {"total": 5, "Created": 1, "Running": 1, "Completed": 3}
    assert groups[(None, "(no group)")] == {"total": 1, "Created": 1}


def test_tree_counts_with_store_count_only(sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    from track_backends.cli.tree import build_tree
    from track_backends.stores.memory import MemoryStore

    seen: list[str] = []
    real = MemoryStore.find
    monkeypatch.setattr(MemoryStore, "find", lambda self, c, *a, **k: seen.append(c) or real(self, c, *a, **k))
    with get_protocol(sweep.uri) as proto:
        assert build_tree(proto.store)[0]["project"] == "mnist"
    assert "trials" not in seen


# -- export ----------------------------------------------------------------------------------------
def _expected_rows(sweep: Sweep) -> dict[str, dict[str, Any]]:
    return {u: trial_row(d) for u, d in sweep.docs().items()}


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return got == want


def test_export_csv_round_trip(sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "trials.csv"
    assert "exported 6 rows (one per trial)" in _run(capsys, "export", sweep.uri, "-o", str(path))
    want = _expected_rows(sweep)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == order_columns(c for r in want.values() for c in r)
    assert reader.fieldnames[:6] == list(FIXED) and "loss.min" in reader.fieldnames
    assert "opt.momentum" in reader.fieldnames and "layers" in reader.fieldnames
    assert {r["uid"] for r in rows} == set(want)
    for row in rows:
        w = want[row["uid"]]
        for column, text in row.items():
            value = w.get(column)
            if value is None:
                assert text == ""
            elif isinstance(value, (bool, list)):
                assert json.loads(text) == value
            elif isinstance(value, (int, float)):
                assert _same(float(text), float(value)), column
            else:
                assert text == str(value)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_export_jsonl_round_trip(sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    _run(capsys, "export", sweep.uri, "-o", str(path), "--format", "jsonl", "--query", '{"status.name": "Completed"}')
    want = {u: r for u, r in _expected_rows(sweep).items() if r["status"] == "Completed"}
    got = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(got) == 3 and {g["uid"] for g in got} == set(want)
    for g in got:
        assert g == {k: v for k, v in want[g["uid"]].items()}


def test_export_parquet_round_trip(sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    _run(capsys, "export", sweep.uri, "-o", str(path))
    table = pq.read_table(path)
    want = _expected_rows(sweep)
    assert table.column_names == order_columns(c for r in want.values() for c in r)
    types = {f.name: str(f.type) for f in table.schema}
    assert types["uid"] == "string" and types["loss.min"] == "double" and types["loss.count"] == "int64"
    assert types["opt.nesterov"] == "bool" and types["layers"] == "string"
    assert types["lr"] == "string"  # numbers and "auto": the column became text
    for row in table.to_pylist():
        w = want[row["uid"]]
        for column, value in row.items():
            expected = w.get(column)
            if column == "lr" or column == "layers":
                assert value == json_text(expected)  # JSON text, strings as they are
            else:
                assert _same(value, expected), (column, value, expected)


def test_export_series_has_one_row_per_point(sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    points = sweep.points()
    n = sum(len(s) for series in points.values() for s in series.values())
    path = tmp_path / "points.csv"
    assert f"exported {n} rows (one per point)" in _run(capsys, "export", sweep.uri, "--series", "-o", str(path))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n and list(rows[0]) == ["trial_uid", "name", "step", "value"]
    got: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in rows:
        got.setdefault(r["trial_uid"], {}).setdefault(r["name"], []).append((int(r["step"]), float(r["value"])))
    assert got.keys() == {u for u, s in points.items() if s}
    for uid, series in got.items():
        for name, pts in series.items():
            assert all(_same(a, b) and s == t for (s, a), (t, b) in zip(pts, points[uid][name], strict=True))
    path = tmp_path / "loss.jsonl"
    _run(capsys, "export", sweep.uri, "--series", "--metrics", "loss", "-o", str(path))
    lines = path.read_text().splitlines()
    assert len(lines) == sum(len(s.get("loss", [])) for s in points.values())
    assert {json.loads(line)["name"] for line in lines} == {"loss"}


def test_export_series_parquet(sweep: Sweep, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    points = sweep.points()
    with get_protocol(sweep.uri) as proto:
        result = export(proto, str(tmp_path / "p.parquet"), series=True, batch=2)
    table = pq.read_table(tmp_path / "p.parquet")
    assert table.num_rows == result.rows == sum(len(s) for v in points.values() for s in v.values())
    assert [str(t) for t in table.schema.types] == ["string", "string", "int64", "double"]


def test_later_pages_widen_the_file(tmp_path: Path) -> None:
    """Pages of 2 trials: new parameters, metrics, and a string in a number column arrive late."""
    uri = f"pickled://{tmp_path}/w.pkl"
    with get_protocol(uri) as proto:
        for i in range(7):
            params: dict[str, Any] = {"i": i, "x": 1.5 if i < 4 else "big"}
            if i >= 3:
                params["late"] = {"deep": i}
            t = Trial(params)
            proto.new_trial(t)
            if i >= 5:
                proto.log_trial_metrics(t, step=i, late_metric=i)
        docs = {d["uid"]: trial_row(d) for d in proto.store.find("trials")}
        results = {fmt: export(proto, str(tmp_path / f"w.{fmt}"), batch=2) for fmt in ("csv", "jsonl")}
        try:
            import pyarrow.parquet as pq
        except ImportError:
            pq = None
        if pq is not None:
            results["parquet"] = export(proto, str(tmp_path / "w.parquet"), batch=2)
    columns = order_columns(c for r in docs.values() for c in r)
    assert results["csv"].widenings >= 1 and results["csv"].columns == columns
    with open(tmp_path / "w.csv", newline="") as f:
        rows = {r["uid"]: r for r in csv.DictReader(f)}
    assert len(rows) == 7 and all(rows[u]["late.deep"] == str(d.get("late.deep", "")) for u, d in docs.items())
    assert all(rows[u]["late_metric.max"] == str(d.get("late_metric.max", "")) for u, d in docs.items())
    if pq is not None:
        assert results["parquet"].widenings >= 1
        table = pq.read_table(tmp_path / "w.parquet")
        assert table.column_names == columns and str(table.schema.field("x").type) == "string"
        by_uid = {r["uid"]: r for r in table.to_pylist()}
        for uid, d in docs.items():
            assert by_uid[uid]["x"] == (d["x"] if isinstance(d["x"], str) else json.dumps(d["x"]))
            assert by_uid[uid]["late.deep"] == d.get("late.deep") and by_uid[uid]["i"] == d["i"]
            assert by_uid[uid]["late_metric.max"] == d.get("late_metric.max")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["w.pkl", "w.pkl.lock", "w.csv", "w.jsonl", *(["w.parquet"] if pq is not None else [])]
    )


def test_export_pages_through_a_server_store_by_uid(tmp_path: Path) -> None:
    """mongomock is paged with ``{"uid": {"$gt": last}}`` (the in-process engines by a uid snapshot)."""
    pytest.importorskip("mongomock")
    with get_protocol("mongomock://seeexport") as proto:
        for i in range(23):
            t = Trial({"i": i})
            proto.new_trial(t)
            proto.log_trial_metrics(t, step=0, loss=float(i))
        result = export(proto, str(tmp_path / "m.csv"), batch=5)
        series = export(proto, str(tmp_path / "s.csv"), batch=5, series=True)
    assert result.trials == result.rows == 23 and series.rows == 23
    with open(tmp_path / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["i"]) for r in rows) == list(range(23)) and [r["uid"] for r in rows] == sorted(
        r["uid"] for r in rows
    )


def test_export_memory_does_not_grow_with_the_store(tmp_path: Path) -> None:
    """Peak memory of an export (after a warm-up that fills the store's bounded query cache) is flat in n."""
    import tracemalloc

    formats = [("csv", False), ("jsonl", False), ("csv", True)]
    try:
        import pyarrow.parquet  # noqa: F401 - imported before measuring
    except ImportError:
        pass
    else:
        formats.append(("parquet", False))
    peaks: dict[int, list[int]] = {}
    for n in (500, 2000):
        with get_protocol("ephemeral:") as proto:
            summary = {"loss": {"count": 1, "last": 0.5, "last_step": 0, "min": 0.5, "max": 0.5}}
            docs = [Trial({"i": i, "pad": "x" * 200}, metric_summary=summary).to_doc() for i in range(n)]
            proto.store.insert_many("trials", docs)
            for fmt, series in formats:
                export(proto, str(tmp_path / f"warm.{fmt}"), batch=100, series=series)
                tracemalloc.start()
                try:
                    export(proto, str(tmp_path / f"out.{fmt}"), batch=100, series=series)
                    peaks.setdefault(n, []).append(tracemalloc.get_traced_memory()[1])
                finally:
                    tracemalloc.stop()
    for small, large in zip(peaks[500], peaks[2000], strict=True):
        assert large < 1.3 * small + 64 * 1024, (peaks, formats)  # 4x the trials, not 4x the memory


def test_export_of_nothing_writes_the_header(sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "none.csv"
    _run(capsys, "export", sweep.uri, "-o", str(path), "--status", "Broken")
    assert path.read_text().splitlines() == [",".join(FIXED)]
    pq = pytest.importorskip("pyarrow.parquet")
    _run(capsys, "export", sweep.uri, "-o", str(tmp_path / "none.parquet"), "--status", "Broken")
    table = pq.read_table(tmp_path / "none.parquet")
    assert table.num_rows == 0 and table.column_names == list(FIXED)


def test_a_failed_export_leaves_no_file(sweep: Sweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    calls = []
    real = CsvWriter.write

    def boom(self: CsvWriter, rows: list[dict[str, Any]]) -> None:
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError("disk full")
        real(self, rows)

    monkeypatch.setattr(CsvWriter, "write", boom)
    with get_protocol(sweep.uri) as proto, pytest.raises(OSError, match="disk full"):
        export(proto, str(path), batch=2)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "sweep.pkl", "sweep.pkl.lock"]


def test_export_format_errors(sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot tell the format" in _error(capsys, "export", sweep.uri, "-o", str(tmp_path / "x.txt"))
    assert "--query is not valid JSON" in _error(
        capsys, "export", sweep.uri, "-o", str(tmp_path / "x.csv"), "--query", "{"
    )
    assert "no store at" in _error(capsys, "export", f"pickled://{tmp_path}/nope.pkl", "-o", str(tmp_path / "x.csv"))
    assert "No such file or directory" in _error(capsys, "export", sweep.uri, "-o", str(tmp_path / "no/x.csv"))
    (tmp_path / "adir.csv").mkdir()
    assert "cannot write" in _error(capsys, "export", sweep.uri, "-o", str(tmp_path / "adir.csv"))
    (tmp_path / "adir.csv").rmdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.pkl", "sweep.pkl.lock"]


def test_export_shows_a_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from track_backends.cli import export as cli_export

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    bar = cli_export._progress(10, quiet=False)
    assert bar is not None
    bar.update(10)
    bar.close()
    assert "10/10" in sys.stderr.getvalue()
    assert cli_export._progress(10, quiet=True) is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli_export._progress(10, quiet=False) is None


# -- plot ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "magic"), [("c.png", b"\x89PNG\r\n\x1a\n"), ("c.svg", b"<svg"), ("c.pdf", b"%PDF")])
def test_plot_writes_the_format_of_the_extension(
    sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, magic: bytes
) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / name
    out = _run(capsys, "plot", sweep.uri, "--metric", "loss", "--group", "sweep-1", "-o", str(path))
    assert out.strip() == f"drew 4 curves of loss to {path}"
    data = path.read_bytes()
    assert data.startswith(magic) if magic != b"<svg" else (magic in data[:2000] and data.rstrip().endswith(b"</svg>"))
    if name.endswith(".svg"):
        text = data.decode()
        assert all(t.uid[:8] in text for t in sweep.trials[:4])  # the legend names each trial


def test_plot_errors(sweep: Sweep, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "must end in .png, .svg, .pdf" in _error(capsys, "plot", sweep.uri, "--metric", "loss", "-o", "c.gif")
    pytest.importorskip("matplotlib")
    err = _error(capsys, "plot", sweep.uri, "--metric", "nope", "-o", str(tmp_path / "c.png"))
    assert "no matching trial logged the metric 'nope'" in err
    err = _error(capsys, "plot", sweep.uri, "--metric", "loss", "-o", str(tmp_path / "no" / "c.png"))
    assert "cannot write" in err and "No such file or directory" in err
    assert not (tmp_path / "c.png").exists()
    out = _run(capsys, "plot", sweep.uri, "--metric", "acc", "--limit", "2", "-o", str(tmp_path / "a.png"), "--logy")
    assert out.startswith("drew 2 curves")


# -- analysis --------------------------------------------------------------------------------------
def test_trials_frame_matches_the_store_and_the_export(sweep: Sweep, tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    from track_backends.analysis import trials_frame

    want = _expected_rows(sweep)
    with get_protocol(sweep.uri) as proto:
        df = trials_frame(proto)
        result = export(proto, str(tmp_path / "t.csv"))
        done = trials_frame(proto, {"status.name": "Completed"}, metrics=["loss"])
    assert list(df.columns) == result.columns
    assert len(df) == len(want) and list(df["uid"]) == sorted(want)
    for rec in df.to_dict("records"):
        w = want[rec["uid"]]
        for column in df.columns:
            if w.get(column) is not None:
                assert _same(rec[column], w[column]), column
            else:  # pandas marks a missing value None or NaN, by the column's dtype
                assert rec[column] is None or (isinstance(rec[column], float) and math.isnan(rec[column]))
    assert set(done["status"]) == {"Completed"} and len(done) == 3
    assert not [c for c in done.columns if c.startswith("acc.")] and "loss.min" in done.columns
    with get_protocol(sweep.uri) as proto:
        assert list(trials_frame(proto, {"uid": "none"}).columns) == list(FIXED)


def test_series_frame_matches_fetch_metrics(sweep: Sweep) -> None:
    pytest.importorskip("pandas")
    from track_backends.analysis import series_frame

    points = sweep.points()
    with get_protocol(sweep.uri) as proto:
        df = series_frame(proto)
        loss = series_frame(proto.store, {"group_id": sweep.group.uid}, names=["loss"])
    assert list(df.columns) == ["trial_uid", "name", "step", "value"]
    assert len(df) == sum(len(s) for v in points.values() for s in v.values())
    for (uid, name), part in df.groupby(["trial_uid", "name"], sort=False):
        assert all(
            s == t and _same(a, b)
            for (s, a), (t, b) in zip(zip(part["step"], part["value"]), points[uid][name], strict=True)
        )
    assert set(loss["name"]) == {"loss"} and set(loss["trial_uid"]) == {t.uid for t in sweep.trials[:4]}


# -- optional dependencies ---------------------------------------------------------------------------
def test_missing_pyarrow_names_the_extra(sweep: Sweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with get_protocol(sweep.uri) as proto, pytest.raises(ExtraNotInstalledError, match=r"track-backends\[analysis\]"):
        export(proto, str(tmp_path / "t.parquet"))
    err = _error(capsys, "export", sweep.uri, "-o", str(tmp_path / "t.parquet"))
    assert "pip install 'track-backends[analysis]'" in err and "pyarrow" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.pkl", "sweep.pkl.lock"]
    assert issubclass(ExtraNotInstalledError, ImportError)
    with pytest.raises(ExtraNotInstalledError):
        ParquetWriter(str(tmp_path / "x.parquet"), None)  # type: ignore[arg-type]


def test_missing_pandas_names_the_extra(sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    from track_backends.analysis import series_frame, trials_frame

    monkeypatch.setitem(sys.modules, "pandas", None)
    with get_protocol(sweep.uri) as proto:
        for fn in (trials_frame, series_frame):
            with pytest.raises(ExtraNotInstalledError, match=r"needs pandas.*track-backends\[analysis\]"):
                fn(proto)


def test_missing_matplotlib_names_the_extra(sweep: Sweep, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    err = _error(capsys, "plot", sweep.uri, "--metric", "loss", "-o", str(tmp_path / "c.png"))
    assert "pip install 'track-backends[plot]'" in err and "matplotlib" in err


def test_importing_the_package_imports_no_optional_dependency() -> None:
    code = (
        "import sys, track_backends, track_backends.cli, track_backends.analysis, track_backends.see\n"
        "from track_backends.cli import main\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'matplotlib') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# -- the commands across processes -----------------------------------------------------------------
def test_subprocess_commands_on_one_pickled_store(sweep: Sweep, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def cli(*args: str) -> str:
        r = subprocess.run(
            [sys.executable, "-m", "track_backends.cli", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    best = _best_uids(sweep.docs(), "loss", "min")
    assert cli("best", sweep.uri, "--metric", "loss", "-k", "1").splitlines()[1].split()[1] == best[0]
    assert cli("ls", sweep.uri, "--metrics", "loss", "--sort", "loss.min").splitlines()[1].split()[0] == best[0]
    cli("export", sweep.uri, "-o", str(tmp_path / "t.csv"))
    with open(tmp_path / "t.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    assert "sweep-1" in cli("tree", sweep.uri)


@pytest.mark.parametrize("command", ["best", "tree", "export", "plot"])
def test_help_of_the_new_commands(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "pickled:///abs/path.pkl" in capsys.readouterr().out
