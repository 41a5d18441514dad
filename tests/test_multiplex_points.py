"""The multiplexer mirrors metric points: the primary decides, mirrors follow, misses are repaired whole."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from multiplex_helpers import PENDING, Flaky, assert_mirrored, new_trials

from track_backends import errors
from track_backends.model import Status, Trial
from track_backends.multiplexer import ProtocolMultiplexer
from track_backends.protocol import DocumentProtocol
from track_backends.registry import get_protocol
from track_backends.store import TRIALS
from track_backends.stores.filelock import FileLock
from track_backends.stores.journal import JournalStore
from track_backends.stores.memory import MemoryStore
from track_backends.stores.multiplex import MirrorError, MultiplexStore, multiplex_uri
from track_backends.stores.multiplex.series import same_series

ROOT = Path(__file__).resolve().parents[1]


class AppendsThenFails(MemoryStore):
    """A mirror whose appends land and then report a failure (a lost acknowledgement)."""

    def append_points(self, *args: Any, **kwargs: Any) -> bool:
        super().append_points(*args, **kwargs)
        raise errors.StoreUnavailableError("the connection dropped after the write (test)")


def test_points_follow_the_primary_into_every_mirror(tmp_path: Path) -> None:
    mem, journal = MemoryStore(), JournalStore(tmp_path / "m.jsonl", "file")
    with ProtocolMultiplexer(f"pickled://{tmp_path}/p.pkl", mem, journal) as proto:
        a, b = new_trials(proto, 2)
        proto.log_trial_metrics(a, step=0, loss=1.0, acc=math.nan)
        proto.log_trial_metrics_batch(a, {"loss": [(s, 1 / (s + 2)) for s in range(1, 1500)], "acc": [(1, math.inf)]})
        first = proto.reserve_trial({"group_id": "g", "uid": b.uid}, lease=0.2)
        assert first is not None
        proto.log_trial_metrics(first, step=0, loss=9.0)
        time.sleep(0.3)
        second = proto.reserve_trial({"group_id": "g", "uid": b.uid}, lease=30)
        assert second is not None
        proto.log_trial_metrics(second, step=0, loss=1.0)
        with pytest.raises(errors.LeaseLostError):  # fenced out on the primary: no mirror sees it either
            proto.log_trial_metrics(first, step=1, loss=8.0)
        assert_mirrored(proto.store.primary, mem, journal)
        assert mem.fetch_points(TRIALS, [b.uid])[b.uid]["loss"] == [(0, 9.0), (0, 1.0)]
        assert proto.fetch_and_update_trial({"uid": a.uid}, "log_trial_metrics", 2, loss=0.1) is not None
        proto.store.delete_points(TRIALS, [a.uid])
        assert mem.fetch_points(TRIALS, [a.uid]) == {} and journal.fetch_points(TRIALS, [a.uid]) == {}
        proto.log_trial_metrics(a, step=3, loss=0.5)
        proto.store.delete(TRIALS, {"uid": b.uid})
        assert_mirrored(proto.store.primary, mem, journal)
        assert all(st.outbox_depth == 0 for st in proto.status().values())


def test_a_fenced_out_append_reaches_no_mirror() -> None:
    mirror = Flaky()
    with MultiplexStore(MemoryStore(), [mirror], names=["m"]) as store:
        store.insert(TRIALS, {"uid": "t", "n": 0})
        calls = mirror.calls
        fenced = {"uid": "t", "n": 5}
        assert not store.append_points(TRIALS, "t", [("x", 1, 1.0)], query=fenced, update={"$inc": {"n": 1}})
        assert not store.append_points(TRIALS, "ghost", [("x", 1, 1.0)], update={"$inc": {"n": 1}})
        assert mirror.calls == calls and store.status()["m"].outbox_depth == 0
        assert store.fetch_points(TRIALS, ["t", "ghost"]) == {} == mirror.fetch_points(TRIALS, ["t", "ghost"])


def test_missed_appends_are_replayed_whole_and_idempotently() -> None:
    flaky, half = Flaky(), AppendsThenFails()
    store = MultiplexStore(MemoryStore(), [flaky, half], backoff=60, names=["flaky", "half"])
    proto = DocumentProtocol(store)
    trials = new_trials(proto, 3)
    proto.log_trial_metrics(trials[0], step=0, loss=1.0)  # reaches flaky; half keeps it but "fails"
    flaky.mode = "fail"
    for t in trials:
        proto.log_trial_metrics_batch(t, {"loss": [(1, 0.5), (2, 0.25)], "acc": [(1, 0.1)]})
    status = store.status()
    assert status["flaky"].outbox_depth == status["half"].outbox_depth == 6  # each trial's document and points
    assert store.fetch_points(TRIALS, [trials[0].uid])[trials[0].uid]["loss"] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    flaky.mode = "ok"
    half.append_points = super(AppendsThenFails, half).append_points  # type: ignore[method-assign]
    assert all(st.outbox_depth == 0 for st in store.replay().values())
    assert_mirrored(store.primary, flaky, half)  # half held every point once already: no duplicates
    half.append_points(TRIALS, trials[1].uid, [("loss", 99, 99.0)], attempt=7)  # a mirror that drifted
    flaky.delete_points(TRIALS, [trials[2].uid])
    for name, uid in (("half", trials[1].uid), ("flaky", trials[2].uid)):
        store.outbox.record_points(name, TRIALS, [uid], "drift (test)")
    for _ in range(2):  # replaying again changes nothing
        assert all(st.outbox_depth == 0 for st in store.replay().values())
        assert_mirrored(store.primary, flaky, half)
    store.close()


def test_strict_points_miss_names_the_mirror_and_the_uid() -> None:
    flaky = Flaky()
    proto = ProtocolMultiplexer(MemoryStore(), flaky, policy="strict")
    (t,) = new_trials(proto, 1)
    name = proto.store.mirrors[0].name
    flaky.mode = "fail"
    with pytest.raises(MirrorError, match="missed the points of 1 document") as info:
        proto.log_trial_metrics(t, step=0, loss=1.0)
    assert info.value.uids == [t.uid] and info.value.mirror == name
    assert proto.store.primary.fetch_points(TRIALS, [t.uid]) == {t.uid: {"loss": [(0, 1.0)]}}  # the primary has it
    assert proto.status()[name].outbox_depth == 2  # the document (its summary) and its points
    with pytest.raises(MirrorError, match="the points of"):
        proto.store.delete_points(TRIALS, [t.uid])
    assert proto.store.primary.fetch_points(TRIALS, [t.uid]) == {}
    flaky.mode = "ok"
    proto.log_trial_metrics(t, step=1, loss=0.5)  # works, and catches up on the backlog
    assert proto.status()[name].outbox_depth == 0
    assert flaky.fetch_points(TRIALS, [t.uid]) == {t.uid: {"loss": [(1, 0.5)]}}
    assert_mirrored(proto.store.primary, flaky)
    proto.close()


def test_threads_logging_through_a_flapping_mirror_converge() -> None:
    flaky = Flaky()
    proto = ProtocolMultiplexer(MemoryStore(), flaky, backoff=0.001, backoff_max=0.01)
    trials = new_trials(proto, 4)
    stop = threading.Event()

    def log(t: Trial) -> None:
        for step in range(150):
            proto.log_trial_metrics(t, step=step, loss=step / 10)

    def flap() -> None:
        while not stop.is_set():
            flaky.mode = "fail" if flaky.mode == "ok" else "ok"
            proto.store.replay()
            time.sleep(0.002)

    flapper = threading.Thread(target=flap)
    flapper.start()
    workers = [threading.Thread(target=log, args=(t,)) for t in trials + trials[:2]]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    flapper.join()
    flaky.mode = "ok"
    assert all(st.outbox_depth == 0 for st in proto.replay().values())
    assert proto.store.primary.count(TRIALS, {"metric_summary.loss.count": 300}) == 2
    assert_mirrored(proto.store.primary, flaky)
    proto.close()


WORKER = """
import sys
from track_backends.model import Trial
from track_backends.registry import get_protocol
with get_protocol(sys.argv[1]) as proto:
    (t,) = proto.fetch_trials({"uid": sys.argv[2]}, metrics=False)
    for step in range(int(sys.argv[3])):
        proto.log_trial_metrics(t, step=step, loss=step * 0.5)
"""


def test_processes_appending_while_another_replays_leave_no_duplicates(tmp_path: Path) -> None:
    """Appends hold the mirroring lock across the primary's write, so whoever holds that lock sees the
    mirror equal to the primary, and a concurrent replay never doubles a point."""
    uri = multiplex_uri(f"pickled://{tmp_path}/p.pkl", f"pickled://{tmp_path}/m.pkl")
    with get_protocol(uri) as proto:
        (t,) = new_trials(proto, 1)
    cmd = [sys.executable, "-c", WORKER, uri, t.uid, "120"]
    workers = [subprocess.Popen(cmd, cwd=ROOT) for _ in range(2)]
    with get_protocol(uri) as proto:
        store = proto.store
        primary, mirror, name = store.primary, store.mirrors[0].store, store.mirrors[0].name
        lock = FileLock(store.lock_path)  # what every mirroring process takes
        checks = 0
        while any(w.poll() is None for w in workers):
            lock.acquire(True, 30)
            try:
                assert same_series(*(s.fetch_points(TRIALS, [t.uid]).get(t.uid, {}) for s in (primary, mirror)))
                checks += 1
            finally:
                lock.release()
            store.outbox.record_points(name, TRIALS, [t.uid], "test: repair while appending")
            store.replay()
        lock.close()
        assert [w.wait() for w in workers] == [0, 0] and checks > 1
        store.replay()
        assert len(primary.fetch_points(TRIALS, [t.uid])[t.uid]["loss"]) == 240
    with JournalStore(tmp_path / "p.pkl") as p, JournalStore(tmp_path / "m.pkl") as m:
        assert_mirrored(p, m)
        assert m.find_one(TRIALS, {"uid": t.uid})["metric_summary"]["loss"]["count"] == 240  # type: ignore[index]


def test_claims_that_log_metrics_mirror_their_points() -> None:
    mirror = MemoryStore()
    with ProtocolMultiplexer(MemoryStore(), mirror) as proto:
        new_trials(proto, 2)
        got = proto.fetch_and_update_trial({"group_id": "g", **PENDING}, "log_trial_metrics", 5, loss=0.3)
        assert got is not None and got.metrics == {"loss": [(5, 0.3)]}
        proto.set_trial_status(got, Status.Completed)
        assert mirror.fetch_points(TRIALS, [got.uid]) == {got.uid: {"loss": [(5, 0.3)]}}
        assert_mirrored(proto.store.primary, mirror)
