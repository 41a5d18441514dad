"""The track-backends command line, in-process (``main([...])``) and as a subprocess."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from track_backends import Status, Trial, get_protocol, register, unregister
from track_backends.cli import URI_HELP, main
from track_backends.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]


def _trials() -> list[Trial]:
    out = [Trial({"lr": 0.1 * i, "layers": [i, i + 1]}, group_id="g", project_id="p") for i in range(3)]
    out[2].status = Status.Completed
    return out


def _fill(uri_or_store) -> list[Trial]:
    trials = _trials()
    proto = get_protocol(uri_or_store)
    for t in trials:
        assert proto.new_trial(t) is not None
    return trials


@pytest.fixture
def mem_uri() -> Iterator[tuple[str, list[Trial]]]:
    """A registered test scheme whose every open returns the same populated memory store."""
    store = MemoryStore()
    trials = _fill(store)
    store.close = lambda: None  # type: ignore[method-assign]  # shared between opens
    register("clitest", lambda uri: store, replace=True)
    yield "clitest:", trials
    unregister("clitest")


@pytest.fixture(params=["pickled://{}/store.pkl", "file://{}/store.jsonl"], ids=["pickled", "file"])
def journal_uri(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, list[Trial]]:
    uri = request.param.format(tmp_path)
    with get_protocol(uri) as proto:
        trials = _fill(proto.store)
    return uri, trials


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "track_backends.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0]


# -- help ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--help"], ["ls", "--help"], ["show", "--help"], ["bench", "--help"]])
def test_help_lists_every_uri_form(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    for form in (
        "ephemeral:",
        "pickled:///abs/path.pkl",
        "pickled:rel.pkl",
        "file:///abs/path.jsonl",
        "file:rel.jsonl",
        "mongodb://",
        "mongomock://",
        "postgresql://user:pass@host/db",
        "cockroach://",
    ):
        assert form in out
        assert form in URI_HELP


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2


# -- ls and show, in process ---------------------------------------------------------------------
def test_ls_lists_trials(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    uri, trials = mem_uri
    assert main(["ls", uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["uid", "status", "group", "owner", "attempts", "lease", "parameters"]
    assert len(out) == 1 + len(trials)
    text = "\n".join(out)
    for t in trials:
        assert t.uid in text
    assert "Completed" in text and "Created" in text
    assert "lr=0.1" in text and "layers=[1,2]" in text


def test_ls_query_and_limit(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    uri, trials = mem_uri
    assert main(["ls", uri, "--query", '{"status.name": "Completed"}']) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and trials[2].uid in out[1]
    assert main(["ls", uri, "--limit", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[-1].startswith("... 2 more (of 3)")  # the limit cut two trials
    assert main(["ls", uri, "--limit", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4  # nothing cut: no "more" line


def test_ls_metric_columns_sort_and_formats(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    uri, trials = mem_uri
    proto = get_protocol(uri)
    for i, t in enumerate(trials):
        proto.log_trial_metrics_batch(t, {"loss": [(0, 1.0), (1, 0.5 - 0.1 * i)]})
    assert main(["ls", uri, "--metrics", "loss", "--sort", "loss.min"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "uid", "status", "group", "owner", "attempts", "lease", "loss.last", "loss.min", "loss.max", "parameters"
    ]  # fmt: skip
    assert [line.split()[0] for line in out[1:]] == [t.uid for t in reversed(trials)]
    assert [line.split()[7] for line in out[1:]] == ["0.3", "0.4", "0.5"]
    assert main(["ls", uri, "--sort=-lr", "--metrics", "loss.min", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["uid"] for r in rows] == [t.uid for t in reversed(trials)]
    assert [float(r["loss.min"]) for r in rows] == [0.3, 0.4, 0.5] and rows[0]["owner"] == ""
    assert main(["ls", uri, "--status", "Completed", "--group", "g", "--format", "json"]) == 0
    objs = json.loads(capsys.readouterr().out)
    assert [o["uid"] for o in objs] == [trials[2].uid] and objs[0]["parameters"] == trials[2].parameters


def test_show_prints_one_trial_as_json(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    uri, trials = mem_uri
    assert main(["show", uri, trials[1].uid]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["uid"] == trials[1].uid
    assert doc["parameters"] == trials[1].parameters
    assert doc["status"] == {"name": "Created", "value": 0}


def test_show_accepts_a_unique_uid_prefix(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    uri, trials = mem_uri
    prefixes = [t.uid[:12] for t in trials]
    assert len(set(prefixes)) == len(trials)
    assert main(["show", uri, prefixes[0]]) == 0
    assert json.loads(capsys.readouterr().out)["uid"] == trials[0].uid


def _strict(text: str) -> Any:
    """Parse strict JSON: NaN and Infinity literals are refused."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))


def test_show_prints_the_metric_summary_and_with_metrics_the_series(
    mem_uri, capsys: pytest.CaptureFixture[str]
) -> None:
    uri, trials = mem_uri
    proto = get_protocol(uri)
    proto.log_trial_metrics(trials[0], step=0, loss=0.5, acc=math.inf)
    proto.log_trial_metrics_batch(trials[0], {"loss": [(1, math.nan), (2, -math.inf)]})
    assert main(["show", uri, trials[0].uid]) == 0
    doc = _strict(capsys.readouterr().out)
    assert "metrics" not in doc
    assert doc["metric_summary"]["loss"] == {
        "count": 3,
        "last": "-Infinity",
        "last_step": 2,
        "min": "-Infinity",
        "max": 0.5,
    }
    assert doc["metric_summary"]["acc"]["last"] == "Infinity"
    assert main(["show", uri, trials[0].uid[:12], "--metrics"]) == 0
    doc = _strict(capsys.readouterr().out)
    assert doc["metrics"] == {"loss": [[0, 0.5], [1, "NaN"], [2, "-Infinity"]], "acc": [[0, "Infinity"]]}
    assert main(["show", uri, trials[1].uid, "--metrics"]) == 0
    assert _strict(capsys.readouterr().out)["metrics"] == {}


def test_show_metrics_are_the_current_attempts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"file://{tmp_path}/s.jsonl"
    with get_protocol(uri) as proto:
        (t, *_) = _fill(proto.store)
        proto.log_trial_metrics(t, step=0, setup=1)  # outside any reservation: always shown
        first = proto.reserve_trial({"uid": t.uid}, lease=30)
        proto.log_trial_metrics(first, step=0, loss=9.0)
        proto.store.update("trials", {"uid": t.uid}, {"$set": {"lease.expires": 0}})  # it expired
        second = proto.reserve_trial({"uid": t.uid}, lease=30)
        proto.log_trial_metrics(second, step=0, loss=1.0)
    r = _cli("show", uri, t.uid, "--metrics")
    assert r.returncode == 0, r.stderr
    doc = _strict(r.stdout)
    assert doc["metrics"] == {"setup": [[0, 1]], "loss": [[0, 1.0]]} and doc["lease"]["token"] == 2
    with pytest.raises(SystemExit):
        main(["show", "--help"])
    assert '"NaN", "Infinity" and "-Infinity"' in " ".join(capsys.readouterr().out.split())


# -- errors: one line on stderr, exit 2 ------------------------------------------------------------
def test_show_unknown_uid(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["show", mem_uri[0], "nope"])
    _assert_one_line_error(code, capsys.readouterr().err, "no trial with uid 'nope'")


def test_show_ambiguous_prefix(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["show", mem_uri[0], ""])
    _assert_one_line_error(code, capsys.readouterr().err, "ambiguous")


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("{not json", "--query is not valid JSON"),
        ("[1, 2]", "--query must be a JSON object"),
        ('{"a": {"$bogus": 1}}', "$bogus"),
    ],
)
def test_ls_bad_query(mem_uri, query: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ls", mem_uri[0], "--query", query])
    _assert_one_line_error(code, capsys.readouterr().err, needle)


def test_unknown_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ls", "nosuchscheme://host/db"])
    _assert_one_line_error(code, capsys.readouterr().err, "nosuchscheme", "known schemes")


def test_password_is_masked_in_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ls", "nosuchscheme://user:s3cret@host/db"])
    err = capsys.readouterr().err
    _assert_one_line_error(code, err)
    assert "s3cret" not in err


def test_ls_missing_file_is_an_error_and_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ls", f"pickled://{tmp_path}/missing.pkl"])
    _assert_one_line_error(code, capsys.readouterr().err, "no store at")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["ls"], ["show", "abc"]])
@pytest.mark.parametrize("form", ["pickled://{}/missing.pkl", "file://{}/missing.jsonl", "file:missing.jsonl"])
def test_read_only_commands_never_create_a_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str], form: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main([command[0], form.format(tmp_path), *command[1:]])
    _assert_one_line_error(code, capsys.readouterr().err, "no store at", "missing")
    assert list(tmp_path.iterdir()) == []


def test_read_only_commands_open_journals_with_create_false(
    journal_uri, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import track_backends.cli.common as common

    uri, trials = journal_uri
    opened: list[str] = []
    real_open = common.open_store
    monkeypatch.setattr(common, "open_store", lambda u: opened.append(u) or real_open(u))
    assert main(["ls", uri + "?fsync=false"]) == 0
    assert main(["show", uri, trials[0].uid]) == 0
    out = capsys.readouterr().out
    assert all(t.uid in out for t in trials)
    assert opened == [uri + "?fsync=false&create=false", uri + "?create=false"]


def test_bench_refuses_a_non_empty_server_store(mem_uri, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", mem_uri[0], "--n", "10", "--repeat", "1", "-q"])
    _assert_one_line_error(code, capsys.readouterr().err, "empty 'trials' collection")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["pickled:///nonexistent-dir/x.pkl"], "cannot create a scratch directory"),
        (["ephemeral:", "--repeat", "0"], "repeats must be a positive integer"),
    ],
)
def test_bench_errors(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", *argv, "--n", "10", "-q"])
    _assert_one_line_error(code, capsys.readouterr().err, needle)


def test_bench_bad_n_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["bench", "--n", "ten"])
    assert e.value.code == 2
    assert "not a list of counts" in capsys.readouterr().err


# -- bench, in process ------------------------------------------------------------------------------
def test_bench_ephemeral_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["bench", "ephemeral:", "--n", "200", "--repeat", "1", "--check", "--no-peers", "-q", "--no-record"]) == 0
    )
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("store"))
    for col in ("level", "n", "insert/s", "query ms", "log/s", "claim/s"):
        assert col in header
    for level in ("store", "protocol", "ref:dict"):
        assert any(line.split()[:3] == ["ephemeral", level, "200"] for line in out.splitlines())
    assert "targets:" in out
    assert "PASS" in out or "MISS" in out


def test_bench_other_store_has_no_reference_and_cleans_up(capsys: pytest.CaptureFixture[str]) -> None:
    store = MemoryStore()
    store.close = lambda: None  # type: ignore[method-assign]
    register("clibench", lambda uri: store, replace=True)
    argv = ["bench", "clibench:", "--n", "50,100", "--repeat", "1", "--json", "--no-peers", "--no-history", "-q"]
    try:
        assert main([*argv, "--no-record", "--artifact-mib", "1"]) == 0
    finally:
        unregister("clibench")
    report = json.loads(capsys.readouterr().out)
    assert {r["level"] for r in report["rows"]} == {"store", "protocol"}
    assert all(r["ratio"] is None and r["claimed"] == r["n"] for r in report["rows"])
    # no store-specific target applies; only those judged within the same row (lease costs)
    assert {c["what"].split(" <= ")[0] for c in report["checks"]} <= {
        "reserve cost / plain claim cost",
        "heartbeat cost / one-document update cost",
        "reserve cost(large n)/cost(small n)",
    }
    assert store.count("trials") == 0 and store.count("artifacts") == 0 and list(store.list_blobs()) == []
    (art,) = report["artifacts"]
    assert art["reference"] is None and art["up_mib_s"] > 0  # no raw reference for a plugin's engine


def test_bench_pickled_file_in_tmp_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"pickled://{tmp_path}/bench.pkl"
    argv = ["bench", uri, "--n", "200", "--repeat", "1", "--json", "--no-peers", "-q", "--no-record"]
    assert main([*argv, "--artifact-mib", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    levels = {r["level"]: r for r in report["rows"]}
    assert set(levels) == {"store", "protocol", "ref:fsync"}
    assert all(r["claimed"] == 200 for r in report["rows"])
    assert levels["store"]["ratio"]["insert"] > 0
    assert list(tmp_path.iterdir()) == []  # the bench's files are gone


def test_ls_and_show_journal(journal_uri, capsys: pytest.CaptureFixture[str]) -> None:
    uri, trials = journal_uri
    assert main(["ls", uri]) == 0
    out = capsys.readouterr().out
    assert all(t.uid in out for t in trials)
    assert main(["show", uri, trials[2].uid]) == 0
    assert json.loads(capsys.readouterr().out)["status"]["name"] == "Completed"


def test_ls_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with get_protocol("file:rel.jsonl") as proto:
        trials = _fill(proto.store)
    assert main(["ls", "file:rel.jsonl", "--query", '{"status.name": "Created"}']) == 0
    out = capsys.readouterr().out
    assert trials[0].uid in out and trials[2].uid not in out


# -- as a subprocess ---------------------------------------------------------------------------------
def test_subprocess_ls_show(journal_uri) -> None:
    uri, trials = journal_uri
    r = _cli("ls", uri)
    assert r.returncode == 0, r.stderr
    assert all(t.uid in r.stdout for t in trials)
    r = _cli("show", uri, trials[0].uid)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["uid"] == trials[0].uid


def test_subprocess_ls_ephemeral_is_empty() -> None:
    r = _cli("ls", "ephemeral:")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["uid", "status", "group", "owner", "attempts", "lease", "parameters"]


def test_subprocess_bench_ephemeral() -> None:
    r = _cli("bench", "ephemeral:", "--n", "200", "--repeat", "1", "--json", "--no-peers")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [(x["level"], x["claimed"]) for x in report["rows"]] == [
        ("store", 200),
        ("protocol", 200),
        ("ref:dict", 200),
    ]


def test_subprocess_bench_pickled(tmp_path: Path) -> None:
    argv = ["--n", "200", "--repeat", "1", "--level", "store", "--no-peers", "--artifact-mib", "2", "--no-record"]
    r = _cli("bench", f"pickled://{tmp_path}/b.pkl", *argv)
    assert r.returncode == 0, r.stderr
    assert any(line.split()[:3] == ["pickled", "store", "200"] for line in r.stdout.splitlines())


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "nosuchscheme:"],
        ["ls", "ephemeral:", "--query", "{oops"],
        ["show", "ephemeral:", "abc"],
    ],
)
def test_subprocess_errors_are_one_line(argv: list[str]) -> None:
    r = _cli(*argv)
    _assert_one_line_error(r.returncode, r.stderr, "error:")
    assert r.stdout == ""


@pytest.mark.parametrize("reader", ["popen", "head"])
def test_subprocess_ls_into_a_reader_that_stops_early(tmp_path: Path, reader: str) -> None:
    """``track-backends ls URI | head -1``: no BrokenPipeError traceback, whichever write hits the closed pipe."""
    uri = f"pickled://{tmp_path}/many.pkl"
    with get_protocol(uri) as proto:  # ~300 kB of table: far more than a pipe buffers
        proto.store.insert_many(
            "trials", [Trial({"i": i, "pad": "x" * 40}, group_id="g").to_doc() for i in range(3000)]
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "track_backends.cli", "ls", uri]
    if reader == "head":
        cmd = " ".join(shlex.quote(a) for a in argv) + " | head -1"
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
        assert r.stdout.split() == ["uid", "status", "group", "owner", "attempts", "lease", "parameters"]
        err = r.stderr
    else:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().split() == ["uid", "status", "group", "owner", "attempts", "lease", "parameters"]
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports a reader that went away
    assert err == "", err


def test_ls_shows_leases_and_requeue_recovers_stale_trials(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from track_backends import Trial, get_protocol

    uri = f"pickled://{tmp_path}/leases.pkl"
    with get_protocol(uri) as p:
        for i in range(3):
            p.new_trial(Trial({"i": i}, group_id="g"))
        live = p.reserve_trial({"group_id": "g"}, lease=300, owner="alive:1")
        dead = p.reserve_trial({"group_id": "g"}, lease=0.1, owner="dead:2")
    assert live is not None and dead is not None
    time.sleep(0.3)
    assert main(["ls", uri]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "alive:1" in rows[live.uid] and "expired" not in rows[live.uid]
    assert "dead:2" in rows[dead.uid] and "expired" in rows[dead.uid]
    assert main(["ls", uri, "--stale"]) == 0
    stale = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[0] for line in stale] == [dead.uid]
    assert main(["requeue", uri, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert dead.uid in out and "1 stale trial(s) would be requeued" in out
    with get_protocol(uri) as p:
        assert {t.uid: t.status.name for t in p.fetch_trials()}[dead.uid] == "Running"
    assert main(["requeue", uri, "--query", '{"group_id": "g"}']) == 0
    assert "requeued 1 trial(s)" in capsys.readouterr().out
    with get_protocol(uri) as p:
        statuses = {t.uid: t.status.name for t in p.fetch_trials()}
    assert statuses[dead.uid] == "Interrupted" and statuses[live.uid] == "Running"
