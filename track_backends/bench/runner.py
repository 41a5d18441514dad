"""Running the benchmark: fresh stores, references, repeats and medians, workers, peers."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from ..registry import open_store
from ..store import TRIALS, Store
from ..uri import StoreURI, parse_uri
from . import peers as peers_mod
from . import references, workers
from .artifacts import artifacts_row, check_artifacts
from .history import history as history_phase
from .history import pymongo_insert_many
from .recording import check_recording, recording_phase
from .report import JOURNAL_SCHEMES, check_history, check_targets, flatness, kind
from .workload import (
    GROUP,
    GROUP_PENDING,
    GROUP_QUERY_REPEATS,
    LEASE_METRICS,
    LOG_OPS,
    METRICS,
    BenchError,
    Result,
    protocol_workload,
    store_workload,
)

WARMUP_N = 100
DEFAULT_NS = (1_000, 10_000)
FULL_NS = (1_000, 10_000, 100_000)
DEFAULT_WORKERS = (1, 2, 4)
LEVELS = ("store", "protocol")
REFERENCES = {"memory": "ref:dict", "journal": "ref:fsync", "postgres": "ref:psycopg", "mongo": "ref:pymongo"}
"""The reference row each kind of store is compared with."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """One store to benchmark.

    Attributes:
        label: Short name for the table (the URI scheme).
        uri: The URI as given. For ``pickled:`` and ``file:`` each run uses a fresh file in a
            temporary directory next to the given path; for other stores the ``trials``
            collection must start empty, and the bench deletes its own trials afterwards.
    """

    label: str
    uri: StoreURI

    @property
    def kind(self) -> str:
        """``"memory"``, ``"journal"``, ``"postgres"``, ``"mongo"`` or ``"other"``."""
        return kind(self.uri.scheme)

    @property
    def directory(self) -> str:
        """The directory that holds a journal's file (where the fsync reference runs too)."""
        return os.path.dirname(os.path.abspath(self.uri.path or "bench")) or "."

    @contextlib.contextmanager
    def fresh(self) -> Iterator[tuple[str, Store]]:
        """Open a store with no trials and yield ``(its URI, the store)``; clean up afterwards."""
        if self.uri.scheme in JOURNAL_SCHEMES:
            try:
                tmp = tempfile.mkdtemp(prefix="track-backends-bench-", dir=self.directory)
            except OSError as e:
                raise BenchError(f"cannot create a scratch directory in {self.directory}: {e.strerror}") from e
            path = os.path.join(tmp, os.path.basename(self.uri.path) or "bench")
            uri = f"{self.uri.scheme}://{quote(path)}"
            if self.uri.params:
                uri += "?" + urlencode(self.uri.params)
            try:
                with open_store(uri) as store:
                    yield uri, store
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        with open_store(self.uri) as store:
            server = self.kind not in ("memory",)
            if server:
                found = store.count(TRIALS)
                if found:
                    raise BenchError(
                        f"bench needs an empty 'trials' collection in {self.uri.redacted}; it holds {found} "
                        "documents (point it at a scratch database)"
                    )
            try:
                yield self.uri.raw, store
            finally:
                if server:
                    store.delete(TRIALS, {"group_id": GROUP})
                    if self.kind == "postgres":
                        references.vacuum(self.uri)

    @contextlib.contextmanager
    def fresh_store(self) -> Iterator[Store]:
        """Open a store with no trials; remove what the bench wrote afterwards."""
        with self.fresh() as (_, store):
            yield store


def default_uris(directory: str) -> list[str]:
    """The embedded stores: ``ephemeral:``, and ``pickled:`` and ``file:`` files in ``directory``."""
    base = quote(os.path.abspath(directory))
    return ["ephemeral:", f"pickled://{base}/bench.pkl", f"file://{base}/bench.jsonl"]


# -- repeats and medians ----------------------------------------------------------------------------
def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for k in runs[0]:
        vals = [r[k] for r in runs]
        out[k] = None if any(v is None for v in vals) else statistics.median(vals)
    return out


def _repeat(fn: Callable[[], dict[str, Any]], repeats: int | None) -> tuple[dict[str, Any], int]:
    """Run ``fn`` ``repeats`` times (auto: 5 when a run is cheap, 3, or 1) and take medians."""
    t = time.perf_counter()
    runs = [fn()]
    if repeats is None:
        took = time.perf_counter() - t
        repeats = 5 if took < 0.5 else 3 if took < 2.0 else 1
    runs += [fn() for _ in range(repeats - 1)]
    return _median(runs), len(runs)


def _interleaved(
    fns: dict[str, Callable[[], Result]], repeats: int | None, say: Callable[[str], None]
) -> dict[str, tuple[Result, int]]:
    """Run each measurement ``repeats`` times (auto: 5, 3 or 1 by its cost), in interleaved rounds.

    Round 1 runs every function once (reference first) and fixes each one's number of runs;
    later rounds run, in the same order, those that need more. A slow drift of the machine's
    load then touches the store and its reference alike, instead of whichever ran last.
    Returns the medians and the number of runs of each.
    """
    runs: dict[str, list[Result]] = {k: [] for k in fns}
    want: dict[str, int] = {}
    for k, fn in fns.items():
        say(k)
        t = time.perf_counter()
        runs[k].append(fn())
        took = time.perf_counter() - t
        want[k] = repeats if repeats is not None else 5 if took < 0.5 else 3 if took < 2.0 else 1
    rnd = 1
    while any(len(runs[k]) < want[k] for k in fns):
        rnd += 1
        for k, fn in fns.items():
            if len(runs[k]) < want[k]:
                say(f"{k} (run {rnd} of {want[k]})")
                runs[k].append(fn())
    return {k: (_median(v), len(v)) for k, v in runs.items()}


def _ratios(row: Result, ref: Result) -> dict[str, float | None]:
    def rate(k: str) -> float | None:
        return row[k] / ref[k] if ref.get(k) and row.get(k) is not None else None

    def time_(k: str) -> float | None:
        return ref[k] / row[k] if row.get(k) and ref.get(k) is not None else None

    return {
        "insert": rate("insert_per_s"),
        "query": time_("query_ms"),
        "log": rate("log_per_s"),
        "claim": rate("claim_per_s"),
        "group": time_("group_query_ms"),
    }


@contextlib.contextmanager
def _gc_disabled(disable: bool) -> Iterator[None]:
    was = gc.isenabled()
    if disable:
        gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _row(
    store: str, uri: str, level: str, n: int, repeats: int, res: Result, ratio: dict | None, ref: str | None = None
) -> dict[str, Any]:
    return {
        "store": store,
        "uri": uri,
        "level": level,
        "n": n,
        "repeats": repeats,
        **{k: res.get(k) for k in METRICS},
        **{k: res.get(k) for k in LEASE_METRICS},
        "claimed": int(res["claimed"]),
        "ratio": ratio,
        "reference": ref,
    }


# -- the parts of a run -------------------------------------------------------------------------------
def _reference(target: Target, n: int) -> Callable[[], Result] | None:
    """The reference measurement for ``target`` at ``n`` (``None`` when its kind has none)."""
    k = target.kind
    if k == "memory":
        return lambda: references.dict_reference(n)
    if k == "journal":
        return lambda: references.fsync_reference(n, target.uri.scheme, target.directory)
    if k == "postgres":

        def pg() -> Result:
            with target.fresh_store() as store:
                return references.psycopg_reference(target.uri, store, n)

        return pg
    if k == "mongo":

        def mongo() -> Result:
            with target.fresh_store():  # checks that no trials are there, deletes afterwards
                return references.pymongo_reference(target.uri, n)

        return mongo
    return None


def _workers_rows(target: Target, n: int, ks: Sequence[int], repeats: int | None, say: Progress) -> list[dict]:
    out = []
    for k in ks:
        say(f"{target.label} workers={k} n={n:,}")

        def once(k: int = k) -> dict[str, Any]:
            with target.fresh() as (uri, store):
                uids = workers.fill(store, n)
                res = workers.concurrent_claims(uri, k, uids)
                left = store.count(TRIALS, {"group_id": GROUP, "status.name": "Created"})
                if left:
                    raise BenchError(f"workers: {left} trials still pending after the workers finished")
                return {"claim_per_s": res["claim_per_s"], "seconds": res["seconds"], "claimed": res["claimed"]} | {
                    f"w{i}": c for i, c in enumerate(res["per_worker"])
                }

        res, reps = _repeat(once, repeats)
        out.append(
            {
                "store": target.label,
                "uri": target.uri.redacted,
                "n": n,
                "k": k,
                "repeats": reps,
                "claim_per_s": res["claim_per_s"],
                "seconds": res["seconds"],
                "claimed": int(res["claimed"]),
                "per_worker": [round(res[f"w{i}"]) for i in range(k)],
                "speedup": None,
                "note": None,
            }
        )
    one = next((w for w in out if w["k"] == 1), None)
    for w in out:
        if one is not None:
            w["speedup"] = w["claim_per_s"] / one["claim_per_s"]
    return out


def _peer_rows(ns: Sequence[int], repeats: int | None, say: Progress, notes: list[str]) -> list[dict[str, Any]]:
    found, why = peers_mod.available_peers()
    notes.extend(why)
    rows = []
    for peer in found:
        too_big = [n for n in ns if n > peer.max_n]
        if too_big:
            notes.append(
                f"peers: {peer.name} skipped at n={', '.join(f'{n:,}' for n in too_big)} "
                f"(its claims scan; run only up to n={peer.max_n:,})"
            )
        for n in sorted(n for n in ns if n <= peer.max_n):
            say(f"peer {peer.name} n={n:,}")
            res, reps = _repeat(functools.partial(peers_mod.run_peer, peer, n), repeats)
            rows.append(_row(peer.name, f"peer:{peer.name}", "peer", n, reps, res, None))
    return rows


def run(
    uris: Sequence[str] | None = None,
    ns: Sequence[int] = DEFAULT_NS,
    *,
    levels: Sequence[str] = LEVELS,
    workers_k: Sequence[int] = (),
    peers: bool = False,
    repeats: int | None = None,
    no_gc: bool = False,
    progress: Progress | None = None,
    history: bool = False,
    history_points: int = 100_000,
    artifact_mib: int = 0,
    recording: bool = False,
) -> dict[str, Any]:
    """Run the benchmark and return its report (what ``--json`` prints).

    Args:
        uris: Store URIs; ``None`` or empty for the embedded stores in a temporary directory.
        ns: Numbers of trials.
        levels: ``"store"`` and/or ``"protocol"``.
        workers_k: Numbers of concurrent claiming processes (e.g. ``(1, 2, 4)``); empty for none.
        peers: Also run Orion's and Optuna's stores, where they can be imported.
        repeats: Runs per measurement (medians are reported); ``None`` picks 5, 3 or 1 by cost.
        no_gc: Disable Python's cyclic garbage collector while measuring.
        progress: Called with a line of text before each measurement.
        history: Also run the history phase (metric points at scale, :mod:`.history`).
        history_points: Points in the history phase's long series.
        artifact_mib: Also run the artifacts phase (:mod:`.artifacts`) with this many MiB; 0: not.
        recording: Also run the record phase (:mod:`.recording`: recorder and tracing costs).

    Returns:
        ``{"meta", "rows", "workers", "history", "artifacts", "record", "flatness", "checks",
        "notes"}``. Each row has ``store, uri,
        level, n, repeats, insert_per_s, query_ms, log_per_s, claim_per_s, group_query_ms,
        claimed, ratio, reference``; ``ratio`` (store / the ``reference`` row) is ``None`` for
        reference and peer rows and for stores without a reference. Each workers entry has
        ``store, uri, n, k, repeats, claim_per_s, seconds, claimed, per_worker, speedup, note``.

    Raises:
        BenchError: A workload misbehaved (a trial claimed twice, a wrong count) or a server
            store is not empty.
        TrackBackendsError: A store could not be opened.

    Note:
        K-worker claims start processes with ``multiprocessing``'s ``spawn`` method, which
        re-imports the main module: a script that calls this with ``workers_k`` must do so
        under ``if __name__ == "__main__":``.
    """
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise BenchError(f"unknown level(s) {bad}; use {', '.join(LEVELS)}")
    if not ns or any(type(n) is not int or n < 1 for n in ns):
        raise BenchError(f"n must be positive integers, got {list(ns)}")
    if any(type(k) is not int or k < 1 for k in workers_k):
        raise BenchError(f"workers must be positive integers, got {list(workers_k)}")
    if repeats is not None and (type(repeats) is not int or repeats < 1):
        raise BenchError(f"repeats must be a positive integer, got {repeats!r}")
    say = progress or (lambda _: None)
    tmp = None
    if not uris:
        tmp = tempfile.mkdtemp(prefix="track-backends-bench-")
        uris = default_uris(tmp)
    targets = [Target(p.scheme, p) for p in map(parse_uri, uris)]
    ks = sorted(set(workers_k))
    workloads = {"store": store_workload, "protocol": protocol_workload}
    rows: list[dict[str, Any]] = []
    wrows: list[dict[str, Any]] = []
    hrows: list[dict[str, Any]] = []
    arows: list[dict[str, Any]] = []
    notes: list[str] = []
    meta = _meta(ns, levels, ks, repeats, no_gc)
    try:
        with _gc_disabled(no_gc):
            for target in targets:
                say(f"{target.label} warm-up")
                for level in levels:
                    with target.fresh_store() as store:
                        workloads[level](store, WARMUP_N)
                skip = workers.skip_reason(target.uri.scheme) if ks else None
                if skip:
                    wrows.append(_skipped_workers(target, skip))
                for n in sorted(ns):
                    ref_name = REFERENCES.get(target.kind) or "ref"
                    fns: dict[str, Callable[[], Result]] = {}
                    ref_fn = _reference(target, n)
                    if ref_fn is not None:
                        fns[ref_name] = ref_fn
                    for level in levels:

                        def once(n: int = n, level: str = level, target: Target = target) -> Result:
                            with target.fresh_store() as store:
                                return workloads[level](store, n)

                        fns[level] = once
                    measured = _interleaved(fns, repeats, functools.partial(_say_at, say, target.label, n))
                    ref = measured[ref_name][0] if ref_fn is not None else None
                    for level in levels:
                        res, reps = measured[level]
                        ratio = _ratios(res, ref) if ref else None
                        used = ref_name if ref else None
                        rows.append(_row(target.label, target.uri.redacted, level, n, reps, res, ratio, used))
                    if ref is not None:
                        rows.append(
                            _row(target.label, target.uri.redacted, ref_name, n, measured[ref_name][1], ref, None)
                        )
                    if ks and not skip:
                        wrows.extend(_workers_rows(target, n, ks, repeats, say))
                if history:
                    hrows.append(_history_row(target, history_points, say))
                if artifact_mib:
                    arows.append(artifacts_row(target, artifact_mib, say))
            if peers:
                rows.extend(_peer_rows(ns, repeats, say, notes))
            if recording:
                say("record: recorder and tracing per-call costs on ephemeral:")
            rec = recording_phase() if recording else None
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    meta["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    flat = flatness(rows)
    return {
        "meta": meta,
        "rows": rows,
        "workers": wrows,
        "history": hrows,
        "artifacts": arows,
        "record": rec,
        "flatness": flat,
        "checks": check_targets(rows, flat, wrows if ks else None)
        + check_history(hrows, rows)
        + check_artifacts(arows)
        + check_recording(rec),
        "notes": notes,
    }


def _say_at(say: Progress, label: str, n: int, what: str) -> None:
    say(f"{label} {what} n={n:,}")


def _history_row(target: Target, points: int, say: Progress) -> dict[str, Any]:
    say(f"{target.label} history ({points:,} points in one trial)")
    with target.fresh_store() as store:
        res = history_phase(store, points=points)
    ref = None
    if target.kind == "mongo":
        say(f"{target.label} history ref:pymongo insert_many")
        ref = pymongo_insert_many(target.uri)
    return {"store": target.label, "uri": target.uri.redacted, **res, "ref_batch_per_s": ref}


def _skipped_workers(target: Target, note: str) -> dict[str, Any]:
    return {
        "store": target.label,
        "uri": target.uri.redacted,
        "n": None,
        "k": None,
        "repeats": 0,
        "claim_per_s": None,
        "seconds": None,
        "claimed": 0,
        "per_worker": [],
        "speedup": None,
        "note": note,
    }


def _meta(ns: Sequence[int], levels: Sequence[str], ks: Sequence[int], repeats: int | None, no_gc: bool) -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "ns": sorted(ns),
        "levels": list(levels),
        "workers": list(ks),
        "repeats": repeats or "auto",
        "gc": not no_gc,
        "log_ops": LOG_OPS,
        "group_pending": GROUP_PENDING,
        "group_query_repeats": GROUP_QUERY_REPEATS,
        "fsync_ref_cap": references.FSYNC_REF_CAP,
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor()
