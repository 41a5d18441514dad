"""The parameter-keyed cache: once per key across processes, keys that count types and nesting,
claims that are released on failure and taken over when they expire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from record_helpers import finish, run_worker, start_worker, worker_env

from track_backends import CorruptStoreError, EncodingError, LockTimeoutError, TrackBackendsError, TrialGroup
from track_backends import get_protocol as _get_protocol
from track_backends.gc import collect_garbage
from track_backends.record import CACHE, RecordError, cached, get_serializer
from track_backends.record.cache import COMPUTING, DONE, store_value

GROUP = TrialGroup("cache-tests", project_id="record")


def get_protocol(uri: str) -> Any:
    return _get_protocol(uri)


@pytest.fixture
def proto() -> Any:
    with get_protocol("ephemeral:") as p:
        yield p


def _counts(counter: Path) -> Counter[str]:
    if not counter.exists():
        return Counter()
    return Counter(line.split(" ", 1)[1] for line in counter.read_text().splitlines())


def test_two_processes_compute_each_key_once(journal_uri: str, tmp_path: Path) -> None:
    counter, go = tmp_path / "counter", tmp_path / "go"
    keys_a, keys_b = [1, 2, 3, {"n": 4}], [{"n": 4}, 3, 2, 1]  # opposite orders: both race on every key
    a = start_worker("cache", journal_uri, str(counter), str(go), json.dumps(keys_a))
    b = start_worker("cache", journal_uri, str(counter), str(go), json.dumps(keys_b))
    go.write_text("go")
    out_a, out_b = json.loads(finish(a)), json.loads(finish(b))
    assert _counts(counter) == {"1": 1, "2": 1, "3": 1, '{"n": 4}': 1}  # at most once per key, all computed
    by_key_b = {json.dumps(v["x"]): v for v in out_b}
    for value in out_a:
        assert by_key_b[json.dumps(value["x"])] == value  # same value, same computing pid
    assert {v["pid"] for v in out_a + out_b} <= {a.pid, b.pid}

    # a later process loads everything without computing
    later = json.loads(run_worker("cache", journal_uri, str(counter), str(go), json.dumps(keys_a)))
    assert later == out_a
    assert sum(_counts(counter).values()) == 4
    with get_protocol(journal_uri) as p:
        docs = p.store.find(CACHE, {})
        assert len(docs) == 4 and {d["state"] for d in docs} == {DONE}
        assert all(d["serializer"] == "pickle" and len(d["sha256"]) == 64 for d in docs)


def test_keys_count_types_nesting_and_boundaries(proto: Any) -> None:
    calls: list[Any] = []

    @cached(proto, group=GROUP, name="f")
    def f(x: Any, y: Any = 2) -> list[Any]:
        calls.append((x, y))
        return [x, y]

    distinct = [1, 1.0, True, "1", None, [1], (1, 2), [[1], 2], [1, [2]], {"a": {"b": 1}}, {"a": {"b": 2}}]
    distinct += [{"ab": "c"}, {"a": "bc"}, ["ab"], ["a", "b"], -(2**63), 2**63 - 1, float("nan")]
    keys = [f.cache_key(v) for v in distinct]
    assert len(set(keys)) == len(distinct)
    # the same call spelled differently has one key: positional/keyword, defaults applied, dict order
    assert f.cache_key(1) == f.cache_key(x=1) == f.cache_key(1, 2) == f.cache_key(y=2, x=1)
    assert f.cache_key({"a": 1, "b": 2}) == f.cache_key({"b": 2, "a": 1})
    assert f.cache_key(1, 3) != f.cache_key(1)
    assert f.cache_key((1, 2)) == f.cache_key([1, 2])  # tuples are stored as lists

    for v in (1, 1.0, True):
        f(v)
        f(v)
    assert [c[0] for c in calls] == [1, 1.0, True] and [type(c[0]) for c in calls] == [int, float, bool]

    @cached(proto, group=GROUP, name="g")
    def g(x: Any, y: Any = 2) -> list[Any]:
        return [x, y]

    assert g.cache_key(1) != f.cache_key(1)  # the name is part of the key
    other = cached(proto, group="another-group", name="f")(lambda x, y=2: [x, y])
    assert other.cache_key(1) == f.cache_key(1) and other(1) == [1, 2]  # same key, another namespace
    assert len(calls) == 3
    with pytest.raises(EncodingError, match="cache key"):
        f.cache_key(object())
    with pytest.raises(TypeError):
        f.cache_key(1, 2, 3)


def test_default_name_and_kwargs_functions(proto: Any) -> None:
    @cached(proto, group=GROUP)
    def h(*args: int, **kwargs: int) -> int:
        return sum(args) + sum(kwargs.values())

    assert h.name.endswith("test_default_name_and_kwargs_functions.<locals>.h")
    assert h(1, 2, a=3) == 6 and h(1, 2, a=3) == 6
    assert h.cache_key(1, 2) != h.cache_key(12) != h.cache_key(a=12)
    assert h.__name__ == "h" and h.__wrapped__ is not None  # type: ignore[attr-defined]


class Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x


@pytest.mark.parametrize(
    ("serializer", "value"),
    [
        ("pickle", {"p": Point(3), "t": (1, 2), "s": {1, 2}, "b": b"\x00\xff" * 1000}),
        ("json", {"a": [1, 2.5, None, True, "x"], "nested": {"k": [{"z": -1}]}}),
        ("json", [float("inf"), -1e300]),
    ],
)
def test_serializers_round_trip(proto: Any, serializer: str, value: Any) -> None:
    calls = []

    @cached(proto, group=GROUP, name=f"rt-{serializer}", serializer=serializer)
    def make(n: int) -> Any:
        calls.append(n)
        return value

    assert make(1) == value
    loaded = make(1)
    assert loaded == value and loaded is not value and calls == [1]
    entry = make.entry(1)
    assert entry is not None and entry.serializer == serializer and entry.state == DONE and entry.size


def test_json_keeps_nan_and_turns_tuples_into_lists(proto: Any) -> None:
    @cached(proto, group=GROUP, name="nan", serializer="json")
    def make() -> Any:
        return {"nan": float("nan"), "t": (1, 2)}

    assert make()["t"] == (1, 2)
    again = make()
    assert again["nan"] != again["nan"] and again["t"] == [1, 2]


def test_npy_round_trip(proto: Any) -> None:
    np = pytest.importorskip("numpy")

    @cached(proto, group=GROUP, name="arr", serializer="npy")
    def make(n: int, dtype: str) -> Any:
        return np.arange(n * 3, dtype=dtype).reshape(n, 3) / (1 if dtype == "int32" else 7)

    for dtype in ("float32", "float64", "int32"):
        first = make(4, dtype)
        loaded = make(4, dtype)
        assert isinstance(loaded, np.ndarray) and loaded.dtype == first.dtype and loaded.shape == (4, 3)
        assert np.array_equal(loaded, first)

    @cached(proto, group=GROUP, name="objects", serializer="npy")
    def objects() -> Any:
        return np.array([{"a": 1}], dtype=object)

    with pytest.raises(RecordError, match="npy"):
        objects()
    assert objects.entries() == []  # the claim was released


def test_bad_serializer_and_arguments(proto: Any) -> None:
    with pytest.raises(TrackBackendsError, match=r"unknown serializer 'yaml'.*json.*npy.*pickle"):
        cached(proto, group=GROUP, serializer="yaml")
    with pytest.raises(RecordError):
        cached(proto, group=GROUP, lease=0)
    with pytest.raises(RecordError):
        cached(proto, group=42)
    with pytest.raises(RecordError):
        cached(proto, group=GROUP, name="")
    assert proto.store.count(CACHE) == 0


def test_unstorable_value_releases_the_claim(proto: Any) -> None:
    @cached(proto, group=GROUP, name="unjsonable", serializer="json")
    def make() -> Any:
        return {"o": object()}

    with pytest.raises(RecordError, match="JSON"):
        make()
    assert proto.store.count(CACHE) == 0


def test_raising_function_releases_its_claim(proto: Any) -> None:
    attempts = []

    @cached(proto, group=GROUP, name="flaky")
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")
        return x * 10

    with pytest.raises(RuntimeError, match="first try"):
        flaky(1)
    assert flaky.entry(1) is None
    assert flaky(1) == 10 and flaky(1) == 10 and attempts == [1, 1]


def test_raising_process_releases_its_claim(journal_uri: str, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    run_worker("fail", journal_uri, str(counter), code=3)
    assert _counts(counter) == {"fail": 1}
    with get_protocol(journal_uri) as p:
        assert p.store.count(CACHE) == 0

        @cached(p, group=GROUP, name="failing")
        def failing(x: int) -> int:
            return x + 1

        assert failing(1) == 2


def _claim_doc(f: Any, key: str, expires: float, token: str = "dead-token") -> dict[str, Any]:
    return {
        "uid": f"{f.group}/{f.name}/{key}",
        "group": f.group,
        "name": f.name,
        "key": key,
        "state": COMPUTING,
        "owner": "elsewhere:1",
        "token": token,
        "expires": expires,
        "created": expires - 60,
    }


def test_expired_claim_is_taken_over(proto: Any) -> None:
    calls = []

    @cached(proto, group=GROUP, name="orphan")
    def orphan(x: int) -> int:
        calls.append(x)
        return -x

    proto.store.insert(CACHE, _claim_doc(orphan, orphan.cache_key(5), proto.store.now() - 1))
    assert orphan(5) == -5 and calls == [5]
    doc = proto.store.find_one(CACHE, {"key": orphan.cache_key(5)})
    assert doc["state"] == DONE and doc["takeovers"] == 1 and doc["owner"] != "elsewhere:1"
    assert orphan(5) == -5 and calls == [5]


def test_live_claim_is_waited_for(proto: Any) -> None:
    calls = []

    @cached(proto, group=GROUP, name="busy", poll=0.01, timeout=0.2)
    def busy(x: int) -> int:
        calls.append(x)
        return x

    proto.store.insert(CACHE, _claim_doc(busy, busy.cache_key(1), proto.store.now() + 600))
    with pytest.raises(LockTimeoutError, match="elsewhere:1"):
        busy(1)
    assert calls == []
    # the owner finishes: a waiter loads its value
    stat = store_value(proto.store, get_serializer("pickle"), "stored elsewhere")
    done = {"state": DONE, "sha256": stat.sha256, "size": stat.size, "serializer": "pickle"}
    proto.store.update(CACHE, {"key": busy.cache_key(1)}, {"$set": done})
    assert busy(1) == "stored elsewhere" and calls == []


def test_waiter_gets_the_value_another_process_stores(journal_uri: str, tmp_path: Path) -> None:
    counter, go = tmp_path / "counter", tmp_path / "go"
    go.write_text("go")
    worker = start_worker("cache", journal_uri, str(counter), str(go), json.dumps([7]))
    with get_protocol(journal_uri) as p:

        @cached(p, group=GROUP, name="slow_square", poll=0.01)
        def slow_square(x: Any) -> dict[str, Any]:
            raise AssertionError("the worker computes this key")

        # wait until the worker has claimed the key, then call: this process must wait, not compute
        for _ in range(3000):
            if slow_square.entry(7) is not None:
                break
            time.sleep(0.005)
        value = slow_square(7)
    assert json.loads(finish(worker)) == [value]
    assert value["square"] == 49 and value["pid"] == worker.pid


def test_entries_invalidate_clear_and_gc(tmp_path: Path) -> None:
    with get_protocol(f"pickled://{tmp_path}/s.pkl?fsync=false") as p:
        calls = []

        @cached(p, group=GROUP, name="sq")
        def sq(x: int) -> int:
            calls.append(x)
            return x * x

        assert [sq(i) for i in range(3)] == [0, 1, 4]
        assert [e.key for e in sq.entries()] == [sq.cache_key(i) for i in range(3)]
        assert collect_garbage(p.store, grace=0).deleted == 0  # cache blobs are referenced
        assert sq.invalidate(1) is True and sq.invalidate(1) is False
        assert sq(1) == 1 and calls == [0, 1, 2, 1]
        assert sq.clear() == 3 and sq.entries() == []
        report = collect_garbage(p.store, grace=0)
        assert report.deleted == 3 and list(p.store.list_blobs()) == []


def test_damaged_blob_raises_corrupt_store_error(tmp_path: Path) -> None:
    with get_protocol(f"file://{tmp_path}/s.jsonl?fsync=false") as p:

        @cached(p, group=GROUP, name="big", serializer="json")
        def big() -> list[int]:
            return list(range(1000))

        big()
        sha = big.entries()[0].sha256
        assert sha is not None
        blob = tmp_path / "s.jsonl.blobs" / sha[:2] / sha
        data = bytearray(blob.read_bytes())
        data[100] ^= 1
        os.chmod(blob, 0o644)
        blob.write_bytes(bytes(data))
        with pytest.raises(CorruptStoreError):
            big()
        blob.unlink()
        with pytest.raises(CorruptStoreError, match="missing"):
            big()


def test_import_does_not_load_numpy() -> None:
    code = "import sys, track_backends, track_backends.record; assert 'numpy' not in sys.modules, 'numpy imported'"
    proc = subprocess.run([sys.executable, "-c", code], env=worker_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_heartbeat_keeps_a_long_computation_claimed(proto: Any) -> None:
    calls = []

    @cached(proto, group=GROUP, name="long", lease=0.3, poll=0.01)
    def long(x: int) -> int:
        calls.append(x)
        time.sleep(0.8)  # well past the lease: only the heartbeat keeps the claim alive
        return x * 2

    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(long(1)))
    first.start()
    time.sleep(0.5)
    entry = long.entry(1)
    assert entry is not None and entry.state == COMPUTING and entry.expires is not None
    assert entry.expires > proto.store.now()  # renewed: the first lease ended 0.2 s ago
    results.append(long(1))  # waits for the first thread instead of taking over
    first.join()
    assert results == [2, 2] and calls == [1]
