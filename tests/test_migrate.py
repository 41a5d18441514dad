"""``migrate(src, dst)``: round trips across every pair of backends, idempotent reruns, paging,
selection, conflict policies, the same-store check, dry runs and verification.

The backends and the data are in ``migrate_helpers``; the command line, progress display and a
killed run resumed are in ``test_migrate_cli``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from migrate_helpers import (  # noqa: F401 - fixtures: pytest finds them in this module's namespace
    HAS_MONGO,
    KINDS,
    Backends,
    Forgetful,
    Refusing,
    backends_fixture,
    by_uid,
    dataset,
    exact,
    fill,
    fill_points,
    keeps_negative_zero,
    pg_admin,
    pg_server_uri,
    series,
)

from track_backends import Trial, open_store
from track_backends.cli import main
from track_backends.errors import DuplicateKeyError, NotFoundError, QueryError
from track_backends.migrate import (
    COLLECTIONS,
    MIGRATED_FROM,
    MigrationConflictError,
    MigrationError,
    document_checksum,
    iter_pages,
    migrate,
)
from track_backends.migrate.conflicts import overwrite_update
from track_backends.model import canonical_hash
from track_backends.query.equality import same_value
from track_backends.store import GROUPS, PROJECTS, TRIALS
from track_backends.stores.memory import MemoryStore


# -- round trips -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("src_kind", "dst_kind"), list(itertools.product(KINDS, KINDS)))
def test_round_trip_keeps_every_field_bit_for_bit(backends: Backends, src_kind: str, dst_kind: str) -> None:
    src, dst = backends.open(src_kind), backends.open(dst_kind)
    with_points = fill_points(src, fill(src))
    before = {c: by_uid(src, c) for c in COLLECTIONS}
    report = migrate(src, dst, batch=7)
    assert same_value(series(dst, list(before[TRIALS].values())), series(src, list(before[TRIALS].values())))
    assert report.collections[TRIALS].series_copied == report.collections[TRIALS].series_verified == with_points

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
    assert again.total("points_copied") == 0 and again.total("series_unchanged") == with_points - len(lossy)
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

    import track_backends.migrate.paging as m

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
    fill_points(src, data)
    theirs = dict(data[TRIALS][2])
    ours = dict(theirs, metric_summary={"loss": {"count": 1, "last": 9.0}}, extra="only in dst")
    dst.insert(TRIALS, ours)
    dst.append_points(TRIALS, ours["uid"], [("loss", 0, 9.0)])
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
    assert bumped["metric_summary"] == theirs["metric_summary"] and bumped["parameters"] == theirs["parameters"]
    mine = series(dst, [bumped])[bumped["uid"]]
    assert same_value(mine, series(src, [theirs])[theirs["uid"]]) and sorted(mine) == [0, 1, 2]  # with its points
    assert dst.fetch_points(TRIALS, [ours["uid"]]) == {ours["uid"]: {"loss": [(0, 9.0)]}}  # theirs kept
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


@pytest.mark.parametrize("scheme", ["pickled", "file"])
def test_a_symlink_to_the_source_is_the_same_store(tmp_path: Path, scheme: str) -> None:
    real = tmp_path / "real.db"
    with open_store(f"{scheme}://{real}") as s:
        s.insert(TRIALS, {"uid": "t"})
    (tmp_path / "link.db").symlink_to(real)
    data = real.read_bytes()
    with pytest.raises(MigrationError, match="same store"):
        migrate(f"{scheme}://{real}", f"{scheme}://{tmp_path}/link.db")
    with pytest.raises(MigrationError, match="same store"):  # the codec does not make it another file
        migrate(f"pickled://{tmp_path}/link.db", f"file://{real}")
    assert real.read_bytes() == data


def test_a_relative_and_an_absolute_path_to_one_file_are_the_same_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with open_store("pickled:../a.pkl") as s:
        s.insert(TRIALS, {"uid": "t"})
    with pytest.raises(MigrationError, match="same store"):
        migrate("pickled:../a.pkl", f"pickled://{tmp_path}/a.pkl")
    assert main(["migrate", f"pickled://{tmp_path}/sub/../a.pkl", "pickled:../a.pkl", "-q"]) == 2
    assert "same store" in capsys.readouterr().err
    report = migrate("pickled:../a.pkl", f"pickled://{tmp_path}/b.pkl")  # another file is another store
    assert report.ok and report.total("copied") == 1


def test_overwrite_writes_only_what_differs_and_upserts_the_whole_document() -> None:
    old = {"uid": "t", "a": 1, "b": {"x": [1, 2]}, "extra": True, "_id": 5}
    new = {"uid": "t", "a": 1.0, "b": {"x": [1, 2]}, "c": "new"}
    update = overwrite_update(old, new)
    assert update == {"$set": {"a": 1.0, "c": "new"}, "$unset": {"extra": ""}, "$setOnInsert": {"b": {"x": [1, 2]}}}

    class Racing(MemoryStore):
        """A destination whose conflicting document is deleted just before the overwrite."""

        def update(self, collection, query, update, *, many=False, upsert=False):  # type: ignore[override]
            self.delete(collection, query)
            return super().update(collection, query, update, many=many, upsert=upsert)

    src, dst = MemoryStore(), Racing()
    src.insert(TRIALS, dict(new))
    dst.insert(TRIALS, {k: v for k, v in old.items() if k != "_id"})
    report = migrate(src, dst, on_conflict="overwrite")
    assert report.collections[TRIALS].overwritten == 1 and report.verification is True
    assert document_checksum(dst.find_one(TRIALS, {"uid": "t"})) == document_checksum(new)  # type: ignore[arg-type]


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
    every = src.fetch_points(TRIALS, [d["uid"] for d in src.find(TRIALS)])
    assert report.collections[TRIALS].series_copied == len(every)  # each trial's points counted, none written
    assert report.collections[TRIALS].points_copied == sum(len(p) for s in every.values() for p in s.values())
    assert dst.fetch_points(TRIALS, list(every)) == {ours["uid"]: {"loss": [(0, 9.0)]}}

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


# -- metric points ---------------------------------------------------------------------------------
def test_a_cut_short_copy_is_completed_and_a_skipped_trial_keeps_its_points() -> None:
    src, dst, theirs, ours = _conflicting()
    victim = src.find_one(TRIALS, {"uid": src.find(TRIALS, sort=[("uid", 1)])[0]["uid"]})
    assert victim is not None and src.fetch_points(TRIALS, [victim["uid"]])
    dst.insert(TRIALS, victim)
    dst.append_points(TRIALS, victim["uid"], [("loss", 0, 0.5)])  # the start of its series: a copy cut short
    report = migrate(src, dst, batch=4)
    rep = report.collections[TRIALS]
    assert (rep.series_kept, rep.skipped, report.verification) == (0, 1, True)
    assert same_value(series(dst, [victim]), series(src, [victim]))
    assert dst.fetch_points(TRIALS, [ours["uid"]]) == {ours["uid"]: {"loss": [(0, 9.0)]}}  # the kept trial's own


def test_points_that_differ_conflict_fail_and_bump_once() -> None:
    src, dst = MemoryStore(), MemoryStore()
    fill_points(src, fill(src, data := dataset()))
    fill(dst, data)
    doc = data[TRIALS][0]
    dst.append_points(TRIALS, doc["uid"], [("loss", 0, 7.0)])
    with pytest.raises(MigrationConflictError, match=doc["uid"]):
        migrate(src, dst, on_conflict="fail", batch=5)
    for run in range(2):
        report = migrate(src, dst, on_conflict="bump", batch=5)
        assert (report.collections[TRIALS].bumped, report.verification) == (1 - run, True)
    copy = dst.find_one(TRIALS, {f"metadata.{MIGRATED_FROM}": doc["uid"]})
    assert copy is not None and same_value(series(dst, [copy])[copy["uid"]], series(src, [doc])[doc["uid"]])


# -- refused documents and verification ------------------------------------------------------------
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
