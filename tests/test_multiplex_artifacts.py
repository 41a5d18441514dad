"""The multiplexer's blobs: copied to the mirrors after the primary commits, replayed when missed.

The contract suite (``ArtifactContract``) runs on ``multiplex:`` in ``test_multiplex``, with a
check after each test that the mirrors hold the primary's blobs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from multiplex_helpers import Flaky, assert_blobs_mirrored, assert_mirrored, blob_sizes, new_trials

from track_backends.cli import main
from track_backends.gc import collect_garbage
from track_backends.multiplexer import ProtocolMultiplexer
from track_backends.protocol import DocumentProtocol
from track_backends.registry import get_protocol
from track_backends.stores.journal import JournalStore
from track_backends.stores.memory import MemoryStore
from track_backends.stores.multiplex import MirrorError, MultiplexStore, multiplex_uri
from track_backends.stores.multiplex.blobs import BLOBS


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_mirror_that_was_down_gets_the_blob_after_replay() -> None:
    primary, good, flaky = MemoryStore(), MemoryStore(), Flaky()
    data = os.urandom(3 * (1 << 20) + 11)  # several chunks
    with DocumentProtocol(MultiplexStore(primary, [good, flaky], names=["good", "flaky"])) as proto:
        (t,) = new_trials(proto, 1)
        flaky.mode = "fail"
        info = proto.put_artifact(t, "model.bin", data, metadata={"epoch": 1})
        assert blob_sizes(primary) == blob_sizes(good) == {info.sha256: len(data)}
        assert blob_sizes(flaky) == {}  # it was down: nothing reached it
        status = proto.store.status()
        assert status["good"].outbox_depth == 0
        assert status["flaky"].outbox_depth == 2 and status["flaky"].down  # the blob and the reference
        entries = proto.store.outbox.pending("flaky")
        assert [(e.kind, e.collection, e.uid) for e in entries][0] == ("blob", BLOBS, info.sha256)  # blob first
        flaky.mode = "ok"
        assert proto.store.replay()["flaky"].outbox_depth == 0
        assert_blobs_mirrored(primary, good, flaky)
        assert_mirrored(primary, good, flaky)
        assert DocumentProtocol(flaky).read_artifact(t.uid, "model.bin") == data  # readable on the mirror alone
        assert proto.read_artifact(t, "model.bin") == data


def test_content_the_mirror_has_is_not_copied_again() -> None:
    primary, mirror = MemoryStore(), MemoryStore()
    with ProtocolMultiplexer(primary, mirror) as proto:
        (t,) = new_trials(proto, 1)
        with mirror.blob_writer() as w:
            w.write(b"already there")
        before = mirror.stat_blob(_sha(b"already there"))
        proto.put_artifact(t, "a", b"already there")
        proto.put_artifact(t, "b", b"already there")
        assert mirror.stat_blob(_sha(b"already there")) == before
        assert_blobs_mirrored(primary, mirror)


def test_strict_raises_and_replay_repairs() -> None:
    primary, flaky = MemoryStore(), Flaky()
    store = MultiplexStore(primary, [flaky], policy="strict", names=["flaky"])
    proto = DocumentProtocol(store)
    (t,) = new_trials(proto, 1)
    flaky.mode = "fail"
    with pytest.raises(MirrorError) as info:
        proto.put_artifact(t, "x", b"strict bytes")
    sha = _sha(b"strict bytes")
    assert info.value.mirror == "flaky" and info.value.missed == [(BLOBS, sha)]
    assert "flaky" in str(info.value) and sha[:16] in str(info.value)
    assert blob_sizes(primary) == {sha: 12}  # the primary has it (its reference was not written)
    assert store.status()["flaky"].outbox_depth == 1
    flaky.mode = "ok"
    assert store.replay()["flaky"].outbox_depth == 0
    assert_blobs_mirrored(primary, flaky)
    store.close()


def test_deletions_reach_the_mirrors_and_are_replayed() -> None:
    primary, flaky = MemoryStore(), Flaky()
    with MultiplexStore(primary, [flaky], names=["flaky"]) as store:
        shas = []
        for data in (b"one", b"two"):
            with store.blob_writer() as w:
                w.write(data)
            shas.append(_sha(data))
        assert store.delete_blob(shas[0]) is True
        assert blob_sizes(flaky) == {shas[1]: 3}
        flaky.mode = "fail"
        assert store.delete_blob(shas[1]) is True and store.delete_blob(shas[1]) is False
        assert store.status()["flaky"].outbox_depth == 1  # one entry per blob, however often missed
        flaky.mode = "ok"
        store.replay()
        assert blob_sizes(flaky) == {} == blob_sizes(primary)


def test_a_replay_makes_the_mirror_hold_what_the_primary_holds_now() -> None:
    """Blobs missed while a mirror was down: copied if the primary has them, deleted if it collected them."""
    primary, flaky = MemoryStore(), Flaky()
    with DocumentProtocol(MultiplexStore(primary, [flaky], names=["flaky"])) as proto:
        (t,) = new_trials(proto, 1)
        proto.put_artifact(t, "old", b"mirrored, then collected")
        flaky.mode = "fail"
        proto.put_artifact(t, "brief", b"never mirrored, collected")
        proto.put_artifact(t, "kept", b"long-lived")
        proto.delete_artifact(t, "old")
        proto.delete_artifact(t, "brief")
        assert collect_garbage(proto.store, grace=0).deleted == 2  # on the primary; the mirror is down
        assert _sha(b"mirrored, then collected") in blob_sizes(flaky)
        flaky.mode = "ok"
        assert proto.store.replay()["flaky"].outbox_depth == 0
        assert blob_sizes(flaky) == {_sha(b"long-lived"): 10} == blob_sizes(primary)
        assert_mirrored(primary, flaky)


def test_clean_uploads_runs_everywhere(tmp_path: Any) -> None:
    primary, mirror = JournalStore(tmp_path / "p.pkl"), JournalStore(tmp_path / "m.pkl")
    with MultiplexStore(primary, [mirror]) as store:
        for s in (primary, mirror):  # what an upload killed half-way leaves
            tmp = Path(s.blob_root) / "tmp"
            tmp.mkdir(parents=True)
            (tmp / "dead.part").write_bytes(b"dead upload")
        assert store.clean_uploads(older_than=2e9) == 2
        assert store.clean_uploads(older_than=2e9) == 0


def test_cli_replay_copies_blobs_to_a_mirror_that_comes_back(tmp_path: Any, capsys: Any) -> None:
    """A real failure (the mirror's directory is missing), repaired, then `track-backends replay`."""
    missing = tmp_path / "later"
    uri = multiplex_uri(f"pickled://{tmp_path}/p.pkl", f"pickled://{missing}/m.pkl", close_timeout=0.1)
    data = os.urandom(1 << 20)
    with get_protocol(uri) as proto:
        (t,) = new_trials(proto, 1)
        proto.put_artifact(t, "weights", data)
        proto.put_artifact(t, "copy", data)  # the same content: one blob entry
        (name,) = proto.store.status()
        assert proto.store.status()[name].outbox_depth == 4  # trial, blob, two references
    missing.mkdir()
    assert main(["replay", uri]) == 0
    assert "replayed 4, 0 left" in capsys.readouterr().out
    with JournalStore(tmp_path / "p.pkl") as p, JournalStore(missing / "m.pkl") as m:
        assert_mirrored(p, m)
        assert_blobs_mirrored(p, m)
        assert DocumentProtocol(m).read_artifact(t.uid, "weights") == data
