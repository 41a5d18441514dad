"""``migrate(src, dst)`` and ``track-backends migrate``: round trips across every pair of backends,
idempotent reruns, conflict policies, dry runs, verification, progress, and a killed run resumed.

Backends: ``ephemeral`` (in process, as a Store object), ``pickled``, ``file``, ``postgres`` (the
pgserver fixture of ``tests/postgres/conftest.py``, imported here), and, once the MongoDB store
has landed, ``mongo`` (the SecantusDB ``mongo_wire_uri`` fixture of ``tests/conftest.py``) and
``mongomock``. Server fixtures skip when their server cannot start, except under ``CI=true``,
where they fail.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

# The PostgreSQL fixtures live in tests/postgres/conftest.py, out of reach of this directory:
# import them so that pytest registers them for this module too.
from postgres.conftest import pg_admin, pg_server_uri, with_options  # noqa: F401

from track_backends import Project, Status, Trial, TrialGroup, open_store, register, unregister
from track_backends.cli import main
from track_backends.errors import DuplicateKeyError, EncodingError, NotFoundError, QueryError
from track_backends.migrate import (
    COLLECTIONS,
    MIGRATED_FROM,
    BarProgress,
    LineProgress,
    MigrationConflictError,
    MigrationError,
    document_checksum,
    iter_pages,
    make_progress,
    migrate,
)
from track_backends.model import canonical_hash
from track_backends.store import GROUPS, PROJECTS, TRIALS, Store
from track_backends.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
HAS_MONGO = importlib.util.find_spec("track_backends.stores.mongo") is not None
KINDS = ["ephemeral", "pickled", "file", "postgres"] + (["mongo", "mongomock"] if HAS_MONGO else [])


# -- data ------------------------------------------------------------------------------------------
ASTRAL = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🎉🚀"


def dataset() -> dict[str, list[dict[str, Any]]]:
    """Documents that stress every type distinction a backend might blur."""
    projects = [
        Project("alpha").to_doc(),
        Project("Zeta ünï " + ASTRAL, description="astral " + ASTRAL, metadata={"n": 2**62, "z": 1, "a": 2}).to_doc(),
        Project("日本語", metadata={"nested": {"deep": [{"x": []}, {}]}}).to_doc(),
    ]
    g1 = TrialGroup("g1", project_id="alpha", metadata={"k": [1, 1.0, True, "1", None]})
    g2 = TrialGroup("g2 " + ASTRAL, project_id=projects[1]["uid"], description="ü")
    groups = [g1.to_doc(), g2.to_doc()]
    trials = []
    special: list[dict[str, Any]] = [
        {"one_i": 1, "one_f": 1.0, "true": True, "zero_i": 0, "zero_f": 0.0, "false": False, "s": "1"},
        {"tenth": 0.1, "tiny": 1e-300, "subnormal": 5e-324, "huge": 1.7976931348623157e308, "third": 1 / 3},
        {"big": 2**62, "min": -(2**63), "max": 2**63 - 1, "neg": -1, "big_f": 2.0**62},
        {"nested": {"a": {"b": [1, {"c": [[], {}]}], "d": None}}, "empty_l": [], "empty_d": {}},
        {"unicode": "日本語 ünï " + ASTRAL, ASTRAL: "key", "é": [ASTRAL, "\u2028\t\n\"'\\"]},
        {"order": {"z": 1, "a": 2, "m": 3}, "list": [3, 1, 2], "null": None},
    ]
    for i in range(30):
        params: dict[str, Any] = special[i] if i < len(special) else {"i": i, "lr": 0.1 * i, "layers": [i, i + 1]}
        t = Trial(
            params,
            name="exp " + ASTRAL if i % 3 == 0 else None,
            version="v1",
            project_id="alpha" if i % 2 else projects[1]["uid"],
            group_id=g1.uid if i % 2 else g2.uid,
            revision=i % 2,
            metadata={"host": f"node{i}", "seed": -(2**63) + i, "float": 1.0},
            metrics={"loss": [[0, 0.5], [1, 0.25], [2, 0.125 + i]], "acc": [[0, 0.1 * i]], "ünï": [[0, 1], [1, 1.0]]},
            chronos={"epoch": {"count": 3, "total": 1.5, "mean": 0.5, "min": 0.25, "max": 1.0, "sd": 0.0}},
            status=Status.Completed if i % 5 == 0 else Status("Custom " + ASTRAL, 500 + i),
            errors=["Traceback " + ASTRAL] if i == 7 else [],
            tags={"z": i, "a": [None, True]},
        )
        trials.append(t.to_doc())
    neg_zero = Trial({"neg_zero": -0.0, "x": [-0.0, 0.0]}, group_id=g1.uid, project_id="alpha").to_doc()
    trials.append(neg_zero)
    return {PROJECTS: projects, GROUPS: groups, TRIALS: trials}


def fill(store: Store, data: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, list[dict[str, Any]]]:
    data = data or dataset()
    for coll in COLLECTIONS:
        store.insert_many(coll, data[coll])
    return data


def by_uid(store: Store, coll: str) -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in store.find(coll)}


def exact(doc: dict[str, Any]) -> str:
    """Bit-for-bit form: repr tells 1, 1.0 and True apart, 0.0 from -0.0, and keeps key order."""
    return repr(doc)


def keeps_negative_zero(store: Store) -> bool:
    """Whether a backend gives -0.0 back (PostgreSQL's JSONB numeric has no negative zero)."""
    store.insert("probe_negzero", {"uid": "p", "x": -0.0})
    x = store.find_one("probe_negzero", {"uid": "p"})["x"]  # type: ignore[index]
    store.delete("probe_negzero", {})
    return math.copysign(1.0, x) < 0


# -- backends --------------------------------------------------------------------------------------
def _with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


class Backends:
    """Opens fresh, empty stores of each kind; closes and drops them at teardown."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path
        self.opened: list[Store] = []
        self.cleanups: list[Callable[[], None]] = []

    def uri(self, kind: str) -> str:
        name = f"s{len(self.opened)}_{uuid.uuid4().hex[:8]}"
        if kind == "ephemeral":
            return "ephemeral:"
        if kind in ("pickled", "file"):
            return f"{kind}://{self.tmp_path}/{name}.{'pkl' if kind == 'pickled' else 'jsonl'}"
        if kind == "postgres":
            server = self.request.getfixturevalue("pg_server_uri")
            admin = self.request.getfixturevalue("pg_admin")
            self.cleanups.append(lambda: admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            return with_options(server, schema=name)
        if kind == "mongo":
            server = self.request.getfixturevalue("mongo_wire_uri")
            client = self.request.getfixturevalue("mongo_wire_client")
            self.cleanups.append(lambda: client.drop_database(name))
            return _with_database(server, name)
        if kind == "mongomock":
            return f"mongomock://{name}"
        raise ValueError(kind)

    def open(self, kind: str) -> Store:
        store = MemoryStore() if kind == "ephemeral" else open_store(self.uri(kind))
        self.opened.append(store)
        return store

    def close(self) -> None:
        for s in self.opened:
            s.close()
        for c in self.cleanups:
            c()


@pytest.fixture
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    b = Backends(request, tmp_path)
    yield b
    b.close()


# -- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("src_kind", "dst_kind"), list(itertools.product(KINDS, KINDS)))
def test_round_trip_keeps_every_field_bit_for_bit(backends: Backends, src_kind: str, dst_kind: str) -> None:
    src, dst = backends.open(src_kind), backends.open(dst_kind)
    fill(src)
    before = {c: by_uid(src, c) for c in COLLECTIONS}
    report = migrate(src, dst, batch=7)

    n = {c: len(before[c]) for c in COLLECTIONS}
    assert {c: report.collections[c].copied for c in COLLECTIONS} == n
    lossy = {u for u, d in before[TRIALS].items() if "neg_zero" in d["parameters"]}
    lossy = (
        set()
        if keeps_negative_zero(dst)
        else {u for u in lossy if math.copysign(1, before[TRIALS][u]["parameters"]["neg_zero"]) < 0}
    )
    for coll in COLLECTIONS:
        after = by_uid(dst, coll)
        assert sorted(after) == sorted(before[coll]), coll
        for uid, doc in before[coll].items():
            if uid in lossy:
                assert document_checksum(after[uid]) != document_checksum(doc)  # and verification says so:
                continue
            assert exact(after[uid]) == exact(doc), (coll, uid)
            assert document_checksum(after[uid]) == document_checksum(doc)
    assert report.verification is (not lossy)
    assert report.collections[TRIALS].differing == len(lossy)
    assert exact(by_uid(src, TRIALS)) == exact(before[TRIALS])  # the source is untouched

    again = migrate(src, dst, batch=5)  # a second run is a no-op
    assert again.total("copied") == again.total("overwritten") == again.total("bumped") == 0
    assert again.total("unchanged") == sum(n.values()) - len(lossy)
    assert again.total("skipped") == len(lossy)  # -0.0 became 0.0: now a conflict, kept (skip)
    assert again.verification is True and again.collections[TRIALS].kept == len(lossy)
    for coll in COLLECTIONS:
        assert dst.count(coll) == n[coll]


def test_uri_round_trip_opens_and_closes_both_stores(tmp_path: Path) -> None:
    src_uri, dst_uri = f"pickled://{tmp_path}/a.pkl", f"file://{tmp_path}/sub/b.jsonl"
    (tmp_path / "sub").mkdir()
    with open_store(src_uri) as s:
        fill(s)
        data = {coll: s.find(coll) for coll in COLLECTIONS}  # as stored (-0.0 is stored as 0.0)
    report = migrate(src_uri, dst_uri, batch=4)
    assert report.ok and report.verification is True
    assert report.destination == dst_uri
    with open_store(dst_uri) as d:
        for coll in COLLECTIONS:
            assert [exact(x) for x in sorted(d.find(coll), key=lambda x: x["uid"])] == [
                exact(x) for x in sorted(data[coll], key=lambda x: x["uid"])
            ]


# -- paging --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ephemeral", "file", "postgres"] + (["mongomock"] if HAS_MONGO else []))
def test_pages_visit_each_document_once_in_uid_order(backends: Backends, kind: str) -> None:
    store = backends.open(kind)
    uids = ["a", "B", "é", "日本", "𝔘", "a0", "a_1", "Z", "~", " "] + [f"t{i:03d}" for i in range(40)]
    store.insert_many(TRIALS, [{"uid": u, "x": i} for i, u in enumerate(uids)])
    pages = list(iter_pages(store, TRIALS, None, 6))
    seen = [d["uid"] for p in pages for d in p]
    assert seen == sorted(uids)  # code-point order = UTF-8 byte order on every backend
    assert all(len(p) <= 6 for p in pages)
    odd = [d["uid"] for p in iter_pages(store, TRIALS, {"x": {"$in": list(range(1, 50, 2))}}, 4) for d in p]
    assert odd == sorted(u for i, u in enumerate(uids) if i % 2)
    only = [d for p in iter_pages(store, TRIALS, None, 100, ["x"]) for d in p]
    assert set(only[0]) == {"uid", "x"}


def test_generic_keyset_paging_is_used_for_other_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that is not an in-process engine is paged with ``$gt`` on uid, sorted, limited."""
    calls: list[Any] = []

    class Spy(MemoryStore):
        def find(self, collection, query=None, *, sort=None, limit=None, projection=None):  # type: ignore[override]
            calls.append((query, sort, limit))
            return super().find(collection, query, sort=sort, limit=limit, projection=projection)

    import track_backends.migrate as m

    monkeypatch.setattr(m, "_snapshot_uids", lambda store, coll: None)
    store = Spy()
    store.insert_many(TRIALS, [{"uid": f"u{i:02d}"} for i in range(10)])
    seen = [d["uid"] for p in iter_pages(store, TRIALS, {"uid": {"$ne": "u03"}}, 4) for d in p]
    assert seen == [f"u{i:02d}" for i in range(10) if i != 3]
    assert calls[0] == ({"uid": {"$ne": "u03"}}, [("uid", 1)], 4)
    assert calls[1][0] == {"$and": [{"uid": {"$ne": "u03"}}, {"uid": {"$gt": "u04"}}]}
    assert len(calls) == 3  # the last page is short: no extra query


# -- selection -------------------------------------------------------------------------------------
def test_query_copies_matching_trials_and_what_they_reference() -> None:
    src, dst = MemoryStore(), MemoryStore()
    data = fill(src)
    g1 = data[GROUPS][0]
    query = {"group_id": g1["uid"], "status.name": "Completed"}
    want = {d["uid"] for d in src.find(TRIALS, query)}
    assert 0 < len(want) < len(data[TRIALS])
    report = migrate(src, dst, query=query, batch=2)
    assert {d["uid"] for d in dst.find(TRIALS)} == want
    assert [d["uid"] for d in dst.find(GROUPS)] == [g1["uid"]]
    assert [d["uid"] for d in dst.find(PROJECTS)] == ["alpha"]
    assert report.verification is True
    assert report.collections[TRIALS].source == len(want)


def test_query_follows_groups_to_their_projects() -> None:
    src, dst = MemoryStore(), MemoryStore()
    src.insert(PROJECTS, {"uid": "p1", "name": "p1"})
    src.insert(PROJECTS, {"uid": "p2", "name": "p2"})
    src.insert(PROJECTS, {"uid": "p3", "name": "p3"})
    src.insert(GROUPS, {"uid": "g", "project_id": "p2"})
    src.insert(TRIALS, {"uid": "t1", "group_id": "g", "project_id": "p1", "k": 1})
    src.insert(TRIALS, {"uid": "t2", "group_id": "missing", "project_id": None, "k": 1})
    src.insert(TRIALS, {"uid": "t3", "group_id": "g", "project_id": "p3", "k": 2})
    report = migrate(src, dst, query={"k": 1})
    assert sorted(by_uid(dst, PROJECTS)) == ["p1", "p2"]
    assert sorted(by_uid(dst, GROUPS)) == ["g"]
    assert sorted(by_uid(dst, TRIALS)) == ["t1", "t2"]
    assert report.ok


def test_bad_query_is_a_query_error() -> None:
    with pytest.raises(QueryError):
        migrate(MemoryStore(), MemoryStore(), query={"x": {"$bogus": 1}})


# -- conflicts -------------------------------------------------------------------------------------
def _conflicting() -> tuple[MemoryStore, MemoryStore, dict[str, Any], dict[str, Any]]:
    src, dst = MemoryStore(), MemoryStore()
    data = fill(src)
    theirs = dict(data[TRIALS][3])
    ours = dict(theirs, metrics={"loss": [[0, 9.0]]}, extra="only in dst")
    dst.insert(TRIALS, ours)
    dst.insert(PROJECTS, dict(data[PROJECTS][0], description="dst's own"))
    return src, dst, theirs, ours


def test_identical_documents_are_unchanged_under_every_policy() -> None:
    for policy in ("skip", "overwrite", "bump", "fail"):
        src, dst = MemoryStore(), MemoryStore()
        fill(src)
        fill(dst)
        report = migrate(src, dst, on_conflict=policy, batch=8)
        assert report.total("copied") == 0 and report.total("unchanged") == report.total("source")
        assert report.verification is True


def test_skip_keeps_the_destination_document() -> None:
    src, dst, theirs, ours = _conflicting()
    report = migrate(src, dst, batch=4)
    assert report.collections[TRIALS].skipped == 1 and report.collections[PROJECTS].skipped == 1
    assert exact(dst.find_one(TRIALS, {"uid": ours["uid"]})) == exact(ours)  # type: ignore[arg-type]
    assert report.verification is True and report.ok
    assert report.collections[TRIALS].kept == 1 and report.collections[PROJECTS].kept == 1
    assert dst.count(TRIALS) == src.count(TRIALS)


def test_overwrite_replaces_the_destination_document() -> None:
    src, dst, theirs, ours = _conflicting()
    report = migrate(src, dst, on_conflict="overwrite", batch=4)
    assert report.collections[TRIALS].overwritten == 1 and report.collections[PROJECTS].overwritten == 1
    got = dst.find_one(TRIALS, {"uid": theirs["uid"]})
    assert got is not None and "extra" not in got
    assert document_checksum(got) == document_checksum(theirs)
    assert report.verification is True
    assert migrate(src, dst, on_conflict="overwrite").total("overwritten") == 0  # idempotent


def test_bump_stores_the_next_revision_once() -> None:
    src, dst, theirs, ours = _conflicting()
    report = migrate(src, dst, on_conflict="bump", batch=4)
    assert report.collections[TRIALS].bumped == 1
    assert report.collections[PROJECTS].skipped == 1  # projects cannot be bumped
    siblings = sorted(dst.find(TRIALS, {"hash": theirs["hash"]}), key=lambda d: d["revision"])
    src_revs = [d["revision"] for d in src.find(TRIALS, {"hash": theirs["hash"]})]
    bumped = siblings[-1]
    assert bumped["revision"] == max(src_revs + [theirs["revision"]]) + 1
    assert bumped["uid"] == f"{theirs['hash']}_{bumped['revision']}"
    assert bumped["metadata"][MIGRATED_FROM] == theirs["uid"]
    assert bumped["metrics"] == theirs["metrics"] and bumped["parameters"] == theirs["parameters"]
    assert Trial.from_doc(bumped).uid == bumped["uid"]
    assert exact(dst.find_one(TRIALS, {"uid": ours["uid"]})) == exact(ours)  # type: ignore[arg-type]
    assert report.verification is True
    n = dst.count(TRIALS)
    again = migrate(src, dst, on_conflict="bump", batch=3)  # does not bump again
    assert again.total("bumped") == 0 and again.total("copied") == 0 and dst.count(TRIALS) == n
    assert again.verification is True


@pytest.mark.parametrize("kind", KINDS)
def test_overwrite_and_bump_on_every_backend(backends: Backends, kind: str) -> None:
    src = MemoryStore()
    data = dataset()
    data[TRIALS] = [t for t in data[TRIALS] if "neg_zero" not in t["parameters"]]  # PostgreSQL loses -0.0
    fill(src, data)
    theirs = data[TRIALS][5]
    for policy in ("overwrite", "bump"):
        dst = backends.open(kind)
        dst.insert(TRIALS, dict(theirs, metrics={}, extra={"only": "dst"}))
        report = migrate(src, dst, on_conflict=policy, batch=6)
        assert report.verification is True, report.summary()
        assert getattr(report.collections[TRIALS], "overwritten" if policy == "overwrite" else "bumped") == 1
        again = migrate(src, dst, on_conflict=policy, batch=6)
        assert again.total("copied") == again.total("overwritten") == again.total("bumped") == 0
        assert again.verification is True
        mine = dst.find(TRIALS, {"hash": theirs["hash"]})
        if policy == "overwrite":
            assert [document_checksum(d) for d in mine] == [document_checksum(theirs)]
        else:
            assert len(mine) == 2 and dst.count(TRIALS) == len(data[TRIALS]) + 1


def test_bump_skips_revisions_the_source_still_has_to_copy() -> None:
    src, dst = MemoryStore(), MemoryStore()
    t0 = Trial({"x": 1}, group_id="g").to_doc()
    t1 = dict(Trial({"x": 1}, group_id="g", revision=1).to_doc(), status={"name": "Completed", "value": 302})
    src.insert_many(TRIALS, [t0, t1])
    dst.insert(TRIALS, dict(t0, tags={"dst": True}))
    report = migrate(src, dst, on_conflict="bump")
    assert report.collections[TRIALS].bumped == 1 and report.collections[TRIALS].copied == 1
    assert exact(dst.find_one(TRIALS, {"uid": t1["uid"]})) == exact(t1)  # type: ignore[arg-type]
    assert dst.find_one(TRIALS, {"uid": f"{t0['hash']}_2"})["metadata"][MIGRATED_FROM] == t0["uid"]  # type: ignore[index]
    assert migrate(src, dst, on_conflict="bump").total("bumped") == 0


def test_bump_needs_a_hash_and_a_revision() -> None:
    src, dst = MemoryStore(), MemoryStore()
    src.insert(TRIALS, {"uid": "odd", "x": 1})
    dst.insert(TRIALS, {"uid": "odd", "x": 2})
    report = migrate(src, dst, on_conflict="bump")
    assert report.collections[TRIALS].failed == 1 and not report.ok
    assert "hash" in report.collections[TRIALS].problems[0]


def test_fail_raises_naming_the_uid_and_keeps_earlier_batches() -> None:
    src, dst = MemoryStore(), MemoryStore()
    src.insert_many(TRIALS, [{"uid": f"u{i:02d}", "x": i} for i in range(20)])
    dst.insert(TRIALS, {"uid": "u11", "x": "different"})
    with pytest.raises(MigrationConflictError) as e:
        migrate(src, dst, on_conflict="fail", batch=5)
    assert e.value.uid == "u11" and "u11" in str(e.value) and e.value.collection == TRIALS
    assert sorted(by_uid(dst, TRIALS)) == [f"u{i:02d}" for i in range(10)] + ["u11"]  # pages before it only
    assert dst.find_one(TRIALS, {"uid": "u11"})["x"] == "different"  # type: ignore[index]
    report = migrate(src, dst, on_conflict="skip", batch=5)  # a rerun resumes
    assert report.collections[TRIALS].copied == 9 and report.collections[TRIALS].unchanged == 10
    assert dst.count(TRIALS) == 20


def test_invalid_arguments() -> None:
    with pytest.raises(MigrationError):
        migrate(MemoryStore(), MemoryStore(), batch=0)
    with pytest.raises(MigrationError):
        migrate(MemoryStore(), MemoryStore(), on_conflict="replace")
    s = MemoryStore()
    with pytest.raises(MigrationError):
        migrate(s, s)
    with pytest.raises(MigrationError):
        migrate("ephemeral:", "ephemeral:")
    with pytest.raises(NotFoundError):
        migrate("pickled:///nonexistent/dir/x.pkl", MemoryStore())
    assert issubclass(MigrationError, ValueError)


# -- dry run ---------------------------------------------------------------------------------------
def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    src, dst, theirs, ours = _conflicting()
    before = {c: exact(by_uid(dst, c)) for c in COLLECTIONS}
    report = migrate(src, dst, on_conflict="bump", dry_run=True, batch=4)
    assert {c: exact(by_uid(dst, c)) for c in COLLECTIONS} == before
    assert report.dry_run and report.verification is None and report.ok
    assert report.collections[TRIALS].bumped == 1
    assert report.collections[TRIALS].copied == src.count(TRIALS) - 1
    assert "dry run" in report.summary()

    missing = tmp_path / "new.jsonl"
    report = migrate(src, f"file://{missing}", dry_run=True)
    assert report.total("copied") == report.total("source")
    assert not missing.exists()

    existing = tmp_path / "old.pkl"
    with open_store(f"pickled://{existing}") as s:
        s.insert(TRIALS, {"uid": "x"})
    data = existing.read_bytes()
    migrate(src, f"pickled://{existing}", dry_run=True, on_conflict="overwrite")
    assert existing.read_bytes() == data


# -- refused documents and verification ------------------------------------------------------------
class Refusing(MemoryStore):
    """A destination that refuses documents whose uid ends with '7'."""

    def insert(self, collection: str, doc: dict[str, Any]) -> None:
        if doc["uid"].endswith("7"):
            raise EncodingError(f"cannot store {doc['uid']}")
        super().insert(collection, doc)

    def insert_many(self, collection: str, docs: Any) -> int:
        docs = list(docs)
        if any(d["uid"].endswith("7") for d in docs):
            raise EncodingError("one of them cannot be stored")
        return super().insert_many(collection, docs)


class Forgetful(MemoryStore):
    """A destination that loses writes to trials and garbles one document."""

    def insert_many(self, collection: str, docs: Any) -> int:
        docs = [dict(d) for d in docs]
        if collection == TRIALS:
            docs = [dict(d, x=-1) if d["uid"] == "u01" else d for d in docs if d["uid"] != "u02"]
        return super().insert_many(collection, docs)


def test_refused_documents_are_counted_and_the_rest_is_copied() -> None:
    src, dst = MemoryStore(), Refusing()
    src.insert_many(TRIALS, [{"uid": f"u{i:02d}", "x": i} for i in range(20)])
    report = migrate(src, dst, batch=6)
    rep = report.collections[TRIALS]
    assert rep.failed == 2 and rep.copied == 18 and rep.missing == 2
    assert not report.ok and report.verification is False
    assert any("u07" in p for p in rep.problems)


def test_verification_detects_lost_and_changed_documents() -> None:
    src, dst = MemoryStore(), Forgetful()
    src.insert_many(TRIALS, [{"uid": f"u{i:02d}", "x": i} for i in range(5)])
    report = migrate(src, dst)
    rep = report.collections[TRIALS]
    assert report.verification is False and not report.ok
    assert rep.missing == 1 and rep.differing == 1 and rep.kept == 0  # copied by this run, yet different
    report = migrate(src, dst, on_conflict="overwrite")
    assert report.collections[TRIALS].overwritten == 1
    assert report.collections[TRIALS].missing == 1  # u02 is lost again
    assert "MISMATCH" in report.summary()


def test_concurrent_insert_of_the_same_uid_is_resolved() -> None:
    class Racing(MemoryStore):
        raced = False

        def insert_many(self, collection: str, docs: Any) -> int:
            docs = list(docs)
            if not self.raced and collection == TRIALS:
                self.raced = True
                super().insert(collection, dict(docs[0]))  # another writer got there first
                raise DuplicateKeyError("race")
            return super().insert_many(collection, docs)

    src, dst = MemoryStore(), Racing()
    src.insert_many(TRIALS, [{"uid": f"u{i}", "x": i} for i in range(4)])
    report = migrate(src, dst)
    assert report.collections[TRIALS].copied == 3 and report.collections[TRIALS].unchanged == 1
    assert report.verification is True


def test_checksum_is_type_aware_and_ignores_store_fields() -> None:
    base = {"uid": "a", "v": 1}
    for other in (1.0, True, "1", [1], {"v": 1}):
        assert document_checksum(base) != document_checksum({"uid": "a", "v": other})
    assert document_checksum({"uid": "a", "v": 0.0}) != document_checksum({"uid": "a", "v": -0.0})
    assert document_checksum({"uid": "a", "v": 1, "_id": "x"}) == document_checksum(base)
    assert document_checksum({"v": 1, "uid": "a"}) == document_checksum(base)
    assert document_checksum({"uid": "a", "v": [1, 2]}) != document_checksum({"uid": "a", "v": [2, 1]})
    doc = dataset()[TRIALS][4]
    assert document_checksum(doc) == canonical_hash(doc)


# -- progress --------------------------------------------------------------------------------------
class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    src = MemoryStore()
    src.insert_many(TRIALS, [{"uid": f"u{i:03d}"} for i in range(30)])

    plain = io.StringIO()
    progress = make_progress(plain)
    assert isinstance(progress, LineProgress)
    migrate(src, MemoryStore(), batch=10, progress=progress)
    lines = plain.getvalue().splitlines()
    assert "trials: 0/30" in lines and "trials: 30/30" in lines and "verify trials: 30/30" in lines
    assert all(":" in line and "/" in line and "\r" not in line for line in lines)

    tty = TTY()
    bar = make_progress(tty)
    assert isinstance(bar, BarProgress)
    migrate(src, MemoryStore(), batch=10, progress=bar)
    bar.close()
    out = tty.getvalue()
    assert "trials" in out and "30/30" in out and "\r" in out


def test_line_progress_throttles_but_prints_starts_and_ends() -> None:
    out = io.StringIO()
    p = LineProgress(out, interval=3600)
    for i in range(0, 101, 10):
        p("trials", i, 100)
    assert out.getvalue().splitlines() == ["trials: 0/100", "trials: 100/100"]


# -- command line ----------------------------------------------------------------------------------
def _populate(path: str, n: int) -> None:
    with open_store(path) as s:
        s.insert(PROJECTS, Project("p").to_doc())
        group = TrialGroup("g", project_id="p")
        s.insert(GROUPS, group.to_doc())
        trials = [Trial({"i": i, "f": i / 7}, project_id="p", group_id=group.uid) for i in range(n)]
        s.insert_many(TRIALS, [t.to_doc() for t in trials])


def test_cli_migrates_and_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"pickled://{tmp_path}/s.pkl", f"file://{tmp_path}/d.jsonl"
    _populate(src, 25)
    assert main(["migrate", src, dst, "--batch", "10"]) == 0
    out, err = capsys.readouterr()
    assert "verification: OK" in out and "trials" in out
    assert "trials: 25/25" in err  # stderr is not a terminal here: plain lines
    assert main(["migrate", src, dst, "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    row = next(line.split() for line in out.splitlines() if line.startswith("trials"))
    assert row[1:4] == ["25", "0", "25"]  # source, copied, unchanged


def test_cli_dry_run_and_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"pickled://{tmp_path}/s.pkl", tmp_path / "d.jsonl"
    _populate(src, 10)
    assert main(["migrate", src, f"file://{dst}", "--dry-run", "-q"]) == 0
    assert "dry run" in capsys.readouterr().out and not dst.exists()
    query = '{"parameters.i": {"$lt": 4}}'
    assert main(["migrate", src, f"file://{dst}", "--query", query, "-q"]) == 0
    capsys.readouterr()
    with open_store(f"file://{dst}") as d:
        assert d.count(TRIALS) == 4 and d.count(GROUPS) == 1 and d.count(PROJECTS) == 1


def test_cli_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = f"pickled://{tmp_path}/s.pkl", f"pickled://{tmp_path}/d.pkl"
    _populate(src, 3)
    cases = [
        (["migrate", f"pickled://{tmp_path}/missing.pkl", dst], "no store"),
        (["migrate", src, dst, "--query", "{bad"], "not valid JSON"),
        (["migrate", src, dst, "--query", "[1]"], "JSON object"),
        (["migrate", src, dst, "--query", '{"x": {"$nope": 1}}'], "$nope"),
        (["migrate", src, dst, "--batch", "0"], "batch"),
        (["migrate", src, "nosuchscheme://x"], "nosuchscheme"),
    ]
    for argv, needle in cases:
        assert main([*argv, "-q"]) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and needle in err, (argv, err)
    with open_store(dst) as d:
        t = d.find_one(TRIALS) if d.count(TRIALS) else None
    assert t is None
    with open_store(src) as s:
        victim = dict(s.find(TRIALS, sort=[("uid", 1)])[1], tags={"dst": 1})
    with open_store(dst) as d:
        d.insert(TRIALS, victim)
    assert main(["migrate", src, dst, "--on-conflict", "fail", "-q"]) == 2
    err = capsys.readouterr().err
    assert victim["uid"] in err and len(err.strip().splitlines()) == 1


def test_cli_exits_1_on_a_verification_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = MemoryStore(), Forgetful()
    src.insert_many(TRIALS, [{"uid": f"u{i:02d}", "x": i} for i in range(5)])
    for s in (src, dst):
        s.close = lambda: None  # type: ignore[method-assign]  # shared between opens
    register("migsrc", lambda uri: src, replace=True)
    register("migdst", lambda uri: dst, replace=True)
    try:
        assert main(["migrate", "migsrc:", "migdst:", "-q"]) == 1
    finally:
        unregister("migsrc")
        unregister("migdst")
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "u02: missing" in out


def test_cli_interrupt_says_how_to_resume(capsys: pytest.CaptureFixture[str]) -> None:
    class Interrupted(MemoryStore):
        def count(self, *args: Any, **kwargs: Any) -> Any:
            raise KeyboardInterrupt

    register("migint", lambda uri: Interrupted(), replace=True)
    try:
        assert main(["migrate", "migint:", "ephemeral:", "-q"]) == 130
    finally:
        unregister("migint")
    assert "run the same command again to resume" in capsys.readouterr().err


def test_cli_help_mentions_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["migrate", "--help"])
    out = capsys.readouterr().out
    for opt in ("--query", "--batch", "--on-conflict", "--dry-run", "skip", "overwrite", "bump", "fail", "pickled:"):
        assert opt in out


# -- a killed migration, resumed -------------------------------------------------------------------
def test_killed_migration_resumes_without_duplicates(tmp_path: Path) -> None:
    n = 8_000
    src, dst = f"pickled://{tmp_path}/src.pkl", f"file://{tmp_path}/dst.jsonl"
    _populate(src, n)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "track_backends.cli", "migrate", src, dst]
    proc = subprocess.Popen(  # noqa: S603 - our own command line
        [*argv, "--batch", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    journal = tmp_path / "dst.jsonl"
    seen = []
    deadline = time.monotonic() + 60
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # plain progress lines (stderr is a pipe): wait for the trials
            seen.append(line.strip())
            if line.startswith("trials: "):
                break
        start = journal.stat().st_size
        while journal.stat().st_size < start + 50_000:  # some dozens of batches of trials are written
            assert proc.poll() is None and time.monotonic() < deadline, seen
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, seen
    with open_store(dst) as d:
        partial = d.count(TRIALS)
    assert 0 < partial < n, (partial, seen)

    done = subprocess.run([*argv, "--batch", "1000", "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verification: OK" in done.stdout
    row = next(line.split() for line in done.stdout.splitlines() if line.startswith("trials"))
    source, copied, unchanged = map(int, row[1:4])
    assert source == n and copied + unchanged == n and unchanged >= partial
    with open_store(src) as s, open_store(dst) as d:
        uids = [x["uid"] for p in iter_pages(d, TRIALS, None, 5000) for x in p]
        assert len(uids) == len(set(uids)) == n
        assert set(uids) == {x["uid"] for p in iter_pages(s, TRIALS, None, 5000) for x in p}
        for p in iter_pages(s, TRIALS, None, 5000):
            mine = by_uid_in(d, [x["uid"] for x in p])
            assert all(exact(mine[x["uid"]]) == exact(x) for x in p)
        assert d.count(PROJECTS) == d.count(GROUPS) == 1
    again = subprocess.run([*argv, "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0
    row = next(line.split() for line in again.stdout.splitlines() if line.startswith("trials"))
    assert row[2] == "0"  # nothing copied the third time


def by_uid_in(store: Store, uids: list[str]) -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in store.find(TRIALS, {"uid": {"$in": uids}})}
