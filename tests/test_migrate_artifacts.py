"""Migration keeps artifacts: blobs copied once per content, before their references, verified, resumable.

Only the embedded stores (and ``multiplex:`` over them) are used here; migrations into the server
stores go through the same Store blob primitives.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from multiplex_helpers import assert_blobs_mirrored

from track_backends.cli import main
from track_backends.migrate import LineProgress, migrate
from track_backends.model import Trial
from track_backends.protocol import DocumentProtocol
from track_backends.protocol.artifacts import ARTIFACTS
from track_backends.registry import open_store
from track_backends.store import TRIALS, Store
from track_backends.stores.journal import JournalStore
from track_backends.stores.memory import MemoryStore
from track_backends.stores.multiplex import MultiplexStore, multiplex_uri

SHARED = os.urandom((1 << 20) + 3)  # in several trials and names: one blob
CHUNKY = os.urandom(3 * (1 << 20) + 1)  # several chunks


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _blobs(store: Store) -> dict[str, int]:
    return {b.sha256: b.size for b in store.list_blobs()}


def fill(store: Store, trials: int = 4) -> dict[tuple[str, str], bytes]:
    """Trials with artifacts; return ``(trial uid, name) -> content``."""
    proto = DocumentProtocol(store)
    want: dict[tuple[str, str], bytes] = {}
    for i in range(trials):
        t = proto.new_trial(Trial({"i": i}, group_id="g"))
        assert t is not None
        contents = {"shared.bin": SHARED, "again/shared.bin": SHARED, f"own{i}.txt": f"trial {i}".encode()}
        if i == 0:
            contents["chunky.bin"] = CHUNKY
            contents["empty"] = b""
        for name, data in contents.items():
            proto.put_artifact(t, name, data, metadata={"i": i, "name": name})
            want[(t.uid, name)] = data
    return want


def distinct(want: dict[tuple[str, str], bytes]) -> dict[str, int]:
    return {_sha(d): len(d) for d in want.values()}


def assert_artifacts(src: Store, dst: Store, want: dict[tuple[str, str], bytes]) -> None:
    a, b = DocumentProtocol(src), DocumentProtocol(dst)
    for uid in {u for u, _ in want}:
        assert b.list_artifacts(uid) == a.list_artifacts(uid)  # names, sha256, sizes, metadata, times
    for (uid, name), data in want.items():
        assert b.read_artifact(uid, name) == data


def _store(kind: str, path: Path, name: str) -> Store:
    if kind == "ephemeral":
        return MemoryStore()
    if kind == "multiplex":
        return MultiplexStore(JournalStore(path / f"{name}.pkl"), [JournalStore(path / f"{name}-m.jsonl", "file")])
    return JournalStore(path / f"{name}.{'pkl' if kind == 'pickled' else 'jsonl'}", kind)


PAIRS = [
    ("ephemeral", "pickled"),
    ("pickled", "file"),
    ("file", "ephemeral"),
    ("pickled", "multiplex"),
    ("multiplex", "file"),
]


@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_migration_keeps_artifacts_once_per_content(tmp_path: Path, src_kind: str, dst_kind: str) -> None:
    src, dst = _store(src_kind, tmp_path, "src"), _store(dst_kind, tmp_path, "dst")
    want = fill(src)
    report = migrate(src, dst, batch=3)
    assert report.ok and report.verification is True, report.summary()
    expect = distinct(want)
    b = report.blobs
    assert (b.source, b.copied, b.skipped, b.failed) == (len(expect), len(expect), 0, 0)
    assert b.bytes_copied == sum(expect.values()) and b.verified == len(expect)
    assert report.collections[ARTIFACTS].copied == len(want) == report.collections[ARTIFACTS].verified
    assert _blobs(dst) == expect  # dedup preserved: the shared content is stored once
    assert_artifacts(src, dst, want)
    if isinstance(dst, MultiplexStore):
        assert_blobs_mirrored(dst.primary, *(m.store for m in dst.mirrors))  # type: ignore[misc]
    summary = report.summary()
    assert f"blobs: {len(expect)} in the source, {len(expect)} copied" in summary
    assert f"{len(expect)} blobs present with their sizes" in summary

    again = migrate(src, dst)  # a second run copies nothing
    assert again.ok and again.verification is True
    assert (again.blobs.copied, again.blobs.skipped, again.blobs.bytes_copied) == (0, len(expect), 0)
    assert again.total("copied") == 0 and again.collections[ARTIFACTS].unchanged == len(want)
    assert again.to_dict()["blobs"]["skipped"] == len(expect)
    src.close()
    dst.close()


def test_only_the_selected_trials_artifacts_and_blobs_follow() -> None:
    src, dst = MemoryStore(), MemoryStore()
    want = fill(src)
    report = migrate(src, dst, query={"parameters.i": 1})
    assert report.verification is True, report.summary()
    (uid,) = [d["uid"] for d in dst.find(TRIALS)]
    mine = {k: v for k, v in want.items() if k[0] == uid}
    assert {d["trial"] for d in dst.find(ARTIFACTS)} == {uid} and dst.count(ARTIFACTS) == len(mine)
    assert _blobs(dst) == distinct(mine)  # not CHUNKY, which only trial 0 has
    assert_artifacts(src, dst, mine)
    everything = migrate(src, MemoryStore(), query={"parameters.i": 1}, all_blobs=True)
    assert everything.blobs.copied == len(distinct(want))  # with all_blobs, unreferenced ones too


def test_resume_after_kill_9(tmp_path: Path) -> None:
    """A migration killed (SIGKILL) half-way through the blobs resumes: nothing twice, nothing lost."""
    src_path, dst_path = tmp_path / "src.pkl", tmp_path / "dst.jsonl"
    with JournalStore(src_path) as src:
        proto = DocumentProtocol(src)
        want = {}
        for i in range(6):
            t = proto.new_trial(Trial({"i": i}))
            assert t is not None
            data = os.urandom(300_000 + i)
            proto.put_artifact(t, "blob", data)
            want[(t.uid, "blob")] = data
    script = f"""
import os, signal
from track_backends.migrate import migrate
def progress(label, done, total):
    if label == "blobs" and done == 3:
        os.kill(os.getpid(), signal.SIGKILL)
migrate("pickled://{src_path}", "file://{dst_path}", progress=progress)
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    with JournalStore(dst_path, "file") as dst:
        assert len(_blobs(dst)) == 3 and dst.count(ARTIFACTS) == 0  # blobs first; no reference yet
    report = migrate(f"pickled://{src_path}", f"file://{dst_path}")
    assert report.ok and report.verification is True, report.summary()
    assert (report.blobs.copied, report.blobs.skipped) == (3, 3)
    with JournalStore(src_path) as src, JournalStore(dst_path, "file") as dst:
        assert_artifacts(src, dst, want)
        assert dst.clean_uploads(older_than=2e9) == 0  # each blob was copied whole or not at all


def test_bumped_trials_take_their_artifacts_and_kept_ones_do_not() -> None:
    src, dst = MemoryStore(), MemoryStore()
    fill(src, trials=2)
    first, second = sorted(src.find(TRIALS), key=lambda d: d["parameters"]["i"])
    for t in (first, second):  # the destination has other trials under the same uids
        dst.insert(TRIALS, {**t, "metadata": {"other": True}})
    kept = migrate(src, dst)  # skip: the destination's trials keep their (no) artifacts
    assert kept.verification is True, kept.summary()
    assert dst.count(ARTIFACTS) == 0 and kept.collections[ARTIFACTS].skipped == src.count(ARTIFACTS)
    assert kept.collections[ARTIFACTS].kept == src.count(ARTIFACTS)
    bumped = migrate(src, dst, on_conflict="bump")
    assert bumped.verification is True, bumped.summary()
    proto = DocumentProtocol(dst)
    for t in (first, second):
        (copy,) = dst.find(TRIALS, {"metadata.migrated_from": t["uid"]})
        names = [a.name for a in proto.list_artifacts(copy["uid"])]
        assert names == [a.name for a in DocumentProtocol(src).list_artifacts(t["uid"])]
        assert proto.read_artifact(copy["uid"], "shared.bin") == SHARED
        assert proto.list_artifacts(t["uid"]) == []
    assert migrate(src, dst, on_conflict="bump").total("copied") == 0  # found bumped again: nothing new


def test_a_blob_missing_from_the_source_is_a_failure() -> None:
    src, dst = MemoryStore(), MemoryStore()
    want = fill(src, trials=1)
    src.delete_blob(_sha(CHUNKY))
    report = migrate(src, dst)
    assert report.blobs.failed == 1 and not report.ok and report.verification is False
    assert report.blobs.missing == 1 and f"{_sha(CHUNKY)}: missing from the source" in report.summary()
    assert "blobs: 1 missing" in report.summary()
    others = {k: v for k, v in want.items() if v != CHUNKY}
    assert_artifacts(src, dst, others)


def test_dry_run_counts_and_writes_nothing(tmp_path: Path) -> None:
    src = MemoryStore()
    want = fill(src, trials=2)
    dst = JournalStore(tmp_path / "dst.pkl")
    report = migrate(src, dst, dry_run=True)
    assert report.blobs.copied == len(distinct(want)) and report.blobs.bytes_copied == sum(distinct(want).values())
    assert _blobs(dst) == {} and dst.count(ARTIFACTS) == 0
    dst.close()


def test_progress_and_cli(tmp_path: Path, capsys: Any) -> None:
    src_uri, dst_uri = (
        f"pickled://{tmp_path}/src.pkl",
        multiplex_uri(f"file://{tmp_path}/dst.jsonl", f"pickled://{tmp_path}/mirror.pkl"),
    )
    with open_store(src_uri) as src:
        want = fill(src, trials=2)
    n = len(distinct(want))
    lines = io.StringIO()
    migrate(src_uri, f"file://{tmp_path}/plain.jsonl", progress=LineProgress(lines))
    out = lines.getvalue().splitlines()
    assert f"blobs: 0/{n}" in out and f"blobs: {n}/{n}" in out and f"verify blobs: {n}/{n}" in out
    assert f"artifacts: {len(want)}/{len(want)}" in out
    assert main(["migrate", src_uri, dst_uri, "-q"]) == 0
    printed = capsys.readouterr().out
    assert f"blobs: {n} in the source, {n} copied" in printed and "verification: OK" in printed
    with open_store(src_uri) as src, src.blob_writer() as w:
        w.write(b"referenced by nothing")
    assert main(["migrate", src_uri, dst_uri, "-q", "--all-blobs"]) == 0
    printed = capsys.readouterr().out
    assert f"blobs: {n + 1} in the source, 1 copied" in printed and f"{n} already there" in printed
    with JournalStore(tmp_path / "dst.jsonl", "file") as dst, JournalStore(tmp_path / "mirror.pkl") as mirror:
        assert _sha(b"referenced by nothing") in _blobs(mirror)
        dst.delete_blob(_sha(b"referenced by nothing"))
        mirror.delete_blob(_sha(b"referenced by nothing"))
        assert _blobs(dst) == _blobs(mirror) == distinct(want)
        with open_store(src_uri) as src:
            assert_artifacts(src, mirror, want)
