"""The multiplexer: contract suite on multiplex:, mirroring (documents and metric points), policies,
outbox, bounded close, CLI replay.

The tests against real servers (mirrors that hang or go down, a primary that goes down, secrets
in server URIs) are in ``test_multiplex_servers``; the shared helpers in ``multiplex_helpers``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from multiplex_helpers import PENDING, Flaky, assert_blobs_mirrored, assert_mirrored, new_trials

from track_backends import errors
from track_backends.cli import main
from track_backends.model import Project, Status, Trial, TrialGroup
from track_backends.multiplexer import ProtocolMultiplexer
from track_backends.registry import get_protocol, open_store
from track_backends.store import TRIALS, Store
from track_backends.stores.filelock import FileLock
from track_backends.stores.journal import JournalStore
from track_backends.stores.memory import MemoryStore
from track_backends.stores.multiplex import (
    MirrorError,
    MultiplexStore,
    multiplex_uri,
    parse_multiplex,
)
from track_backends.testing import (
    ArtifactContract,
    ClaimContract,
    LeaseContract,
    PointsContract,
    ProtocolContract,
    StoreContract,
)
from track_backends.testing.base import snapshot
from track_backends.testing.data import COLL


# -- the contract suite on multiplex: ---------------------------------------------------------------
class _CheckMirrors:
    """After each contract test, the mirrors must hold what the primary holds (documents, points, blobs)."""

    @pytest.fixture
    def store(self, store_uri: str) -> Iterator[Store]:
        s = open_store(store_uri)
        assert isinstance(s, MultiplexStore)
        yield s
        if not s.closed:
            assert_mirrored(s.primary, *(m.store for m in s.mirrors))  # type: ignore[misc]
            assert_blobs_mirrored(s.primary, *(m.store for m in s.mirrors))  # type: ignore[misc]
        s.close()

    @pytest.fixture
    def protocol(self, store_uri: str) -> Iterator[Any]:
        p = get_protocol(store_uri)
        yield p
        if not p.store.closed:
            assert_mirrored(p.store.primary, *(m.store for m in p.store.mirrors))
            assert_blobs_mirrored(p.store.primary, *(m.store for m in p.store.mirrors))
        p.close()


class TestMultiplexEphemeral(
    _CheckMirrors, StoreContract, ProtocolContract, ClaimContract, LeaseContract, PointsContract, ArtifactContract
):
    @pytest.fixture
    def store_uri(self) -> str:
        return multiplex_uri("ephemeral:", "ephemeral:", "ephemeral:")


class TestMultiplexPickled(
    _CheckMirrors, StoreContract, ProtocolContract, ClaimContract, LeaseContract, PointsContract, ArtifactContract
):
    multiprocess = True
    claim_trials = 600

    @pytest.fixture
    def store_uri(self, tmp_path: Any) -> Iterator[str]:
        yield multiplex_uri(f"pickled://{tmp_path}/p.pkl", f"pickled://{tmp_path}/m.pkl", f"file://{tmp_path}/m.jsonl")
        # across processes too (the claim contract): the mirror files match the primary file
        with JournalStore(tmp_path / "p.pkl") as p, JournalStore(tmp_path / "m.pkl") as m:
            with JournalStore(tmp_path / "m.jsonl", "file") as f:
                assert_mirrored(p, m, f)
                assert_blobs_mirrored(p, m, f)


# -- mirroring --------------------------------------------------------------------------------------
def test_mirrors_converge_after_every_kind_of_write(tmp_path: Any) -> None:
    mirror_a, mirror_b = MemoryStore(), JournalStore(tmp_path / "m.pkl")
    with ProtocolMultiplexer(f"pickled://{tmp_path}/p.pkl", mirror_a, mirror_b) as proto:
        store = proto.store
        proto.new_project(Project("p", metadata={"k": 1}))
        group = proto.new_trial_group(TrialGroup("g", project_id="p"))
        trials = new_trials(proto, 20, group.uid)
        proto.new_trial(Trial({"i": 0}, name="t", group_id=group.uid), auto_increment=True)
        for t in trials[:5]:
            proto.log_trial_start(t)
            proto.log_trial_metrics(t, step=1, loss=0.5)
            proto.log_trial_chrono_start(t, "epoch")
            proto.log_trial_chrono_finish(t, "epoch")
            proto.add_trial_tags(t, fast=True)
            proto.log_trial_finish(t)
        proto.set_group_metadata(group, best=0.1)
        claimed = proto.fetch_and_update_trial({"group_id": group.uid, **PENDING}, "set_trial_status", Status.Running)
        assert claimed is not None
        store.update(TRIALS, {"parameters.i": {"$gte": 15}}, {"$set": {"late": True}}, many=True)
        store.update(TRIALS, {"late": True}, {"$unset": {"late": ""}, "$inc": {"revision": 0}}, many=True)
        store.update(TRIALS, {"uid": "fresh"}, {"$set": {"x": 1}}, upsert=True)
        store.update(TRIALS, {"$and": [{"uid": "seeded"}, {"kind": "seed"}]}, {"$set": {"n": 1}}, upsert=True)
        assert store.delete(TRIALS, {"parameters.i": {"$in": [1, 2, 3]}}) == 3
        assert store.delete(TRIALS, {"uid": "fresh"}) == 1
        store.ensure_index(TRIALS, "name")
        assert_mirrored(store.primary, mirror_a, mirror_b)
        assert mirror_a.find_one(TRIALS, {"uid": claimed.uid})["status"]["name"] == "Running"
        assert store.status()[store.mirrors[0].name].outbox_depth == 0


def test_claims_come_from_the_primary_and_mirrors_follow() -> None:
    """A mirror that disagrees about what is pending never hands out a trial: the primary decides."""
    primary, mirror = MemoryStore(), MemoryStore()
    with ProtocolMultiplexer(primary, mirror) as proto:
        trials = new_trials(proto, 3)
        mirror.update(TRIALS, {}, {"$set": {"status": Status.Completed.to_doc(), "stale": 1}}, many=True)
        got = proto.fetch_and_update_trial({"group_id": "g", **PENDING}, "set_trial_status", Status.Running)
        assert got is not None and got.uid in {t.uid for t in trials}
        assert snapshot(mirror, TRIALS)[0] is not None
        doc = mirror.find_one(TRIALS, {"uid": got.uid})
        assert doc == primary.find_one(TRIALS, {"uid": got.uid}) and "stale" not in doc  # replaced whole


def test_mirror_values_keep_their_types() -> None:
    primary, mirror = MemoryStore(), MemoryStore()
    mirror.insert(COLL, {"uid": "a", "v": 1, "w": [1, {"x": 1}], "gone": 0})
    with MultiplexStore(primary, [mirror]) as store:
        store.insert(COLL, {"uid": "a", "v": True, "w": [1.0, {"x": True}]})
        assert mirror.find_one(COLL, {"uid": "a"}) == {"uid": "a", "v": True, "w": [1.0, {"x": True}]}
        got = mirror.find_one(COLL, {"uid": "a"})
        assert type(got["v"]) is bool and type(got["w"][0]) is float


def test_threads_writing_one_document_leave_mirrors_identical() -> None:
    primary, mirror = MemoryStore(), MemoryStore()
    with MultiplexStore(primary, [mirror]) as store:
        store.insert(COLL, {"uid": "x", "n": 0, "seen": []})

        def work(i: int) -> None:
            for j in range(50):
                store.update(COLL, {"uid": "x"}, {"$inc": {"n": 1}, "$push": {"seen": i * 100 + j}})

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert primary.find_one(COLL, {"uid": "x"})["n"] == 300
        assert_mirrored(primary, mirror)


def test_writes_that_pin_a_uid_by_any_spelling_are_mirrored() -> None:
    primary, mirror = MemoryStore(), MemoryStore()
    with MultiplexStore(primary, [mirror]) as store:
        store.insert_many(COLL, [{"uid": "a", "n": 0}, {"uid": "b", "n": 0}])
        store.update(COLL, {"uid": {"$eq": "a"}}, {"$inc": {"n": 1}})
        store.update(COLL, {"$and": [{"uid": "b"}, {"n": 0}]}, {"$set": {"m": 1.0}})
        store.update(COLL, {"uid": "c", "n": 5}, {"$set": {"new": True}}, upsert=True)
        assert_mirrored(primary, mirror)
        store.delete(COLL, {"uid": {"$eq": "a"}})
        assert_mirrored(primary, mirror)
        assert sorted(d["uid"] for d in mirror.find(COLL)) == ["b", "c"]


def test_validation_happens_before_anything_is_written() -> None:
    primary, mirror = MemoryStore(), MemoryStore()
    with MultiplexStore(primary, [mirror]) as store:
        with pytest.raises(errors.QueryError):
            store.update(COLL, {"nothing": "matches"}, {"$bogus": {"a": 1}})
        with pytest.raises(errors.QueryError):
            store.delete(COLL, {"$where": "1"})
        assert primary.count(COLL) == mirror.count(COLL) == 0


# -- policies and the outbox -------------------------------------------------------------------------
def test_strict_policy_names_the_mirror_and_the_uids(tmp_path: Any) -> None:
    flaky = Flaky()
    store = MultiplexStore(MemoryStore(), [MemoryStore(), flaky], policy="strict", names=["good", "flaky"])
    flaky.mode = "fail"
    with pytest.raises(MirrorError) as info:
        store.insert_many(TRIALS, [{"uid": "u1"}, {"uid": "u2"}])
    e = info.value
    assert e.mirror == "flaky" and e.uids == ["u1", "u2"] and e.missed == [(TRIALS, "u1"), (TRIALS, "u2")]
    assert "flaky" in str(e) and "'u1'" in str(e) and "'u2'" in str(e)
    assert store.primary.count(TRIALS) == 2 and store.mirrors[0].store.count(TRIALS) == 2  # the write happened
    assert store.status()["flaky"].outbox_depth == 2  # and the miss is recorded for a replay
    with pytest.raises(MirrorError, match="flaky"):  # strict: no backoff, every write tries and raises
        store.update(TRIALS, {"uid": "u1"}, {"$set": {"x": 1}})
    assert store.status()["flaky"].outbox_depth == 2
    flaky.mode = "ok"
    store.update(TRIALS, {"uid": "u2"}, {"$set": {"y": 1}})  # works, and catches up on the backlog
    assert store.status()["flaky"].outbox_depth == 0
    assert_mirrored(store.primary, flaky)
    store.close()


def test_best_effort_records_backs_off_and_catches_up(caplog: Any) -> None:
    flaky = Flaky()
    store = MultiplexStore(MemoryStore(), [flaky], backoff=0.5, backoff_max=5, names=["flaky"])
    store.insert(TRIALS, {"uid": "before"})
    flaky.mode = "fail"
    calls = flaky.calls
    with caplog.at_level(logging.WARNING, logger="track_backends.multiplex"):
        for i in range(100):
            store.insert(TRIALS, {"uid": f"t{i}"})
        for _ in range(20):
            store.update(TRIALS, {"uid": "t0"}, {"$inc": {"n": 1}})  # one entry per uid, however often
    assert flaky.calls - calls == 1, "a mirror that is down is not tried on every write"
    assert any("flaky" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)  # not silent
    st = store.status()["flaky"]
    assert st.outbox_depth == 100 and st.down and 0 < st.retry_in <= 0.5 and "unreachable" in st.last_error
    flaky.mode = "ok"
    store.insert(TRIALS, {"uid": "during-backoff"})  # still backing off: recorded, not tried
    assert store.status()["flaky"].outbox_depth == 101 and flaky.count(TRIALS) == 1
    time.sleep(0.55)
    store.insert(TRIALS, {"uid": "after"})  # tries again, works, replays the backlog
    assert store.status()["flaky"].outbox_depth == 0 and not store.status()["flaky"].down
    assert_mirrored(store.primary, flaky)
    store.close()


def test_backoff_grows_and_commit_replays() -> None:
    flaky = Flaky()
    store = MultiplexStore(MemoryStore(), [flaky], backoff=0.05, backoff_max=0.2, names=["flaky"])
    flaky.mode = "fail"
    delays = []
    for i in range(40):
        store.insert(COLL, {"uid": f"d{i}"})
        delays.append(store.mirrors[0].delay)
        time.sleep(0.01)
    assert delays[0] == 0.05 and max(delays) == 0.2 and sorted(set(delays)) == [0.05, 0.1, 0.2]
    flaky.mode = "ok"
    time.sleep(0.25)
    store.commit()
    assert store.status()["flaky"].outbox_depth == 0
    assert_mirrored(store.primary, flaky)
    store.close()


def test_deletes_missed_by_a_mirror_are_replayed() -> None:
    flaky = Flaky()
    store = MultiplexStore(MemoryStore(), [flaky], names=["flaky"])
    store.insert_many(COLL, [{"uid": f"d{i}", "i": i} for i in range(10)])
    flaky.mode = "fail"
    store.delete(COLL, {"i": {"$lt": 5}})
    store.insert(COLL, {"uid": "d0", "again": True})  # a deleted uid used again
    flaky.mode = "ok"
    assert store.replay()["flaky"].outbox_depth == 0
    assert_mirrored(store.primary, flaky)
    store.close()


def test_strict_names_every_failing_mirror() -> None:
    a, b = Flaky(), Flaky()
    store = MultiplexStore(MemoryStore(), [a, b], policy="strict", names=["a", "b"])
    a.mode = b.mode = "fail"
    with pytest.raises(MirrorError, match="mirror a failed.*mirrors b failed too") as info:
        store.insert(COLL, {"uid": "x"})
    assert info.value.mirror == "a" and info.value.uids == ["x"]
    assert {n: st.outbox_depth for n, st in store.status().items()} == {"a": 1, "b": 1}
    store.close(timeout=0)


def test_strict_index_and_commit_failures_name_every_mirror() -> None:
    a, b = Flaky(), Flaky()
    store = MultiplexStore(MemoryStore(), [a, b], policy="strict", names=["a", "b"])
    a.mode = b.mode = "fail"
    with pytest.raises(MirrorError, match="mirror a failed to create the index.*mirrors b failed too"):
        store.ensure_index(COLL, "s")
    assert {n: st.outbox_depth for n, st in store.status().items()} == {"a": 1, "b": 1}
    with pytest.raises(MirrorError, match="mirror a could not catch up.*mirrors b failed too"):
        store.commit()
    a.mode = b.mode = "ok"
    store.commit()
    assert {n: st.outbox_depth for n, st in store.status().items()} == {"a": 0, "b": 0}
    store.close(timeout=0)


def test_a_held_mirroring_lock_only_records(tmp_path: Any) -> None:
    primary, mirror = MemoryStore(), MemoryStore()
    box = str(tmp_path / "box")
    store = MultiplexStore(primary, [mirror], outbox=box, lock_timeout=0.1, names=["m"])
    assert store.lock_path == box + ".mirrors.lock"
    other = FileLock(box + ".mirrors.lock")  # another process mirroring through the same outbox
    other.acquire(True, 1)
    t0 = time.monotonic()
    store.insert(COLL, {"uid": "a"})  # best effort: waits lock_timeout, then only records
    assert 0.09 <= time.monotonic() - t0 < 2
    assert store.status()["m"].outbox_depth == 1 and mirror.count(COLL) == 0
    strict = MultiplexStore(MemoryStore(), [MemoryStore()], policy="strict", outbox=box, lock_timeout=0.1)
    with pytest.raises(MirrorError, match="mirrors.lock") as info:
        strict.insert(COLL, {"uid": "b"})
    assert "0.1 s" in str(info.value)
    strict.close(timeout=0)
    other.close()
    assert store.replay()["m"].outbox_depth == 0 and mirror.count(COLL) == 1
    store.close()
    assert os.path.exists(box + ".mirrors.lock")


def test_missed_indexes_are_replayed() -> None:
    flaky = Flaky()
    store = MultiplexStore(MemoryStore(), [flaky], names=["flaky"])
    store.insert_many(COLL, [{"uid": "a", "s": "x"}, {"uid": "b", "s": "y"}])
    flaky.mode = "fail"
    store.ensure_index(COLL, "s", unique=True)
    assert store.status()["flaky"].outbox_depth == 1
    flaky.mode = "ok"
    store.replay()
    with pytest.raises(errors.DuplicateKeyError):  # the mirror has the unique index now
        flaky.insert(COLL, {"uid": "c", "s": "x"})
    store.close()


def test_the_outbox_is_durable_and_next_to_the_primary(tmp_path: Any) -> None:
    flaky = Flaky()
    flaky.mode = "fail"
    primary = f"pickled://{tmp_path}/p.pkl"
    with ProtocolMultiplexer(primary, flaky, close_timeout=0.2) as proto:
        assert proto.store.outbox.path == str(tmp_path / "p.pkl.outbox")
        new_trials(proto, 30)
        name = proto.store.mirrors[0].name
    assert os.path.exists(tmp_path / "p.pkl.outbox")
    healed = MemoryStore()
    with MultiplexStore(JournalStore(tmp_path / "p.pkl"), [healed], names=[name]) as store:
        assert store.status()[name].outbox_depth == 30  # a new process finds the backlog
        assert store.replay()[name].outbox_depth == 0
        assert_mirrored(store.primary, healed)


def test_an_outbox_that_cannot_record_is_an_error() -> None:
    flaky = Flaky()
    store = MultiplexStore(MemoryStore(), [flaky], names=["flaky"])
    flaky.mode = "fail"
    store.outbox.store.close()  # the outbox is gone: the miss cannot be recorded
    with pytest.raises(MirrorError, match="could not record"):
        store.insert(COLL, {"uid": "a"})
    assert store.primary.count(COLL) == 1


def test_default_outbox_locations(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TRACK_BACKENDS_DATA_DIR", str(tmp_path / "data"))
    with MultiplexStore(MemoryStore(), [MemoryStore()]) as s:
        assert s.outbox.path is None  # an ephemeral primary: the outbox lives (and dies) with it
    with MultiplexStore(Flaky(), [MemoryStore()], primary_name="server://db") as s:  # a server primary
        assert s.outbox.path is not None and s.outbox.path.startswith(str(tmp_path / "data" / "outbox"))
    with MultiplexStore(Flaky(), [MemoryStore()], primary_name="server://db") as again:
        assert again.outbox.path == s.outbox.path  # the same primary finds its outbox again
    with open_store(multiplex_uri("ephemeral:", "ephemeral:", outbox=str(tmp_path / "box"))) as s:
        assert s.outbox.path == str(tmp_path / "box")


# -- bounded close ---------------------------------------------------------------------------------
def test_close_is_bounded_when_a_mirror_hangs(tmp_path: Any) -> None:
    flaky = Flaky()
    store = MultiplexStore(JournalStore(tmp_path / "p.pkl"), [flaky], close_timeout=0.5, names=["flaky"])
    flaky.mode = "fail"
    for i in range(10):
        store.insert(COLL, {"uid": f"h{i}"})
    flaky.mode = "hang"
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 1.5
    flaky.release.set()
    with MultiplexStore(JournalStore(tmp_path / "p.pkl"), [MemoryStore()], names=["flaky"]) as again:
        assert again.status()["flaky"].outbox_depth == 10  # left on disk for later


# -- URIs and secrets ------------------------------------------------------------------------------------
def test_uri_parsing() -> None:
    uri = multiplex_uri("pickled:///x/p.pkl", "mongodb+srv://u:pw@h/db", "ephemeral:", policy="strict", close_timeout=2)
    spec = parse_multiplex(uri)
    assert spec.primary == "pickled:///x/p.pkl" and spec.mirrors == ("mongodb+srv://u:pw@h/db", "ephemeral:")
    assert spec.policy == "strict" and spec.close_timeout == 2
    assert "pw" not in repr(spec) and "***" in spec.redacted
    plus = parse_multiplex("multiplex:?primary=ephemeral:&mirror=" + quote("mongodb+srv://h/db", safe="+"))
    assert plus.mirrors == ("mongodb+srv://h/db",)  # "+" is not a space
    for bad, match in [
        ("multiplex:?mirror=ephemeral%3A", "needs a primary"),
        ("multiplex:?primary=ephemeral%3A&primary=ephemeral%3A", "2 times"),
        ("multiplex:?primary=ephemeral%3A&mirrors=ephemeral%3A", "unknown option"),
        ("multiplex:?primary=ephemeral%3A&policy=sometimes", "policy"),
        ("multiplex:?primary=ephemeral%3A&close_timeout=-1", "close_timeout"),
        ("multiplex:?primary=" + quote("multiplex:?primary=ephemeral:", safe=""), "nested"),
        ("multiplex:some/path?primary=ephemeral%3A", "no path"),
        ("multiplex:?primary=nope", "no scheme"),
    ]:
        with pytest.raises(errors.InvalidURIError, match=match):
            open_store(bad)


def test_protocol_multiplexer_from_uri_and_stores(tmp_path: Any) -> None:
    uri = multiplex_uri(f"file://{tmp_path}/p.jsonl", f"pickled://{tmp_path}/m.pkl")
    with ProtocolMultiplexer.from_uri(uri) as proto:
        new_trials(proto, 3)
        assert list(proto.status()) == [f"pickled://{tmp_path}/m.pkl"]
    with get_protocol(uri) as proto:
        assert len(proto.fetch_trials()) == 3
    with JournalStore(tmp_path / "p.jsonl", "file") as p, JournalStore(tmp_path / "m.pkl") as m:
        assert_mirrored(p, m)


# -- the CLI -----------------------------------------------------------------------------------------
def test_cli_replay_after_a_mirror_comes_back(tmp_path: Any, capsys: Any) -> None:
    """A real failure (the mirror's directory is missing), repaired, then `track-backends replay`."""
    missing = tmp_path / "later"
    uri = multiplex_uri(f"pickled://{tmp_path}/p.pkl", f"pickled://{missing}/m.pkl", close_timeout=0.1)
    with get_protocol(uri) as proto:
        new_trials(proto, 25)
        (name,) = proto.store.status()
        assert proto.store.status()[name].outbox_depth == 25
    assert main(["replay", uri, "--dry-run"]) == 1
    assert "25 pending" in capsys.readouterr().out
    assert main(["replay", uri]) == 1  # still missing: documents left, the error named
    out = capsys.readouterr().out
    assert "0 left" not in out and "25 left" in out and "does not exist" in out
    missing.mkdir()
    assert main(["replay", "--outbox", str(tmp_path / "p.pkl.outbox")]) == 0
    assert "replayed 25, 0 left" in capsys.readouterr().out
    with JournalStore(tmp_path / "p.pkl") as p, JournalStore(missing / "m.pkl") as m:
        assert_mirrored(p, m)


def test_cli_replay_errors(tmp_path: Any, capsys: Any) -> None:
    for argv, match in [
        (["replay"], "give a multiplex: URI"),
        (["replay", "--outbox", str(tmp_path / "none")], "no outbox"),
        (["replay", "multiplex:?primary=ephemeral%3A"], "ephemeral"),
        (["replay", multiplex_uri(f"pickled://{tmp_path}/absent.pkl", "ephemeral:")], "no primary store"),
        (["replay", "multiplex:?nothing=1"], "unknown option"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err, err
