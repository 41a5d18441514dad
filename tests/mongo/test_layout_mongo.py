"""MongoDB databases written by the release before metric points moved out of trials (layout 1).

Their trials hold ``metrics: {name: [[step, value], ...]}``. The first store that opens such a
database converts every trial once (points to buckets, ``metric_summary`` written, ``metrics``
unset) and records ``{"_id": "layout", "version": 2}`` in ``tb_meta``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from track_backends import Trial, errors, get_protocol
from track_backends.layout import LAYOUT
from track_backends.registry import open_store
from track_backends.store import TRIALS
from track_backends.stores.mongo.bucketing import NO_BUCKET, plan, point_sizes
from track_backends.stores.mongo.upgrade import META


@pytest.fixture(params=["mongomock", "secantus"])
def uri(request: pytest.FixtureRequest) -> str:
    """A fresh database on mongomock, then on the wire server (SecantusDB)."""
    return request.getfixturevalue("mock_uri" if request.param == "mongomock" else "secantus_uri")


@pytest.fixture
def raw(uri: str) -> Iterator[Any]:
    """The driver's database behind ``uri`` (the store is only a way to reach it: trials are never touched)."""
    store: Any = open_store(uri)
    yield store.database
    store.close()


def legacy_trial(i: int, *, steps: int = 5, token: int | None = None) -> dict[str, Any]:
    """A trial document as the previous release stored it (see tests/fixtures/layout1/make.py)."""
    t = Trial({"lr": 0.1 / (i + 1), "i": i}, project_id="legacy", group_id="old-sweep")
    doc = t.to_doc()
    del doc["metric_summary"]
    loss = [[s, 1.0 / (s + 1 + i)] for s in range(steps)]
    doc["metrics"] = {"loss": loss, "acc": [[s, 0.1 * s] for s in range(steps)]} if steps else {}
    if token is not None:
        doc["lease"] = {"owner": "w", "token": token, "expires": 0.0, "attempts": 1}
    return doc


def expected_loss(i: int, steps: int = 5) -> list[tuple[int, float]]:
    return [(s, 1.0 / (s + 1 + i)) for s in range(steps)]


def test_layout_1_trials_are_converted_when_the_store_opens(uri: str, raw: Any) -> None:
    docs = [legacy_trial(0), legacy_trial(1), legacy_trial(2, token=3), legacy_trial(3, steps=0)]
    docs.append(legacy_trial(4, steps=2500))  # several buckets
    raw[TRIALS].insert_many(docs)
    with get_protocol(uri) as proto:
        trials = {t.parameters["i"]: t for t in proto.fetch_trials()}
        assert sorted(trials) == [0, 1, 2, 3, 4]
        for i in (0, 1, 2):
            assert proto.fetch_metrics(trials[i]) == {"loss": expected_loss(i), "acc": [(s, 0.1 * s) for s in range(5)]}
            assert trials[i].metrics["loss"] == expected_loss(i)
            assert trials[i].metric_summary["loss"] == {
                "count": 5,
                "last": 1.0 / (5 + i),
                "last_step": 4,
                "min": 1.0 / (5 + i),
                "max": 1.0 / (1 + i),
            }
        assert trials[3].metrics == {} and trials[3].metric_summary == {}
        assert proto.fetch_metrics(trials[4], ["loss"], last=2) == {"loss": expected_loss(4, 2500)[-2:]}
        assert trials[4].metric_summary["loss"]["count"] == 2500
        best = proto.fetch_trials({"group_id": "old-sweep"}, sort=[("metric_summary.loss.min", 1)], metrics=False)
        assert [t.parameters["i"] for t in best] == [3, 4, 2, 1, 0]  # no loss at all: a missing field sorts first
        low = proto.fetch_trials({"metric_summary.loss.max": {"$lt": 0.6}}, metrics=False)
        assert sorted(t.parameters["i"] for t in low) == [1, 2, 4]
        assert proto.store.count(TRIALS, {"metrics": {"$exists": True}}) == 0
    # the points of the reserved trial belong to its attempt (its lease token)
    assert {d["attempt"] for d in raw[f"{TRIALS}_points"].find({"trial": docs[2]["uid"]})} == {3}
    assert raw[META].find_one({"_id": "layout"}) == {"_id": "layout", "uid": "layout", "version": LAYOUT}


def test_missing_metrics_sort_first(uri: str, raw: Any) -> None:
    """MongoDB sorts a missing field before every number (which the test above relies on)."""
    raw[TRIALS].insert_many([legacy_trial(0), legacy_trial(3, steps=0)])
    with get_protocol(uri) as proto:
        got = proto.fetch_trials(sort=[("metric_summary.loss.min", 1)], metrics=False)
        assert [t.parameters["i"] for t in got] == [3, 0]


def test_a_crash_half_way_through_is_finished_by_the_next_open(uri: str, raw: Any) -> None:
    docs = [legacy_trial(0, steps=1500), legacy_trial(1, steps=1500)]
    raw[TRIALS].insert_many([dict(d) for d in docs])
    for d in docs:  # a converter wrote the first trial's buckets (one of the second's), then died
        pts = [[n, s, v] for n, pairs in d["metrics"].items() for s, v in pairs]
        buckets = plan(d["uid"], 0, pts, point_sizes(pts), NO_BUCKET).docs
        raw[f"{TRIALS}_points"].insert_many(buckets if d is docs[0] else buckets[:1])
    with get_protocol(uri) as proto:
        for i, t in enumerate(sorted(proto.fetch_trials(), key=lambda t: t.parameters["i"])):
            assert t.metrics["loss"] == expected_loss(i, 1500) and t.metric_summary["loss"]["count"] == 1500
            proto.log_trial_metrics(t, step=1500, loss=0.0)
            assert proto.fetch_metrics(t, ["loss"], last=2)["loss"] == [expected_loss(i, 1500)[-1], (1500, 0.0)]


def test_conversion_is_once_only(uri: str, raw: Any) -> None:
    raw[TRIALS].insert_one(legacy_trial(0))
    with get_protocol(uri) as proto:
        assert proto.fetch_trials()[0].metric_summary["loss"]["count"] == 5
    raw[TRIALS].insert_one(legacy_trial(1))  # an old release writing after the upgrade: not supported
    with get_protocol(uri) as proto:
        late = proto.fetch_trials({"parameters.i": 1}, metrics=False)[0]
        assert late.metric_summary == {}  # the recorded layout is trusted: no scan of the trials
        assert raw[TRIALS].count_documents({"metrics": {"$exists": True}}) == 1


def test_a_fresh_database_records_its_layout_at_the_first_write(uri: str, raw: Any) -> None:
    with get_protocol(uri) as proto:
        assert proto.fetch_trials() == []
        assert raw[META].count_documents({}) == 0  # reading writes nothing
        proto.new_trial(Trial({"a": 1}))
        assert raw[META].find_one({"_id": "layout"})["version"] == LAYOUT


def test_a_newer_layout_is_refused(uri: str, raw: Any) -> None:
    raw[META].insert_one({"_id": "layout", "uid": "layout", "version": LAYOUT + 1})
    with open_store(uri) as store:
        with pytest.raises(errors.CorruptStoreError, match="upgrade track_backends"):
            store.find(TRIALS)
        assert store.find("projects") == []  # other collections stay readable


def test_unstorable_legacy_points_name_the_trial(uri: str, raw: Any) -> None:
    doc = legacy_trial(0)
    doc["metrics"]["bad.name"] = [[0, 1.0]]
    raw[TRIALS].insert_one(doc)
    with open_store(uri) as store:
        with pytest.raises(errors.CorruptStoreError, match=doc["uid"]):
            store.count(TRIALS)


def test_stores_opening_at_once_convert_each_trial_once(secantus_uri: str, mongo_wire_client: Any) -> None:
    raw = mongo_wire_client[secantus_uri.rsplit("/", 1)[1]]
    raw[TRIALS].insert_many([legacy_trial(i, steps=1200) for i in range(8)])
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def open_and_read() -> None:
        try:
            with open_store(secantus_uri) as store:
                barrier.wait()
                store.count(TRIALS)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=open_and_read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    with get_protocol(secantus_uri) as proto:
        for t in proto.fetch_trials():
            i = t.parameters["i"]
            assert t.metrics["loss"] == expected_loss(i, 1200), i
            assert t.metric_summary["loss"]["count"] == 1200 and t.metric_summary["acc"]["count"] == 1200


def test_threads_of_one_store_wait_for_the_conversion(secantus_uri: str, mongo_wire_client: Any) -> None:
    raw = mongo_wire_client[secantus_uri.rsplit("/", 1)[1]]
    raw[TRIALS].insert_many([legacy_trial(i, steps=1500) for i in range(6)])
    barrier = threading.Barrier(4)
    seen: list[list[int]] = []
    with get_protocol(secantus_uri) as proto:

        def read() -> None:
            barrier.wait()
            seen.append([t.metric_summary.get("loss", {}).get("count", 0) for t in proto.fetch_trials(metrics=False)])

        threads = [threading.Thread(target=read) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert seen == [[1500] * 6] * 4  # no thread read a trial before it was converted
