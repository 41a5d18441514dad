"""Every method of track's persistence Protocol, on any store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .. import errors
from ..model import Project, Status, Trial, TrialGroup
from ..protocol import DocumentProtocol
from ..registry import get_protocol
from .base import PENDING, _Base, snapshot


class ProtocolContract(_Base):
    """Every method of track's persistence Protocol."""

    @pytest.fixture
    def trial(self, protocol: DocumentProtocol) -> Trial:
        protocol.new_project(Project("proj"))
        group = protocol.new_trial_group(TrialGroup("grp", project_id="proj"))
        t = Trial({"lr": 0.1, "layers": [64, 64], "opt": {"name": "adam", "beta": 0.9}}, name="exp", group_id=group.uid)
        assert protocol.new_trial(t) is t
        return t

    def test_projects_and_groups(self, protocol: DocumentProtocol) -> None:
        p = protocol.new_project(Project("p1", description="first", metadata={"owner": "me"}))
        assert protocol.get_project(Project("p1")) == p
        assert protocol.new_project(Project("p1", description="other")).description == "first"
        assert protocol.get_project(Project("nope")) is None
        g = protocol.new_trial_group(TrialGroup("g1", project_id="p1"))
        assert protocol.get_trial_group(TrialGroup("g1", project_id="p1")) == g
        assert protocol.get_trial_group(TrialGroup("g1", project_id="p2")) is None
        protocol.set_group_metadata(g, best=0.5)
        assert protocol.get_trial_group(g).metadata == {"best": 0.5}  # type: ignore[union-attr]
        assert g.metadata == {"best": 0.5}
        assert [x.name for x in protocol.fetch_projects({"name": "p1"})] == ["p1"]
        assert [x.uid for x in protocol.fetch_groups({"project_id": "p1"})] == [g.uid]
        with pytest.raises(errors.NotFoundError):
            protocol.set_group_metadata(TrialGroup("ghost", project_id="p1"), a=1)

    def test_new_trial_and_revisions(self, protocol: DocumentProtocol, trial: Trial) -> None:
        same = Trial(dict(trial.parameters), name="exp", group_id=trial.group_id)
        assert protocol.new_trial(same) is None
        bumped = protocol.new_trial(same, auto_increment=True)
        assert bumped is not None and bumped.revision == 1 and bumped.uid == f"{trial.hash}_1"
        again = protocol.new_trial(Trial(dict(trial.parameters), name="exp"), auto_increment=True)
        assert again is not None and again.revision == 2
        assert [t.revision for t in protocol.get_trial(trial)] == [0, 1, 2]

    def test_get_and_fetch_trials(self, protocol: DocumentProtocol, trial: Trial) -> None:
        (got,) = protocol.get_trial(trial)
        assert got.uid == trial.uid and got.parameters == trial.parameters and got.status == Status.Created
        assert [t.uid for t in protocol.fetch_trials({"parameters.opt.name": "adam"})] == [trial.uid]
        assert protocol.fetch_trials({"parameters.lr": {"$gt": 1}}) == []

    def test_logging_methods(self, protocol: DocumentProtocol, trial: Trial) -> None:
        protocol.log_trial_start(trial)
        protocol.log_trial_arguments(trial, batch=32)
        protocol.log_trial_metadata(trial, host="node1")
        protocol.log_trial_metrics(trial, step=1, loss=0.5, acc=0.7)
        protocol.log_trial_metrics(trial, step=2, loss=0.25)
        protocol.log_trial_metrics(trial, loss=0.125)
        protocol.add_trial_tags(trial, best=True)
        for _ in range(3):
            protocol.log_trial_chrono_start(trial, "epoch")
            protocol.log_trial_chrono_finish(trial, "epoch")
        protocol.log_trial_finish(trial)
        (stored,) = protocol.get_trial(trial)
        assert stored.metrics == {"loss": [(1, 0.5), (2, 0.25), (None, 0.125)], "acc": [(1, 0.7)]}
        assert stored.metric_summary == {
            "loss": {"count": 3, "last": 0.125, "last_step": None, "min": 0.125, "max": 0.5},
            "acc": {"count": 1, "last": 0.7, "last_step": 1, "min": 0.7, "max": 0.7},
        }
        assert stored.parameters["batch"] == 32 and stored.parameters["lr"] == 0.1
        assert stored.metadata["host"] == "node1" and stored.metadata["end_time"] >= stored.metadata["start_time"]
        assert stored.metadata["runtime"] >= 0
        assert stored.tags == {"best": True}
        assert stored.status == Status.Completed
        chrono = stored.chronos["epoch"]
        assert chrono["count"] == 3 and chrono["min"] <= chrono["mean"] <= chrono["max"]
        assert abs(chrono["total"] - 3 * chrono["mean"]) < 1e-9 and chrono["sd"] >= 0
        for field in ("metric_summary", "parameters", "tags", "status", "chronos"):
            assert getattr(trial, field) == getattr(stored, field), field  # the caller's object follows

    def test_finish_with_exception(self, protocol: DocumentProtocol, trial: Trial) -> None:
        protocol.log_trial_start(trial)
        try:
            raise RuntimeError("boom")
        except RuntimeError as e:
            protocol.log_trial_finish(trial, type(e), e, e.__traceback__)
        (stored,) = protocol.get_trial(trial)
        assert stored.status == Status.Exception and stored.errors == ["RuntimeError: boom"]

    def test_status_and_custom_status(self, protocol: DocumentProtocol, trial: Trial) -> None:
        protocol.set_trial_status(trial, Status.Suspended, error="preempted")
        protocol.set_trial_status(trial, Status("Queued", 500))
        (stored,) = protocol.get_trial(trial)
        assert stored.status == Status("Queued", 500) and stored.errors == ["preempted"]
        assert [t.uid for t in protocol.fetch_trials({"status.value": 500})] == [trial.uid]

    def test_project_and_group_membership(self, protocol: DocumentProtocol, trial: Trial) -> None:
        p = protocol.new_project(Project("other"))
        g = protocol.new_trial_group(TrialGroup("g2", project_id="other"))
        protocol.add_project_trial(p, trial)
        protocol.add_group_trial(g, trial)
        (stored,) = protocol.get_trial(trial)
        assert (stored.project_id, stored.group_id) == ("other", g.uid) == (trial.project_id, trial.group_id)

    def test_fetch_and_update_trial(self, protocol: DocumentProtocol, trial: Trial) -> None:
        query = {"group_id": trial.group_id, **PENDING}
        got = protocol.fetch_and_update_trial(query, "set_trial_status", status=Status.Running)
        assert got is not None and got.uid == trial.uid and got.status == Status.Running
        assert protocol.fetch_and_update_trial(query, "set_trial_status", Status.Running) is None
        got = protocol.fetch_and_update_trial({"uid": trial.uid}, "log_trial_metrics", step=3, loss=1.0)
        assert got is not None and got.metrics == {"loss": [(3, 1.0)]}
        assert got.metric_summary["loss"] == {"count": 1, "last": 1.0, "last_step": 3, "min": 1.0, "max": 1.0}
        assert protocol.fetch_metrics(got) == {"loss": [(3, 1.0)]}
        g = protocol.fetch_and_update_group({"name": "grp"}, "set_group_metadata", done=True)
        assert g is not None and g.metadata == {"done": True}

    @pytest.mark.parametrize("attr", ["close", "new_trial", "__class__", "get_trial", "_apply", "store", 42])
    def test_fetch_and_update_refuses_other_methods(self, protocol: DocumentProtocol, trial: Trial, attr: Any) -> None:
        before = snapshot(protocol.store, "trials")
        with pytest.raises(errors.QueryError):
            protocol.fetch_and_update_trial({}, attr)
        with pytest.raises(errors.QueryError):
            protocol.fetch_and_update_group({}, attr)
        assert snapshot(protocol.store, "trials") == before

    @pytest.mark.parametrize(
        "call,error",
        [
            (lambda p, t: p.log_trial_metrics(t, **{"bad.name": 1}), errors.EncodingError),
            (lambda p, t: p.log_trial_metrics(t, step=1), errors.QueryError),
            (lambda p, t: p.log_trial_metadata(t, **{"$x": 1}), errors.EncodingError),
            (lambda p, t: p.log_trial_arguments(t, x=object()), errors.EncodingError),
            (lambda p, t: p.set_trial_status(t, "NotAStatus"), errors.EncodingError),
            (lambda p, t: p.log_trial_chrono_finish(t, "never-started"), errors.QueryError),
            (lambda p, t: p.add_trial_tags(Trial({"ghost": 1}), x=1), errors.NotFoundError),
            (lambda p, t: p.new_trial(Trial({"x": {1, 2}})), errors.EncodingError),
        ],
    )
    def test_bad_input_changes_nothing(
        self, protocol: DocumentProtocol, trial: Trial, call: Callable[..., Any], error: type
    ) -> None:
        before = snapshot(protocol.store, "trials")
        with pytest.raises(error):
            call(protocol, trial)
        assert snapshot(protocol.store, "trials") == before

    def test_numpy_values_are_converted(self, protocol: DocumentProtocol, trial: Trial) -> None:
        np = pytest.importorskip("numpy")
        protocol.log_trial_metrics(trial, step=np.int64(1), loss=np.float32(0.5), vec=np.arange(3))
        (stored,) = protocol.get_trial(trial)
        assert stored.metrics == {"loss": [(1, 0.5)], "vec": [(1, [0, 1, 2])]}
        assert type(stored.metrics["loss"][0][0]) is int

    def test_context_manager_closes(self, store_uri: str) -> None:
        with get_protocol(store_uri) as p:
            p.new_project(Project("ctx"))
        with pytest.raises(errors.StoreUnavailableError):
            p.fetch_projects()

    def test_nan_and_infinity_in_metrics_and_parameters(self, protocol: DocumentProtocol) -> None:
        import math

        t = Trial({"lr": math.inf, "decay": -math.inf}, name="diverging")
        assert protocol.new_trial(t) is t
        protocol.log_trial_metrics(t, step=1, loss=float("nan"))
        protocol.log_trial_metrics(t, step=2, loss=float("inf"))
        protocol.log_trial_metadata(t, note=float("-inf"))
        (stored,) = protocol.fetch_trials({"uid": t.uid})
        assert stored.parameters == {"lr": math.inf, "decay": -math.inf}
        assert math.isnan(stored.metrics["loss"][0][1]) and stored.metrics["loss"][1] == (2, math.inf)
        summary = stored.metric_summary["loss"]
        assert summary["count"] == 2 and summary["min"] == summary["max"] == math.inf  # NaN is ignored
        assert stored.metadata["note"] == -math.inf
        assert [x.uid for x in protocol.fetch_trials({"parameters.lr": math.inf})] == [t.uid]
