"""Contract tests that every store passes: Store primitives, the Protocol, and atomic claims.

Subclass these in a test module and provide a ``store_uri`` fixture (see the package docstring).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .. import errors
from ..model import Project, Status, Trial, TrialGroup
from ..protocol import DocumentProtocol
from ..registry import get_protocol, open_store
from ..store import Store
from .data import BAD_DOCUMENTS, BAD_QUERIES, BAD_UPDATES, COLL, DOCS, QUERY_CASES, UPDATE_CASES
from .workers import run_claimers

PENDING = {"status.name": {"$in": ["Created", "Interrupted"]}}


def _strip(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if doc is None else {k: v for k, v in doc.items() if k != "_id"}


def snapshot(store: Store, collection: str = COLL) -> list[dict[str, Any]]:
    """All documents of a collection, sorted by uid, for before/after comparisons."""
    return sorted((_strip(d) for d in store.find(collection)), key=lambda d: d["uid"])  # type: ignore[index]


class _Base:
    """Fixtures shared by the contract classes."""

    #: Set to True when other processes can open ``store_uri`` and see the same data.
    multiprocess: bool = False

    @pytest.fixture
    def store_uri(self) -> str:  # pragma: no cover - the suite's user provides it
        raise NotImplementedError("provide a store_uri fixture returning the URI of a fresh, empty store")

    @pytest.fixture
    def store(self, store_uri: str) -> Iterator[Store]:
        s = open_store(store_uri)
        yield s
        s.close()

    @pytest.fixture
    def filled(self, store: Store) -> Store:
        store.insert_many(COLL, copy.deepcopy(DOCS))
        return store

    @pytest.fixture
    def protocol(self, store_uri: str) -> Iterator[DocumentProtocol]:
        p = get_protocol(store_uri)
        yield p
        p.close()


class StoreContract(_Base):
    """The Store primitives: values, queries, updates, isolation, errors and indexes."""

    def test_insert_and_find_round_trip(self, filled: Store) -> None:
        assert snapshot(filled) == sorted(DOCS, key=lambda d: d["uid"])
        assert filled.count(COLL) == len(DOCS)

    def test_values_keep_their_types(self, store: Store) -> None:
        doc = {"uid": "t", "i": 1, "f": 1.0, "b": True, "big": -(2**63), "u": "é\u4e2d\U0001f600", "n": None}
        store.insert(COLL, doc)
        got = _strip(store.find_one(COLL, {"uid": "t"}))
        assert got == doc
        assert [type(got[k]) for k in ("i", "f", "b", "big")] == [int, float, bool, int]  # type: ignore[index]

    @pytest.mark.parametrize("query,expected", QUERY_CASES, ids=[repr(q) for q, _ in QUERY_CASES])
    def test_query_operators(self, filled: Store, query: dict[str, Any], expected: set[str]) -> None:
        assert {d["uid"] for d in filled.find(COLL, query)} == expected
        assert filled.count(COLL, query) == len(expected)

    @pytest.mark.parametrize("query,error", BAD_QUERIES, ids=[repr(q) for q, _ in BAD_QUERIES])
    def test_bad_queries_are_refused(self, filled: Store, query: Any, error: str) -> None:
        before = snapshot(filled)
        for call in (
            lambda: filled.find(COLL, query),
            lambda: filled.update(COLL, query, {"$set": {"x": 1}}),
            lambda: filled.find_one_and_update(COLL, query, {"$set": {"x": 1}}),
            lambda: filled.delete(COLL, query),
        ):
            with pytest.raises(getattr(errors, error)):
                call()
        assert snapshot(filled) == before

    def test_sort_limit_projection(self, filled: Store) -> None:
        got = filled.find(COLL, {"s": {"$exists": True}}, sort=[("s", 1)], limit=3, projection=["s"])
        assert [_strip(d) for d in got] == [
            {"uid": "b", "s": "Banana"},
            {"uid": "e", "s": "Elder"},
            {"uid": "a", "s": "apple"},
        ]
        desc = filled.find(COLL, None, sort={"uid": -1}, limit=2)
        assert [d["uid"] for d in desc] == ["g", "f"]
        multi = filled.find(COLL, {"tags": "y"}, sort=[("b", -1), ("uid", 1)])
        assert [d["uid"] for d in multi] == ["a", "b", "f", "g"]  # booleans sort after numbers, missing first
        excl = _strip(filled.find(COLL, {"uid": "a"}, projection={"sub": 0})[0])
        assert excl is not None and "sub" not in excl and excl["s"] == "apple"
        nested = filled.find(COLL, {"uid": "a"}, projection={"sub.k": 1})[0]
        assert _strip(nested) == {"uid": "a", "sub": {"k": 1}}

    @pytest.mark.parametrize("update,expected", UPDATE_CASES, ids=[repr(u) for u, _ in UPDATE_CASES])
    def test_update_operators(self, filled: Store, update: dict[str, Any], expected: dict[str, Any]) -> None:
        assert filled.update(COLL, {"uid": "a"}, update) == 1
        assert _strip(filled.find_one(COLL, {"uid": "a"})) == expected
        others = [d for d in snapshot(filled) if d["uid"] != "a"]
        assert others == sorted(DOCS[1:], key=lambda d: d["uid"])

    @pytest.mark.parametrize("update,error", BAD_UPDATES, ids=[repr(u) for u, _ in BAD_UPDATES])
    def test_bad_updates_change_nothing(self, filled: Store, update: Any, error: str) -> None:
        before = snapshot(filled)
        with pytest.raises(getattr(errors, error)):
            filled.update(COLL, {}, update, many=True)
        with pytest.raises(getattr(errors, error)):
            filled.find_one_and_update(COLL, {"uid": "a"}, update)
        assert snapshot(filled) == before

    def test_update_many_is_all_or_nothing(self, filled: Store) -> None:
        before = snapshot(filled)
        with pytest.raises(errors.QueryError):  # "n" is a string in "e": the whole update fails
            filled.update(COLL, {}, {"$inc": {"n": 1}}, many=True)
        assert snapshot(filled) == before
        assert filled.update(COLL, {"tags": "x"}, {"$set": {"hit": True}}, many=True) == 3
        assert {d["uid"] for d in filled.find(COLL, {"hit": True})} == {"a", "d", "g"}

    @pytest.mark.parametrize("doc,error", BAD_DOCUMENTS, ids=[repr(d) for d, _ in BAD_DOCUMENTS])
    def test_bad_documents_are_refused(self, filled: Store, doc: Any, error: str) -> None:
        before = snapshot(filled)
        with pytest.raises(getattr(errors, error)):
            filled.insert(COLL, doc)
        with pytest.raises(getattr(errors, error)):
            filled.insert_many(COLL, [{"uid": "fine"}, doc])
        assert snapshot(filled) == before

    def test_duplicate_uid(self, filled: Store) -> None:
        before = snapshot(filled)
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert(COLL, {"uid": "a"})
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert_many(COLL, [{"uid": "new1"}, {"uid": "b"}])
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert_many(COLL, [{"uid": "new2"}, {"uid": "new2"}])
        assert snapshot(filled) == before

    def test_unique_index(self, filled: Store) -> None:
        filled.ensure_index(COLL, "s", unique=True)
        filled.ensure_index(COLL, "s", unique=True)  # idempotent
        before = snapshot(filled)
        with pytest.raises(errors.DuplicateKeyError):
            filled.insert(COLL, {"uid": "z", "s": "apple"})
        with pytest.raises(errors.DuplicateKeyError):
            filled.update(COLL, {"uid": "b"}, {"$set": {"s": "apple"}})
        with pytest.raises(errors.DuplicateKeyError):
            filled.find_one_and_update(COLL, {"uid": "b"}, {"$set": {"s": "apple"}})
        assert snapshot(filled) == before
        filled.update(COLL, {"uid": "b"}, {"$set": {"s": "blueberry"}})
        filled.insert(COLL, {"uid": "z", "s": "Banana"})  # freed by the update
        with pytest.raises(errors.DuplicateKeyError):
            filled.ensure_index(COLL, "tags.0", unique=True)  # "a" and "g" collide already

    def test_indexes_keep_answers(self, filled: Store) -> None:
        for keys in ("n", "s", "tags", "b", ["sub.k", "n"], "sub.arr.v"):
            filled.ensure_index(COLL, keys)
        for query, expected in QUERY_CASES:
            assert {d["uid"] for d in filled.find(COLL, query)} == expected, query
        filled.update(COLL, {"uid": "a"}, {"$set": {"n": 2.5, "tags": "x"}})
        assert {d["uid"] for d in filled.find(COLL, {"n": 2.5})} == {"a", "b"}
        assert {d["uid"] for d in filled.find(COLL, {"tags": "x"})} == {"a", "d", "g"}

    def test_copy_isolation(self, store: Store) -> None:
        doc = {"uid": "iso", "nested": {"list": [1, {"x": 1}]}}
        store.insert(COLL, doc)
        doc["nested"]["list"].append(99)
        got = store.find_one(COLL, {"uid": "iso"})
        assert _strip(got) == {"uid": "iso", "nested": {"list": [1, {"x": 1}]}}
        got["nested"]["list"][1]["x"] = 2  # type: ignore[index]
        after = store.find_one_and_update(COLL, {"uid": "iso"}, {"$set": {"y": 1}})
        assert after is not None and after["nested"]["list"][1] == {"x": 1}
        after["nested"]["list"].clear()
        upd = {"$set": {"z": {"deep": [1]}}}
        store.update(COLL, {"uid": "iso"}, upd)
        upd["$set"]["z"]["deep"].append(2)
        assert _strip(store.find_one(COLL, {"uid": "iso"})) == {
            "uid": "iso",
            "nested": {"list": [1, {"x": 1}]},
            "y": 1,
            "z": {"deep": [1]},
        }

    def test_numpy_values_are_never_confused(self, store: Store) -> None:
        np = pytest.importorskip("numpy")
        a = list(range(2000))
        b = a[:1000] + [-1] + a[1001:]  # the same abridged repr as ``a`` in NumPy
        assert repr(np.array(a)) == repr(np.array(b))
        store.insert_many(COLL, [{"uid": "a", "v": a}, {"uid": "b", "v": b}])
        assert [d["uid"] for d in store.find(COLL, {"v": np.array(a)})] == ["a"]
        assert [d["uid"] for d in store.find(COLL, {"v": np.array(b)})] == ["b"]
        store.update(COLL, {"uid": "a"}, {"$set": {"w": np.array(a)}})
        store.update(COLL, {"uid": "a"}, {"$set": {"w": np.array(b)}})
        assert store.find_one(COLL, {"uid": "a"})["w"] == b  # type: ignore[index]

    def test_find_one_and_update(self, filled: Store) -> None:
        got = filled.find_one_and_update(COLL, {"tags": "x"}, {"$inc": {"claims": 1}}, sort=[("s", -1)])
        assert got is not None and got["uid"] == "g" and got["claims"] == 1  # document after the update
        assert filled.find_one_and_update(COLL, {"s": "nothing"}, {"$set": {"x": 1}}) is None

    def test_upsert(self, filled: Store) -> None:
        assert filled.update(COLL, {"uid": "new"}, {"$set": {"v": 1}, "$setOnInsert": {"born": True}}, upsert=True) == 1
        assert _strip(filled.find_one(COLL, {"uid": "new"})) == {"uid": "new", "v": 1, "born": True}
        assert filled.update(COLL, {"uid": "new"}, {"$set": {"v": 2}, "$setOnInsert": {"born": False}}, upsert=True)
        assert _strip(filled.find_one(COLL, {"uid": "new"})) == {"uid": "new", "v": 2, "born": True}

    def test_delete_and_count(self, filled: Store) -> None:
        assert filled.delete(COLL, {"tags": "x"}) == 3
        assert filled.count(COLL) == len(DOCS) - 3
        assert filled.count(COLL, {"tags": "x"}) == 0
        assert filled.delete(COLL, {"tags": "x"}) == 0
        filled.insert(COLL, {"uid": "a"})  # a deleted uid can be used again
        assert filled.count("emptycoll") == 0 and filled.find("emptycoll") == []

    def test_bad_collection_name(self, store: Store) -> None:
        for bad in ("", "Has Space", "x;drop", "$x", None):
            with pytest.raises(errors.QueryError):
                store.insert(bad, {"uid": "a"})  # type: ignore[arg-type]

    def test_threads_claim_each_document_once(self, store: Store) -> None:
        store.insert_many("trials", [_pending_doc(i) for i in range(400)])
        claimed: list[str] = []
        lock = threading.Lock()

        def worker() -> None:
            while True:
                doc = store.find_one_and_update("trials", {"group_id": "g", **PENDING}, _RUNNING)
                if doc is None:
                    return
                with lock:
                    claimed.append(doc["uid"])

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(claimed) == sorted(f"t{i:05d}" for i in range(400))
        assert store.count("trials", {"status.name": "Running"}) == 400


_RUNNING = {"$set": {"status": {"name": "Running", "value": 101}}}


def _pending_doc(i: int, group: str = "g") -> dict[str, Any]:
    return {"uid": f"t{i:05d}", "group_id": group, "status": {"name": "Created", "value": 0}, "i": i}


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
        assert stored.metrics == {"loss": [[1, 0.5], [2, 0.25], [None, 0.125]], "acc": [[1, 0.7]]}
        assert stored.parameters["batch"] == 32 and stored.parameters["lr"] == 0.1
        assert stored.metadata["host"] == "node1" and stored.metadata["end_time"] >= stored.metadata["start_time"]
        assert stored.metadata["runtime"] >= 0
        assert stored.tags == {"best": True}
        assert stored.status == Status.Completed
        chrono = stored.chronos["epoch"]
        assert chrono["count"] == 3 and chrono["min"] <= chrono["mean"] <= chrono["max"]
        assert abs(chrono["total"] - 3 * chrono["mean"]) < 1e-9 and chrono["sd"] >= 0
        for field in ("metrics", "parameters", "tags", "status", "chronos"):
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
        assert got is not None and got.metrics == {"loss": [[3, 1.0]]}
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
            (lambda p, t: p.log_trial_metrics(t, step=1, loss=float("nan")), errors.EncodingError),
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
        assert stored.metrics == {"loss": [[1, 0.5]], "vec": [[1, [0, 1, 2]]]}
        assert type(stored.metrics["loss"][0][0]) is int

    def test_context_manager_closes(self, store_uri: str) -> None:
        with get_protocol(store_uri) as p:
            p.new_project(Project("ctx"))
        with pytest.raises(errors.StoreUnavailableError):
            p.fetch_projects()


class ClaimContract(_Base):
    """Atomic claims across processes (skipped where the URI cannot be shared)."""

    claim_trials: int = 2000
    claim_workers: int = 4

    def test_processes_claim_each_trial_once(self, store_uri: str) -> None:
        if not self.multiprocess:
            pytest.skip("this store cannot be opened from another process")
        with get_protocol(store_uri) as p:
            p.store.insert_many("trials", [_pending_doc(i) for i in range(self.claim_trials)])
        per_worker = run_claimers(store_uri, {"group_id": "g", **PENDING}, self.claim_workers)
        claimed = [uid for uids in per_worker for uid in uids]
        assert len(claimed) == self.claim_trials, "some trials were lost or claimed twice"
        assert set(claimed) == {f"t{i:05d}" for i in range(self.claim_trials)}
        assert sum(1 for uids in per_worker if uids) >= 2, "the claims were not spread over processes"
        with get_protocol(store_uri) as p:
            assert p.store.count("trials", {"status.name": "Running"}) == self.claim_trials
            owners = {d["uid"]: d["metadata"]["owner"] for d in p.store.find("trials")}
        for i, uids in enumerate(per_worker):
            assert all(owners[u] == i for u in uids)
