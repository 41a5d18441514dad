"""Worker processes for the multiprocess claim contract (importable, so ``spawn`` can run them)."""

from __future__ import annotations

import multiprocessing
from typing import Any


def _claim_all(uri: str, query: dict[str, Any], worker: int, start: Any, out: Any) -> None:
    from ..registry import get_protocol

    with get_protocol(uri) as p:
        start.wait()
        got = []
        while True:
            doc = p.store.find_one_and_update(
                "trials", query, {"$set": {"status": {"name": "Running", "value": 101}, "metadata.owner": worker}}
            )
            if doc is None:
                break
            got.append(doc["uid"])
    out.put((worker, got))


def run_claimers(uri: str, query: dict[str, Any], workers: int, timeout: float = 300.0) -> list[list[str]]:
    """Start ``workers`` processes that claim until nothing is left; return each one's claims."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(uri, query, i, start, out)) for i in range(workers)]
    for proc in procs:
        proc.start()
    start.set()
    results: list[list[str]] = [[] for _ in range(workers)]
    for _ in range(workers):
        worker, got = out.get(timeout=timeout)
        results[worker] = got
    for proc in procs:
        proc.join(timeout=30)
        if proc.exitcode != 0:
            raise RuntimeError(f"claim worker {proc.pid} exited with {proc.exitcode}")
    return results
