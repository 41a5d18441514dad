"""The durable journal engine (``pickled:`` and ``file:``): files, locks, crashes, compaction."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from track_backends.errors import (
    CorruptStoreError,
    DuplicateKeyError,
    EncodingError,
    InvalidURIError,
    LockTimeoutError,
    QueryError,
    StoreError,
    StoreUnavailableError,
)
from track_backends.stores.codecs import CODECS, read_header
from track_backends.stores.filelock import FileLock
from track_backends.stores.journal import JournalStore, file_from_uri, pickled_from_uri
from track_backends.uri import parse_uri

CODEC_NAMES = ["pickled", "file"]
REPO = str(Path(__file__).resolve().parents[1])
PENDING = {"group_id": "g", "status.name": {"$in": ["Created", "Interrupted"]}}


@pytest.fixture(params=CODEC_NAMES)
def codec(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def path(tmp_path: Path, codec: str) -> str:
    return str(tmp_path / ("store.pkl" if codec == "pickled" else "store.jsonl"))


def state(store: JournalStore) -> dict[str, Any]:
    """Every collection's documents (sorted by uid) and index definitions."""
    out = {}
    for name, c in sorted(store._colls.items()):
        if not c.docs and len(c.indexes) <= 2:
            continue
        docs = sorted(store.find(name), key=lambda d: d["uid"])
        out[name] = (docs, sorted((ix.paths, ix.unique) for ix in c.indexes))
    return out


def scan_file(path: str, codec: str) -> tuple[dict[str, Any], list[list[Any]], int]:
    """Parse a journal file: (header, records, bytes left over after the last valid record)."""
    data = Path(path).read_bytes()
    header, pos = read_header(data)
    records = []
    for rec, end in CODECS[codec].scan(data, pos):
        records.append(rec)
        pos = end
    return header, records, len(data) - pos


def run_py(code: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, text=True, **kw)


# -- round trips ---------------------------------------------------------------------------------
WEIRD = {
    "uid": "weird",
    "nested": {"a": {"b": {"c": [1, {"d": None}, [True, False]]}}, "empty": {}, "list": []},
    "unicode": 'héllo wörld ✓ 🧪 中文 \u2028 \x85 \u2029 \n\t"quote" \\ back',
    "big": 2**63 - 1,
    "small": -(2**63),
    "floats": [0.1, -0.0, 1e300, 5e-324, 1.0, -2.5e-10],
    "bools": [True, False, None, 0, 1, ""],
    "clé ünïcode": {"ключ": "значение"},
}


def fill(store: JournalStore) -> None:
    store.insert("things", WEIRD)
    store.insert_many("trials", [{"uid": f"t{i}", "group_id": "g", "status": {"name": "Created"}} for i in range(20)])
    store.ensure_index("things", "tag", unique=True)
    store.ensure_index("trials", ["metadata.owner", "status.name"])
    store.insert_many("things", [{"uid": f"x{i}", "tag": f"tag{i}", "n": i} for i in range(10)])
    store.update("things", {"uid": "x1"}, {"$inc": {"n": 10}, "$push": {"log": {"$each": [1, "two", {"3": 3}]}}})
    store.update("things", {"n": {"$lt": 5}}, {"$set": {"small": True}, "$unset": {"n": ""}}, many=True)
    store.update("things", {"uid": "x9"}, {"$addToSet": {"s": 1}})
    store.update("things", {"uid": "x9"}, {"$addToSet": {"s": 1}})
    upsert = {"$set": {"k": "v", "tag": "t"}, "$setOnInsert": {"fresh": True}}
    store.update("things", {"uid": "new"}, upsert, upsert=True)
    store.find_one_and_update("trials", PENDING, {"$set": {"status": {"name": "Running", "value": 101}}})
    store.delete("trials", {"uid": {"$in": ["t5", "t6"]}})


def test_round_trip(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    fill(s)
    before = state(s)
    assert before["things"][0][-1]["uid"] == "x9"
    assert s.find_one("things", {"uid": "weird"}) == WEIRD
    s.close()
    r = JournalStore(path, codec)
    assert state(r) == before
    got = r.find_one("things", {"uid": "weird"})
    assert got == WEIRD and type(got["big"]) is int and str(got["floats"][1]) == "0.0"  # stored as 0.0
    with pytest.raises(DuplicateKeyError):  # the unique index came back
        r.insert("things", {"uid": "dup", "tag": "tag7"})
    assert r.count("trials") == 18 and r.count("trials", {"status.name": "Running"}) == 1
    r.close()


@pytest.mark.parametrize("codec", ["pickled", "file"])
def test_lone_surrogates_are_refused_before_writing(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "s.db"
    s = JournalStore(str(path), codec)
    size = path.stat().st_size
    with pytest.raises(EncodingError):
        s.insert("trials", {"uid": "a", "s": "lone \ud800"})
    s.insert("trials", {"uid": "b", "s": "a real pair \U0001f9ea"})
    s.close()
    assert path.stat().st_size > size
    got = JournalStore(str(path), codec).find("trials")
    assert [d["uid"] for d in got] == ["b"] and got[0]["s"] == "a real pair \U0001f9ea"


def test_file_codec_is_json_lines_readable_by_jq(tmp_path: Path) -> None:
    path = str(tmp_path / "store.jsonl")
    s = JournalStore(path, "file")
    fill(s)
    s.close()
    lines = Path(path).read_text("utf-8").splitlines()
    objs = [json.loads(line) for line in lines]
    assert objs[0]["r"]["format"] == "track_backends journal" and objs[0]["r"]["codec"] == "file"
    assert all(set(o) == {"k", "r"} for o in objs)
    assert "héllo" in Path(path).read_text("utf-8")  # not \u-escaped
    if shutil.which("jq"):
        jq = '.r | if type == "array" then .[0] else .format end'
        out = subprocess.run(["jq", "-c", jq], input=Path(path).read_bytes(), capture_output=True, check=True)
        kinds = out.stdout.decode().split("\n")[:-1]
        assert kinds[0] == '"track_backends journal"'
        assert set(kinds[1:]) == {'"insert"', '"update"', '"delete"', '"index"'}


def test_two_stores_see_each_other(path: str, codec: str) -> None:
    a = JournalStore(path, codec)
    b = JournalStore(path, codec)
    a.insert("trials", {"uid": "1", "group_id": "g", "status": {"name": "Created"}})
    assert b.find_one("trials", {"uid": "1"})["status"]["name"] == "Created"
    b.update("trials", {"uid": "1"}, {"$set": {"status.name": "Completed"}})
    assert a.find_one("trials", {"uid": "1"})["status"]["name"] == "Completed"
    with pytest.raises(DuplicateKeyError):  # a caught up before checking
        a.insert("trials", {"uid": "1"})
    b.insert("trials", {"uid": "2", "group_id": "g", "status": {"name": "Created"}})
    assert a.find_one_and_update("trials", PENDING, {"$set": {"status.name": "Running"}})["uid"] == "2"
    assert b.find_one_and_update("trials", PENDING, {"$set": {"status.name": "Running"}}) is None
    assert b.count("trials") == a.count("trials") == 2
    a.close()
    b.close()


def test_threads_and_stores_in_one_process_claim_once(path: str, codec: str) -> None:
    setup = JournalStore(path, codec, fsync=False)
    setup.insert_many("trials", [{"uid": f"t{i}", "group_id": "g", "status": {"name": "Created"}} for i in range(300)])
    stores = [setup, JournalStore(path, codec, fsync=False)]
    got: list[list[str]] = [[] for _ in range(4)]

    def claim(i: int) -> None:
        s = stores[i % 2]
        while (d := s.find_one_and_update("trials", PENDING, {"$set": {"status.name": "Running"}})) is not None:
            got[i].append(d["uid"])

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [u for g in got for u in g]
    assert sorted(claimed) == sorted(f"t{i}" for i in range(300))
    for s in stores:
        s.close()


def test_forked_child_gets_its_own_lock(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    s.insert("trials", {"uid": "parent"})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            s.insert("trials", {"uid": "child"})
            s.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert {d["uid"] for d in s.find("trials")} == {"parent", "child"}
    s.close()


# -- torn tails and corruption ---------------------------------------------------------------------
def _garbage_tail(codec: str, kind: str) -> bytes:
    frame = CODECS[codec].frame(["insert", "trials", [{"uid": "torn", "x": "y" * 100}]])
    if kind == "half":
        return frame[: len(frame) // 2]
    if kind == "tiny":
        return frame[:3]
    if kind == "zeros":  # size grew but the data never reached the disk (power loss)
        return b"\0" * 700
    if kind == "zeroed_start":  # only the first block of the record was lost
        return b"\0" * 10 + frame[10:]
    garbled = bytearray(frame)  # a complete last record with a flipped byte
    garbled[len(garbled) // 2] ^= 0x55
    return bytes(garbled)


@pytest.mark.parametrize("kind", ["half", "tiny", "garbled", "zeros", "zeroed_start"])
def test_torn_tail_is_ignored_then_truncated(path: str, codec: str, kind: str) -> None:
    s = JournalStore(path, codec)
    fill(s)
    before = state(s)
    s.close()
    clean_size = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(_garbage_tail(codec, kind))
    torn_size = os.path.getsize(path)

    reader = JournalStore(path, codec)  # reads under a shared lock: ignores, does not truncate
    assert state(reader) == before
    assert reader.find_one("trials", {"uid": "torn"}) is None
    assert os.path.getsize(path) == torn_size

    reader.insert("trials", {"uid": "after", "group_id": "g", "status": {"name": "Created"}})
    header, records, left = scan_file(path, codec)
    assert left == 0 and os.path.getsize(path) > clean_size
    assert records[-1][0] == "insert" and records[-1][2][0]["uid"] == "after"

    again = JournalStore(path, codec)
    assert again.find_one("trials", {"uid": "after"}) is not None
    assert again.count("trials") == before["trials"][0].__len__() + 1
    for st in (reader, again):
        st.close()


def test_replay_in_small_chunks(path: str, codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from track_backends.stores import journal

    s = JournalStore(path, codec)
    fill(s)
    s.insert_many("trials", [{"uid": f"big{i}", "pad": "z" * 300} for i in range(20)])  # records > chunk
    before = state(s)
    s.close()
    monkeypatch.setattr(journal, "_READ_CHUNK", 97)
    assert state(JournalStore(path, codec)) == before
    damaged = path + ".damaged"
    shutil.copy(path, damaged)
    _flip_byte_in_record(damaged, codec, 2)
    with pytest.raises(CorruptStoreError, match="damaged"):
        JournalStore(damaged, codec)
    with open(path, "ab") as f:
        f.write(_garbage_tail(codec, "zeroed_start"))
    assert state(JournalStore(path, codec)) == before


def test_torn_tail_seen_by_an_open_store(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    s.insert("trials", {"uid": "a"})
    with open(path, "ab") as f:
        f.write(_garbage_tail(codec, "half"))
    assert s.count("trials") == 1  # catch-up ignores the torn tail
    s.insert("trials", {"uid": "b"})  # the writer truncates it first
    assert scan_file(path, codec)[2] == 0
    assert JournalStore(path, codec).count("trials") == 2


def _flip_byte_in_record(path: str, codec: str, index: int) -> None:
    data = bytearray(Path(path).read_bytes())
    _, pos = read_header(bytes(data))
    ends = [end for _, end in CODECS[codec].scan(bytes(data), pos)]
    start = pos if index == 0 else ends[index - 1]
    middle = (start + ends[index]) // 2
    data[middle] ^= 0x20
    Path(path).write_bytes(bytes(data))


def test_corruption_in_the_middle_is_an_error(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    for i in range(10):
        s.insert("trials", {"uid": f"t{i}", "payload": "p" * 50})
    s.close()
    _flip_byte_in_record(path, codec, 4)
    with pytest.raises(CorruptStoreError, match="damaged"):
        JournalStore(path, codec)


def test_damaged_length_is_not_mistaken_for_a_torn_tail(tmp_path: Path) -> None:
    path = str(tmp_path / "s.pkl")
    s = JournalStore(path, "pickled")
    for i in range(10):
        s.insert("trials", {"uid": f"t{i}", "payload": "p" * 50})
    s.close()
    data = bytearray(Path(path).read_bytes())
    _, pos = read_header(bytes(data))
    ends = [end for _, end in CODECS["pickled"].scan(bytes(data), pos)]
    data[ends[3]] = 0x7F  # the 5th record now claims to be ~2 GB long
    Path(path).write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match="runs past the end"):
        JournalStore(path, "pickled")
    assert len(Path(path).read_bytes()) == len(data)  # nothing was truncated


def test_corruption_appended_later_is_seen_by_an_open_store(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    s.insert("trials", {"uid": "a"})
    other = JournalStore(path, codec)
    for i in range(3):
        other.insert("trials", {"uid": f"o{i}", "payload": "p" * 50})
    other.close()
    _flip_byte_in_record(path, codec, 1)  # o0 is damaged, o1 and o2 follow it
    with pytest.raises(CorruptStoreError):
        s.find("trials")
    with pytest.raises(CorruptStoreError):  # and again: no silent partial state
        s.insert("trials", {"uid": "b"})
    s.close()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.mkdir, (self.marker,))


def test_foreign_files_are_refused_and_never_unpickled(tmp_path: Path, codec: str) -> None:
    marker = str(tmp_path / "pwned")
    evil = pickle.dumps(["insert", "trials", [_Evil(marker)]], protocol=5)
    framed = struct.pack(">II", len(evil), zlib.crc32(evil)) + evil
    candidates = {
        "plain_pickle": evil,
        "framed_pickle": framed,
        "text": b"hello, this is a text file\nwith two lines\n",
        "jsonl": b'{"k":1,"r":["insert","trials",[]]}\n',
        "json_header_other_format": (b'{"k":%d,"r":{"format":"other"}}\n' % zlib.crc32(b'{"format":"other"}') + framed),
        "random": bytes(random.Random(1).randrange(256) for _ in range(5000)),
    }
    for name, content in candidates.items():
        p = tmp_path / f"{name}.db"
        p.write_bytes(content)
        with pytest.raises(CorruptStoreError, match="not a track_backends journal"):
            JournalStore(str(p), codec)
        assert p.read_bytes() == content, name  # never overwritten
    assert not os.path.exists(marker)


def test_crafted_pickle_in_a_journal_is_not_executed(tmp_path: Path) -> None:
    marker = str(tmp_path / "pwned")
    path = str(tmp_path / "s.pkl")
    JournalStore(path, "pickled").close()
    evil = pickle.dumps(["insert", "trials", [_Evil(marker)]], protocol=5)
    frame = struct.pack(">II", len(evil), zlib.crc32(evil)) + evil
    good = CODECS["pickled"].frame(["insert", "trials", [{"uid": "ok"}]])
    with open(path, "ab") as f:
        f.write(frame + good)
    with pytest.raises(CorruptStoreError):
        JournalStore(path, "pickled")
    assert not os.path.exists(marker)


def test_codec_mismatch_and_future_version(tmp_path: Path) -> None:
    pkl = str(tmp_path / "s.pkl")
    JournalStore(pkl, "pickled").close()
    with pytest.raises(CorruptStoreError, match="pickled:"):
        JournalStore(pkl, "file")
    future = tmp_path / "future.jsonl"
    r = b'{"format":"track_backends journal","version":99,"codec":"file","generation":0,"snapshot_bytes":0}'
    future.write_bytes(b'{"k":%d,"r":%s}\n' % (zlib.crc32(r), r))
    with pytest.raises(CorruptStoreError, match="version 99"):
        JournalStore(str(future), "file")


def test_empty_file_is_initialised(tmp_path: Path, codec: str) -> None:
    p = tmp_path / "empty"
    p.touch()
    s = JournalStore(str(p), codec)
    s.insert("trials", {"uid": "a"})
    s.close()
    assert read_header(p.read_bytes())[0]["codec"] == codec


# -- compaction ------------------------------------------------------------------------------------
def test_compaction(path: str, codec: str) -> None:
    s = JournalStore(path, codec, compact_bytes=0)
    fill(s)
    s.insert_many("trials", [{"uid": f"c{i}", "group_id": "h", "n": 0} for i in range(2500)])
    other = JournalStore(path, codec)  # already open before the compaction
    for i in range(300):
        s.update("trials", {"uid": f"c{i % 7}"}, {"$inc": {"n": 1}, "$push": {"hist": i}})
    s.delete("trials", {"uid": {"$in": [f"c{i}" for i in range(100, 200)]}})
    before = state(s)
    size, gen = os.path.getsize(path), s.generation
    inode = os.stat(path).st_ino
    s.compact()
    assert os.path.getsize(path) < size and os.stat(path).st_ino != inode
    assert s.generation == gen + 1 and state(s) == before
    header, records, left = scan_file(path, codec)
    assert header["generation"] == gen + 1 and left == 0
    assert {r[0] for r in records} == {"insert", "index"}
    assert max(len(r[2]) for r in records if r[0] == "insert") <= 1000  # chunked

    assert state(other) == before and other.generation == gen + 1  # reloaded on the inode change
    n0 = s.find_one("trials", {"uid": "c0"})["n"]
    other.update("trials", {"uid": "c0"}, {"$inc": {"n": 1}})  # appends to the new file
    assert s.find_one("trials", {"uid": "c0"})["n"] == n0 + 1
    with pytest.raises(DuplicateKeyError):
        other.insert("things", {"uid": "dup", "tag": "tag7"})
    after = state(s)
    s.close()
    other.close()
    assert state(JournalStore(path, codec)) == after
    assert not [n for n in os.listdir(os.path.dirname(path)) if ".tmp-" in n]
    assert os.path.exists(path + ".lock")


def test_automatic_compaction_keeps_the_file_bounded(path: str, codec: str) -> None:
    s = JournalStore(path, codec, compact_bytes=20_000, fsync=False)
    watcher = JournalStore(path, codec)
    s.insert_many("trials", [{"uid": f"t{i}", "n": 0} for i in range(20)])
    for i in range(3000):
        s.update("trials", {"uid": f"t{i % 20}"}, {"$inc": {"n": 1}})
        if i % 500 == 0:
            assert watcher.count("trials", {"n": {"$gte": 0}}) == 20
    assert s.generation >= 3
    assert os.path.getsize(path) < 60_000
    assert [d["n"] for d in watcher.find("trials", sort={"uid": 1})] == [150] * 20
    assert state(JournalStore(path, codec)) == state(s)


def test_compaction_keeps_symlinks_and_permissions(tmp_path: Path, codec: str) -> None:
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    JournalStore(str(real), codec).close()
    os.chmod(real, 0o600)
    link.symlink_to(real)
    s = JournalStore(str(link), codec)
    assert s.path == str(real.resolve())
    s.insert("trials", {"uid": "a"})
    s.compact()
    assert link.is_symlink() and os.stat(real).st_mode & 0o777 == 0o600
    assert JournalStore(str(real), codec).count("trials") == 1
    s.close()


# -- locks -----------------------------------------------------------------------------------------
HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_lock_timeout(path: str, codec: str) -> None:
    s = JournalStore(path, codec, lock_timeout=0.2)
    s.insert("trials", {"uid": "a"})
    holder = run_py(HOLD_LOCK, path + ".lock", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for op in (
            lambda: s.insert("trials", {"uid": "b"}),
            lambda: s.find("trials"),
            lambda: JournalStore(path, codec, lock_timeout=0.2),
        ):
            t0 = time.monotonic()
            with pytest.raises(LockTimeoutError) as info:
                op()
            elapsed = time.monotonic() - t0
            assert 0.19 <= elapsed < 1.5
            assert path + ".lock" in str(info.value) and "0.2" in str(info.value)
            assert isinstance(info.value, TimeoutError)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert os.path.exists(path + ".lock")
    s.insert("trials", {"uid": "b"})  # the store is fine after the timeouts
    assert s.count("trials") == 2
    s.close()
    assert os.path.exists(path + ".lock")
    assert JournalStore(path, codec).count("trials") == 2


def test_file_lock_shared_exclusive_and_timeout(tmp_path: Path) -> None:
    lock_path = str(tmp_path / "x.lock")
    a, b = FileLock(lock_path), FileLock(lock_path, holder="a test holds it")
    a.acquire(False, 1)
    b.acquire(False, 1)  # shared locks coexist
    t0 = time.monotonic()
    with pytest.raises(LockTimeoutError, match="a test holds it") as info:
        b.acquire(True, 0.1)  # b's own shared lock converts, but a's blocks it
    assert 0.09 <= time.monotonic() - t0 < 1.5
    assert lock_path in str(info.value) and "0.1 s" in str(info.value) and "exclusive" in str(info.value)
    a.release()
    with b.held(True, 1):
        with pytest.raises(LockTimeoutError, match="shared"):
            a.acquire(False, 0)
    a.acquire(True, 1)
    a.close()
    b.close()
    assert os.path.exists(lock_path)  # never deleted


def test_file_lock_after_fork(tmp_path: Path) -> None:
    lock_path = str(tmp_path / "x.lock")
    lock = FileLock(lock_path)
    lock.acquire(True, 1)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            lock.acquire(True, 0.1)  # the parent's lock is not the child's
        except LockTimeoutError:
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    lock.close()


def test_lock_timeout_between_threads(path: str, codec: str) -> None:
    s = JournalStore(path, codec, lock_timeout=0.2)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # stands for a thread stuck inside a long operation
        with s._lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    t0 = time.monotonic()
    with pytest.raises(LockTimeoutError, match="thread"):
        s.find("trials")
    assert time.monotonic() - t0 < 1.5
    release.set()
    t.join()
    assert s.find("trials") == []
    s.close()


# -- processes -------------------------------------------------------------------------------------
CLAIMER = """
import json, os, sys, time
from track_backends.stores.journal import JournalStore
path, codec, go = sys.argv[1:4]
s = JournalStore(path, codec)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
q = {"group_id": "g", "status.name": {"$in": ["Created", "Interrupted"]}}
u = {"$set": {"status": {"name": "Running", "value": 101}, "owner": os.getpid()}}
got = []
while True:
    d = s.find_one_and_update("trials", q, u)
    if d is None:
        break
    assert d["owner"] == os.getpid() and d["status"]["name"] == "Running", d
    got.append(d["uid"])
s.close()
print(json.dumps({"pid": os.getpid(), "uids": got}), flush=True)
"""


@pytest.mark.slow
def test_multiprocess_claims_each_trial_once(tmp_path: Path, path: str, codec: str) -> None:
    n = 2000
    s = JournalStore(path, codec)
    statuses = ["Created", "Interrupted", "Completed", "Created"]
    docs = [{"uid": f"t{i}", "group_id": "g", "status": {"name": statuses[i % 4]}} for i in range(n)]
    docs += [{"uid": f"h{i}", "group_id": "h", "status": {"name": "Created"}} for i in range(50)]
    s.insert_many("trials", docs)
    expected = {f"t{i}" for i in range(n) if statuses[i % 4] != "Completed"}
    go = str(tmp_path / "go")
    procs = [run_py(CLAIMER, path, codec, go, stdout=subprocess.PIPE) for _ in range(4)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    Path(go).touch()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results.append(json.loads(out))
    claimed = [u for r in results for u in r["uids"]]
    assert len(claimed) == len(set(claimed)) == len(expected)
    assert set(claimed) == expected
    assert sum(1 for r in results if r["uids"]) >= 2
    owner = {u: r["pid"] for r in results for u in r["uids"]}
    final = {d["uid"]: d for d in s.find("trials")}
    assert len(final) == n + 50
    for uid, d in final.items():
        if uid in expected:
            assert d["status"] == {"name": "Running", "value": 101} and d["owner"] == owner[uid]
        else:
            assert "owner" not in d
    reopened = JournalStore(path, codec)
    assert reopened.find("trials", sort={"uid": 1}) == sorted(final.values(), key=lambda d: d["uid"])
    s.close()
    reopened.close()


WRITER = """
import sys
from track_backends.stores.journal import JournalStore
path, codec, prefix = sys.argv[1:4]
s = JournalStore(path, codec, compact_bytes=30000)
i = 0
while True:
    uid = f"{prefix}-{i}"
    if i % 10 == 3:
        s.insert_many("trials", [{"uid": uid, "batch": True}, {"uid": uid + "-b", "batch": True}])
    else:
        s.insert("trials", {"uid": uid, "group_id": "g", "i": i, "pad": "x" * (i % 40)})
    print("I", uid, flush=True)
    if i % 4 == 0:
        s.update("trials", {"uid": uid}, {"$set": {"done": True}})
        print("U", uid, flush=True)
    i += 1
"""


@pytest.mark.slow
def test_sigkill_never_loses_acknowledged_writes(path: str, codec: str) -> None:
    rng = random.Random(12345 + len(codec))
    inserted: set[str] = set()
    updated: set[str] = set()
    rounds = 20
    for rnd in range(rounds):
        proc = run_py(WRITER, path, codec, f"r{rnd}", stdout=subprocess.PIPE)
        assert proc.stdout is not None
        if rng.random() < 0.8:
            proc.stdout.readline()  # running: kill it in the middle of writing
            time.sleep(rng.uniform(0, 0.15))
        else:
            time.sleep(rng.uniform(0, 0.2))  # perhaps while starting, replaying or truncating
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        lines = out.split("\n")[:-1]  # the last piece has no newline: never acknowledged
        for line in lines:
            kind, uid = line.split()
            (inserted if kind == "I" else updated).add(uid)
        s = JournalStore(path, codec)
        docs = {d["uid"]: d for d in s.find("trials")}
        missing = inserted - set(docs)
        assert not missing, f"round {rnd}: lost acknowledged inserts {sorted(missing)[:5]}"
        assert all(docs[u].get("done") is True for u in updated), f"round {rnd}: lost an update"
        s.close()
    assert len(inserted) > rounds
    final = JournalStore(path, codec)
    final.insert("trials", {"uid": "final"})
    assert scan_file(path, codec)[2] == 0
    final.close()


# -- bad input -------------------------------------------------------------------------------------
def test_bad_input_leaves_the_file_unchanged(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    fill(s)
    content = Path(path).read_bytes()
    before = state(s)
    bad = [
        (DuplicateKeyError, lambda: s.insert("trials", {"uid": "t1"})),
        (DuplicateKeyError, lambda: s.insert_many("trials", [{"uid": "fresh"}, {"uid": "fresh"}])),
        (DuplicateKeyError, lambda: s.insert_many("things", [{"uid": "n1", "tag": "tag8"}])),
        (DuplicateKeyError, lambda: s.update("things", {"uid": "x8"}, {"$set": {"tag": "tag9"}})),
        (DuplicateKeyError, lambda: s.ensure_index("trials", "group_id", unique=True)),
        (QueryError, lambda: s.update("trials", {"uid": "t1"}, {"$frobnicate": {"a": 1}})),
        (QueryError, lambda: s.update("trials", {"uid": "t1"}, {"$set": {"uid": "other"}})),
        (QueryError, lambda: s.update("things", {"uid": "weird"}, {"$inc": {"unicode": 1}})),
        (QueryError, lambda: s.find_one_and_update("trials", {"$bogus": 1}, {"$set": {"a": 1}})),
        (QueryError, lambda: s.ensure_index("things", "tag", unique=False)),
        (EncodingError, lambda: s.insert("trials", {"uid": "e", "x": object()})),
        (EncodingError, lambda: s.insert("trials", {"uid": "e", "x": 2**64})),
        (EncodingError, lambda: s.insert_many("trials", [{"uid": "ok"}, {"uid": "e", "$bad": 1}])),
        (QueryError, lambda: s.insert("Bad-Name", {"uid": "e"})),
    ]
    if codec == "file":  # not valid UTF-8: jq (and JSONB) refuse it
        bad.append((EncodingError, lambda: s.insert("trials", {"uid": "e", "s": "lone \ud800"})))
        bad.append((EncodingError, lambda: s.update("trials", {"uid": "t1"}, {"$set": {"s": "\udfff"}})))
    for exc, op in bad:
        with pytest.raises(exc):
            op()
        assert Path(path).read_bytes() == content
    assert s.update("trials", {"uid": "nope"}, {"$set": {"a": 1}}) == 0
    assert s.delete("trials", {"uid": "nope"}) == 0
    s.ensure_index("things", "tag", unique=True)  # exists already: nothing to log
    assert Path(path).read_bytes() == content
    assert state(s) == before
    assert state(JournalStore(path, codec)) == before


def test_failed_append_leaves_memory_unchanged(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    s.insert("trials", {"uid": "a"})
    content = Path(path).read_bytes()
    assert s._fd is not None
    ro = os.open(path, os.O_RDONLY)
    os.dup2(ro, s._fd)  # the journal descriptor can no longer be written
    os.close(ro)
    with pytest.raises(StoreError, match="cannot append") as info:
        s.insert("trials", {"uid": "b"})
    assert isinstance(info.value.__cause__, OSError)
    assert Path(path).read_bytes() == content
    assert s.count("trials") == 1  # reloads from the file, which has no "b"
    s.insert("trials", {"uid": "c"})
    assert sorted(d["uid"] for d in JournalStore(path, codec).find("trials")) == ["a", "c"]


# -- lifecycle and URIs ----------------------------------------------------------------------------
def test_close_and_commit(path: str, codec: str) -> None:
    s = JournalStore(path, codec)
    s.insert("trials", {"uid": "a"})
    s.commit()
    s.close()
    s.close()
    for op in (lambda: s.find("trials"), lambda: s.insert("trials", {"uid": "b"}), s.compact):
        with pytest.raises(StoreUnavailableError):
            op()
    with JournalStore(path, codec) as again:
        assert again.count("trials") == 1
    assert again.closed


def test_missing_directory(tmp_path: Path, codec: str) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        JournalStore(str(tmp_path / "nope" / "s.db"), codec)
    assert not (tmp_path / "nope").exists()


def test_create_false_refuses_a_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a relative path opened from another directory
    uri = parse_uri(f"{codec}:runs.db?create=false")
    opener = {"pickled": pickled_from_uri, "file": file_from_uri}[codec]
    with pytest.raises(StoreUnavailableError, match="create=false") as info:
        opener(uri)
    assert str(elsewhere / "runs.db") in str(info.value)
    with pytest.raises(StoreUnavailableError, match="no journal at"):
        JournalStore(str(tmp_path / "missing.db"), codec, create=False)
    assert os.listdir(elsewhere) == [] and not (tmp_path / "missing.db").exists()
    assert not (tmp_path / "missing.db.lock").exists()

    JournalStore(str(elsewhere / "runs.db"), codec).close()  # once it exists, create=false opens it
    with opener(uri) as s:
        s.insert("trials", {"uid": "a"})
    with pytest.raises(InvalidURIError):
        opener(parse_uri(f"{codec}:runs.db?create=perhaps"))


def test_home_directory_in_uri_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir("/")
    opener = {"pickled": pickled_from_uri, "file": file_from_uri}[codec]
    with opener(parse_uri(f"{codec}:~/runs.db")) as s:
        assert s.path == str(tmp_path / "runs.db")
        s.insert("trials", {"uid": "a"})
    assert (tmp_path / "runs.db").exists() and not os.path.exists("~")
    with opener(parse_uri(f"{codec}:~/runs.db?create=false")) as s:
        assert s.count("trials") == 1
    assert parse_uri(f"{codec}:%7E/runs.db").path == str(tmp_path / "runs.db")
    assert parse_uri(f"{codec}:///tmp/~/runs.db").path == "/tmp/~/runs.db"  # only a leading ~
    assert parse_uri("mongomock:~/x").path == "~/x"  # only file paths


def test_reading_an_empty_file_leaves_it_empty(tmp_path: Path, codec: str) -> None:
    p = tmp_path / ("empty.pkl" if codec == "pickled" else "empty.jsonl")
    p.touch()
    reader = JournalStore(str(p), codec)
    assert reader.find("trials") == [] and reader.count("trials") == 0
    assert reader.find_one_and_update("trials", {"uid": "x"}, {"$set": {"a": 1}}) is None
    with JournalStore(str(p), codec, create=False) as again:
        assert again.find_one("trials", {"uid": "x"}) is None
    assert p.stat().st_size == 0

    writer = JournalStore(str(p), codec)
    writer.insert("trials", {"uid": "a"})
    assert read_header(p.read_bytes())[0]["codec"] == codec
    assert [d["uid"] for d in reader.find("trials")] == ["a"]  # the reader notices the header
    reader.insert("trials", {"uid": "b"})
    assert writer.count("trials") == 2
    reader.close()
    writer.close()


def test_cli_ls_of_an_empty_file_leaves_it_empty(tmp_path: Path, codec: str) -> None:
    p = tmp_path / ("empty.pkl" if codec == "pickled" else "empty.jsonl")
    p.touch()
    cli = run_py("from track_backends.cli import main; raise SystemExit(main())", "ls", f"{codec}://{p}")
    assert cli.wait(60) == 0
    assert p.stat().st_size == 0


@pytest.mark.parametrize("factory,scheme", [(pickled_from_uri, "pickled"), (file_from_uri, "file")])
def test_uri_factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, factory: Any, scheme: str) -> None:
    s = factory(parse_uri(f"{scheme}://{tmp_path}/a%20b.db?lock_timeout=0.5&fsync=false&compact_bytes=1000"))
    assert s.scheme == scheme and s.path == str(tmp_path / "a b.db")
    assert s.lock_timeout == 0.5 and s.fsync is False and s.compact_bytes == 1000
    s.close()
    s = factory(parse_uri(f"{scheme}://localhost{tmp_path}/x.db"))
    assert s.path == str(tmp_path / "x.db") and s.fsync is True and s.lock_timeout == 30
    s.close()
    monkeypatch.chdir(tmp_path)
    s = factory(parse_uri(f"{scheme}:rel.db"))
    assert s.path == str(tmp_path / "rel.db") and (tmp_path / "rel.db").exists()
    s.close()
    with pytest.raises(InvalidURIError, match=f"{scheme}:///absolute"):
        factory(parse_uri(f"{scheme}://rel.db"))
    with pytest.raises(InvalidURIError, match="file path"):
        factory(parse_uri(f"{scheme}:"))
    with pytest.raises(InvalidURIError, match="unknown option"):
        factory(parse_uri(f"{scheme}:rel.db?lock_timout=1"))
    with pytest.raises(InvalidURIError):
        factory(parse_uri(f"{scheme}:rel.db?lock_timeout=-1"))
    with pytest.raises(InvalidURIError):
        factory(parse_uri(f"{scheme}:rel.db?fsync=maybe"))


def test_json_lines_hold_nan_and_infinity_as_strict_json(tmp_path: Path) -> None:
    import math

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name} in the journal")

    uri = f"file://{tmp_path}/nan.jsonl"
    s = file_from_uri(parse_uri(uri))
    s.insert("trials", {"uid": "t", "loss": math.nan, "hist": [math.inf, -math.inf, 1.5]})
    s.update("trials", {"uid": "t"}, {"$set": {"best": -math.inf}})
    s.close()
    lines = (tmp_path / "nan.jsonl").read_text(encoding="utf-8").splitlines()
    for line in lines:
        json.loads(line, parse_constant=refuse)  # what jq reads
    assert any('{"$n":"NaN"}' in line for line in lines)
    again = file_from_uri(parse_uri(uri))
    (doc,) = again.find("trials")
    again.close()
    assert math.isnan(doc["loss"]) and doc["hist"] == [math.inf, -math.inf, 1.5] and doc["best"] == -math.inf
