"""The metric points primitives of :class:`~.store.PostgresStore`, over the tables of :mod:`.series`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from ...errors import QueryError
from ...store import Document, Query, check_collection
from ..points import check_points, check_range, check_strings
from .core import NeedsPython, StoreCore
from .indexes import Collection
from .jsonb import dumps
from .series import Series, delete_sql, fetch_sql, group_rows, insert_sql, numeric_text


class SeriesMixin(StoreCore):
    """The points primitives of :class:`~.store.PostgresStore` (see the module docstring)."""

    def append_points(
        self,
        collection: str,
        uid: str,
        points: Sequence[tuple[str, Any, Any]],
        *,
        attempt: int = 0,
        query: Query = None,
        update: Document | None = None,
    ) -> bool:
        """Append points and apply ``update`` in one transaction (see :meth:`Store.append_points`).

        The update runs first, on the document matching ``query`` *and* ``{"uid": uid}``; when it
        matches nothing the transaction ends without inserting a point.

        Raises:
            QueryError: The collection name, a point, ``uid``, ``attempt``, the query or the update
                is malformed, or the update does not apply to the document (nothing is written).
            EncodingError: A name, step or value cannot be stored.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        if type(uid) is not str or not uid:
            raise QueryError(f"uid must be a non-empty string, got {uid!r:.80}")
        if type(attempt) is not int:
            raise QueryError(f"attempt must be an int, got {attempt!r:.80}")
        pts = check_points(points)
        payload = dumps(pts, owned=True) if pts else None
        node = upd = target = None
        if update is not None:
            target = query if query is not None else {"uid": uid}
            if not (isinstance(target, dict) and target.get("uid") == uid):
                target = {"$and": [{"uid": uid}, target]}
            node, upd = self._nodes.get(target), self._updates.get(update)
        c = self._colls.get(collection) or self._coll(collection, True)
        assert c is not None and c.points is not None
        if payload is None and upd is None:
            return True
        update_of = None
        if upd is not None and node is not None:
            update_of = functools.partial(self._updater, c, target, node, upd, many=False, inside=True)
        try:
            return bool(self._run(self._points_writer(c, uid, attempt, payload, update_of, False)))
        except NeedsPython:  # the stored summary holds what SQL does not add up exactly
            return bool(self._run(self._points_writer(c, uid, attempt, payload, update_of, True)))

    def _points_writer(
        self,
        c: Collection,
        uid: str,
        attempt: int,
        payload: str | None,
        update_of: Callable[..., Callable[[psycopg.Connection], int]] | None,
        python: bool,
    ) -> Callable[[psycopg.Connection], bool]:
        """The transaction of :meth:`append_points`: the update (SQL, or ``python``), then the INSERT."""
        assert c.points is not None
        stmt = c.cache.get("points_insert")
        if stmt is None:
            stmt = c.cache["points_insert"] = insert_sql(c.points)
        apply = update_of(python=python) if update_of is not None else None

        def write(conn: psycopg.Connection) -> bool:
            # pipelined: an SQL update, the INSERT and COMMIT travel together; a Python
            # update takes one more round trip (BEGIN and its SELECT ... FOR UPDATE)
            with conn.pipeline(), conn.transaction():
                if apply is not None and not apply(conn):
                    return False
                if payload is not None:
                    conn.execute(stmt, (uid, attempt, payload))
            return True

        return write

    def fetch_points(
        self,
        collection: str,
        uids: Sequence[str],
        *,
        names: Sequence[str] | None = None,
        start: Any = None,
        stop: Any = None,
        last: int | None = None,
        attempts: dict[str, int] | None = None,
    ) -> dict[str, Series]:
        """Read many documents' series in one statement (see :meth:`Store.fetch_points`).

        Raises:
            QueryError: The collection name, a uid, a name, an attempt, ``start``, ``stop`` or
                ``last`` is malformed.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        check_range(start, stop, last)
        wanted = check_strings(uids, "uid")
        names = None if names is None else check_strings(names, "metric name")
        atts = None if attempts is None else [attempts.get(u, 0) for u in wanted]
        if atts is not None and any(type(a) is not int for a in atts):
            raise QueryError("attempts maps uids to int attempts")
        if not wanted or names == [] or any(b is not None and b != b for b in (start, stop)):
            return {}  # a NaN bound keeps no step
        c = self._existing(collection)
        if c is None or c.points is None:
            return {}
        key = ("points_fetch", names is not None, start is not None, stop is not None, last is not None)
        built = c.cache.get(key)
        if built is None:
            built = c.cache[key] = fetch_sql(c.points, names=key[1], start=key[2], stop=key[3], last=key[4])
        text, order = built
        values: dict[str, Any] = {
            "uids": wanted,
            "attempts": atts if atts is not None else [None] * len(wanted),
            "names": names,
            "start": None if start is None else numeric_text(start),
            "stop": None if stop is None else numeric_text(stop),
            "last": None if last is None else max(last, 1),
        }
        params = {k: values[k] for k in order}
        rows = self._run(lambda conn: conn.execute(text, params).fetchall(), read=True)
        return group_rows(rows, last == 0)

    def delete_points(self, collection: str, uids: Sequence[str]) -> int:
        """Delete every point of the given documents; return how many points were deleted.

        Raises:
            QueryError: The collection name or a uid is malformed.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: Any other failure of the server.
        """
        check_collection(collection)
        wanted = check_strings(uids, "uid")
        c = self._existing(collection)
        if c is None or c.points is None or not wanted:
            return 0
        stmt = delete_sql(c.points)
        return int(self._run(lambda conn: conn.execute(stmt, (wanted,)).rowcount))
