"""Benchmark: Orion's trial workload on any store, at the Store and the Protocol level.

The workload is the one in the peers' ``orion_bench.py``, for ``n`` trials of group ``"g"``:

1. **insert** ``n`` trial documents (status ``Created``), one call each;
2. **query** the pending trials once (``{"group_id": "g", "status.name": {"$in": [...]}}``);
   it must return ``n``;
3. **log** 200 metric updates: one ``$push`` of ``[step, value]`` into ``metrics.loss`` of
   trial ``i`` (what ``log_trial_metrics`` does);
4. **claim** every trial with ``find_one_and_update`` until it returns ``None``: exactly ``n``
   claims, each trial once.

The *store* level makes raw :class:`~track_backends.store.Store` calls on Orion's documents;
the *protocol* level makes the same steps through :class:`~track_backends.protocol.DocumentProtocol`
(``new_trial``, ``fetch_trials``, ``log_trial_metrics``, ``fetch_and_update_trial``).

Reference rows, measured in the same run, give the floor each store is compared with:
plain dict operations for the memory store, and a raw ``os.write`` + ``os.fdatasync`` of the
same record bytes for the journal stores. Ratios are ``store rate / reference rate`` (for the
query, ``reference ms / store ms``), so 1.0 means "as fast as the floor".

Method: documents and Trial objects are built before the clock starts; each store gets an
untimed warm-up run of 100 trials; each timed phase starts after a ``gc.collect()`` (when the
collector is on), so a short phase does not pay for garbage left by the previous one; every
measurement is the median of 5, 3 or 1 runs depending on its cost, each on a fresh store.
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import os
import pickle
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from .errors import TrackBackendsError
from .model import Status, Trial
from .query import parse_update
from .registry import get_protocol, open_store
from .store import TRIALS, Document, Store
from .uri import StoreURI, parse_uri

GROUP = "g"
PENDING: dict[str, Any] = {"group_id": GROUP, "status.name": {"$in": ["Created", "Interrupted"]}}
CLAIM_UPDATE: dict[str, Any] = {"$set": {"status": Status.Running.to_doc()}}
LOG_OPS = 200
WARMUP_N = 100
DEFAULT_NS = (1_000, 10_000)
FULL_NS = (1_000, 10_000, 100_000)
LEVELS = ("store", "protocol")
FSYNC_REF_CAP = 10_000
"""At most this many append+fsync calls per phase in a journal reference (its rate does not depend on n)."""
JOURNAL_SCHEMES = ("pickled", "file")
METRICS = ("insert_per_s", "query_ms", "log_per_s", "claim_per_s")

Result = dict[str, float]
Progress = Callable[[str], None]


class BenchError(TrackBackendsError):
    """The workload did not behave (wrong counts, a trial claimed twice) or cannot run here."""


# -- the workload --------------------------------------------------------------------------------
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


def _log_args(i: int) -> tuple[int, float]:
    return i % 50, 1.0 / (i + 1)


def _start() -> float:
    """Start timing a phase: collect garbage first (if gc is on) so that no phase inherits a debt."""
    if gc.isenabled():
        gc.collect()
    return time.perf_counter()


def _check(what: str, got: int, n: int) -> None:
    if got != n:
        raise BenchError(f"{what}: expected {n}, got {got}")


def _result(n: int, t_insert: float, query_ms: float, n_log: int, t_log: float, t_claim: float) -> Result:
    return {
        "insert_per_s": n / t_insert,
        "query_ms": query_ms,
        "log_per_s": n_log / t_log if n_log else 0.0,
        "claim_per_s": n / t_claim,
        "claimed": n,
    }


def store_workload(store: Store, n: int) -> Result:
    """Run the workload with raw Store calls; return rates, the query time and the claim count.

    Raises:
        BenchError: The query or the claims did not return exactly ``n`` trials.
    """
    docs = [trial_doc(i) for i in range(n)]
    store.ensure_index(TRIALS, "uid", unique=True)
    t = _start()
    for d in docs:
        store.insert(TRIALS, d)
    t_insert = time.perf_counter() - t

    t = _start()
    found = store.find(TRIALS, PENDING)
    query_ms = (time.perf_counter() - t) * 1e3
    _check("pending query", len(found), n)
    del found

    n_log = min(n, LOG_OPS)
    t = _start()
    for i in range(n_log):
        if store.update(TRIALS, {"uid": docs[i]["uid"]}, {"$push": {"metrics.loss": list(_log_args(i))}}) != 1:
            raise BenchError(f"log: trial {docs[i]['uid']} was not updated")
    t_log = time.perf_counter() - t

    claimed: list[str] = []
    t = _start()
    while (doc := store.find_one_and_update(TRIALS, PENDING, CLAIM_UPDATE)) is not None:
        claimed.append(doc["uid"])
    t_claim = time.perf_counter() - t
    _check("claims", len(claimed), n)
    _check("distinct claimed uids", len(set(claimed)), n)
    return _result(n, t_insert, query_ms, n_log, t_log, t_claim)


def protocol_workload(store: Store, n: int) -> Result:
    """Run the workload through the Protocol (``new_trial`` ... ``fetch_and_update_trial``).

    Raises:
        BenchError: A trial was refused, or the query or claims did not return ``n`` trials.
    """
    proto = get_protocol(store)
    trials = [trial_obj(i) for i in range(n)]
    t = _start()
    for tr in trials:
        if proto.new_trial(tr) is None:
            raise BenchError(f"new_trial refused trial {tr.parameters['id']}")
    t_insert = time.perf_counter() - t

    t = _start()
    found = proto.fetch_trials(PENDING)
    query_ms = (time.perf_counter() - t) * 1e3
    _check("fetch_trials", len(found), n)
    del found

    n_log = min(n, LOG_OPS)
    t = _start()
    for i in range(n_log):
        step, value = _log_args(i)
        proto.log_trial_metrics(trials[i], step=step, loss=value)
    t_log = time.perf_counter() - t

    claimed: list[Trial] = []
    t = _start()
    while (tr := proto.fetch_and_update_trial(PENDING, "set_trial_status", status=Status.Running)) is not None:
        claimed.append(tr)
    t_claim = time.perf_counter() - t
    _check("claims", len(claimed), n)
    # parameters["id"] is unique per trial, so it stands for the uid without hashing in the loop
    _check("distinct claimed trials", len({(tr.parameters["id"], tr.revision) for tr in claimed}), n)
    if any(tr.status != Status.Running for tr in claimed):
        raise BenchError("a claimed trial is not Running")
    return _result(n, t_insert, query_ms, n_log, t_log, t_claim)


# -- references ----------------------------------------------------------------------------------
def _dict_scan(docs: dict[str, Document]) -> list[Document]:
    return [d for d in docs.values() if d["group_id"] == GROUP and d["status"]["name"] in ("Created", "Interrupted")]


def dict_reference(n: int) -> Result:
    """The floor for an in-memory store: plain dict operations on the same documents.

    insert = a dict insert of a (marshal) deep copy, query = a list-comprehension scan, log = a
    list append, claim = a dict pop plus setting the status.
    """
    docs = [trial_doc(i) for i in range(n)]
    store: dict[str, Document] = {}
    t = _start()
    for d in docs:
        store[d["uid"]] = marshal.loads(marshal.dumps(d))
    t_insert = time.perf_counter() - t

    t = _start()
    found = _dict_scan(store)
    query_ms = (time.perf_counter() - t) * 1e3
    _check("reference scan", len(found), n)

    n_log = min(n, LOG_OPS)
    t = _start()
    for i in range(n_log):
        store[docs[i]["uid"]]["metrics"].setdefault("loss", []).append(list(_log_args(i)))
    t_log = time.perf_counter() - t

    pending = dict(store)
    running = Status.Running.to_doc()
    got = 0
    t = _start()
    while pending:
        _, d = pending.popitem()
        d["status"] = dict(running)
        got += 1
    t_claim = time.perf_counter() - t
    _check("reference claims", got, n)
    return _result(n, t_insert, query_ms, n_log, t_log, t_claim)


def record_codec(scheme: str) -> Callable[[Any], bytes]:
    """Return how a journal of ``scheme`` frames a record: the journal's own codec when present.

    Falls back to a bare pickle, or one JSON line, if :mod:`track_backends.stores.codecs` is absent.
    """
    try:
        from .stores.codecs import CODECS

        return CODECS[scheme].frame
    except (ImportError, KeyError):
        pass
    if scheme == "pickled":
        return lambda rec: pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL)
    return lambda rec: json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def _update_record(update: dict[str, Any]) -> Any:
    """An update document in the form a journal record holds."""
    return parse_update(update).to_record()


def _append_fsync(fd: int, records: list[bytes]) -> float:
    t = _start()
    for data in records:
        os.write(fd, data)
        os.fdatasync(fd)
    return time.perf_counter() - t


def fsync_reference(n: int, scheme: str, directory: str, cap: int = FSYNC_REF_CAP) -> Result:
    """The floor for a durable journal: ``os.write`` + ``os.fdatasync`` of each record's bytes.

    The records are the ones the journal writes (insert, ``$push``, claim ``$set``), encoded
    with the scheme's codec, appended to a temporary file in ``directory``. The query floor is
    the dict scan (journal stores answer queries from memory). At most ``cap`` records are
    written per phase; the rate of append+fsync does not depend on ``n``.
    """
    encode = record_codec(scheme)
    docs = [trial_doc(i) for i in range(n)]
    k = min(n, cap)
    inserts = [encode(["insert", TRIALS, [d]]) for d in docs[:k]]
    n_log = min(n, LOG_OPS)
    logs = [
        encode(["update", TRIALS, [docs[i]["uid"]], _update_record({"$push": {"metrics.loss": list(_log_args(i))}})])
        for i in range(n_log)
    ]
    claim = _update_record(CLAIM_UPDATE)
    claims = [encode(["update", TRIALS, [d["uid"]], claim]) for d in docs[:k]]
    fd, path = tempfile.mkstemp(prefix="track-backends-ref-", dir=directory)
    try:
        t_insert = _append_fsync(fd, inserts) * n / k
        t_log = _append_fsync(fd, logs)
        t_claim = _append_fsync(fd, claims) * n / k
    finally:
        os.close(fd)
        os.unlink(path)
    by_dict = {d["uid"]: d for d in docs}
    t = _start()
    _check("reference scan", len(_dict_scan(by_dict)), n)
    query_ms = (time.perf_counter() - t) * 1e3
    return _result(n, t_insert, query_ms, n_log, t_log, t_claim)


# -- targets: where each run gets a fresh store ---------------------------------------------------
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
        """``"memory"``, ``"journal"`` or ``"other"``: which reference and targets apply."""
        return _kind(self.uri.scheme)

    @property
    def directory(self) -> str:
        """The directory that holds a journal's file (where the fsync reference runs too)."""
        return os.path.dirname(os.path.abspath(self.uri.path or "bench")) or "."

    @contextlib.contextmanager
    def fresh_store(self) -> Iterator[Store]:
        """Open a store with no trials; remove what the bench wrote afterwards."""
        if self.kind == "journal":
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
                    yield store
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            return
        with open_store(self.uri) as store:
            if self.kind == "other":
                found = store.count(TRIALS)
                if found:
                    raise BenchError(
                        f"bench needs an empty 'trials' collection in {self.uri.redacted}; it holds {found} "
                        "documents (point it at a scratch database)"
                    )
            try:
                yield store
            finally:
                if self.kind == "other":
                    store.delete(TRIALS, {"group_id": GROUP})


def default_uris(directory: str) -> list[str]:
    """The embedded stores: ``ephemeral:``, and ``pickled:`` and ``file:`` files in ``directory``."""
    base = quote(os.path.abspath(directory))
    return ["ephemeral:", f"pickled://{base}/bench.pkl", f"file://{base}/bench.jsonl"]


# -- running and reporting ------------------------------------------------------------------------
def _median(runs: list[Result]) -> Result:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def _repeat(fn: Callable[[], Result], repeats: int | None) -> tuple[Result, int]:
    """Run ``fn`` ``repeats`` times (auto: 5 when a run is cheap, 3, or 1) and take medians."""
    t = time.perf_counter()
    runs = [fn()]
    if repeats is None:
        took = time.perf_counter() - t
        repeats = 5 if took < 0.5 else 3 if took < 2.0 else 1
    runs += [fn() for _ in range(repeats - 1)]
    return _median(runs), len(runs)


def _ratios(row: Result, ref: Result) -> dict[str, float]:
    return {
        "insert": row["insert_per_s"] / ref["insert_per_s"],
        "query": ref["query_ms"] / row["query_ms"] if row["query_ms"] else float("inf"),
        "log": row["log_per_s"] / ref["log_per_s"] if ref["log_per_s"] else 0.0,
        "claim": row["claim_per_s"] / ref["claim_per_s"],
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


def run(
    uris: Sequence[str] | None = None,
    ns: Sequence[int] = DEFAULT_NS,
    *,
    levels: Sequence[str] = LEVELS,
    repeats: int | None = None,
    no_gc: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return its report (what ``--json`` prints).

    Args:
        uris: Store URIs; ``None`` or empty for the embedded stores in a temporary directory.
        ns: Numbers of trials.
        levels: ``"store"`` and/or ``"protocol"``.
        repeats: Runs per measurement (medians are reported); ``None`` picks 5, 3 or 1 by cost.
        no_gc: Disable Python's cyclic garbage collector while measuring.
        progress: Called with a line of text before each measurement.

    Returns:
        ``{"meta": {...}, "rows": [...], "flatness": [...], "checks": [...]}``. Each row has
        ``store, uri, level, n, repeats, insert_per_s, query_ms, log_per_s, claim_per_s,
        claimed`` and ``ratio`` (``None`` for reference rows and stores without a reference).

    Raises:
        BenchError: A workload misbehaved or a server store is not empty.
        TrackBackendsError: A store could not be opened.
    """
    bad = [lv for lv in levels if lv not in LEVELS]
    if bad or not levels:
        raise BenchError(f"unknown level(s) {bad}; use {', '.join(LEVELS)}")
    if not ns or any(type(n) is not int or n < 1 for n in ns):
        raise BenchError(f"n must be positive integers, got {list(ns)}")
    if repeats is not None and (type(repeats) is not int or repeats < 1):
        raise BenchError(f"repeats must be a positive integer, got {repeats!r}")
    say = progress or (lambda _: None)
    tmp = None
    if not uris:
        tmp = tempfile.mkdtemp(prefix="track-backends-bench-")
        uris = default_uris(tmp)
    targets = [Target(p.scheme, p) for p in map(parse_uri, uris)]
    workloads = {"store": store_workload, "protocol": protocol_workload}
    rows: list[dict[str, Any]] = []
    meta = _meta(ns, levels, repeats, no_gc)
    try:
        with _gc_disabled(no_gc):
            for target in targets:
                say(f"{target.label} warm-up")
                for level in levels:
                    with target.fresh_store() as store:
                        workloads[level](store, WARMUP_N)
                for n in sorted(ns):
                    ref: Result | None = None
                    ref_name = ""
                    if target.kind == "memory":
                        ref_name = "ref:dict"
                        say(f"{target.label} {ref_name} n={n:,}")
                        ref, k = _repeat(lambda n=n: dict_reference(n), repeats)
                    elif target.kind == "journal":
                        ref_name = "ref:fsync"
                        say(f"{target.label} {ref_name} n={n:,}")
                        ref, k = _repeat(lambda n=n, t=target: fsync_reference(n, t.uri.scheme, t.directory), repeats)
                    for level in levels:
                        say(f"{target.label} {level} n={n:,}")

                        def once(n: int = n, level: str = level, target: Target = target) -> Result:
                            with target.fresh_store() as store:
                                return workloads[level](store, n)

                        res, reps = _repeat(once, repeats)
                        rows.append(_row(target, level, n, reps, res, _ratios(res, ref) if ref else None))
                    if ref is not None:
                        rows.append(_row(target, ref_name, n, k, ref, None))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    flat = flatness(rows)
    return {
        "meta": meta,
        "rows": rows,
        "flatness": flat,
        "checks": check_targets(rows, flat),
    }


def _row(target: Target, level: str, n: int, repeats: int, res: Result, ratio: dict[str, float] | None) -> dict:
    return {
        "store": target.label,
        "uri": target.uri.redacted,
        "level": level,
        "n": n,
        "repeats": repeats,
        **{k: res[k] for k in METRICS},
        "claimed": int(res["claimed"]),
        "ratio": ratio,
    }


def _meta(ns: Sequence[int], levels: Sequence[str], repeats: int | None, no_gc: bool) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "ns": sorted(ns),
        "levels": list(levels),
        "repeats": repeats or "auto",
        "gc": not no_gc,
        "log_ops": LOG_OPS,
        "fsync_ref_cap": FSYNC_REF_CAP,
    }


def flatness(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-op cost at the largest n divided by the cost at the smallest n, per store and level.

    1.0 means flat. The query returns all n trials, so its cost is taken per returned trial.
    """
    out = []
    keys = dict.fromkeys((r["store"], r["uri"], r["level"]) for r in rows)
    for store, uri, level in keys:
        mine = sorted((r for r in rows if (r["store"], r["uri"], r["level"]) == (store, uri, level)), key=_n)
        if len(mine) < 2:
            continue
        lo, hi = mine[0], mine[-1]
        out.append(
            {
                "store": store,
                "uri": uri,
                "level": level,
                "n_small": lo["n"],
                "n_large": hi["n"],
                "insert": lo["insert_per_s"] / hi["insert_per_s"],
                "query_per_trial": (hi["query_ms"] / hi["n"]) / (lo["query_ms"] / lo["n"]) if lo["query_ms"] else None,
                "log": lo["log_per_s"] / hi["log_per_s"] if hi["log_per_s"] else None,
                "claim": lo["claim_per_s"] / hi["claim_per_s"],
            }
        )
    return out


def _n(row: dict[str, Any]) -> int:
    return row["n"]


# -- targets --------------------------------------------------------------------------------------
TARGET_N = 1_000
FLAT_LIMIT = 1.3
# (store kind, level, metric, op, bound, label)
POINT_TARGETS: list[tuple[str, str, str, str, float, str]] = [
    ("memory", "store", "insert_per_s", ">=", 100_000, "inserts/s"),
    ("memory", "store", "claim_per_s", ">=", 50_000, "claims/s"),
    ("memory", "store", "query_ms", "<=", 2.0, "pending query ms"),
    ("memory", "protocol", "insert_per_s", ">=", 40_000, "new_trial/s"),
    ("memory", "protocol", "claim_per_s", ">=", 30_000, "claims/s"),
    ("journal", "store", "ratio.insert", ">=", 0.6, "inserts / raw append+fsync"),
    ("journal", "store", "claim_per_s", ">=", 2_000, "claims/s"),
]
FLAT_TARGETS: list[tuple[str, str, str]] = [
    ("memory", "store", "insert"),
    ("memory", "store", "claim"),
    ("journal", "store", "insert"),
    ("journal", "store", "claim"),
]


def _kind(scheme: str) -> str:
    return "memory" if scheme == "ephemeral" else "journal" if scheme in JOURNAL_SCHEMES else "other"


def _value(row: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("ratio."):
        return (row["ratio"] or {}).get(metric[6:])
    return row[metric]


def check_targets(rows: list[dict[str, Any]], flat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compare the rows with the speed targets (at n=1,000, or the smallest n measured).

    Returns:
        One entry per applicable target: ``{"status": "PASS" | "MISS" | "SKIP", "store",
        "level", "n", "what", "target", "measured"}``.
    """
    out: list[dict[str, Any]] = []
    stores = dict.fromkeys((r["store"], r["uri"]) for r in rows)
    for store, uri in stores:
        kind = _kind(parse_uri(uri).scheme)
        mine = [r for r in rows if r["uri"] == uri]
        for k, level, metric, op, bound, label in POINT_TARGETS:
            at = [r for r in mine if r["level"] == level]
            if k != kind or not at:
                continue
            row = next((r for r in at if r["n"] == TARGET_N), min(at, key=_n))
            v = _value(row, metric)
            ok = v is not None and (v >= bound if op == ">=" else v <= bound)
            out.append(_check_entry(ok, store, level, f"n={row['n']:,}", f"{label} {op} {bound:,}", v))
        for k, level, metric in FLAT_TARGETS:
            if k != kind or not any(r["level"] == level for r in mine):
                continue
            f = next((f for f in flat if f["uri"] == uri and f["level"] == level), None)
            what = f"{metric} cost(large n)/cost(small n) <= {FLAT_LIMIT}"
            if f is None:
                out.append(_check_entry(None, store, level, "one n", what, None))
            else:
                where = f"n={f['n_small']:,}->{f['n_large']:,}"
                out.append(_check_entry(f[metric] <= FLAT_LIMIT, store, level, where, what, f[metric]))
    return out


def _check_entry(ok: bool | None, store: str, level: str, n: str, what: str, v: float | None) -> dict[str, Any]:
    status = "SKIP" if ok is None else "PASS" if ok else "MISS"
    return {"status": status, "store": store, "level": level, "n": n, "what": what, "measured": v}


# -- formatting ---------------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{v:,.0f}"


def _table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    lines = []
    for i, cells in enumerate([header, *body]):
        lines.append(
            "  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=True)))
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _ratio(r: dict[str, float] | None, key: str) -> str:
    return "-" if not r else f"{r[key]:.2f}x"


def format_report(report: dict[str, Any], *, checks: bool = False) -> str:
    """Render a report as text: the results table, the flatness table, and optionally the checks."""
    header = ["store", "level", "n", "insert/s", "query ms", "log/s", "claim/s", "insert", "query", "log", "claim"]
    body = [
        [
            r["store"],
            r["level"],
            f"{r['n']:,}",
            _fmt(r["insert_per_s"]),
            _fmt(r["query_ms"], 2),
            _fmt(r["log_per_s"]),
            _fmt(r["claim_per_s"]),
            *(_ratio(r["ratio"], k) for k in ("insert", "query", "log", "claim")),
        ]
        for r in report["rows"]
    ]
    meta = report["meta"]
    parts = [
        f"track-backends bench  {meta['date']}  Python {meta['python']}  {meta['cpus']} cpus  "
        f"load {meta['loadavg_at_start'][0]:.2f}  gc {'on' if meta['gc'] else 'off'}  "
        "(medians; last 4 columns: rate / reference rate)",
        _table(header, body),
    ]
    if report["flatness"]:
        fh = ["store", "level", "n", "insert", "query/trial", "log", "claim"]
        fb = [
            [
                f["store"],
                f["level"],
                f"{f['n_small']:,}->{f['n_large']:,}",
                *(
                    _fmt(f[k], 2) + "x" if f[k] is not None else "-"
                    for k in ("insert", "query_per_trial", "log", "claim")
                ),
            ]
            for f in report["flatness"]
        ]
        parts += ["", "flatness: per-op cost at the largest n / at the smallest n (1.00x = flat)", _table(fh, fb)]
    if checks:
        parts += ["", format_checks(report)]
    return "\n".join(parts)


def format_checks(report: dict[str, Any]) -> str:
    """Render the target checks of a report, one PASS/MISS/SKIP line each."""
    lines = ["targets:"]
    for c in report["checks"]:
        v = c["measured"]
        measured = "-" if v is None else f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
        lines.append(f"  {c['status']}  {c['store']:<10} {c['level']:<9} {c['n']:<16} {c['what']}  (got {measured})")
    if not report["checks"]:
        lines.append("  (no targets apply to these stores)")
    return "\n".join(lines)


def print_progress(line: str) -> None:
    """Progress printer for the command line (to stderr)."""
    print(f"bench: {line}", file=sys.stderr, flush=True)
