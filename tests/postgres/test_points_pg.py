"""Metric points on PostgreSQL: the same answers as the memory store, one transaction, one statement.

The memory store is the reference: reads of points (names, start/stop, last, attempts) and the
sort and filter on ``metric_summary.<name>.min/max`` must give exactly what it gives, NaN, the
infinities, ints, floats, strings and missing summaries included.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import with_options

from track_backends import Trial, errors, get_protocol
from track_backends.protocol import DocumentProtocol
from track_backends.query.equality import same_value
from track_backends.registry import open_store
from track_backends.store import TRIALS, Store
from track_backends.stores.memory import MemoryStore
from track_backends.stores.points import select

FIXTURE = Path(__file__).parents[1] / "fixtures" / "layout1" / "postgres.sql"
INF = math.inf
NAN = math.nan


@pytest.fixture
def store(pg_uri: str) -> Iterator[Store]:
    s = open_store(pg_uri)
    yield s
    s.close()


def _plain(got: dict[str, dict[str, list[tuple[Any, Any]]]]) -> Any:
    """Lists instead of tuples, so that :func:`same_value` compares (NaN equals NaN)."""
    return {u: {n: [list(p) for p in pts] for n, pts in series.items()} for u, series in got.items()}


def _same(a: Any, b: Any) -> bool:
    return same_value(_plain(a), _plain(b))


# -- reads: the memory store's answers ------------------------------------------------------------

STEPS: list[Any] = [0, 1, 2, 2.5, -1, 10**18, 2**53 + 1, 1e16, -0.0, 0.1, 0.30000000000000004, INF, -INF, NAN]
STEPS += [True, False, None, "3", [1], {"a": 1}]
VALUES: list[Any] = [0.5, -2, NAN, INF, -INF, "x", None, True, {"b": [1, 2], "a": 1}, [1.0, 2], 10**18, 1e300]
BOUNDS: list[Any] = [None, 0, 1, 2.5, -1, 0.3, 0.30000000000000004, 2**53 + 1, 1e16, INF, -INF, NAN, 10**18]


def _fill(stores: list[Store], seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    uids = [f"u{i}" for i in range(6)]
    for uid in uids:
        for s in stores:
            s.insert(TRIALS, {"uid": uid})
    for _ in range(60):
        uid = rng.choice(uids)
        attempt = rng.choice([0, 0, 1, 2, 3])
        batch = [
            (rng.choice(["loss", "acc", "lr"]), rng.choice(STEPS), rng.choice(VALUES)) for _ in range(rng.randint(1, 5))
        ]
        for s in stores:
            assert s.append_points(TRIALS, uid, batch, attempt=attempt)
    return uids


def test_reads_match_the_memory_store(store: Store) -> None:
    mem = MemoryStore()
    uids = _fill([store, mem])
    rng = random.Random(11)
    asked = [*uids, "ghost", uids[0]]
    cases = [{}]
    for _ in range(150):
        case: dict[str, Any] = {
            "start": rng.choice(BOUNDS),
            "stop": rng.choice(BOUNDS),
            "last": rng.choice([None, None, 0, 1, 2, 5]),
        }
        if rng.random() < 0.4:
            case["names"] = rng.sample(["loss", "acc", "lr", "nope"], rng.randint(0, 3))
        if rng.random() < 0.5:
            case["attempts"] = {u: rng.choice([0, 1, 2, 3, 9]) for u in rng.sample(uids, 3)}
        cases.append(case)
    for case in cases:
        want = _reference(mem, asked, case)
        got = store.fetch_points(TRIALS, asked, **case)
        assert _same(got, want), case
        if all(case.get(k) is None for k in ("start", "stop", "last")):
            assert _same(got, mem.fetch_points(TRIALS, asked, **case)), case
            for uid in uids:  # the names in the order of their first point
                assert list(got.get(uid, {})) == list(want.get(uid, {})), case


def _reference(mem: MemoryStore, uids: list[str], case: dict[str, Any]) -> dict[str, Any]:
    """What a read returns: :func:`select` over the memory store's series of each uid.

    A name is kept when one of its points passes ``names``/``start``/``stop`` (with ``last=0``,
    with no points), a uid when one of its names is: what ``select`` and the memory store give
    when no ``start``/``stop`` is asked for. Two differences from them, both reported upstream:
    with a range, the memory store also keeps the names whose points all fall outside it, with
    no points; and ``last=k`` of a series shorter than ``k`` keeps only its last
    ``k - len`` points there (``v[len(v) - k:]``), where every point is meant.
    """
    out = {}
    every = mem.fetch_points(TRIALS, uids, attempts=case.get("attempts"))
    for uid, series in every.items():
        flat = [(name, step, value) for name, pts in series.items() for step, value in pts]
        got = select(flat, names=case.get("names"), start=case.get("start"), stop=case.get("stop"))
        last = case.get("last")
        if last is not None:  # select(last=k) keeps too few when a series is shorter than k
            got = {name: pts[-last:] if last else [] for name, pts in got.items()}
        if got:
            out[uid] = got
    return out


def test_bad_reads_and_appends_raise_query_errors(store: Store) -> None:
    store.insert(TRIALS, {"uid": "a"})
    for bad in ({"start": "a"}, {"stop": True}, {"last": -1}, {"last": 1.5}, {"names": "loss"}):
        with pytest.raises(errors.QueryError):
            store.fetch_points(TRIALS, ["a"], **bad)
    with pytest.raises(errors.QueryError):
        store.fetch_points(TRIALS, "a")
    with pytest.raises(errors.QueryError):
        store.append_points(TRIALS, "a", [("x", 1)])  # type: ignore[list-item]
    with pytest.raises(errors.QueryError):
        store.append_points(TRIALS, "a", [("x", 1, 1.0)], attempt="1")  # type: ignore[arg-type]
    with pytest.raises(errors.EncodingError):
        store.append_points(TRIALS, "a", [("x.y", 1, 1.0)])
    assert store.fetch_points(TRIALS, ["a"]) == {}
    assert store.fetch_points("nothing_here", ["a"]) == {} and store.delete_points("nothing_here", ["a"]) == 0


# -- one transaction ------------------------------------------------------------------------------


def test_an_update_that_matches_nothing_or_fails_writes_no_point(store: Store) -> None:
    store.insert(TRIALS, {"uid": "a", "lease": {"token": 2}, "metric_summary": "not a document"})
    store.insert(TRIALS, {"uid": "b", "lease": {"token": 2}})
    inc = {"$inc": {"metric_summary.loss.count": 1}}
    fenced = {"uid": "b", "lease.token": 1}
    assert not store.append_points(TRIALS, "b", [("loss", 0, 1.0)], query=fenced, update=inc)
    assert not store.append_points(TRIALS, "b", [("loss", 0, 1.0)], query={"uid": "a"}, update=inc)  # not b
    with pytest.raises(errors.QueryError):  # $inc cannot walk into a string: the transaction rolls back
        store.append_points(TRIALS, "a", [("loss", 0, 1.0)], update=inc)
    with pytest.raises(errors.EncodingError):  # PostgreSQL refuses U+0000 after the update ran
        store.append_points(TRIALS, "b", [("loss", 0, "\x00")], update=inc)
    assert store.fetch_points(TRIALS, ["a", "b"]) == {}
    assert store.find_one(TRIALS, {"uid": "b"}) == {"uid": "b", "lease": {"token": 2}}
    assert store.append_points(TRIALS, "b", [("loss", 0, 1.0)], query={"uid": "b", "lease.token": 2}, update=inc)
    assert store.find_one(TRIALS, {"uid": "b"})["metric_summary"] == {"loss": {"count": 1}}  # type: ignore[index]


def test_a_batch_is_one_insert_and_deleting_documents_deletes_their_points(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.insert_many(TRIALS, [{"uid": f"t{i}", "name": f"n{i}"} for i in range(4)])
    calls: list[str] = []
    original = psycopg.Connection.execute

    def counting(conn: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        calls.append(str(query))
        return original(conn, query, params, **kw)

    monkeypatch.setattr(psycopg.Connection, "execute", counting)
    update = {"$inc": {"metric_summary.loss.count": 1}}
    for n in (1, 20_000):
        del calls[:]
        assert store.append_points(TRIALS, "t0", [("loss", s, s / 7) for s in range(n)], update=update)
        assert sum("INSERT INTO" in q for q in calls) == 1
    del calls[:]
    got = store.fetch_points(TRIALS, [f"t{i}" for i in range(4)] * 3, last=2)
    assert len(calls) == 1 and got == {"t0": {"loss": [(19_998, 19_998 / 7), (19_999, 19_999 / 7)]}}
    monkeypatch.undo()
    for i in (1, 2, 3):
        store.append_points(TRIALS, f"t{i}", [("acc", 0, float(i))])
    assert store.delete(TRIALS, {"uid": "t0"}) == 1  # one statement
    assert store.delete(TRIALS, {"name": {"$regex": "(?<=n)1"}}) == 1  # checked in Python: the other path
    assert set(store.fetch_points(TRIALS, ["t0", "t1", "t2", "t3"])) == {"t2", "t3"}
    assert store.delete_points(TRIALS, ["t2", "t2"]) == 1 and store.delete_points(TRIALS, []) == 0


def test_a_growing_series_does_not_grow_the_document(store: Store, pg_admin: Any) -> None:
    store.insert(TRIALS, {"uid": "a"})
    for step in range(300):
        store.append_points(TRIALS, "a", [("loss", step, 1.0 / (step + 1))], update={"$inc": {"n": 1}})
    schema = store.schema  # type: ignore[attr-defined]
    size = pg_admin.execute(f'SELECT pg_column_size(doc) FROM "{schema}".trials WHERE uid = %s', ("a",)).fetchone()[0]
    assert size < 100 and store.find_one(TRIALS, {"uid": "a"}) == {"uid": "a", "n": 300}
    rows = pg_admin.execute(f'SELECT count(*) FROM "{schema}"."trials$points" WHERE uid = %s', ("a",)).fetchone()
    assert rows[0] == 300


# -- metric_summary: sort and filter as the memory store does -------------------------------------

SERIES: list[list[tuple[Any, Any]]] = [
    [(0, 0.5), (1, 0.25)],
    [(0, 2), (1, -3)],
    [(0, NAN)],  # NaN is ignored by min/max: no min, no max
    [(0, INF), (1, 7.0)],
    [(0, -INF)],
    [(0, "high"), (1, 1.5)],
    [(0, 0.25), (1, NAN), (2, 0.75)],
    [(0, 10**18), (1, 1e18)],
    [(0, 0.1), (1, 0.30000000000000004)],
    [(0, True), (1, None)],
]


def _protocols(pg_uri: str) -> Iterator[DocumentProtocol]:
    for uri in (pg_uri, "ephemeral:"):
        proto = get_protocol(uri)
        for i, series in enumerate(SERIES):
            t = Trial({"i": i}, name="diff", group_id="g")
            proto.new_trial(t)
            for j in range(0, len(series), 2):
                proto.log_trial_metrics_batch(t, {"loss": series[j : j + 2], "acc": [(j, float(i))]})
        quiet = Trial({"i": len(SERIES)}, name="diff", group_id="g")  # no summary at all
        proto.new_trial(quiet)
        yield proto


def test_metric_summary_sorts_and_filters_as_the_memory_store(pg_uri: str) -> None:
    pg, mem = list(_protocols(pg_uri))
    try:
        for field in ("metric_summary.loss.min", "metric_summary.loss.max", "metric_summary.loss.last"):
            for direction in (1, -1):
                sort = [(field, direction), ("parameters.i", 1)]
                want = [t.parameters["i"] for t in mem.fetch_trials({"group_id": "g"}, sort=sort, metrics=False)]
                got = [t.parameters["i"] for t in pg.fetch_trials({"group_id": "g"}, sort=sort, metrics=False)]
                assert got == want, (field, direction)
                got3 = pg.fetch_trials({"group_id": "g"}, sort=sort, limit=3, metrics=["loss"])
                assert [t.parameters["i"] for t in got3] == want[:3]
                mine = {t.parameters["i"]: t.metrics for t in mem.fetch_trials({"group_id": "g"}, metrics=["loss"])}
                assert all(_same({"x": t.metrics}, {"x": mine[t.parameters["i"]]}) for t in got3)
        for op in ("$lt", "$lte", "$gt", "$gte", "$eq", "$ne"):
            for value in (0.25, -3, 1e18, INF, -INF, NAN, 0.30000000000000004, "high"):
                for field in ("metric_summary.loss.min", "metric_summary.loss.max"):
                    query = {field: {op: value}}
                    want = {t.parameters["i"] for t in mem.fetch_trials(query, metrics=False)}
                    got = {t.parameters["i"] for t in pg.fetch_trials(query, metrics=False)}
                    assert got == want, query
        exists = {"metric_summary.loss.min": {"$exists": False}}
        assert {t.parameters["i"] for t in pg.fetch_trials(exists, metrics=False)} == {2, 9, len(SERIES)}
    finally:
        pg.close()
        mem.close()


# -- the layout before points moved out of trials ---------------------------------------------------


def _restore_layout_1(server_uri: str, schema: str) -> None:
    """Restore the ``pg_dump`` of schema ``legacy`` into ``schema`` (on a connection of its own)."""
    text = FIXTURE.read_text()
    text = text.replace("CREATE SCHEMA legacy;", f'CREATE SCHEMA "{schema}";')
    text = text.replace('"legacy".', f'"{schema}".').replace("legacy.", f'"{schema}".')
    with psycopg.connect(server_uri, autocommit=True) as conn:
        conn.execute(text)  # type: ignore[arg-type]


def test_a_layout_1_schema_is_migrated(pg_server_uri: str, pg_schema: str, pg_admin: Any) -> None:
    _restore_layout_1(pg_server_uri, pg_schema)
    uri = with_options(pg_server_uri, schema=pg_schema)
    with get_protocol(uri) as proto:
        trials = proto.fetch_trials(sort=[("parameters.i", 1)])
        assert len(trials) == 3
        for i, t in enumerate(trials):
            assert t.metrics["loss"] == [(s, 1.0 / (s + 1 + i)) for s in range(5)]
            assert t.metrics["acc"] == [(s, 0.1 * s) for s in range(5)]
            assert t.metric_summary["loss"] == {
                "count": 5,
                "last": 1.0 / (5 + i),
                "last_step": 4,
                "min": 1.0 / (5 + i),
                "max": 1.0 / (1 + i),
            }
            assert "metrics" not in proto.store.find_one(TRIALS, {"uid": t.uid})  # type: ignore[operator]
        best = proto.fetch_trials(sort=[("metric_summary.loss.min", 1)], metrics=False)
        assert [t.parameters["i"] for t in best] == [2, 1, 0]
        worst = proto.fetch_trials({"metric_summary.loss.max": {"$gte": 0.5}}, sort=[("parameters.i", -1)])
        assert [t.parameters["i"] for t in worst] == [1, 0]
        proto.log_trial_metrics(trials[0], step=5, loss=0.01)
        proto.log_trial_metrics_batch(trials[1], {"loss": [(5, 0.02), (6, 0.03)]})
    version = pg_admin.execute(f'SELECT value FROM "{pg_schema}"."tb$meta" WHERE key = %s', ("schema_version",))
    assert version.fetchone()[0] == 3  # 1 -> 2 (points tables) -> 3 (blob tables)
    stats = pg_admin.execute(
        "SELECT attstattarget FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'k_d9e62284168a9864'",
        (f'"{pg_schema}".trials',),
    ).fetchone()
    assert stats[0] == 0  # the status key column carries no statistics (claims stay on the index)
    with get_protocol(uri) as proto:
        t0, t1, _ = proto.fetch_trials(sort=[("parameters.i", 1)])
        assert t0.metrics["loss"][-2:] == [(4, 0.2), (5, 0.01)] and t0.metric_summary["loss"]["count"] == 6
        assert t1.metrics["loss"][-3:] == [(4, 1 / 6), (5, 0.02), (6, 0.03)]
        assert t1.metric_summary["loss"]["min"] == 0.02
        proto.put_artifact(t0, "after.bin", b"blobs work after the upgrade")
        assert proto.read_artifact(t0, "after.bin") == b"blobs work after the upgrade"
        assert proto.store.delete(TRIALS, {"uid": t0.uid}) == 1
        assert proto.store.fetch_points(TRIALS, [t0.uid]) == {}
