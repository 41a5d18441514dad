"""The "history" phase: metric points at scale, per store.

For one store, on fresh trials of the bench's group:

* **per point, unbatched**: the cost of one ``log_trial_metrics`` call on a trial that holds
  :data:`SMALL` points, and on one that holds ``points`` (default 100,000; the trial is filled
  with batches first, untimed). Flat means the millionth point costs what the first did.
* **batched**: points per second of ``log_trial_metrics_batch`` with :data:`BATCH` points per call.
* **read**: milliseconds to read the whole ``points``-long series with ``fetch_metrics``.
* **fetch without points**: ``fetch_trials(query, metrics=False)`` over ``trials`` trials that
  each hold ``per_trial`` points, divided by the same query over as many trials without points.
* on MongoDB, ``ref:pymongo``: raw ``insert_many`` of the same points, one small document each.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from ..model import Trial
from ..protocol import DocumentProtocol
from ..store import Store
from .workload import GROUP, start

SMALL = 1_000
TIMED = 300
"""Unbatched calls timed at each size."""
BATCH = 10_000
BATCHES = 5


def _trial(proto: DocumentProtocol, i: int) -> Trial:
    t = Trial({"history": i}, project_id="p", group_id=GROUP)
    proto.new_trial(t)
    return t


def _fill(proto: DocumentProtocol, t: Trial, have: int, want: int) -> int:
    while have < want:
        k = min(BATCH, want - have)
        proto.log_trial_metrics_batch(t, {"loss": [(s, 1.0 / (s + 1)) for s in range(have, have + k)]})
        have += k
    return have


def _per_point_us(proto: DocumentProtocol, t: Trial, have: int) -> float:
    t0 = start()
    for s in range(have, have + TIMED):
        proto.log_trial_metrics(t, step=s, loss=1.0 / (s + 1))
    return (time.perf_counter() - t0) / TIMED * 1e6


def _fetch_ms(proto: DocumentProtocol, query: dict[str, Any], n: int, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        got = proto.fetch_trials(query, metrics=False)
        times.append((time.perf_counter() - t0) * 1e3)
        if len(got) != n:
            raise ValueError(f"fetch_trials returned {len(got)} trials, expected {n}")
    return statistics.median(times)


def history(store: Store, *, points: int = 100_000, trials: int = 1_000, per_trial: int = 1_000) -> dict[str, Any]:
    """Run the history phase on an empty store; see the module docstring for what is measured."""
    proto = DocumentProtocol(store)
    t = _trial(proto, 0)
    have = _fill(proto, t, 0, SMALL)
    small = _per_point_us(proto, t, have)
    have = _fill(proto, t, have + TIMED, points)
    large = _per_point_us(proto, t, have)
    reads = []
    for _ in range(3):
        t0 = time.perf_counter()
        series = proto.fetch_metrics(t, ["loss"])
        reads.append((time.perf_counter() - t0) * 1e3)
    if len(series["loss"]) != have + TIMED:
        raise ValueError(f"read {len(series['loss'])} points, expected {have + TIMED}")
    b = _trial(proto, 1)
    t0 = start()
    for k in range(BATCHES):
        proto.log_trial_metrics_batch(b, {"loss": [(s, 0.5) for s in range(k * BATCH, (k + 1) * BATCH)]})
    batched = BATCHES * BATCH / (time.perf_counter() - t0)
    bare = [_trial(proto, 10 + i) for i in range(trials)]
    query = {"group_id": GROUP, "parameters.history": {"$gte": 10, "$lt": 10 + trials}}
    without = _fetch_ms(proto, query, trials)
    for tr in bare:
        proto.log_trial_metrics_batch(tr, {"loss": [(s, 0.25) for s in range(per_trial)]})
    with_points = _fetch_ms(proto, query, trials)
    return {
        "points": have + TIMED,
        "point_us_small": small,
        "point_us_large": large,
        "point_flat": large / small,
        "batch_per_s": batched,
        "read_ms": statistics.median(reads),
        "fetch_trials": trials,
        "fetch_per_trial_points": per_trial,
        "fetch_no_metrics_ratio": with_points / without,
    }


def pymongo_insert_many(uri: Any, n: int = BATCHES * BATCH) -> float:
    """Points per second of raw pymongo ``insert_many`` of ``n`` point documents, ``BATCH`` per call."""
    import pymongo

    from .references import mongo_database

    client: Any = pymongo.MongoClient(uri.raw, serverSelectionTimeoutMS=5000)
    try:
        coll = client[mongo_database(uri)]["bench_raw_points"]
        coll.drop()
        docs = [{"trial": "t", "name": "loss", "step": s, "value": 0.5} for s in range(n)]
        t0 = start()
        for i in range(0, n, BATCH):
            coll.insert_many(docs[i : i + BATCH], ordered=True)
        rate = n / (time.perf_counter() - t0)
        coll.drop()
        return rate
    finally:
        client.close()
