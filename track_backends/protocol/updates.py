"""The Protocol's update builders: each mutating method's arguments become one update document.

Every builder returns a MongoDB-style update (``$set``, ``$push``, ``$inc``...) that any store
applies atomically, so ``fetch_and_update_trial(query, attr, ...)`` is exactly one
``store.find_one_and_update``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from ..encoding import check_key
from ..errors import QueryError
from ..model import Status
from ..query import apply_update
from ..query.cache import UPDATES

UpdateDoc = dict[str, Any]


def _status(status: Any) -> Status:
    return Status.from_doc(status)


def _fields(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}.{check_key(k, prefix)}": v for k, v in values.items()}


INTERRUPTS = (KeyboardInterrupt, SystemExit)
"""Exceptions that leave a trial ``Interrupted`` (reservable again at once), not ``Exception``."""

PENDING = ("Created", "Interrupted")
"""Statuses of trials waiting for a worker."""


# -- update builders: (*args, **kwargs) -> update document -----------------------------------------
def start_update() -> UpdateDoc:
    return {"$set": {"status": Status.Running.to_doc(), "metadata.start_time": time.time()}}


def finish_update(
    exc_type: Any = None, exc_val: Any = None, exc_tb: Any = None, *, runtime: float | None = None
) -> UpdateDoc:
    now = time.time()
    fields: dict[str, Any] = {"metadata.end_time": now}
    if runtime is not None:
        fields["metadata.runtime"] = runtime
    update: UpdateDoc = {"$set": fields}
    if exc_type is None:
        fields["status"] = Status.Completed.to_doc()
    else:
        interrupted = isinstance(exc_type, type) and issubclass(exc_type, INTERRUPTS)
        fields["status"] = (Status.Interrupted if interrupted else Status.Exception).to_doc()
        name = getattr(exc_type, "__name__", str(exc_type))
        update["$push"] = {"errors": f"{name}: {exc_val}" if exc_val is not None else name}
    return update


def status_update(status: Any, error: Any = None) -> UpdateDoc:
    update: UpdateDoc = {"$set": {"status": _status(status).to_doc()}}
    if error is not None:
        update["$push"] = {"errors": str(error)}
    return update


def metrics_update(step: Any = None, **metrics: Any) -> UpdateDoc:
    """The summary update of one point per metric (the points themselves are appended beside it)."""
    from .metrics import summary_update

    if not metrics:
        raise QueryError("log_trial_metrics needs at least one metric, e.g. loss=0.1")
    return summary_update({check_key(k, "metric_summary"): [(step, v)] for k, v in metrics.items()})


def set_update(prefix: str) -> Callable[..., UpdateDoc]:
    def build(**values: Any) -> UpdateDoc:
        if not values:
            raise QueryError(f"nothing to set in {prefix!r}: pass keyword arguments")
        return {"$set": _fields(prefix, values)}

    return build


TRIAL_UPDATES: dict[str, Callable[..., UpdateDoc]] = {
    "log_trial_start": start_update,
    "log_trial_finish": finish_update,
    "set_trial_status": status_update,
    "log_trial_metrics": metrics_update,
    "log_trial_arguments": set_update("parameters"),
    "log_trial_metadata": set_update("metadata"),
    "add_trial_tags": set_update("tags"),
}
"""The Protocol methods ``fetch_and_update_trial`` may apply, and their update builders."""

GROUP_UPDATES: dict[str, Callable[..., UpdateDoc]] = {"set_group_metadata": set_update("metadata")}
"""The Protocol methods ``fetch_and_update_group`` may apply."""


def chrono_add(stats: dict[str, Any] | None, value: float) -> dict[str, float]:
    """Add one observation to ``{count,total,mean,min,max,sd}`` (population sd, Welford)."""
    if not stats:
        return {"count": 1, "total": value, "mean": value, "min": value, "max": value, "sd": 0.0}
    n, mean = stats["count"], stats["mean"]
    m2 = stats["sd"] ** 2 * n
    n1 = n + 1
    delta = value - mean
    mean1 = mean + delta / n1
    m2 += delta * (value - mean1)
    return {
        "count": n1,
        "total": stats["total"] + value,
        "mean": mean1,
        "min": min(stats["min"], value),
        "max": max(stats["max"], value),
        "sd": math.sqrt(max(m2, 0.0) / n1),
    }


def mirror(obj: Any, update: UpdateDoc) -> None:
    """Apply an update that the store accepted to the caller's object as well."""
    upd = UPDATES.get(update)
    sub: dict[str, Any] = {}
    for _, parts, _ in upd.ops:
        name = parts[0]
        if hasattr(obj, name) and name not in sub:
            value = getattr(obj, name)
            sub[name] = value.to_doc() if isinstance(value, Status) else value
    apply_update(sub, upd)
    for name, value in sub.items():
        setattr(obj, name, Status.from_doc(value) if name == "status" else value)


# -- leases ---------------------------------------------------------------------------------------
def pending_query() -> dict[str, Any]:
    """Trials waiting for a worker."""
    return {"status.name": {"$in": list(PENDING)}}


def stale_query(now: float) -> dict[str, Any]:
    """Running trials whose lease expired before ``now`` (the store's clock)."""
    return {"status.name": "Running", "lease.expires": {"$lt": now}}


def reserve_update(now: float, lease: float, owner: str) -> UpdateDoc:
    """Hand a trial to ``owner`` until ``now + lease``; a new fencing token, one more attempt."""
    return {
        # status as two scalars: the update's shape then has only scalar parameters (cheap to bind)
        "$set": {
            "status.name": "Running",
            "status.value": Status.Running.value,
            "lease.owner": owner,
            "lease.expires": now + lease,
        },
        "$inc": {"lease.token": 1, "lease.attempts": 1},
    }


def heartbeat_update(now: float, lease: float) -> UpdateDoc:
    """Extend a lease to ``now + lease``."""
    return {"$set": {"lease.expires": now + lease}}


def release_fields() -> dict[str, Any]:
    """The ``$set`` fields that end a lease; its token and attempt count stay."""
    return {"lease.expires": None}


def with_release(update: UpdateDoc) -> UpdateDoc:
    """``update`` that also ends the trial's lease."""
    return {**update, "$set": {**update.get("$set", {}), **release_fields()}}


def requeue_update() -> UpdateDoc:
    """Set a trial whose lease expired back to ``Interrupted``, reservable again."""
    return {"$set": {"status": Status.Interrupted.to_doc(), **release_fields()}}


def and_query(query: dict[str, Any] | None, condition: dict[str, Any]) -> dict[str, Any]:
    """``condition`` restricted to the documents ``query`` matches (``query`` may be empty)."""
    if not query:
        return condition
    if condition.keys().isdisjoint(query):  # the same query, flat: its cache key stays short
        return {**query, **condition}
    return {"$and": [query, condition]}
