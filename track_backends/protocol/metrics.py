"""Metric histories: points live beside the trial, a summary lives in it.

Each logged point is appended to the trial's series through the store's points primitives
(:meth:`~track_backends.store.Store.append_points`), which every engine keeps in its natural form
(per-trial arrays, journal records, a table, bounded bucket documents), so the millionth point
costs what the first did. The trial document keeps ``metric_summary: {name: {"count", "last",
"last_step", "min", "max"}}``, which queries filter and sort on; ``min`` and ``max`` ignore NaN
and values that are not numbers. Points logged by a reserved trial carry the reservation's token
(its *attempt*), so that a trial handed out again starts a clean history and reads show the
current attempt's points (plus those logged outside any reservation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..encoding import check_key
from ..errors import QueryError
from ..layout import attempt_of
from ..model import Trial
from ..store import TRIALS, Query
from .leases import LeasedProtocol
from .updates import UpdateDoc, mirror

Series = dict[str, list[tuple[Any, Any]]]
"""``{metric name: [(step, value), ...]}`` in logging order."""

SUMMARY = "metric_summary"


def _number(value: Any) -> bool:
    t = type(value)
    return (t is int or t is float) and value == value


def summary_update(series: Mapping[str, Sequence[tuple[Any, Any]]]) -> UpdateDoc:
    """The update that folds a batch of points into ``metric_summary`` (one atomic step)."""
    inc: dict[str, Any] = {}
    last: dict[str, Any] = {}
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    for name, points in series.items():
        if not points:
            continue
        p = f"{SUMMARY}.{name}"
        inc[f"{p}.count"] = len(points)
        last[f"{p}.last_step"], last[f"{p}.last"] = points[-1]
        nums = [v for _, v in points if _number(v)]
        if nums:
            low[f"{p}.min"] = min(nums)
            high[f"{p}.max"] = max(nums)
    update: UpdateDoc = {"$inc": inc, "$set": last}
    if low:
        update["$min"] = low
        update["$max"] = high
    return update


def check_series(series: Any) -> dict[str, list[tuple[Any, Any]]]:
    """Validate ``{name: [(step, value), ...]}`` (names are field names; pairs are pairs).

    Raises:
        QueryError: The batch is not a mapping of names to lists of ``(step, value)`` pairs, or is empty.
        EncodingError: A metric name cannot be a field name.
    """
    if not isinstance(series, Mapping) or not series:
        raise QueryError(f"a batch maps metric names to [(step, value), ...] lists, got {series!r:.80}")
    out: dict[str, list[tuple[Any, Any]]] = {}
    for name, points in series.items():
        check_key(name, SUMMARY)
        if isinstance(points, (str, bytes)) or not isinstance(points, Iterable):
            raise QueryError(f"metric {name!r}: expected a list of (step, value) pairs, got {points!r:.80}")
        pairs = []
        for pair in points:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise QueryError(f"metric {name!r}: expected (step, value) pairs, got {pair!r:.80}")
            pairs.append((pair[0], pair[1]))
        out[name] = pairs
    if not any(out.values()):
        raise QueryError("the batch holds no points")
    return out


def _flat(series: Mapping[str, Sequence[tuple[Any, Any]]]) -> list[tuple[str, Any, Any]]:
    return [(name, step, value) for name, points in series.items() for step, value in points]


class MetricsProtocol(LeasedProtocol):
    """The Protocol with metric points beside the trial and summaries in it."""

    def log_trial_metrics(self, trial: Trial, step: Any = None, **metrics: Any) -> None:
        """Append the point ``(step, value)`` to the series of each metric given.

        Raises:
            QueryError: No metric was given.
            EncodingError: A name or value cannot be stored.
            LeaseLostError: The trial was reserved again by someone else; nothing changed.
            NotFoundError: The trial is not stored.
        """
        if not metrics:
            raise QueryError("log_trial_metrics needs at least one metric, e.g. loss=0.1")
        self._log(trial, {name: [(step, value)] for name, value in metrics.items()})

    def log_trial_metrics_batch(self, trial: Trial, series: Mapping[str, Sequence[tuple[Any, Any]]]) -> None:
        """Append many points in one store round trip (one fsync on the journal stores).

        Args:
            trial: The trial.
            series: ``{"loss": [(step, value), ...], "acc": [...]}``.

        Raises:
            QueryError: The batch is malformed or empty.
            EncodingError: A name or value cannot be stored.
            LeaseLostError: The trial was reserved again by someone else; nothing changed.
            NotFoundError: The trial is not stored.
        """
        self._log(trial, check_series(series))

    def _log(self, trial: Trial, series: Mapping[str, Sequence[tuple[Any, Any]]]) -> None:
        for name in series:
            check_key(name, SUMMARY)
        update = summary_update(series)
        attempt = trial.fence or 0
        if not self.store.append_points(
            TRIALS, trial.uid, _flat(series), attempt=attempt, query=self._target(trial), update=update
        ):
            raise self._missed(TRIALS, trial)
        mirror(trial, update)  # the summary follows; the series is read back with fetch_metrics

    def fetch_and_update_trial(self, query: Query, attr: str, *args: Any, **kwargs: Any) -> Trial | None:
        """Atomically pick one matching trial and apply a Protocol update method to it.

        ``log_trial_metrics`` updates the chosen trial's summary atomically, then appends its
        points (see :meth:`ProtocolCore.fetch_and_update_trial` for the rest).
        """
        trial = super().fetch_and_update_trial(query, attr, *args, **kwargs)
        if trial is None or attr != "log_trial_metrics":
            return trial
        step = args[0] if args else kwargs.pop("step", None)
        points = [(name, step, value) for name, value in kwargs.items()]
        self.store.append_points(TRIALS, trial.uid, points, attempt=attempt_of({"lease": trial.lease}))
        trial.metrics = {name: [(step, value)] for name, _, value in points}
        return trial

    def get_trial(self, trial: Trial) -> list[Trial]:
        """Every stored revision of the trial (same hash), oldest first, with its series attached."""
        trials = super().get_trial(trial)
        self._attach(trials, None)
        return trials

    def _attach(self, trials: list[Trial], names: Sequence[str] | None) -> None:
        """Read the series of many trials in one bulk read and attach them as ``trial.metrics``."""
        if not trials:
            return
        series = self.store.fetch_points(
            TRIALS, [t.uid for t in trials], names=names, attempts={t.uid: _attempt(t) for t in trials}
        )
        for t in trials:
            t.metrics = series.get(t.uid, {})

    def fetch_metrics(
        self,
        trial: Trial,
        names: Sequence[str] | None = None,
        *,
        start: Any = None,
        stop: Any = None,
        last: int | None = None,
    ) -> Series:
        """The trial's series: ``{name: [(step, value), ...]}`` in logging order.

        Args:
            trial: The trial.
            names: Only these metrics (default: all).
            start: Only points whose step is a number ``>= start``.
            stop: Only points whose step is a number ``< stop``.
            last: Only the last ``last`` points of each series (after ``start``/``stop``).

        Raises:
            QueryError: An argument is malformed.
        """
        got = self.store.fetch_points(
            TRIALS, [trial.uid], names=names, start=start, stop=stop, last=last, attempts={trial.uid: _attempt(trial)}
        )
        return got.get(trial.uid, {})

    def fetch_trials(
        self,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        metrics: bool | Sequence[str] = True,
    ) -> list[Trial]:
        """The trials matching a query, with their series attached (one bulk read per call).

        Args:
            query: A MongoDB-style filter.
            sort: The query language's sort, e.g. ``[("metric_summary.loss.min", 1)]``.
            limit: At most this many trials.
            metrics: ``True`` attaches every series as ``trial.metrics``, a list of names only
                those, ``False`` none (the cheapest: no points are read).
        """
        trials = [Trial.from_doc(d) for d in self.store.find(TRIALS, query, sort=sort, limit=limit)]
        if metrics is not False:
            self._attach(trials, None if metrics is True else list(metrics))
        return trials


def _attempt(trial: Trial) -> int:
    """The attempt whose points a read shows: the trial's current reservation token (0 if none)."""
    return attempt_of({"lease": trial.lease})
