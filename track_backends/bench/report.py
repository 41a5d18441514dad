"""Flatness, speed targets (``--check``) and the text tables of a bench report."""

from __future__ import annotations

import sys
from typing import Any

from ..uri import parse_uri

TARGET_N = 1_000
"""Point targets are judged at this n (or the smallest n measured)."""
GROUP_TARGET_N = 100_000
"""The group-query target is judged at this n (or the largest n measured, which the line shows)."""
FLAT_LIMIT = 1.3
WORKERS_TARGET_K = 4
JOURNAL_SCHEMES = ("pickled", "file")

# (store kind, level, metric, op, bound, label, judged at: "small" = TARGET_N, "large" = GROUP_TARGET_N)
POINT_TARGETS: list[tuple[str, str, str, str, float, str, str]] = [
    ("memory", "store", "insert_per_s", ">=", 100_000, "inserts/s", "small"),
    ("memory", "store", "claim_per_s", ">=", 50_000, "claims/s", "small"),
    ("memory", "store", "query_ms", "<=", 2.0, "pending query ms", "small"),
    ("memory", "protocol", "insert_per_s", ">=", 40_000, "new_trial/s", "small"),
    ("memory", "protocol", "claim_per_s", ">=", 30_000, "claims/s", "small"),
    ("journal", "store", "ratio.insert", ">=", 0.6, "inserts / raw append+fsync", "small"),
    ("journal", "store", "claim_per_s", ">=", 2_000, "claims/s", "small"),
    ("postgres", "store", "ratio.insert", ">=", 0.8, "inserts / raw psycopg", "small"),
    ("postgres", "store", "ratio.log", ">=", 0.8, "metric logs / raw psycopg", "small"),
    ("postgres", "store", "claim_per_s", ">=", 2_000, "claims/s", "small"),
    ("postgres", "store", "group_query_ms", "<=", 5.0, "group query ms (10 pending)", "large"),
    ("mongo", "store", "ratio.insert", ">=", 0.85, "inserts / raw pymongo", "small"),
    ("mongo", "store", "ratio.claim", ">=", 0.85, "claims / raw pymongo", "small"),
]
FLAT_TARGETS: list[tuple[str, str, str]] = [
    ("memory", "store", "insert"),
    ("memory", "store", "claim"),
    ("journal", "store", "insert"),
    ("journal", "store", "claim"),
    ("postgres", "store", "claim"),
    ("mongo", "store", "claim"),
]
# (level, cost metric, reference cost metric, bound): the cost of one op relative to another op of
# the same row; "any" store kind
RELATIVE_TARGETS: list[tuple[str, str, str, float, str]] = [
    ("protocol", "reserve_per_s", "claim_per_s", 1.2, "reserve cost / plain claim cost"),
    ("protocol", "heartbeat_per_s", "log_per_s", 1.2, "heartbeat cost / one-document update cost"),
]
# (level, metric) flat within FLAT_LIMIT on every store kind
FLAT_EVERYWHERE: list[tuple[str, str]] = [("protocol", "reserve")]
# (store kind, K, minimum speedup of K workers over one)
WORKER_TARGETS: list[tuple[str, int, float]] = [("postgres", WORKERS_TARGET_K, 1.5)]


def kind(scheme: str) -> str:
    """Which references and targets apply: memory, journal, postgres, mongo, or other."""
    if scheme == "ephemeral":
        return "memory"
    if scheme in JOURNAL_SCHEMES:
        return "journal"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("mongodb", "mongodb+srv"):
        return "mongo"
    return "other"


def _n(row: dict[str, Any]) -> int:
    return row["n"]


def _per_op(lo: float | None, hi: float | None) -> float | None:
    """Cost ratio large/small from two rates (``lo`` at small n, ``hi`` at large n)."""
    return lo / hi if lo and hi else None


def flatness(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-op cost at the largest n divided by the cost at the smallest n, per store and level.

    1.0 means flat. The pending query returns all n trials, so its cost is taken per returned
    trial; the group query returns a fixed few, so its whole time is compared.
    """
    out = []
    keys = dict.fromkeys((r["store"], r["uri"], r["level"]) for r in rows)
    for store, uri, level in keys:
        mine = sorted((r for r in rows if (r["store"], r["uri"], r["level"]) == (store, uri, level)), key=_n)
        if len(mine) < 2:
            continue
        lo, hi = mine[0], mine[-1]
        glo, ghi = lo.get("group_query_ms"), hi.get("group_query_ms")
        out.append(
            {
                "store": store,
                "uri": uri,
                "level": level,
                "n_small": lo["n"],
                "n_large": hi["n"],
                "insert": _per_op(lo["insert_per_s"], hi["insert_per_s"]),
                "query_per_trial": (hi["query_ms"] / hi["n"]) / (lo["query_ms"] / lo["n"]) if lo["query_ms"] else None,
                "log": _per_op(lo["log_per_s"], hi["log_per_s"]),
                "claim": _per_op(lo["claim_per_s"], hi["claim_per_s"]),
                "reserve": _per_op(lo.get("reserve_per_s"), hi.get("reserve_per_s")),
                "group_query": ghi / glo if glo and ghi else None,
            }
        )
    return out


def _value(row: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("ratio."):
        return (row["ratio"] or {}).get(metric[6:])
    return row.get(metric)


def check_targets(
    rows: list[dict[str, Any]], flat: list[dict[str, Any]], workers: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Compare the rows with the speed targets.

    Point targets are judged at n=1,000 (or the smallest n measured), the group query at
    n=100,000 (or the largest n measured), flatness between the smallest and largest n, and the
    workers' speedup at the largest n where both 1 and K workers ran.

    Returns:
        One entry per applicable target: ``{"status": "PASS" | "MISS" | "SKIP", "store",
        "level", "n", "what", "target", "measured"}``.
    """
    out: list[dict[str, Any]] = []
    stores = dict.fromkeys((r["store"], r["uri"]) for r in rows if r["level"] != "peer")
    for store, uri in stores:
        k = kind(parse_uri(uri).scheme)
        mine = [r for r in rows if r["uri"] == uri]
        for tk, level, metric, op, bound, label, at in POINT_TARGETS:
            here = [r for r in mine if r["level"] == level]
            if tk != k or not here:
                continue
            want = TARGET_N if at == "small" else GROUP_TARGET_N
            pick = min(here, key=_n) if at == "small" else max(here, key=_n)
            row = next((r for r in here if r["n"] == want), pick)
            v = _value(row, metric)
            ok = v is not None and (v >= bound if op == ">=" else v <= bound)
            out.append(_entry(ok, store, level, f"n={row['n']:,}", f"{label} {op} {bound:,}", v))
        for tk, level, metric in FLAT_TARGETS:
            if tk != k or not any(r["level"] == level for r in mine):
                continue
            f = next((f for f in flat if f["uri"] == uri and f["level"] == level), None)
            what = f"{metric} cost(large n)/cost(small n) <= {FLAT_LIMIT}"
            if f is None:
                out.append(_entry(None, store, level, "one n", what, None))
            else:
                where = f"n={f['n_small']:,}->{f['n_large']:,}"
                ok = f[metric] is not None and f[metric] <= FLAT_LIMIT
                out.append(_entry(ok, store, level, where, what, f[metric]))
        out.extend(_relative_checks(store, mine))
        for level, metric in FLAT_EVERYWHERE:
            f = next((f for f in flat if f["uri"] == uri and f["level"] == level), None)
            if f is not None and f.get(metric) is not None:
                where = f"n={f['n_small']:,}->{f['n_large']:,}"
                what = f"{metric} cost(large n)/cost(small n) <= {FLAT_LIMIT}"
                out.append(_entry(f[metric] <= FLAT_LIMIT, store, level, where, what, f[metric]))
        for tk, kk, bound in WORKER_TARGETS:
            if tk != k or workers is None:
                continue
            what = f"{kk} workers' claims/s / 1 worker's >= {bound}"
            mine_w = [w for w in workers if w["uri"] == uri and w.get("speedup") is not None and w["k"] == kk]
            if not mine_w:
                out.append(_entry(None, store, f"workers={kk}", "-", what, None))
                continue
            w = max(mine_w, key=_n)
            out.append(_entry(w["speedup"] >= bound, store, f"workers={kk}", f"n={w['n']:,}", what, w["speedup"]))
    return out


# (store kind or "any", metric, op, bound, label)
HISTORY_TARGETS: list[tuple[str, str, str, float, str]] = [
    ("any", "point_flat", "<=", 1.3, "per-point cost at the long series / at 1k points"),
    ("memory", "batch_per_s", ">=", 200_000, "batched points/s"),
    ("journal", "batch_per_s", ">=", 50_000, "batched points/s"),
    ("postgres", "batch_per_s", ">=", 50_000, "batched points/s"),
    ("mongo", "batch_ratio", ">=", 0.85, "batched points/s / raw pymongo insert_many"),
    ("memory", "read_ms", "<=", 50, "read the long series, ms"),
    ("journal", "read_ms", "<=", 50, "read the long series, ms"),
    ("postgres", "read_ms", "<=", 200, "read the long series, ms"),
    ("any", "fetch_no_metrics_ratio", "<=", 1.5, "fetch_trials(metrics=False) with points / without"),
]


def check_history(history: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compare the history phase with its targets, and the memory store's unbatched log with Optuna's."""
    out = []
    optuna = [r for r in rows if r["store"] == "optuna-inmemory" and r.get("log_per_s")]
    for h in history:
        k = kind(parse_uri(h["uri"]).scheme)
        values = {**h, "batch_ratio": h["batch_per_s"] / h["ref_batch_per_s"] if h.get("ref_batch_per_s") else None}
        where = f"{h['points']:,} points"
        for tk, metric, op, bound, label in HISTORY_TARGETS:
            if tk not in ("any", k):
                continue
            v = values.get(metric)
            ok = None if v is None else (v >= bound if op == ">=" else v <= bound)
            out.append(_entry(ok, h["store"], "history", where, f"{label} {op} {bound:,}", v))
        if k == "memory" and optuna:
            ratio = (1e6 / h["point_us_small"]) / max(r["log_per_s"] for r in optuna)
            out.append(
                _entry(ratio >= 0.5, h["store"], "history", "unbatched", "log/s / Optuna InMemory's >= 0.5", ratio)
            )
    return out


def _relative_checks(store: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The :data:`RELATIVE_TARGETS` of one store, judged at n=1,000 (or its smallest n)."""
    out = []
    for level, metric, ref, bound, label in RELATIVE_TARGETS:
        here = [r for r in rows if r["level"] == level and r.get(metric)]
        if not here:
            continue
        row = next((r for r in here if r["n"] == TARGET_N), min(here, key=_n))
        cost = row[ref] / row[metric] if row.get(ref) else None
        ok = cost is not None and cost <= bound
        out.append(_entry(ok, store, level, f"n={row['n']:,}", f"{label} <= {bound}", cost))
    return out


def _entry(ok: bool | None, store: str, level: str, n: str, what: str, v: float | None) -> dict[str, Any]:
    status = "SKIP" if ok is None else "PASS" if ok else "MISS"
    return {"status": status, "store": store, "level": level, "n": n, "what": what, "measured": v}


# -- formatting ---------------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{v:,.0f}"


def table(header: list[str], body: list[list[str]], left: int = 3) -> str:
    """Align a text table: the first ``left`` columns to the left, the others to the right."""
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    lines = []
    for i, cells in enumerate([header, *body]):
        lines.append(
            "  ".join(
                c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _ratio(r: dict[str, Any] | None, key: str) -> str:
    v = (r or {}).get(key)
    return "-" if v is None else f"{v:.2f}x"


RATIO_KEYS = ("insert", "query", "log", "claim", "group")


def _history_table(history: list[dict[str, Any]]) -> str:
    head = ["store", "points", "us/pt @1k", "us/pt @long", "flat", "batch pts/s", "raw pts/s", "read ms", "fetch ratio"]
    body = [
        [
            h["store"],
            f"{h['points']:,}",
            _fmt(h["point_us_small"], 1),
            _fmt(h["point_us_large"], 1),
            f"{h['point_flat']:.2f}x",
            _fmt(h["batch_per_s"]),
            _fmt(h.get("ref_batch_per_s")),
            _fmt(h["read_ms"], 1),
            f"{h['fetch_no_metrics_ratio']:.2f}x",
        ]
        for h in history
    ]
    title = (
        "history: metric points in one trial (unbatched log cost at 1k points and at the long series, "
        "batched rate, reading the series, fetch_trials(metrics=False) over 1,000 trials with points / without)"
    )
    return title + "\n" + table(head, body)


def format_report(report: dict[str, Any], *, checks: bool = False) -> str:
    """Render a report as text: results, workers, flatness, notes, and optionally the checks."""
    header = ["store", "level", "n", "insert/s", "query ms", "log/s", "claim/s", "group ms", "reserve/s", "beat/s"]
    header += RATIO_KEYS
    body = [
        [
            r["store"],
            r["level"],
            f"{r['n']:,}",
            _fmt(r["insert_per_s"]),
            _fmt(r["query_ms"], 2),
            _fmt(r["log_per_s"]),
            _fmt(r["claim_per_s"]),
            _fmt(r.get("group_query_ms"), 2),
            _fmt(r.get("reserve_per_s")),
            _fmt(r.get("heartbeat_per_s")),
            *(_ratio(r["ratio"], k) for k in RATIO_KEYS),
        ]
        for r in report["rows"]
    ]
    meta = report["meta"]
    parts = [
        f"track-backends bench  {meta['date']}  Python {meta['python']}  {meta['cpus']} cpus  "
        f"load {meta['loadavg_at_start'][0]:.2f} -> {meta.get('loadavg_at_end', [0.0])[0]:.2f}  "
        f"gc {'on' if meta['gc'] else 'off'}",
        "(medians; group ms = pending query of the group with 10 of n trials pending; "
        "last 5 columns: store rate / reference rate, reference = the ref:* row of the same store)",
        table(header, body),
    ]
    if report.get("history"):
        parts += ["", _history_table(report["history"])]
    if report.get("artifacts"):
        from .artifacts import artifacts_table

        parts += ["", artifacts_table(report["artifacts"])]
    if report.get("record"):
        from .recording import recording_table

        parts += ["", recording_table(report["record"])]
    if report.get("workers"):
        parts += ["", "concurrent claims: K processes claim from one store until none is left (each trial once)"]
        wh = ["store", "n", "workers", "claims/s", "speedup", "per worker", "note"]
        wb = [
            [
                w["store"],
                f"{w['n']:,}" if w["n"] else "-",
                str(w["k"]) if w["k"] else "-",
                _fmt(w["claim_per_s"]),
                "-" if w.get("speedup") is None else f"{w['speedup']:.2f}x",
                "/".join(str(c) for c in w.get("per_worker") or []) or "-",
                w.get("note") or "",
            ]
            for w in report["workers"]
        ]
        parts.append(table(wh, wb, left=1))
    if report["flatness"]:
        fh = ["store", "level", "n", "insert", "query/trial", "log", "claim", "group"]
        fb = [
            [
                f["store"],
                f["level"],
                f"{f['n_small']:,}->{f['n_large']:,}",
                *(
                    _fmt(f[k], 2) + "x" if f[k] is not None else "-"
                    for k in ("insert", "query_per_trial", "log", "claim", "group_query")
                ),
            ]
            for f in report["flatness"]
        ]
        parts += ["", "flatness: per-op cost at the largest n / at the smallest n (1.00x = flat)", table(fh, fb)]
    if report.get("notes"):
        parts += ["", *(f"note: {n}" for n in report["notes"])]
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
