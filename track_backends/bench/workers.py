"""K-worker concurrent claims: K processes claim from one store until none is left.

The parent fills a fresh store with ``n`` pending trials (one ``insert_many``, untimed), starts
``K`` worker processes (``spawn``: nothing of the parent's connections or locks is inherited),
and waits until each has opened the store and made one round trip. A barrier then releases them
together. Each worker calls ``find_one_and_update(PENDING, {"$set": {"status": Running}})`` until
it returns ``None``, and reports its claimed uids and its start and end times
(``time.perf_counter``, one clock for every process on Linux). The aggregate rate is
``n / (last end - first start)``.

Every run asserts that the claims add up to ``n`` and that each trial was claimed exactly once,
across all processes; otherwise :class:`~.workload.BenchError` is raised.

Only stores that another process can open take part: journal files (``pickled:``, ``file:``),
PostgreSQL/CockroachDB and MongoDB. In-process stores (``ephemeral:``, ``mongomock:``, or a
scheme registered at run time) are skipped with a note.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections import Counter
from typing import Any

from ..registry import open_store
from ..store import TRIALS, Store
from .workload import CLAIM_UPDATE, PENDING, BenchError, trial_doc

SHARED_SCHEMES = frozenset(
    {"pickled", "file", "postgresql", "postgres", "cockroach", "cockroachdb", "mongodb", "mongodb+srv"}
)
"""Schemes whose stores other processes can open (and so can be claimed from by K workers)."""
START_TIMEOUT = 120.0
"""Seconds for every worker to start, import, open the store and reach the barrier."""


def skip_reason(scheme: str) -> str | None:
    """Why K-worker claims cannot run on a store of ``scheme``, or ``None`` when they can."""
    if scheme in SHARED_SCHEMES:
        return None
    if scheme in ("ephemeral", "mongomock"):
        return f"skipped: {scheme}: lives inside one process; other processes cannot open it"
    return f"skipped: {scheme}: not known to be shared between processes"


def _claim_worker(uri: str, index: int, barrier: Any, out: Any) -> None:
    """Worker process body: open, round-trip, wait at the barrier, claim until none is left."""
    try:
        with open_store(uri) as store:
            store.count(TRIALS, {"uid": "-"})  # connect / catch up on the journal before the clock
            barrier.wait(START_TIMEOUT)
            uids = []
            t0 = time.perf_counter()
            while (doc := store.find_one_and_update(TRIALS, PENDING, CLAIM_UPDATE)) is not None:
                uids.append(doc["uid"])
            t1 = time.perf_counter()
        out.put((index, t0, t1, uids, None))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises
        text = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
        out.put((index, 0.0, 0.0, [], text))
        barrier.abort()


def fill(store: Store, n: int) -> list[str]:
    """Insert ``n`` pending trials with one ``insert_many`` and return their uids."""
    docs = [trial_doc(i) for i in range(n)]
    store.ensure_index(TRIALS, "uid", unique=True)
    if store.insert_many(TRIALS, docs) != n:
        raise BenchError(f"workers: insert_many did not insert {n} trials")
    return [d["uid"] for d in docs]


def concurrent_claims(uri: str, k: int, uids: list[str]) -> dict[str, Any]:
    """Claim every trial of the store at ``uri`` with ``k`` processes; return the aggregate rate.

    Args:
        uri: The store (already holding the pending trials ``uids``, and nothing else pending).
        k: Number of worker processes.
        uids: The pending trials' uids.

    Returns:
        ``{"claim_per_s", "seconds", "claimed", "per_worker": [count, ...]}``.

    Raises:
        BenchError: A worker failed, or the claims do not cover each trial exactly once.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(k + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_worker, args=(uri, i, barrier, out), daemon=True) for i in range(k)]
    for p in procs:
        p.start()
    results: dict[int, tuple[Any, ...]] = {}
    try:
        try:
            barrier.wait(START_TIMEOUT)
        except Exception:  # noqa: BLE001 - BrokenBarrierError: a worker failed; its report says why
            pass
        while len(results) < k:
            try:
                item = out.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and out.empty():
                    dead = [p.exitcode for p in procs]
                    missing = k - len(results)
                    msg = f"workers: {missing} worker(s) died without a report (exit codes {dead})"
                    raise BenchError(msg) from None
                continue
            results[item[0]] = item
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        out.close()
    return tally([results[i] for i in sorted(results)], uids)


def tally(reports: list[tuple[Any, ...]], uids: list[str]) -> dict[str, Any]:
    """Check the workers' reports ``(index, t0, t1, claimed uids, error)`` and compute the rate.

    Raises:
        BenchError: A worker failed, a trial was claimed twice, or one was not claimed.
    """
    errors = [r[4] for r in reports if r[4]]
    if errors:
        raise BenchError(f"workers: {len(errors)} of {len(reports)} failed; first: {errors[0]}")
    counts = Counter(u for r in reports for u in r[3])
    total = sum(counts.values())
    twice = sorted(u for u, c in counts.items() if c > 1)
    if twice:
        raise BenchError(f"workers: {len(twice)} trial(s) claimed more than once across processes, e.g. {twice[0]}")
    if total != len(uids) or set(counts) != set(uids):
        raise BenchError(f"workers: expected each of {len(uids)} trials claimed once, got {total} claims")
    t0 = min(r[1] for r in reports)
    t1 = max(r[2] for r in reports)
    seconds = max(t1 - t0, 1e-9)
    return {
        "claim_per_s": total / seconds,
        "seconds": seconds,
        "claimed": total,
        "per_worker": [len(r[3]) for r in reports],
    }
