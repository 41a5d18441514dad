"""``track-backends migrate``: summary and exit status, errors, progress display, and a killed run resumed."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from migrate_helpers import (  # noqa: F401 - fixtures: pytest finds them in this module's namespace
    Backends,
    Forgetful,
    backends_fixture,
    dataset,
    exact,
    fill,
    fill_points,
    pg_admin,
    pg_server_uri,
    series,
)

from track_backends import Project, Trial, TrialGroup, open_store, register, unregister
from track_backends.cli import main
from track_backends.migrate import BarProgress, LineProgress, iter_pages, make_progress, migrate
from track_backends.query.equality import same_value
from track_backends.store import GROUPS, PROJECTS, TRIALS, Store
from track_backends.stores.memory import MemoryStore
from track_backends.stores.multiplex.series import read_by_attempt, replace_series

ROOT = Path(__file__).resolve().parents[1]


# -- progress --------------------------------------------------------------------------------------
class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    src = MemoryStore()
    src.insert_many(TRIALS, [{"uid": f"u{i:03d}"} for i in range(30)])

    plain = io.StringIO()
    progress = make_progress(plain)
    assert isinstance(progress, LineProgress)
    migrate(src, MemoryStore(), batch=10, progress=progress)
    lines = plain.getvalue().splitlines()
    assert "trials: 0/30" in lines and "trials: 30/30" in lines and "verify trials: 30/30" in lines
    assert all(":" in line and "/" in line and "\r" not in line for line in lines)

    tty = TTY()
    bar = make_progress(tty)
    assert isinstance(bar, BarProgress)
    migrate(src, MemoryStore(), batch=10, progress=bar)
    bar.close()
    out = tty.getvalue()
    assert "trials" in out and "30/30" in out and "\r" in out


def test_line_progress_throttles_but_prints_starts_and_ends() -> None:
    out = io.StringIO()
    p = LineProgress(out, interval=3600)
    for i in range(0, 101, 10):
        p("trials", i, 100)
    assert out.getvalue().splitlines() == ["trials: 0/100", "trials: 100/100"]


# -- command line ----------------------------------------------------------------------------------
def _populate(path: str, n: int) -> None:
    with open_store(path) as s:
        s.insert(PROJECTS, Project("p").to_doc())
        group = TrialGroup("g", project_id="p")
        s.insert(GROUPS, group.to_doc())
        trials = [Trial({"i": i, "f": i / 7}, project_id="p", group_id=group.uid) for i in range(n)]
        s.insert_many(TRIALS, [t.to_doc() for t in trials])
        for t in trials[::10]:  # some trials have metric points
            s.append_points(TRIALS, t.uid, [("loss", step, t.parameters["f"] / (step + 1)) for step in range(3)])


def test_cli_migrates_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"pickled://{tmp_path}/s.pkl", f"file://{tmp_path}/d.jsonl"
    _populate(src, 25)
    assert main(["migrate", src, dst, "--batch", "10"]) == 0
    out, err = capsys.readouterr()
    assert "verification: OK" in out and "trials" in out
    assert "trials: 25/25" in err  # stderr is not a terminal here: plain lines
    assert main(["migrate", src, dst, "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    row = next(line.split() for line in out.splitlines() if line.startswith("trials"))
    assert row[1:4] == ["25", "0", "25"]  # source, copied, unchanged


def test_cli_dry_run_and_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"pickled://{tmp_path}/s.pkl", tmp_path / "d.jsonl"
    _populate(src, 10)
    assert main(["migrate", src, f"file://{dst}", "--dry-run", "-q"]) == 0
    assert "dry run" in capsys.readouterr().out and not dst.exists()
    query = '{"parameters.i": {"$lt": 4}}'
    assert main(["migrate", src, f"file://{dst}", "--query", query, "-q"]) == 0
    capsys.readouterr()
    with open_store(f"file://{dst}") as d:
        assert d.count(TRIALS) == 4 and d.count(GROUPS) == 1 and d.count(PROJECTS) == 1


@pytest.mark.parametrize("kind", ["pickled", "file", "postgres"])
def test_cli_copies_points_once_and_a_tampered_point_is_caught_then_repaired(
    tmp_path: Path, backends: Backends, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = f"file://{tmp_path}/src.jsonl", backends.uri(kind)
    data = dataset()
    data[TRIALS] = [t for t in data[TRIALS] if "neg_zero" not in t["parameters"]]  # PostgreSQL loses -0.0
    with open_store(src) as s:
        n = fill_points(s, fill(s, data))
    assert main(["migrate", src, dst, "-q", "--dry-run"]) == 0
    assert f"trials points: {n} series copied, 0 replaced, 0 unchanged" in capsys.readouterr().out
    assert main(["migrate", src, dst, "-q"]) == 0
    assert f"trials points: {n} series copied" in capsys.readouterr().out
    assert main(["migrate", src, dst, "-q"]) == 0  # a rerun writes nothing
    assert f"0 series copied, 0 replaced, {n} unchanged, 0 kept (0 points written)" in capsys.readouterr().out
    victim = data[TRIALS][1]  # reserved twice: points of attempts 0, 1 and 2
    with open_store(dst) as d:
        got = read_by_attempt(d, TRIALS, {victim["uid"]: victim})[victim["uid"]]
        got[1]["loss"][1] = (1, 8.000001)
        replace_series(d, TRIALS, {victim["uid"]: got})
    assert main(["migrate", src, dst, "-q"]) == 1  # verification catches it
    out = capsys.readouterr().out
    assert "MISMATCH" in out and f"{victim['uid']}: the destination's points differ" in out
    assert main(["migrate", src, dst, "-q", "--on-conflict", "overwrite"]) == 0
    assert "0 series copied, 1 replaced" in capsys.readouterr().out
    with open_store(src) as s, open_store(dst) as d:
        assert same_value(series(d, data[TRIALS]), series(s, data[TRIALS]))


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"pickled://{tmp_path}/s.pkl", f"pickled://{tmp_path}/d.pkl"
    _populate(src, 3)
    cases = [
        (["migrate", f"pickled://{tmp_path}/missing.pkl", dst], "no store"),
        (["migrate", src, dst, "--query", "{bad"], "not valid JSON"),
        (["migrate", src, dst, "--query", "[1]"], "JSON object"),
        (["migrate", src, dst, "--query", '{"x": {"$nope": 1}}'], "$nope"),
        (["migrate", src, dst, "--batch", "0"], "batch"),
        (["migrate", src, "nosuchscheme://x"], "nosuchscheme"),
    ]
    for argv, needle in cases:
        assert main([*argv, "-q"]) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and needle in err, (argv, err)
    with open_store(dst) as d:
        t = d.find_one(TRIALS) if d.count(TRIALS) else None
    assert t is None
    with open_store(src) as s:
        victim = dict(s.find(TRIALS, sort=[("uid", 1)])[1], tags={"dst": 1})
    with open_store(dst) as d:
        d.insert(TRIALS, victim)
    assert main(["migrate", src, dst, "--on-conflict", "fail", "-q"]) == 2
    err = capsys.readouterr().err
    assert victim["uid"] in err and len(err.strip().splitlines()) == 1


def test_cli_exits_1_on_a_verification_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = MemoryStore(), Forgetful()
    src.insert_many(TRIALS, [{"uid": f"u{i:02d}", "x": i} for i in range(5)])
    for s in (src, dst):
        s.close = lambda: None  # type: ignore[method-assign]  # shared between opens
    register("migsrc", lambda uri: src, replace=True)
    register("migdst", lambda uri: dst, replace=True)
    try:
        assert main(["migrate", "migsrc:", "migdst:", "-q"]) == 1
    finally:
        unregister("migsrc")
        unregister("migdst")
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "u02: missing" in out


def test_cli_interrupt_says_how_to_resume(capsys: pytest.CaptureFixture[str]) -> None:
    class Interrupted(MemoryStore):
        def count(self, *args: Any, **kwargs: Any) -> Any:
            raise KeyboardInterrupt

    register("migint", lambda uri: Interrupted(), replace=True)
    try:
        assert main(["migrate", "migint:", "ephemeral:", "-q"]) == 130
    finally:
        unregister("migint")
    assert "run the same command again to resume" in capsys.readouterr().err


def test_cli_help_mentions_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["migrate", "--help"])
    out = capsys.readouterr().out
    for opt in ("--query", "--batch", "--on-conflict", "--dry-run", "skip", "overwrite", "bump", "fail", "pickled:"):
        assert opt in out


# -- a killed migration, resumed -------------------------------------------------------------------
def test_killed_migration_resumes_without_duplicates(tmp_path: Path) -> None:
    n = 8_000
    src, dst = f"pickled://{tmp_path}/src.pkl", f"file://{tmp_path}/dst.jsonl"
    _populate(src, n)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "track_backends.cli", "migrate", src, dst]
    proc = subprocess.Popen(  # noqa: S603 - our own command line
        [*argv, "--batch", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    journal = tmp_path / "dst.jsonl"
    seen = []
    deadline = time.monotonic() + 60
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # plain progress lines (stderr is a pipe): wait for the trials
            seen.append(line.strip())
            if line.startswith("trials: "):
                break
        start = journal.stat().st_size
        while journal.stat().st_size < start + 50_000:  # some dozens of batches of trials are written
            assert proc.poll() is None and time.monotonic() < deadline, seen
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, seen
    with open_store(dst) as d:
        partial = d.count(TRIALS)
    assert 0 < partial < n, (partial, seen)

    done = subprocess.run([*argv, "--batch", "1000", "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verification: OK" in done.stdout
    row = next(line.split() for line in done.stdout.splitlines() if line.startswith("trials"))
    source, copied, unchanged = map(int, row[1:4])
    assert source == n and copied + unchanged == n and unchanged >= partial
    with open_store(src) as s, open_store(dst) as d:
        uids = [x["uid"] for p in iter_pages(d, TRIALS, None, 5000) for x in p]
        assert len(uids) == len(set(uids)) == n
        assert set(uids) == {x["uid"] for p in iter_pages(s, TRIALS, None, 5000) for x in p}
        with_points = 0
        for p in iter_pages(s, TRIALS, None, 5000):
            mine = by_uid_in(d, [x["uid"] for x in p])
            assert all(exact(mine[x["uid"]]) == exact(x) for x in p)
            theirs = series(s, p)
            assert same_value(series(d, p), theirs)
            with_points += len(theirs)
        assert with_points == n // 10
        assert d.count(PROJECTS) == d.count(GROUPS) == 1
    again = subprocess.run([*argv, "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0
    row = next(line.split() for line in again.stdout.splitlines() if line.startswith("trials"))
    assert row[2] == "0" and "(0 points written)" in again.stdout  # nothing copied the third time


def by_uid_in(store: Store, uids: list[str]) -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in store.find(TRIALS, {"uid": {"$in": uids}})}
