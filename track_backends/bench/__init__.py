"""Benchmark: Orion's trial workload on any store, next to raw references and peers, in one run.

What is measured, for each store URI and each ``n``:

* the workload of :mod:`.workload` (insert, pending query, metric logs, claims, and the
  pending query of a group with a few pending trials in a table of ``n``), at the *store*
  level (raw :class:`~track_backends.store.Store` calls) and the *protocol* level
  (:class:`~track_backends.protocol.DocumentProtocol`);
* a reference row (:mod:`.references`): ``ref:dict`` for memory, ``ref:fsync`` for journals,
  ``ref:psycopg`` (the store's own SQL replayed with plain psycopg) for ``postgresql://`` and
  ``ref:pymongo`` for ``mongodb://``; ratio columns are store / reference, from the same run;
* K-worker concurrent claims (:mod:`.workers`) on stores other processes can open, asserting
  each trial is claimed exactly once across processes;
* peer rows (:mod:`.peers`): Orion's and Optuna's stores, where they can be imported.

Every figure is a median of several runs, each on a fresh store (5, 3 or 1 runs by cost).
Flatness compares per-op costs at the smallest and largest n; ``--check`` compares with the
targets of :mod:`.report`. ``--plot`` (:mod:`.plot`) draws µs/op against n.
"""

from __future__ import annotations

from .peers import PEERS, available_peers
from .references import dict_reference, fsync_reference, psycopg_reference, pymongo_reference, record_codec
from .report import (
    FLAT_LIMIT,
    JOURNAL_SCHEMES,
    POINT_TARGETS,
    TARGET_N,
    check_targets,
    flatness,
    format_checks,
    format_report,
    print_progress,
)
from .runner import DEFAULT_NS, DEFAULT_WORKERS, FULL_NS, LEVELS, REFERENCES, WARMUP_N, Target, default_uris, run
from .workers import SHARED_SCHEMES, concurrent_claims
from .workload import (
    CLAIM_UPDATE,
    GROUP,
    GROUP_PENDING,
    LOG_OPS,
    METRICS,
    PENDING,
    BenchError,
    protocol_workload,
    store_workload,
    trial_doc,
    trial_obj,
)


def plot_report(report: dict, path: str, **kw: object) -> str:
    """Draw the report's µs/op against n (see :func:`.plot.plot_report`); imports matplotlib lazily."""
    from .plot import plot_report as _plot

    return _plot(report, path, **kw)  # type: ignore[arg-type]


__all__ = [
    "CLAIM_UPDATE",
    "DEFAULT_NS",
    "DEFAULT_WORKERS",
    "FLAT_LIMIT",
    "FULL_NS",
    "GROUP",
    "GROUP_PENDING",
    "JOURNAL_SCHEMES",
    "LEVELS",
    "LOG_OPS",
    "METRICS",
    "PEERS",
    "PENDING",
    "POINT_TARGETS",
    "REFERENCES",
    "SHARED_SCHEMES",
    "TARGET_N",
    "WARMUP_N",
    "BenchError",
    "Target",
    "available_peers",
    "check_targets",
    "parse_workers",
    "require_plotting",
    "concurrent_claims",
    "default_uris",
    "dict_reference",
    "flatness",
    "format_checks",
    "format_report",
    "fsync_reference",
    "plot_report",
    "print_progress",
    "protocol_workload",
    "psycopg_reference",
    "pymongo_reference",
    "record_codec",
    "run",
    "store_workload",
    "trial_doc",
    "trial_obj",
]


def parse_workers(text: str) -> list[int]:
    """Parse ``--workers``: ``"1,2,4"`` -> ``[1, 2, 4]``; ``"0"`` or ``"none"`` -> ``[]``.

    Raises:
        argparse.ArgumentTypeError: Not a list of positive counts.
    """
    import argparse

    if text.strip().lower() in ("0", "none", ""):
        return []
    try:
        ks = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r} (e.g. 1,2,4, or 0 for none)") from None
    if any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"worker counts must be positive, got {text!r}")
    return sorted(set(ks))


def require_plotting() -> None:
    """Raise :class:`BenchError` naming the ``bench`` extra unless matplotlib can be imported."""
    from .plot import _import_pyplot

    _import_pyplot()
