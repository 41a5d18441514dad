"""The trial workload (Orion's, from the peers' ``orion_bench.py``) at the Store and Protocol level.

For ``n`` trials of group ``"g"``:

1. **insert** ``n`` trial documents (status ``Created``), one call each;
2. **query** the pending trials once (:data:`PENDING`); it must return ``n``;
3. **log** 200 metric updates: one ``$push`` of ``[step, value]`` into ``metrics.loss`` of trial
   ``i`` (what ``log_trial_metrics`` does);
4. **claim** every trial with ``find_one_and_update`` until it returns ``None``: exactly ``n``
   claims, each trial once;
5. **group query**: :data:`GROUP_PENDING` trials (spread over the table) are set back to
   ``Interrupted``, untimed, as Orion does for a lost worker; then the same pending query of
   group ``"g"`` is timed while the table holds ``n`` trials and returns only those few. Median
   of :data:`GROUP_QUERY_REPEATS` executions. This is the latency a worker pays to look for
   work in a large table, and what an index is for.

At the Protocol level two more phases follow, on the same ``n`` trials set back to ``Created``
(untimed):

6. **reserve** every trial with ``reserve_trial({"group_id": "g"}, lease=...)`` until it returns
   ``None``: a leased claim, to compare with the plain claim of phase 4;
7. **heartbeat** :data:`LOG_OPS` reserved trials once each.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from ..errors import TrackBackendsError
from ..model import Status, Trial
from ..registry import get_protocol
from ..store import TRIALS, Document, Store

GROUP = "g"
PENDING: dict[str, Any] = {"group_id": GROUP, "status.name": {"$in": ["Created", "Interrupted"]}}
CLAIM_UPDATE: dict[str, Any] = {"$set": {"status": Status.Running.to_doc()}}
INTERRUPT_UPDATE: dict[str, Any] = {"$set": {"status": Status.Interrupted.to_doc()}}
LOG_OPS = 200
GROUP_PENDING = 10
"""Trials set back to Interrupted before the group query (the size of its answer)."""
GROUP_QUERY_REPEATS = 20
"""Executions of the group query per run (the median is taken)."""
METRICS = ("insert_per_s", "query_ms", "log_per_s", "claim_per_s", "group_query_ms")
LEASE_METRICS = ("reserve_per_s", "heartbeat_per_s")
"""Measured at the Protocol level only (``None`` elsewhere)."""
RESET_UPDATE: dict[str, Any] = {"$set": {"status": Status.Created.to_doc()}}
BENCH_LEASE = 600.0

Result = dict[str, Any]
"""Rates per second, times in milliseconds (``group_query_ms`` is ``None`` for peers), ``claimed``."""


class BenchError(TrackBackendsError):
    """The workload did not behave (wrong counts, a trial claimed twice) or cannot run here."""


def trial_doc(i: int) -> Document:
    """Return Orion's trial document number ``i`` (status ``Created``)."""
    return {
        "uid": f"h{i:08d}_0",
        "hash": f"h{i:08d}",
        "revision": 0,
        "project_id": "p",
        "group_id": GROUP,
        "parameters": {"lr": 0.001 * i, "batch_size": 256, "id": i},
        "metadata": {},
        "metrics": {},
        "chronos": {},
        "tags": {},
        "errors": [],
        "status": Status.Created.to_doc(),
    }


def trial_obj(i: int) -> Trial:
    """Return the :class:`Trial` with the same parameters as :func:`trial_doc`."""
    return Trial({"lr": 0.001 * i, "batch_size": 256, "id": i}, project_id="p", group_id=GROUP)


def log_args(i: int) -> tuple[int, float]:
    """The ``(step, value)`` of metric update number ``i``."""
    return i % 50, 1.0 / (i + 1)


def log_update(i: int) -> dict[str, Any]:
    """The Store-level update of metric update number ``i``: a ``$push`` into ``metrics.loss``."""
    return {"$push": {"metrics.loss": list(log_args(i))}}


def interrupted_indexes(n: int, k: int = GROUP_PENDING) -> list[int]:
    """Which trials the group query finds pending again: ``k`` indexes spread evenly over ``n``."""
    k = min(n, k)
    return sorted({(j * n) // k for j in range(k)})


def start() -> float:
    """Start timing a phase: collect garbage first (if gc is on) so that no phase inherits a debt."""
    if gc.isenabled():
        gc.collect()
    return time.perf_counter()


def check(what: str, got: int, n: int) -> None:
    """Raise :class:`BenchError` unless ``got == n``."""
    if got != n:
        raise BenchError(f"{what}: expected {n}, got {got}")


def time_query(fn: Callable[[], int], expected: int, repeats: int = GROUP_QUERY_REPEATS) -> float:
    """Median milliseconds of ``fn()`` over ``repeats`` calls; each must return ``expected`` items."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        got = fn()
        times.append((time.perf_counter() - t) * 1e3)
        check("group query", got, expected)
    return statistics.median(times)


def result(
    n: int, t_insert: float, query_ms: float, n_log: int, t_log: float, t_claim: float, group_ms: float | None
) -> Result:
    """Assemble a row's measurements (rates per second, times in milliseconds)."""
    return {
        "insert_per_s": n / t_insert,
        "query_ms": query_ms,
        "log_per_s": n_log / t_log if n_log else 0.0,
        "claim_per_s": n / t_claim,
        "group_query_ms": group_ms,
        "claimed": n,
        "reserve_per_s": None,
        "heartbeat_per_s": None,
    }


def lease_phases(proto: Any, n: int) -> dict[str, float]:
    """Phases 6 and 7: reserve the ``n`` trials (set back to ``Created`` first), then heartbeat some.

    Raises:
        BenchError: The reservations did not hand out each trial exactly once.
    """
    proto.store.update(TRIALS, {"group_id": GROUP}, RESET_UPDATE, many=True)
    reserved: list[Trial] = []
    query = {"group_id": GROUP}
    t = start()
    while (got := proto.reserve_trial(query, lease=BENCH_LEASE, owner="bench")) is not None:
        reserved.append(got)
    t_reserve = time.perf_counter() - t
    check("reservations", len(reserved), n)
    check("distinct reserved trials", len({(tr.parameters["id"], tr.revision) for tr in reserved}), n)
    beats = reserved[: min(n, LOG_OPS)]
    t = start()
    for tr in beats:
        proto.heartbeat(tr)
    t_beat = time.perf_counter() - t
    return {"reserve_per_s": n / t_reserve, "heartbeat_per_s": len(beats) / t_beat}


def store_workload(store: Store, n: int) -> Result:
    """Run the workload with raw Store calls; return rates, the query times and the claim count.

    Raises:
        BenchError: A query or the claims did not return exactly the expected trials.
    """
    docs = [trial_doc(i) for i in range(n)]
    store.ensure_index(TRIALS, "uid", unique=True)
    t = start()
    for d in docs:
        store.insert(TRIALS, d)
    t_insert = time.perf_counter() - t

    t = start()
    found = store.find(TRIALS, PENDING)
    query_ms = (time.perf_counter() - t) * 1e3
    check("pending query", len(found), n)
    del found

    n_log = min(n, LOG_OPS)
    updates = [log_update(i) for i in range(n_log)]
    t = start()
    for i in range(n_log):
        if store.update(TRIALS, {"uid": docs[i]["uid"]}, updates[i]) != 1:
            raise BenchError(f"log: trial {docs[i]['uid']} was not updated")
    t_log = time.perf_counter() - t

    claimed: list[str] = []
    t = start()
    while (doc := store.find_one_and_update(TRIALS, PENDING, CLAIM_UPDATE)) is not None:
        claimed.append(doc["uid"])
    t_claim = time.perf_counter() - t
    check("claims", len(claimed), n)
    check("distinct claimed uids", len(set(claimed)), n)

    back = interrupted_indexes(n)
    for i in back:
        store.update(TRIALS, {"uid": docs[i]["uid"]}, INTERRUPT_UPDATE)
    start()
    group_ms = time_query(lambda: len(store.find(TRIALS, PENDING)), len(back))
    return result(n, t_insert, query_ms, n_log, t_log, t_claim, group_ms)


def protocol_workload(store: Store, n: int) -> Result:
    """Run the workload through the Protocol (``new_trial`` ... ``fetch_and_update_trial``).

    Raises:
        BenchError: A trial was refused, or a query or the claims did not return the expected trials.
    """
    proto = get_protocol(store)
    trials = [trial_obj(i) for i in range(n)]
    t = start()
    for tr in trials:
        if proto.new_trial(tr) is None:
            raise BenchError(f"new_trial refused trial {tr.parameters['id']}")
    t_insert = time.perf_counter() - t

    t = start()
    found = proto.fetch_trials(PENDING)
    query_ms = (time.perf_counter() - t) * 1e3
    check("fetch_trials", len(found), n)
    del found

    n_log = min(n, LOG_OPS)
    t = start()
    for i in range(n_log):
        step, value = log_args(i)
        proto.log_trial_metrics(trials[i], step=step, loss=value)
    t_log = time.perf_counter() - t

    claimed: list[Trial] = []
    t = start()
    while (claim := proto.fetch_and_update_trial(PENDING, "set_trial_status", status=Status.Running)) is not None:
        claimed.append(claim)
    t_claim = time.perf_counter() - t
    check("claims", len(claimed), n)
    # parameters["id"] is unique per trial, so it stands for the uid without hashing in the loop
    check("distinct claimed trials", len({(tr.parameters["id"], tr.revision) for tr in claimed}), n)
    if any(tr.status != Status.Running for tr in claimed):
        raise BenchError("a claimed trial is not Running")

    back = interrupted_indexes(n)
    for i in back:
        proto.set_trial_status(trials[i], Status.Interrupted)
    start()
    group_ms = time_query(lambda: len(proto.fetch_trials(PENDING)), len(back))
    return {**result(n, t_insert, query_ms, n_log, t_log, t_claim, group_ms), **lease_phases(proto, n)}
