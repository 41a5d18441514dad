"""Metric points beside the trial and summaries in it, on any store."""

from __future__ import annotations

import math
from typing import Any

import pytest

from .. import errors
from ..model import Trial
from ..protocol import DocumentProtocol
from ..store import TRIALS, Store
from .base import _Base, snapshot


def _trials(protocol: DocumentProtocol, n: int, group: str = "pts") -> list[Trial]:
    out = []
    for i in range(n):
        t = Trial({"i": i}, name="pts", group_id=group)
        assert protocol.new_trial(t) is t
        out.append(t)
    return out


class PointsContract(_Base):
    """Points, summaries, batches, ``fetch_metrics`` and ``fetch_trials(sort=, limit=, metrics=)``."""

    def test_points_and_summary(self, protocol: DocumentProtocol) -> None:
        (t,) = _trials(protocol, 1)
        for step in range(5):
            protocol.log_trial_metrics(t, step=step, loss=1.0 / (step + 1), acc=step * 0.1)
        protocol.log_trial_metrics(t, step=5, loss=math.nan)
        got = protocol.fetch_metrics(t)
        assert got["acc"] == [(s, s * 0.1) for s in range(5)]
        assert got["loss"][:5] == [(s, 1.0 / (s + 1)) for s in range(5)] and math.isnan(got["loss"][5][1])
        doc = protocol.store.find_one(TRIALS, {"uid": t.uid})
        assert doc is not None and "metrics" not in doc
        loss = doc["metric_summary"]["loss"]
        assert (loss["count"], loss["last_step"], loss["min"], loss["max"]) == (6, 5, 0.2, 1.0)
        assert math.isnan(loss["last"])
        assert protocol.fetch_metrics(t, ["acc"]) == {"acc": got["acc"]}
        assert protocol.fetch_metrics(t, ["acc"], start=1, stop=3) == {"acc": [(1, 0.1), (2, 0.2)]}
        assert protocol.fetch_metrics(t, ["acc"], last=2) == {"acc": [(3, 0.30000000000000004), (4, 0.4)]}
        assert protocol.fetch_metrics(t, ["nope"]) == {}
        assert protocol.fetch_metrics(t, ["acc"], last=50) == {"acc": got["acc"]}  # more than there are
        assert protocol.fetch_metrics(t, ["acc"], start=100) == {}  # a range with no point: no series

    def test_batch_logging(self, protocol: DocumentProtocol) -> None:
        (t,) = _trials(protocol, 1)
        loss = [(s, 1.0 / (s + 1)) for s in range(2500)]  # more than one bucket where buckets are used
        protocol.log_trial_metrics_batch(t, {"loss": loss, "acc": [(0, 0.5), (1, 0.75)]})
        protocol.log_trial_metrics_batch(t, {"loss": [(2500, 0.0)]})
        got = protocol.fetch_metrics(t)
        assert got["loss"] == [*loss, (2500, 0.0)] and got["acc"] == [(0, 0.5), (1, 0.75)]
        summary = protocol.store.find_one(TRIALS, {"uid": t.uid})["metric_summary"]  # type: ignore[index]
        assert summary["loss"] == {"count": 2501, "last": 0.0, "last_step": 2500, "min": 0.0, "max": 1.0}
        assert protocol.fetch_metrics(t, last=3)["loss"] == [(2498, 1 / 2499), (2499, 1 / 2500), (2500, 0.0)]

    def test_bad_batches_change_nothing(self, protocol: DocumentProtocol) -> None:
        (t,) = _trials(protocol, 1)
        protocol.log_trial_metrics(t, step=0, loss=1.0)
        before = snapshot(protocol.store, TRIALS)
        for bad, error in (
            ({}, errors.QueryError),
            ({"loss": [1, 2]}, errors.QueryError),
            ({"loss": "abc"}, errors.QueryError),
            ({"bad.name": [(1, 1.0)]}, errors.EncodingError),
            ({"loss": [(1, object())]}, errors.EncodingError),
        ):
            with pytest.raises(error):
                protocol.log_trial_metrics_batch(t, bad)  # type: ignore[arg-type]
        with pytest.raises(errors.NotFoundError):
            protocol.log_trial_metrics(Trial({"ghost": 1}), step=1, loss=1.0)
        with pytest.raises(errors.QueryError):
            protocol.fetch_metrics(t, start="a")
        assert snapshot(protocol.store, TRIALS) == before
        assert protocol.fetch_metrics(t) == {"loss": [(0, 1.0)]}

    def test_fetch_trials_sorts_limits_and_attaches_in_bulk(self, protocol: DocumentProtocol) -> None:
        trials = _trials(protocol, 8)
        for i, t in enumerate(trials):
            protocol.log_trial_metrics_batch(t, {"loss": [(s, (i * 7 % 8) + s / 10) for s in range(3)]})
        best = protocol.fetch_trials({"group_id": "pts"}, sort=[("metric_summary.loss.min", 1)], limit=3, metrics=False)
        assert [t.parameters["i"] for t in best] == [0, 7, 6]  # min losses 0, 1, 2
        assert all(t.metrics == {} for t in best)
        worst = protocol.fetch_trials({"group_id": "pts"}, sort=[("metric_summary.loss.max", -1)], limit=1)
        assert worst[0].parameters["i"] == 1 and worst[0].metrics["loss"][-1] == (2, 7.2)
        some = protocol.fetch_trials({"metric_summary.loss.min": {"$lt": 3}}, metrics=["loss"])
        assert sorted(t.parameters["i"] for t in some) == [0, 6, 7]
        assert all(len(t.metrics["loss"]) == 3 for t in some)

    def test_points_go_with_their_document(self, store: Store) -> None:
        store.insert(TRIALS, {"uid": "a", "status": {"name": "Created", "value": 0}})
        store.insert(TRIALS, {"uid": "b"})
        assert store.append_points(TRIALS, "a", [("x", 1, 1.0), ("x", 2, 2.0)])
        assert store.append_points(TRIALS, "b", [("x", 1, 5.0)], update={"$inc": {"n": 1}})
        assert not store.append_points(TRIALS, "c", [("x", 1, 5.0)], update={"$inc": {"n": 1}})
        assert store.fetch_points(TRIALS, ["a", "b", "c"]) == {"a": {"x": [(1, 1.0), (2, 2.0)]}, "b": {"x": [(1, 5.0)]}}
        store.delete(TRIALS, {"uid": "a"})
        assert store.fetch_points(TRIALS, ["a", "b"]) == {"b": {"x": [(1, 5.0)]}}
        store.insert(TRIALS, {"uid": "a"})
        assert store.fetch_points(TRIALS, ["a"]) == {}
        assert store.delete_points(TRIALS, ["b"]) >= 1
        assert store.fetch_points(TRIALS, ["b"]) == {}

    @pytest.mark.parametrize(
        "kwargs",
        [{"uids": "a"}, {"uids": ["a", 1]}, {"uids": ["a"], "names": "x"}, {"uids": ["a"], "start": "0"}],
        ids=["uids-str", "uid-int", "names-str", "start-str"],
    )
    def test_bad_point_reads_are_query_errors(self, store: Store, kwargs: dict[str, Any]) -> None:
        store.insert(TRIALS, {"uid": "a"})
        assert store.append_points(TRIALS, "a", [("x", 1, 1.0)])
        with pytest.raises(errors.QueryError):
            store.fetch_points(TRIALS, **kwargs)
        if set(kwargs) == {"uids"}:
            with pytest.raises(errors.QueryError):
                store.delete_points(TRIALS, kwargs["uids"])
        assert store.fetch_points(TRIALS, ["a"]) == {"a": {"x": [(1, 1.0)]}}  # nothing changed

    def test_attempts_keep_their_own_points(self, protocol: DocumentProtocol) -> None:
        (t,) = _trials(protocol, 1)
        first = protocol.reserve_trial({"group_id": "pts"}, lease=0.2)
        assert first is not None
        protocol.log_trial_metrics(first, step=0, loss=9.0)
        import time

        time.sleep(0.4)
        second = protocol.reserve_trial({"group_id": "pts"}, lease=30)
        assert second is not None and second.metric_summary == {}
        protocol.log_trial_metrics(second, step=0, loss=1.0)
        assert protocol.fetch_metrics(second) == {"loss": [(0, 1.0)]}
        (stored,) = protocol.fetch_trials({"uid": t.uid})
        assert stored.metrics == {"loss": [(0, 1.0)]} and stored.metric_summary["loss"]["count"] == 1
        doc: Any = protocol.store.find_one(TRIALS, {"uid": t.uid})
        assert doc["previous_attempts"] == [
            {"token": 1, "metric_summary": {"loss": {"count": 1, "last": 9.0, "last_step": 0, "min": 9.0, "max": 9.0}}}
        ]
        assert protocol.store.fetch_points(TRIALS, [t.uid])[t.uid]["loss"] == [(0, 9.0), (0, 1.0)]  # all kept
