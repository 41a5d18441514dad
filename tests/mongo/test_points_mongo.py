"""Metric points on MongoDB: bounded buckets, round trips, concurrent writers, and the memory store as reference.

Reads and summary queries are compared with the memory store (``ephemeral:``): the same calls
must give the same answers. SecantusDB is the reference server; mongomock the second opinion.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pymongo
import pytest
from pymongo import monitoring

from track_backends import Trial, errors
from track_backends.protocol import DocumentProtocol
from track_backends.registry import get_protocol, open_store
from track_backends.store import TRIALS, Store
from track_backends.stores.mongo import MongoStore
from track_backends.stores.mongo.bucketing import BUCKET_BYTES, BUCKET_POINTS, NO_BUCKET, point_sizes, prepare
from track_backends.stores.mongo.tail import newest
from track_backends.stores.points import check_points

POINTS = f"{TRIALS}_points"


@pytest.fixture(params=["mongomock", "secantus"])
def uri(request: pytest.FixtureRequest) -> str:
    """A fresh database on mongomock, then on the wire server (SecantusDB)."""
    return request.getfixturevalue("mock_uri" if request.param == "mongomock" else "secantus_uri")


@pytest.fixture
def store(uri: str) -> Iterator[Any]:
    s = open_store(uri)
    yield s
    s.close()


# -- $min and $max -----------------------------------------------------------------------------------

MIN_MAX_CASES: list[tuple[Any, Any]] = [
    (5, 3), (5, 7), (None, 3), ("a", 3), (3, "a"), (True, 2), (2, True), (1, 1.0), (1.0, 1),
    (math.inf, 1e300), ([1, 2], 0), ({"a": 1}, 3), (-1, -1.5), ("missing", 4),
]  # fmt: skip


@pytest.mark.parametrize("op", ["$min", "$max"])
def test_min_max_compare_in_bson_order_like_the_memory_store(store: Store, op: str) -> None:
    """https://www.mongodb.com/docs/manual/reference/operator/update/min/ (types in BSON order)."""
    reference = open_store("ephemeral:")
    wrong = []
    for i, (stored, value) in enumerate(MIN_MAX_CASES):
        doc = {"uid": f"d{i}", "n": 0} if stored == "missing" else {"uid": f"d{i}", "x": stored, "n": 0}
        update = {op: {"x": value}, "$inc": {"n": 1}}  # $inc first: nothing may be half-applied
        got = []
        for s in (store, reference):
            s.insert("c", doc)
            s.update("c", {"uid": f"d{i}"}, update)
            after = s.find_one("c", {"uid": f"d{i}"})
            got.append((after.get("x", "missing"), type(after.get("x")).__name__, after["n"]))  # type: ignore[union-attr]
        if got[0] != got[1]:
            wrong.append((stored, value, got))
    nan = {"uid": "nan", "x": math.nan}
    for s in (store, reference):
        s.insert("c", nan)
        s.update("c", {"uid": "nan"}, {op: {"x": 1.0}})
    assert (store.find_one("c", {"uid": "nan"})["x"] == 1.0) is (op == "$max")  # type: ignore[index]
    assert not wrong, wrong
    assert store.find_one_and_update("c", {"uid": "d0"}, {op: {"x": 4}})["x"] == (3 if op == "$min" else 5)  # type: ignore[index]


# -- buckets -----------------------------------------------------------------------------------------


def _buckets(store: Any, uid: str) -> list[dict[str, Any]]:
    """The buckets of a document that hold points (bucket -1 is the registry of its metric names)."""
    return sorted(store.find(POINTS, {"trial": uid, "b": {"$gte": 0}}), key=lambda d: (d["attempt"], d["b"]))


def test_buckets_are_bounded_in_points_and_bytes(store: Any) -> None:
    store.insert(TRIALS, {"uid": "t"})
    pts = [("loss", s, s / 10) for s in range(2500)]
    store.append_points(TRIALS, "t", pts)
    assert [b["n"] for b in _buckets(store, "t")] == [1000, 1000, 500]
    store.append_points(TRIALS, "t", [("acc", 2500, 1.0)])  # fills the newest bucket
    assert [b["n"] for b in _buckets(store, "t")] == [1000, 1000, 501]
    assert _buckets(store, "t")[-1]["names"] == ["loss", "acc"]
    big = [("text", s, "x" * 300_000) for s in range(40)]  # 12 MB in all
    store.append_points(TRIALS, "t", big)
    huge = ("blob", 41, "y" * (BUCKET_BYTES + 1000))  # larger than a bucket's bound: alone
    store.append_points(TRIALS, "t", [huge, ("acc", 42, 2.0)])
    buckets = _buckets(store, "t")
    import bson

    for b in buckets:
        assert b["n"] <= BUCKET_POINTS and len(bson.encode(b)) < 16 * 2**20
        assert b["b"] == buckets.index(b) and len(bson.encode({"p": b["p"]})) <= b["s"] + 64
    assert [b["n"] for b in buckets if b["names"] == ["blob"]] == [1]
    registry = store.find_one(POINTS, {"trial": "t", "b": -1})
    assert registry["names"] == ["loss", "acc", "text", "blob"] and registry["p"] == []
    got = store.fetch_points(TRIALS, ["t"])["t"]
    assert got["loss"] == [(s, v) for _, s, v in pts] and got["acc"] == [(2500, 1.0), (42, 2.0)]
    assert [s for s, _ in got["text"]] == list(range(40)) and got["blob"] == [(41, huge[2])]


class _Sent(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "insert", "update", "delete", "findAndModify", "aggregate", "distinct"):
            self.sent.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass

    def take(self) -> list[tuple[str, Any]]:
        out, self.sent = self.sent, []
        return out


def test_round_trips_per_batch(secantus_uri: str) -> None:
    sent = _Sent()
    client: Any = pymongo.MongoClient(secantus_uri, event_listeners=[sent], serverSelectionTimeoutMS=5000)
    proto = DocumentProtocol(MongoStore(client, urlsplit(secantus_uri).path.strip("/")))
    t = Trial({"x": 1})
    proto.new_trial(t)
    proto.log_trial_metrics(t, step=0, loss=1.0)
    first = sent.take()  # ..., then for the new series: its registry, the probes for a newest bucket
    assert first[-5:] == [("update", TRIALS), ("update", POINTS), *[("find", POINTS)] * 2, ("insert", POINTS)]
    proto.log_trial_metrics_batch(t, {"loss": [(s, 0.5) for s in range(1, 10_001)]})
    # the summary, filling the newest bucket, and one insert of the 10 new buckets
    assert sent.take() == [("update", TRIALS), ("update", POINTS), ("insert", POINTS)]
    proto.log_trial_metrics(t, step=10_001, loss=0.25)
    assert sent.take() == [("update", TRIALS), ("update", POINTS)]
    proto.log_trial_metrics(t, step=10_002, acc=0.5)  # a new name: registered first
    assert sent.take() == [("update", TRIALS), ("update", POINTS), ("update", POINTS)]
    assert proto.fetch_metrics(t, last=2) == {"loss": [(10_000, 0.5), (10_001, 0.25)], "acc": [(10_002, 0.5)]}
    # the registry, the newest of 11 buckets (powers of two, narrowing, nothing beyond), one window
    assert sent.take() == [("find", POINTS)] * 6
    proto.close()


def test_concurrent_writers_keep_their_own_order(secantus_uri: str) -> None:
    with open_store(secantus_uri) as s:
        s.insert(TRIALS, {"uid": "t"})
    sizes = {w: [random.Random(w * 100 + k).randint(1, 700) for k in range(12)] for w in range(3)}
    failures: list[BaseException] = []

    def write(w: int) -> None:
        try:
            with open_store(secantus_uri) as s:
                step = 0
                for n in sizes[w]:
                    s.append_points(TRIALS, "t", [(f"w{w}", step + i, float(w)) for i in range(n)])
                    step += n
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures, failures
    with open_store(secantus_uri) as s:
        got = s.fetch_points(TRIALS, ["t"])["t"]
        for w in range(3):
            assert [step for step, _ in got[f"w{w}"]] == list(range(sum(sizes[w])))
        buckets = _buckets(s, "t")
        assert [b["b"] for b in buckets] == list(range(len(buckets)))
        assert all(b["n"] == len(b["p"]) <= BUCKET_POINTS for b in buckets)


PREPARE_CASES: list[list[Any]] = [
    [("a", 1, 1.0), ("b", -0.0, -0.0), ("a", None, True), ("c", 2**63 - 1, -(2**63))],
    [("a", 1, math.nan), ("a", math.inf, -math.inf), ["b", 2, 3]],
    [("a", 1, "s"), ("a", 2, {"k": [1, 2]})],
    [("a", 2**63, 1)],
    [("a", 1, 1.0), ("bad.name", 1, 1)],
    [(1, 1, 1)],
    [("a", 1, 1.0), ("a", 1)],
    ["abc"],
    [("a", 1, object())],
]


@pytest.mark.parametrize("points", PREPARE_CASES)
def test_prepare_validates_as_every_store_does(points: list[Any]) -> None:
    try:
        want: Any = check_points(points)
    except Exception as e:  # noqa: BLE001 - the same class must come out of prepare
        with pytest.raises(type(e)):
            prepare(points)
        return
    pts, sizes, names = prepare(points)
    assert repr(pts) == repr(want) and sizes == point_sizes(want) and names == list(dict.fromkeys(p[0] for p in want))


@pytest.mark.parametrize(
    "present",
    [set(), {0}, {0, 1}, set(range(3)), set(range(65)), set(range(1000)), set(range(4097)), {*range(10), 500}, {3, 4}],
    ids=["none", "1", "2", "3", "65", "1000", "4097", "gap", "no-0"],
)
def test_the_newest_bucket_is_found_by_index_lookups(present: set[int]) -> None:
    calls = []

    def find(filt: dict[str, Any], projection: dict[str, Any]) -> list[dict[str, Any]]:
        calls.append(filt)
        if "uid" in filt:
            asked = [int(u.rsplit(":", 1)[1]) for u in filt["uid"]["$in"]]
            return [{"b": b, "n": 7, "s": 70} for b in asked if b in present]
        return [{"b": b, "n": 7, "s": 70} for b in present if b > filt["b"]["$gt"]]

    assert newest(find, "t", 0) == ((max(present), 7, 70) if present else NO_BUCKET)
    assert len(calls) <= 6 or present in ({*range(10), 500}, {3, 4})


def test_a_writer_with_a_stale_picture_after_delete_points(uri: str) -> None:
    with open_store(uri) as a, open_store(uri) as b, open_store(uri) as c:
        a.insert(TRIALS, {"uid": "t"})
        b.append_points(TRIALS, "t", [("x", s, 1.0) for s in range(1500)])
        a.delete_points(TRIALS, ["t"])
        b.append_points(TRIALS, "t", [("x", 2000, 2.0)])  # b still believes in bucket 1 and the registry
        a.append_points(TRIALS, "t", [("y", 2001, 3.0)])
        want = {"t": {"x": [(2000, 2.0)], "y": [(2001, 3.0)]}}
        assert c.fetch_points(TRIALS, ["t"], last=5) == want  # the registry lacks "x": read it all
        assert c.fetch_points(TRIALS, ["t"], last=5, attempts={"t": 0}) == want
        assert c.fetch_points(TRIALS, ["t"]) == want


# -- reads and deletes, against the memory store -----------------------------------------------------


def _fill(stores: list[Store], seed: int) -> list[str]:
    rng = random.Random(seed)
    uids = [f"t{i}" for i in range(4)]
    for s in stores:
        for uid in uids:
            s.insert(TRIALS, {"uid": uid, "group": "g" if uid != "t3" else "h"})
    steps = {uid: 0 for uid in uids}
    for _ in range(40):
        uid, attempt = rng.choice(uids), rng.choice([0, 0, 2])
        batch = []
        for _ in range(rng.choice([1, 3, 250, 900])):
            name = rng.choice(["loss", "acc", "lr"])
            step = rng.choice([steps[uid], steps[uid], None, math.nan, steps[uid] + 0.5])
            value = rng.choice([rng.random(), math.nan, -1, {"v": [1, 2]}, "s"])
            batch.append((name, step, value))
            steps[uid] += 1
        for s in stores:
            s.append_points(TRIALS, uid, batch, attempt=attempt)
    return uids


def _same(a: Any, b: Any) -> bool:
    """Equality that holds NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _nonempty(got: dict[str, dict[str, list[Any]]]) -> dict[str, dict[str, list[Any]]]:
    """Without the series that a step range left empty (the memory store keeps those as ``[]``)."""
    out = {uid: {k: v for k, v in series.items() if v} for uid, series in got.items()}
    return {uid: series for uid, series in out.items() if series}


READS: list[dict[str, Any]] = [
    {},
    {"names": ["loss"]},
    {"names": ["loss", "nope"], "attempts": {"t0": 2, "t1": 0}},
    {"start": 300, "stop": 1900.5},
    {"start": 1000},
    {"stop": 10},
    {"last": 3},
    {"last": 0},
    {"last": 7, "names": ["acc"], "start": 50},
    {"last": 1500, "attempts": {"t0": 2, "t1": 2, "t2": 2, "t3": 2}},
    {"last": 400, "names": ["lr", "loss"]},
    {"last": 2, "start": 0, "stop": 500},
]


def _last(got: dict[str, dict[str, list[Any]]], last: int) -> dict[str, dict[str, list[Any]]]:
    """The last ``last`` points of each series (the memory store's own ``last`` cuts wrong when
    ``last`` is larger than a series: ``v[len(v) - last:]`` with a negative start)."""
    return {uid: {k: v[-last:] if last else [] for k, v in series.items()} for uid, series in got.items()}


@pytest.mark.parametrize("read", READS, ids=[str(r) for r in READS])
def test_reads_match_the_memory_store(store: Store, read: dict[str, Any]) -> None:
    reference = open_store("ephemeral:")
    uids = _fill([store, reference], seed=7)
    last = read.get("last")
    for ask in (uids, uids[:1], [uids[2], uids[0], "ghost"]):
        mine = store.fetch_points(TRIALS, ask, **read)
        ref = reference.fetch_points(TRIALS, ask, **{k: v for k, v in read.items() if k != "last"})
        if "start" in read or "stop" in read:
            ref = _nonempty(ref)
        if last is not None:
            ref = _last(ref, last)
        assert _same(mine, ref), (ask, read)


def test_last_beyond_the_series_is_the_whole_series(store: Store) -> None:
    store.insert(TRIALS, {"uid": "t"})
    store.append_points(TRIALS, "t", [("loss", s, 0.5) for s in range(1200)] + [("acc", 0, 1.0)])
    for uids in (["t"], ["t", "u"]):  # newest bucket first, and the bulk read
        got = store.fetch_points(TRIALS, uids, last=1500)["t"]
        assert len(got["loss"]) == 1200 and got["acc"] == [(0, 1.0)]


def test_a_collection_too_long_to_have_points(store: Store) -> None:
    name = "c" * 60
    store.insert(name, {"uid": "a"})
    assert store.fetch_points(name, ["a"]) == {} and store.delete_points(name, ["a"]) == 0
    with pytest.raises(errors.QueryError, match="too long"):
        store.append_points(name, "a", [("x", 1, 1.0)])
    assert store.delete(name, {}) == 1


def test_delete_takes_the_points_with_the_documents(store: Store) -> None:
    uids = _fill([store], seed=3)
    before = store.fetch_points(TRIALS, uids)
    assert store.delete(TRIALS, {"group": "g"}) == 3
    assert store.count(POINTS, {"trial": {"$in": uids[:3]}}) == 0
    assert _same(store.fetch_points(TRIALS, uids), {"t3": before["t3"]})
    store.insert(TRIALS, {"uid": "t0"})  # the same uid again starts with no points
    assert store.fetch_points(TRIALS, ["t0"]) == {}
    assert store.delete_points(TRIALS, ["t3"]) >= 1 and store.count(POINTS) == 0


# -- summaries: sorting and filtering through the Protocol, against the memory store -----------------


def _sweep(proto: DocumentProtocol) -> None:
    rng = random.Random(11)
    for i in range(30):
        t = Trial({"i": i}, name="sweep", group_id="g")
        proto.new_trial(t)
        if i % 7 == 3:
            continue  # no metrics at all
        series: dict[str, list[tuple[Any, Any]]] = {"loss": [], "acc": []}
        for s in range(rng.randint(1, 6)):
            series["loss"].append((s, rng.choice([rng.uniform(-2, 2), rng.randint(-3, 3), math.nan, 0.5])))
            if i % 5:
                series["acc"].append((s, rng.choice([rng.random(), math.inf, -math.inf, 1])))
        proto.log_trial_metrics_batch(t, {k: v for k, v in series.items() if v})


SUMMARY_QUERIES: list[tuple[dict[str, Any], list[tuple[str, int]]]] = [
    ({}, [("metric_summary.loss.min", 1)]),
    ({}, [("metric_summary.loss.max", -1)]),
    ({}, [("metric_summary.loss.last", 1)]),  # NaN sorts below every number
    ({}, [("metric_summary.acc.max", -1), ("metric_summary.loss.min", 1)]),
    ({"metric_summary.loss.min": {"$lt": 0}}, [("metric_summary.loss.min", 1)]),
    ({"metric_summary.loss.max": {"$gte": 0.5}}, [("metric_summary.loss.max", -1)]),
    ({"metric_summary.acc.max": math.inf}, [("metric_summary.acc.min", 1)]),
    ({"metric_summary.acc.min": {"$exists": False}}, [("metric_summary.loss.count", -1)]),
    ({"metric_summary.loss.min": {"$in": [0.5, -3, 2]}}, [("metric_summary.loss.last_step", 1)]),
    ({"metric_summary.loss.last": math.nan}, [("metric_summary.loss.min", -1)]),
]


def test_summary_sorts_and_filters_match_the_memory_store(secantus_uri: str) -> None:
    with get_protocol(secantus_uri) as proto, get_protocol("ephemeral:") as reference:
        _sweep(proto)
        _sweep(reference)
        for query, sort in SUMMARY_QUERIES:
            order = [*sort, ("parameters.i", 1)]  # ties in a stable order
            for limit in (None, 4):
                mine = proto.fetch_trials({"group_id": "g", **query}, sort=order, limit=limit, metrics=False)
                ref = reference.fetch_trials({"group_id": "g", **query}, sort=order, limit=limit, metrics=False)
                assert [t.parameters["i"] for t in mine] == [t.parameters["i"] for t in ref], (query, sort)
                assert mine, (query, sort)  # every case selects something


# -- one trial, a million points ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_million_points_in_one_trial(secantus_uri: str) -> None:
    with get_protocol(secantus_uri) as proto:
        t = Trial({"big": True})
        proto.new_trial(t)
        start = time.perf_counter()
        for k in range(0, 1_000_000, 10_000):
            proto.log_trial_metrics_batch(t, {"loss": [(s, 1.0 / (s + 1)) for s in range(k, k + 10_000)]})
            t.metrics.clear()  # the Trial object keeps what it logged: not what this test measures
        logged = time.perf_counter() - start
        assert proto.fetch_metrics(t, last=5) == {"loss": [(s, 1.0 / (s + 1)) for s in range(999_995, 1_000_000)]}
        (stored,) = proto.fetch_trials({"uid": t.uid}, metrics=False)
        assert stored.metric_summary["loss"]["count"] == 1_000_000
        assert proto.store.count(POINTS, {"trial": t.uid, "b": {"$gte": 0}}) == 1_000_000 // BUCKET_POINTS
        assert time.perf_counter() - start < 60, f"logging took {logged:.1f} s"
