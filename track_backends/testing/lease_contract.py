"""Leased reservations on any store: tokens, expiry by the store's clock, fencing, run_trial, recovery."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .. import errors
from ..model import Project, Status, Trial, TrialGroup
from ..protocol import DocumentProtocol
from ..store import TRIALS
from .base import _Base, snapshot


def _sweep(protocol: DocumentProtocol, n: int, group: str = "sweep") -> tuple[str, list[Trial]]:
    protocol.new_project(Project("leases"))
    g = protocol.new_trial_group(TrialGroup(group, project_id="leases"))
    trials = [Trial({"i": i}, project_id="leases", group_id=g.uid) for i in range(n)]
    for t in trials:
        assert protocol.new_trial(t) is t
    return g.uid, trials


def _lease(protocol: DocumentProtocol, uid: str) -> dict[str, Any]:
    doc = protocol.store.find_one(TRIALS, {"uid": uid})
    assert doc is not None
    return dict(doc.get("lease") or {})


class LeaseContract(_Base):
    """``reserve_trial``, ``heartbeat``, fencing, ``run_trial`` and ``requeue_stale``."""

    def test_store_clock_is_the_store_time(self, store: Any) -> None:
        assert abs(store.now() - time.time()) < 5  # one machine here: the clocks agree

    def test_reserve_records_a_lease_and_hands_each_trial_once(self, protocol: DocumentProtocol) -> None:
        group, trials = _sweep(protocol, 5)
        before = protocol.store.now()
        got = [protocol.reserve_trial({"group_id": group}, lease=30, owner=f"w{i}") for i in range(5)]
        assert all(t is not None for t in got)
        assert sorted(t.uid for t in got) == sorted(t.uid for t in trials)  # type: ignore[union-attr]
        assert protocol.reserve_trial({"group_id": group}) is None
        for i, t in enumerate(got):
            assert t is not None and t.status == Status.Running
            lease = _lease(protocol, t.uid)
            assert lease["owner"] == f"w{i}" and lease["token"] == t.fence == 1 and lease["attempts"] == 1
            assert before + 29 <= lease["expires"] <= protocol.store.now() + 31
        assert protocol.reserve_trial({"group_id": "no such group"}) is None

    def test_default_owner_is_host_and_pid(self, protocol: DocumentProtocol) -> None:
        import os

        group, _ = _sweep(protocol, 1)
        t = protocol.reserve_trial({"group_id": group})
        assert t is not None and _lease(protocol, t.uid)["owner"].endswith(f":{os.getpid()}")

    def test_expired_lease_is_reserved_again_with_a_new_token(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 1)
        first = protocol.reserve_trial({"group_id": group}, lease=0.3)
        assert first is not None and protocol.reserve_trial({"group_id": group}) is None  # still live
        time.sleep(0.5)
        second = protocol.reserve_trial({"group_id": group}, lease=30)
        assert second is not None and second.uid == first.uid
        assert second.fence == 2 and _lease(protocol, second.uid)["attempts"] == 2

    def test_fencing_a_worker_that_lost_its_lease(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 1)
        a = protocol.reserve_trial({"group_id": group}, lease=0.3, owner="A")
        assert a is not None
        time.sleep(0.5)  # A stalls past its lease
        b = protocol.reserve_trial({"group_id": group}, lease=30, owner="B")
        assert b is not None and b.uid == a.uid
        before = snapshot(protocol.store, TRIALS)
        for write in (
            lambda: protocol.log_trial_metrics(a, step=1, loss=0.5),
            lambda: protocol.log_trial_finish(a),
            lambda: protocol.set_trial_status(a, Status.Completed),
            lambda: protocol.add_trial_tags(a, x=1),
            lambda: protocol.heartbeat(a),
        ):
            with pytest.raises(errors.LeaseLostError):
                write()
        assert snapshot(protocol.store, TRIALS) == before
        protocol.log_trial_metrics(b, step=1, loss=0.25)
        protocol.log_trial_finish(b)
        doc = protocol.store.find_one(TRIALS, {"uid": b.uid})
        assert doc is not None and doc["status"]["name"] == "Completed" and doc["lease"]["owner"] == "B"

    def test_heartbeat_extends_the_lease(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 1)
        t = protocol.reserve_trial({"group_id": group}, lease=0.4)
        assert t is not None
        protocol.heartbeat(t, lease=30)
        time.sleep(0.6)
        assert protocol.reserve_trial({"group_id": group}) is None
        assert _lease(protocol, t.uid)["expires"] > protocol.store.now() + 25
        with pytest.raises(errors.QueryError):
            protocol.heartbeat(Trial({"not": "reserved"}))

    def test_max_attempts_breaks_a_trial(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 1)
        for _ in range(2):
            assert protocol.reserve_trial({"group_id": group}, lease=0.05, max_attempts=2) is not None
            time.sleep(0.15)
        assert protocol.reserve_trial({"group_id": group}, lease=0.05, max_attempts=2) is None
        (doc,) = protocol.store.find(TRIALS, {"group_id": group})
        assert doc["status"]["name"] == "Broken" and "max_attempts=2" in doc["errors"][-1]
        assert doc["lease"]["attempts"] == 3 and doc["lease"]["expires"] is None

    def test_run_trial_completes_and_releases(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 1)
        t = protocol.reserve_trial({"group_id": group}, lease=30)
        assert t is not None
        with protocol.run_trial(t, heartbeat=0.05) as running:
            protocol.log_trial_metrics(running, step=1, loss=0.1)
            time.sleep(0.2)  # a few heartbeats
        doc = protocol.store.find_one(TRIALS, {"uid": t.uid})
        assert doc is not None and doc["status"]["name"] == "Completed"
        assert doc["lease"]["expires"] is None and doc["lease"]["token"] == 1 and doc["lease"]["attempts"] == 1
        assert "start_time" in doc["metadata"] and "end_time" in doc["metadata"]

    def test_run_trial_records_an_exception(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 1)
        t = protocol.reserve_trial({"group_id": group})
        assert t is not None
        with pytest.raises(ZeroDivisionError):
            with protocol.run_trial(t):
                1 / 0  # noqa: B018
        doc = protocol.store.find_one(TRIALS, {"uid": t.uid})
        assert doc is not None and doc["status"]["name"] == "Exception" and "ZeroDivisionError" in doc["errors"][-1]
        assert protocol.reserve_trial({"group_id": group}) is None

    @pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
    def test_interrupted_trial_is_reservable_at_once(self, protocol: DocumentProtocol, interrupt: type) -> None:
        group, _ = _sweep(protocol, 1)
        t = protocol.reserve_trial({"group_id": group}, lease=30)
        assert t is not None
        with pytest.raises(interrupt):
            with protocol.run_trial(t):
                raise interrupt()
        doc = protocol.store.find_one(TRIALS, {"uid": t.uid})
        assert doc is not None and doc["status"]["name"] == "Interrupted" and doc["lease"]["expires"] is None
        again = protocol.reserve_trial({"group_id": group}, lease=30)
        assert again is not None and again.uid == t.uid and again.fence == 2
        assert _lease(protocol, t.uid)["attempts"] == 2

    def test_requeue_stale(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 3)
        short = protocol.reserve_trial({"group_id": group}, lease=0.1)
        live = protocol.reserve_trial({"group_id": group}, lease=30)
        assert short is not None and live is not None
        time.sleep(0.3)
        assert [t.uid for t in protocol.stale_trials({"group_id": group})] == [short.uid]
        assert protocol.requeue_stale({"group_id": group}) == 1
        statuses = {d["uid"]: d["status"]["name"] for d in protocol.store.find(TRIALS)}
        assert statuses[short.uid] == "Interrupted" and statuses[live.uid] == "Running"
        assert protocol.requeue_stale() == 0

    def test_bad_arguments_are_refused(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 1)
        before = snapshot(protocol.store, TRIALS)
        for kwargs in ({"lease": 0}, {"lease": -1}, {"lease": "60"}, {"max_attempts": 0}, {"max_attempts": 1.5}):
            with pytest.raises(errors.QueryError):
                protocol.reserve_trial({"group_id": group}, **kwargs)
        with pytest.raises(errors.UnsupportedOperatorError):
            protocol.reserve_trial({"group_id": {"$bogus": 1}})
        assert snapshot(protocol.store, TRIALS) == before

    def test_manual_status_management_still_works(self, protocol: DocumentProtocol) -> None:
        group, _ = _sweep(protocol, 2)
        pending = {"group_id": group, "status.name": {"$in": ["Created", "Interrupted"]}}
        t = protocol.fetch_and_update_trial(pending, "set_trial_status", status=Status.Running)
        assert t is not None and t.fence is None
        protocol.log_trial_metrics(t, step=1, loss=1.0)
        protocol.log_trial_finish(t)
        assert protocol.reserve_trial({"group_id": group}) is not None
