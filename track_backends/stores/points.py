"""Metric points shared by every engine: validation, filtering, and the in-memory series table.

A point is ``(name, step, value)``; a trial's points belong to an *attempt* (the reservation
token they were logged under, 0 outside any reservation). Reads return ``{name: [(step, value),
...]}`` in logging order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..encoding import check_key, clone, encode
from ..errors import QueryError

Point = tuple[str, Any, Any]
Series = dict[str, list[tuple[Any, Any]]]


def check_points(points: Sequence[Any]) -> list[list[Any]]:
    """Validate points and copy them as ``[name, step, value]`` lists.

    Raises:
        QueryError: A point is not a ``(name, step, value)`` triple.
        EncodingError: A name, step or value cannot be stored.
    """
    out = []
    for p in points:
        if not isinstance(p, (tuple, list)) or len(p) != 3:
            raise QueryError(f"a point is (name, step, value), got {p!r:.80}")
        name, step, value = p
        check_key(name, "metric_summary")
        out.append([name, encode(step, name), encode(value, name)])
    return out


def check_range(start: Any, stop: Any, last: Any) -> None:
    """Validate the ``start``/``stop``/``last`` arguments of a points read.

    Raises:
        QueryError: ``start`` or ``stop`` is not a number, or ``last`` not a non-negative int.
    """
    for name, v in (("start", start), ("stop", stop)):
        if v is not None and (type(v) is bool or not isinstance(v, (int, float))):
            raise QueryError(f"{name} bounds steps and must be a number, got {v!r:.80}")
    if last is not None and (type(last) is not int or last < 0):
        raise QueryError(f"last must be a non-negative int, got {last!r:.80}")


def check_strings(values: Any, what: str) -> list[str]:
    """Distinct strings (uids, metric names), in their order.

    >>> check_strings(["a", "b", "a"], "uid")
    ['a', 'b']

    Raises:
        QueryError: ``values`` is a string, or holds something else than strings.
    """
    if isinstance(values, (str, bytes)):
        raise QueryError(f"expected a list of {what}s, got {values!r:.80}")
    out = list(dict.fromkeys(values))
    for v in out:
        if type(v) is not str:
            raise QueryError(f"a {what} must be a string, got {v!r:.80}")
    return out


def in_range(step: Any, start: Any, stop: Any) -> bool:
    """Whether a step is a number (not NaN) with ``start <= step < stop`` (``None``: unbounded)."""
    if type(step) is bool or not isinstance(step, (int, float)) or step != step:
        return False
    return (start is None or step >= start) and (stop is None or step < stop)


def select(
    points: Sequence[tuple[str, Any, Any]],
    *,
    names: Sequence[str] | None = None,
    start: Any = None,
    stop: Any = None,
    last: int | None = None,
) -> Series:
    """Group points by name in logging order, keeping only what the read asks for."""
    check_range(start, stop, last)
    wanted = None if names is None else set(names)
    out: Series = {}
    ranged = start is not None or stop is not None
    for name, step, value in points:
        if wanted is not None and name not in wanted:
            continue
        if ranged and not in_range(step, start, stop):
            continue
        out.setdefault(name, []).append((step, value))
    if last is not None:
        out = {k: v[-last:] if last else [] for k, v in out.items()}
    return out


class PointTable:
    """Every trial's points of one collection, in memory: per trial, per attempt, per name, two lists."""

    __slots__ = ("trials",)

    def __init__(self) -> None:
        self.trials: dict[str, dict[int, dict[str, tuple[list[Any], list[Any]]]]] = {}

    def append(self, uid: str, attempt: int, points: Sequence[Sequence[Any]]) -> None:
        """Append validated ``[name, step, value]`` points (they are stored as given, not copied)."""
        series = self.trials.setdefault(uid, {}).setdefault(attempt, {})
        for name, step, value in points:
            s = series.get(name)
            if s is None:
                s = series[name] = ([], [])
            s[0].append(step)
            s[1].append(value)

    def read(
        self,
        uid: str,
        attempt: int | None,
        *,
        names: Sequence[str] | None = None,
        start: Any = None,
        stop: Any = None,
        last: int | None = None,
    ) -> Series:
        """Copies of one trial's series (attempt 0 and ``attempt``, or every attempt when ``None``)."""
        check_range(start, stop, last)
        by_attempt = self.trials.get(uid)
        if not by_attempt:
            return {}
        keep = sorted(by_attempt) if attempt is None else sorted({0, attempt} & set(by_attempt))
        wanted = None if names is None else set(names)
        out: Series = {}
        for a in keep:
            for name, (steps, values) in by_attempt[a].items():
                if wanted is not None and name not in wanted:
                    continue
                pairs = zip(steps, values)
                if start is not None or stop is not None:
                    pairs = ((s, v) for s, v in pairs if in_range(s, start, stop))  # type: ignore[assignment]
                got = [(s, clone(v) if type(v) in (dict, list) else v) for s, v in pairs]
                if got:
                    out.setdefault(name, []).extend(got)
        if last is not None:
            out = {k: v[-last:] if last else [] for k, v in out.items()}
        return out

    def delete(self, uids: Sequence[str]) -> None:
        for uid in uids:
            self.trials.pop(uid, None)

    def records(self, collection: str) -> Iterator[list[Any]]:
        """Journal records that rebuild the table (for a snapshot)."""
        for uid, by_attempt in self.trials.items():
            for attempt, series in by_attempt.items():
                pts = [[name, s, v] for name, (steps, values) in series.items() for s, v in zip(steps, values)]
                yield ["points", collection, uid, attempt, pts, None]
