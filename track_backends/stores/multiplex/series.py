"""A document's metric series per attempt: read from one store, written whole to another.

:meth:`~track_backends.store.Store.fetch_points` groups points by name but does not say which
attempt each one belongs to: ``attempts={uid: k}`` returns attempt 0's points and attempt
``k``'s, merged. Copying a series faithfully (a mirror's repair, a migration) needs each
attempt's points on their own, so :func:`read_by_attempt` reads them in bulk:

1. every attempt at once (``attempts=None``), to know what must be accounted for;
2. attempt 0 alone (``attempts={uid: 0}``), for the documents that have points;
3. for the documents whose points are not all attempt 0's, each attempt ``k`` the document
   names (its lease ``token`` counts its reservations ``1..token``, and ``previous_attempts``
   lists earlier ones), one bulk read per ``k``; attempt ``k``'s points are what follows attempt
   0's in each merged series (merged reads list attempt 0's points first, then the other
   attempt's, each in logging order).

It then checks that the attempts it found hold every point of step 1, and raises
:class:`SeriesSplitError` when some points belong to attempts the document does not name, or
when a merged read does not start with attempt 0's points: it never guesses. Reading is
therefore one bulk read per attempt number, not per document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import StoreError
from ...layout import attempt_of
from ...query.equality import checksum, same_value
from ...store import Document, Store
from .sync import PrimaryReadError, read_primary

Series = dict[str, list[tuple[Any, Any]]]
ByAttempt = dict[int, Series]
"""``{attempt: {name: [(step, value), ...]}}``; attempts without points are left out."""

APPEND_CHUNK = 5000
"""Points per ``append_points`` call when a series is written whole."""


class SeriesSplitError(StoreError):
    """A document's points cannot be told apart by attempt from what the store returns."""


def known_attempts(doc: Document | None) -> set[int]:
    """The attempts a document's points may belong to: 0, its reservations, its earlier attempts.

    Args:
        doc: The document (``None`` when it is gone: only attempt 0 is known).

    Returns:
        ``{0, 1, ..., lease.token}`` plus the tokens listed in ``previous_attempts``.
    """
    out = {0}
    if not isinstance(doc, dict):
        return out
    out.update(range(1, attempt_of(doc) + 1))
    for entry in doc.get("previous_attempts") or ():
        t = entry.get("token") if isinstance(entry, dict) else None
        if type(t) is int:
            out.add(t)
    return out


def count(series: Mapping[str, Sequence[Any]]) -> int:
    """How many points a series holds."""
    return sum(len(v) for v in series.values())


def as_lists(series: Mapping[str, Sequence[Sequence[Any]]]) -> dict[str, list[list[Any]]]:
    """The series with ``[step, value]`` lists for pairs (the JSON-like form checksums take)."""
    return {name: [[s, v] for s, v in pairs] for name, pairs in series.items()}


def series_checksum(series: Mapping[str, Sequence[Sequence[Any]]]) -> str:
    """The type-aware checksum of a series (names, steps and values, in order; NaN equals NaN).

    A name without points counts as absent; the order of names does not count.
    """
    return checksum(as_lists({k: v for k, v in series.items() if v}))


def same_series(a: Mapping[str, Sequence[Any]], b: Mapping[str, Sequence[Any]]) -> bool:
    """Whether two series hold the same points (type-strict; NaN equals NaN; empty names ignored)."""
    return same_value(as_lists({k: v for k, v in a.items() if v}), as_lists({k: v for k, v in b.items() if v}))


def _after(merged: Series, base: Series, uid: str, attempt: int) -> Series:
    """Attempt ``attempt``'s points: ``merged`` (attempt 0 and it) without attempt 0's, which lead."""
    own: Series = {}
    for name, pairs in merged.items():
        lead = base.get(name, [])
        if not same_value(as_lists({name: pairs[: len(lead)]}), as_lists({name: lead})):
            raise SeriesSplitError(
                f"document {uid!r}: the points of attempt {attempt} of {name!r} do not follow attempt 0's; "
                "cannot tell the attempts apart"
            )
        if len(pairs) > len(lead):
            own[name] = list(pairs[len(lead) :])
    return own


def read_by_attempt(
    store: Store,
    collection: str,
    docs: Mapping[str, Document | None],
    *,
    everything: Mapping[str, Series] | None = None,
) -> dict[str, ByAttempt]:
    """Read the series of many documents, split by attempt (see the module docstring).

    Args:
        store: The store to read.
        collection: The documents' collection.
        docs: ``{uid: document}``; the document names the attempts (``None``: attempt 0 only).
        everything: The result of ``fetch_points(collection, uids)`` if the caller has it.

    Returns:
        ``{uid: {attempt: series}}`` for the documents that have points.

    Raises:
        SeriesSplitError: Some points belong to attempts the document does not name.
        StoreError: The store cannot be read.
    """
    uids = list(docs)
    if everything is None:
        everything = store.fetch_points(collection, uids) if uids else {}
    present = [u for u in uids if count(everything.get(u) or {})]
    if not present:
        return {}
    base = store.fetch_points(collection, present, attempts={u: 0 for u in present})
    out: dict[str, ByAttempt] = {u: ({0: base[u]} if count(base.get(u) or {}) else {}) for u in present}
    mixed = [u for u in present if count(everything[u]) != count(base.get(u) or {})]
    rest = {u: sorted(known_attempts(docs[u]) - {0}) for u in mixed}
    for k in sorted({a for attempts in rest.values() for a in attempts}):
        some = [u for u, attempts in rest.items() if k in attempts]
        got = store.fetch_points(collection, some, attempts={u: k for u in some})
        for u in some:
            own = _after(got.get(u) or {}, base.get(u) or {}, u, k)
            if count(own):
                out[u][k] = own
    for u in rest:
        found = sum(count(s) for s in out[u].values())
        if found != count(everything[u]):
            raise SeriesSplitError(
                f"document {u!r}: {count(everything[u]) - found} of its points belong to attempts "
                f"its document does not name (known: {sorted(known_attempts(docs[u]))})"
            )
    return out


def read_series(primary: Store, collection: str, uids: Sequence[str]) -> dict[str, ByAttempt]:
    """The primary's series of ``uids`` by attempt, for a replay (``{}`` for a uid without points).

    Raises:
        PrimaryReadError: The primary cannot be read.
        SeriesSplitError: A document's points cannot be told apart by attempt.
    """
    docs = read_primary(primary, collection, uids)
    try:
        got = read_by_attempt(primary, collection, {u: docs.get(u) for u in uids})
    except SeriesSplitError:
        raise
    except Exception as e:
        raise PrimaryReadError(e) from e
    return {u: got.get(u, {}) for u in uids}


def write_by_attempt(store: Store, collection: str, uid: str, by_attempt: Mapping[int, Series]) -> int:
    """Append a document's series, attempt by attempt, in chunks; return how many points were written.

    Raises:
        QueryError: A point is malformed.
        EncodingError: The store cannot hold a name, step or value.
        StoreError: The store failed.
    """
    written = 0
    for attempt in sorted(by_attempt):
        points = [(name, s, v) for name, pairs in by_attempt[attempt].items() for s, v in pairs]
        for i in range(0, len(points), APPEND_CHUNK):
            store.append_points(collection, uid, points[i : i + APPEND_CHUNK], attempt=attempt)
        written += len(points)
    return written


def replace_series(store: Store, collection: str, series: Mapping[str, Mapping[int, Series]]) -> int:
    """Make ``store`` hold exactly ``series`` for these uids: delete their points, append each attempt's.

    Idempotent: running it twice leaves the same points. A uid mapped to ``{}`` ends up with none.

    Args:
        store: The store to write.
        collection: The documents' collection.
        series: ``{uid: {attempt: series}}``.

    Returns:
        How many points were written.

    Raises:
        QueryError: A point is malformed.
        EncodingError: The store cannot hold a name, step or value.
        StoreError: The store failed (the uids may then hold part of their points; run it again).
    """
    if not series:
        return 0
    store.delete_points(collection, list(series))
    return sum(write_by_attempt(store, collection, uid, by_attempt) for uid, by_attempt in series.items())


__all__ = [
    "APPEND_CHUNK",
    "ByAttempt",
    "SeriesSplitError",
    "as_lists",
    "count",
    "known_attempts",
    "read_by_attempt",
    "read_series",
    "replace_series",
    "same_series",
    "series_checksum",
    "write_by_attempt",
]
