"""Metric points on the journal stores (``pickled:`` and ``file:``): compaction keeps them, reopening
reads them back, and a store sees the points another process appended (even across its compaction)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from track_backends.model import Trial
from track_backends.protocol import DocumentProtocol
from track_backends.query.equality import same_value
from track_backends.store import TRIALS, Store
from track_backends.stores.journal import JournalStore
from track_backends.stores.multiplex.series import as_lists, read_by_attempt

ROOT = Path(__file__).resolve().parents[1]
CODECS = [("pickled", "j.pkl"), ("file", "j.jsonl")]


def state(store: Store) -> list[Any]:
    """Every trial document and every trial's points, attempt by attempt (JSON-like, for ``same_value``)."""
    docs = sorted(store.find(TRIALS), key=lambda d: d["uid"])
    by_attempt = read_by_attempt(store, TRIALS, {d["uid"]: d for d in docs})
    return [docs, {u: {a: as_lists(s) for a, s in per.items()} for u, per in by_attempt.items()}]


def log_history(store: Store) -> list[Trial]:
    """Trials with points: batches, NaN and infinities, two attempts, deletions of points and of a trial."""
    proto = DocumentProtocol(store)
    trials = [proto.new_trial(Trial({"i": i}, group_id="g")) for i in range(4)]
    proto.log_trial_metrics_batch(trials[0], {"loss": [(s, 1 / (s + 1)) for s in range(2000)], "acc": [(0, 0.5)]})
    proto.log_trial_metrics(trials[0], step=2000, loss=math.nan, acc=math.inf)
    first = proto.reserve_trial({"uid": trials[1].uid}, lease=30)
    proto.log_trial_metrics(first, step=0, loss=9.0)
    store.update(TRIALS, {"uid": trials[1].uid}, {"$set": {"lease.expires": 0}})  # the lease ran out
    second = proto.reserve_trial({"uid": trials[1].uid}, lease=30)
    proto.log_trial_metrics_batch(second, {"loss": [(0, 1.0), (1, -math.inf)]})
    proto.log_trial_metrics(trials[2], step=0, gone=1.0)
    store.delete_points(TRIALS, [trials[2].uid])
    proto.log_trial_metrics(trials[2], step=1, kept=2)
    proto.log_trial_metrics(trials[3], step=0, loss=3.0)
    store.delete(TRIALS, {"uid": trials[3].uid})  # its points go with it
    return trials


@pytest.mark.parametrize(("codec", "name"), CODECS, ids=[c for c, _ in CODECS])
def test_compaction_keeps_points(tmp_path: Path, codec: str, name: str) -> None:
    path = tmp_path / name
    with JournalStore(path, codec) as store:
        trials = log_history(store)
        before = state(store)
        assert set(before[1]) == {trials[0].uid, trials[1].uid, trials[2].uid}
        assert sorted(before[1][trials[1].uid]) == [1, 2] and before[1][trials[2].uid] == {0: {"kept": [[1, 2]]}}
        size = path.stat().st_size
        store.compact()
        assert path.stat().st_size < size  # rewritten as a snapshot (the deleted points are gone)
        assert same_value(state(store), before)
        DocumentProtocol(store).log_trial_metrics(trials[2], step=2, kept=3)  # appended after the snapshot
        before = state(store)
    with JournalStore(path, codec) as store:
        assert same_value(state(store), before)
        got = store.fetch_points(TRIALS, [trials[0].uid], last=1)[trials[0].uid]
        assert got["acc"] == [(2000, math.inf)] and math.isnan(got["loss"][0][1])
        store.compact()  # a second generation
    with JournalStore(path, codec) as store:
        assert same_value(state(store), before)


WRITER = """
import sys
from track_backends.stores.journal import JournalStore
path, codec, uid, start, compact = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
with JournalStore(path, codec) as store:
    for step in range(start, start + 50):
        store.append_points("trials", uid, [("loss", step, step / 4)], update={"$inc": {"n": 1}})
    store.append_points("trials", uid, [("loss", -1, float("nan"))], attempt=3)
    if compact:
        store.compact()
"""


def _write_from_another_process(path: Path, codec: str, uid: str, start: int, compact: bool) -> None:
    argv = [sys.executable, "-c", WRITER, str(path), codec, uid, str(start), "1" if compact else "0"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("codec", "name"), CODECS, ids=[c for c, _ in CODECS])
def test_points_appended_by_another_process_are_seen(tmp_path: Path, codec: str, name: str) -> None:
    path = tmp_path / name
    with JournalStore(path, codec) as store:
        store.insert(TRIALS, {"uid": "t", "n": 0, "lease": {"token": 3}})  # attempts 0 to 3
        store.append_points(TRIALS, "t", [("loss", -2, 0.0)])
        _write_from_another_process(path, codec, "t", 0, compact=False)
        got = store.fetch_points(TRIALS, ["t"], attempts={"t": 0})["t"]["loss"]  # caught up on the read
        assert got == [(-2, 0.0)] + [(s, s / 4) for s in range(50)]
        assert store.find_one(TRIALS, {"uid": "t"})["n"] == 50  # type: ignore[index]
        _write_from_another_process(path, codec, "t", 50, compact=True)  # and it compacted the file
        got = store.fetch_points(TRIALS, ["t"], attempts={"t": 0})["t"]["loss"]
        assert got == [(-2, 0.0)] + [(s, s / 4) for s in range(100)]
        third = store.fetch_points(TRIALS, ["t"], attempts={"t": 3})["t"]["loss"]
        assert len(third) == 103 and [math.isnan(v) for _, v in third[-2:]] == [True, True]
        store.append_points(TRIALS, "t", [("loss", 100, 25.0)])  # and writes after it
        expected = state(store)
    with JournalStore(path, codec) as store:
        assert same_value(state(store), expected)
