"""The document layout's versions, and how a trial of an older layout is brought forward.

* **Layout 1**: a trial holds its metric points, ``metrics: {name: [[step, value], ...]}``.
* **Layout 2** (:data:`LAYOUT`): points live beside the trial (see
  :meth:`~track_backends.store.Store.append_points`) and the trial holds
  ``metric_summary: {name: {"count", "last", "last_step", "min", "max"}}``.

Every store records the layout it was written with and upgrades an older one when it is opened
(the journal stores rewrite the file at their first write; PostgreSQL migrates the schema;
MongoDB converts the trials once). This module is the one place that knows how.
"""

from __future__ import annotations

from typing import Any

LAYOUT = 2
"""The current document layout."""

ARTIFACTS = "artifacts"
"""Artifact references: ``{"uid": "<trial>/<name>", "trial", "name", "sha256", "size", ...}``."""
CACHE = "cache"
"""Entries of :func:`track_backends.record.cached`: ``{"uid": "<group>/<name>/<key>", "group", ...}``."""
HISTORY = "history"
"""Recorded calls of :func:`track_backends.record.record`: ``{"uid": "<trial>/<n>", "trial", ...}``."""
TRACES = "traces"
"""Stage traces of :func:`track_backends.record.tracing`: ``{"uid": "<trial>/<run>/<seq>", "trial", ...}``."""
BESIDE_TRIALS = (ARTIFACTS, CACHE, HISTORY, TRACES)
"""Collections whose documents belong to a trial (field ``trial``, uid ``<trial>/...``) or a
group (field ``group``): migrations copy them with their trial or group."""


def legacy_points(doc: dict[str, Any]) -> tuple[list[tuple[str, Any, Any]], dict[str, Any] | None] | None:
    """What a layout-1 trial document becomes.

    Args:
        doc: A stored trial document.

    Returns:
        ``None`` when the document holds no in-document metrics; else the points to append to its
        series (in logging order per metric) and the update that drops ``metrics`` and writes the
        summary (``None`` when no point was logged).
    """
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict):
        return None
    from .protocol.metrics import summary_update

    series = {
        name: [(p[0], p[1]) for p in pairs if isinstance(p, list) and len(p) == 2]
        for name, pairs in metrics.items()
        if isinstance(pairs, list)
    }
    points = [(name, step, value) for name, pairs in series.items() for step, value in pairs]
    update = summary_update({k: v for k, v in series.items() if v}) if points else {}
    update["$unset"] = {"metrics": ""}
    return points, update


def attempt_of(doc: dict[str, Any]) -> int:
    """The attempt a trial's points belong to: its current reservation token (0 if it has none)."""
    lease = doc.get("lease")
    token = lease.get("token") if isinstance(lease, dict) else None
    return token if type(token) is int else 0
