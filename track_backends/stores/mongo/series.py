"""Metric points on MongoDB: bounded bucket documents, written in at most three round trips per batch.

The points of a document of ``collection`` live in ``<collection>_points`` (MongoDB's bucket
pattern), per attempt, as buckets numbered 0, 1, 2, ...::

    {"uid": "<uid>:<attempt>:<b>", "trial": "<uid>", "attempt": 0, "b": 7, "n": 812, "s": 26020,
     "names": ["acc", "loss"], "lo": 5600, "hi": 6411, "p": [[name, step, value], ...]}

``n`` counts the bucket's points and ``s`` bounds their BSON size from above: a bucket holds at
most :data:`~.bucketing.BUCKET_POINTS` points and :data:`~.bucketing.BUCKET_BYTES` bytes (a
single larger point fills one alone), so it stays far below MongoDB's 16 MB document limit
however long the series grows. ``names`` lists the bucket's metrics and ``lo``/``hi`` bound its
numeric steps, so a read of some metrics or of a step range skips the buckets that cannot hold
any. Bucket ``-1`` of a series holds no point: it is the registry of every metric name the series
has (see :mod:`.tail`, which reads the last points newest bucket first). The index
``(trial, attempt, b)`` serves the reads; the unique ``uid`` the lookups of given buckets.

An append remembers each series' newest bucket ``(b, n, s)`` and its registered names in the
store (a miss costs about four index lookups, :func:`.tail.newest`) and writes:

1. the summary ``update`` of the document, when given; if it matches nothing (the document is
   gone, or a fenced-out writer's lease token no longer matches), no point is written;
2. names new to this store go to the registry (an upsert with ``$addToSet``);
3. one ``update_one`` that fills the newest bucket, guarded by ``n`` and ``s``; it upserts, so a
   bucket that another writer filled meanwhile fails on the unique ``uid`` instead of silently
   matching nothing;
4. one ordered ``insert_many`` of the new buckets the rest of the batch needs.

A duplicate key in 3 or 4 means another writer moved the newest bucket: what got in stays, the
newest bucket is looked up again and the rest follows, so each writer's points keep their order.
A batch of 10,000 points costs three round trips; one point, two.

Not atomic (MongoDB has no multi-document atomicity outside transactions): a crash after step 1
leaves a summary that counts points which are not stored, and a crash during step 4 keeps the
buckets written before it. ``mongomock://`` stores hold the process-wide mongomock lock over the
steps, which makes an append atomic there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import EncodingError, QueryError, StoreError, TrackBackendsError
from ...store import Query, check_collection
from ..buckets import points_collection
from ..points import check_range, check_strings, select
from .bucketing import (
    Head,
    Plan,
    bucket_filter,
    keep_attempts,
    plan,
    prepare,
)
from .errors import DUPLICATE_CODES, error_code
from .tail import Find, last_points, newest, registry_update

_UIDS_PER_QUERY = 10_000
_MAX_NAME = 63  # of a collection (see store.check_collection)
_MAX_TRIES = 64
_MAX_HEADS = 4096
_READ = {"_id": 0, "trial": 1, "attempt": 1, "b": 1, "p": 1}


class SeriesMixin:
    """The points primitives of :class:`~.store.MongoStore` (see the module docstring)."""

    _heads: dict[tuple[str, str, int], Head]
    _known: dict[tuple[str, str, int], set[str]]  # names this store put in each series' registry
    _lock: Any
    _errors: tuple[type[BaseException], ...]
    _driver: Any

    if TYPE_CHECKING:  # provided by MongoStore

        def _collection(self, name: str) -> Any: ...
        def _writable(self, name: str) -> Any: ...
        def _wrap(self, e: BaseException, what: str, bad_value: type[TrackBackendsError]) -> TrackBackendsError: ...
        def update(
            self, collection: str, query: Query, update: Any, *, many: bool = False, upsert: bool = False
        ) -> int: ...

    def append_points(
        self,
        collection: str,
        uid: str,
        points: Sequence[tuple[str, Any, Any]],
        *,
        attempt: int = 0,
        query: Query = None,
        update: dict[str, Any] | None = None,
    ) -> bool:
        """Append points to bounded buckets, after the document's ``update`` (see the module docstring).

        Returns:
            ``False`` when ``update`` matched nothing (no point was written), else ``True``.

        Raises:
            QueryError: A point, the query, the update or the collection name is malformed.
            EncodingError: A name, step or value cannot be stored.
            LeaseLostError: Never here: the Protocol raises it when this returns ``False``.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise, or other writers kept moving the newest bucket.
        """
        check_collection(collection)
        if type(uid) is not str:
            raise QueryError(f"a uid is a str, got {uid!r:.80}")
        if type(attempt) is not int:
            raise QueryError(f"attempt is an int, got {attempt!r:.80}")
        pts, sizes, names = prepare(points)
        name = points_collection(collection)
        if len(name) > _MAX_NAME:
            raise QueryError(f"collection {collection!r}: its name is too long for a collection of points beside it")
        with self._lock:  # mongomock: the summary and the points in one step
            if update is not None and not self.update(collection, query if query is not None else {"uid": uid}, update):
                return False
            if pts:
                self._append(name, (collection, uid, attempt), pts, sizes, names)
        return True

    def _append(
        self, name: str, key: tuple[str, str, int], pts: list[list[Any]], sizes: list[int], names: list[str]
    ) -> None:
        c = self._writable(name)
        _, uid, attempt = key
        known = self._known.get(key, ())
        new = [n for n in names if n not in known]
        if new:  # names go to the registry before any of their points
            self._register(c, uid, attempt, new)
            self._known.setdefault(key, set()).update(new)
        for _ in range(_MAX_TRIES):
            head = self._heads.get(key)
            if head is None:
                head = newest(self._finder(c, f"reading the newest bucket of {uid!r}"), uid, attempt)
            written, head = self._write_plan(c, plan(uid, attempt, pts, sizes, head), head)
            if head is not None:
                if len(self._heads) >= _MAX_HEADS:
                    self._heads.clear()
                    self._known.clear()
                self._heads[key] = head
                return
            self._heads.pop(key, None)  # another writer moved the newest bucket: look again
            pts, sizes = pts[written:], sizes[written:]
        raise StoreError(f"appending points to {uid!r} in {name!r}: other writers kept moving its newest bucket")

    def _finder(self, c: Any, what: str) -> Find:
        """A query function on collection ``c`` for :mod:`.tail` (driver errors wrapped)."""

        def find(filt: dict[str, Any], projection: dict[str, Any]) -> list[dict[str, Any]]:
            try:
                with self._lock:
                    return list(c.find(filt, projection))
            except self._errors as e:
                raise self._wrap(e, what, QueryError) from e

        return find

    def _register(self, c: Any, uid: str, attempt: int, names: list[str]) -> None:
        """Add metric names to the registry of a series (see :mod:`.tail`)."""
        filt, update = registry_update(uid, attempt, names)
        try:
            with self._lock:
                try:
                    c.update_one(filt, update, upsert=True)
                except self._errors as e:
                    if not self._duplicate(e):
                        raise
                    c.update_one(filt, update)  # another writer created it a moment ago
        except self._errors as e:
            raise self._wrap(e, f"registering the metric names of {uid!r}", EncodingError) from e

    def _duplicate(self, e: BaseException) -> bool:
        return error_code(e) in DUPLICATE_CODES or isinstance(e, self._driver.duplicate)

    def _write_plan(self, c: Any, p: Plan, head: Head) -> tuple[int, Head | None]:
        """Write a plan; return the points written and the new head (``None`` on a stale head)."""
        what = f"appending points to {c.name!r}"
        if p.fill is not None:
            try:
                with self._lock:
                    r = c.update_one(*p.fill, upsert=True)
            except self._errors as e:
                if self._duplicate(e):
                    return 0, None
                raise self._wrap(e, what, EncodingError) from e
            b, n, s = head
            head = (b, p.k, p.size) if r.upserted_id is not None else (b, n + p.k, s + p.size)
        if p.docs:
            try:
                with self._lock:
                    c.insert_many(p.docs, ordered=True)
            except self._errors as e:
                details = getattr(e, "details", None)
                if self._duplicate(e) and isinstance(details, dict) and isinstance(details.get("nInserted"), int):
                    return p.k + sum(d["n"] for d in p.docs[: details["nInserted"]]), None
                raise self._wrap(e, what, EncodingError) from e
            last = p.docs[-1]
            head = (last["b"], last["n"], last["s"])
        return p.k + sum(d["n"] for d in p.docs), head

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
    ) -> dict[str, dict[str, list[tuple[Any, Any]]]]:
        """Read the series of many documents in one query (see :meth:`Store.fetch_points`).

        Only the buckets that can hold wanted points are read (by name and step range). With
        ``last`` and one document, the buckets are read newest first, and only until every
        wanted metric has its last points.

        Raises:
            QueryError: An argument is malformed.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        check_collection(collection)
        check_range(start, stop, last)
        order = check_strings(uids, "uid")
        wanted = None if names is None else check_strings(names, "metric name")
        keep = keep_attempts(order, attempts)
        if not order:
            return {}
        if len(points_collection(collection)) > _MAX_NAME:  # no points can be stored for it
            return {}
        c = self._collection(points_collection(collection))
        filt = bucket_filter(order, wanted, start, stop, keep)
        if last is not None and len(order) == 1:
            got = self._read_back(c, order[0], wanted, (start, stop, last), keep)
            if got is not None:
                return got
        try:
            with self._lock:
                docs = list(c.find(filt, _READ))
        except self._errors as e:
            raise self._wrap(e, f"reading points from {c.name!r}", QueryError) from e
        docs.sort(key=lambda d: (d["trial"], d["attempt"], d["b"]))  # here, not a server-side sort
        flat: dict[str, list[Any]] = {}
        for d in docs:
            if keep is None or d["attempt"] in keep[d["trial"]]:
                flat.setdefault(d["trial"], []).extend(d["p"])
        out = {}
        for uid in order:
            series = select(flat.get(uid, ()), names=wanted, start=start, stop=stop)
            if series and last is not None:  # (select's own last cuts wrong when last > len)
                series = {k: v[-last:] if last else [] for k, v in series.items()}
            if series:
                out[uid] = series
        return out

    def _read_back(
        self,
        c: Any,
        uid: str,
        wanted: list[str] | None,
        bounds: tuple[Any, Any, int],
        keep: dict[str, set[int]] | None,
    ) -> dict[str, dict[str, list[tuple[Any, Any]]]] | None:
        """The last points of one document's series, newest bucket first (``None``: read it all)."""
        if keep is None:  # which attempts exist is not known without reading every bucket
            return None
        start, stop, last = bounds
        find = self._finder(c, f"reading the last points of {uid!r}")
        got = last_points(find, uid, sorted(keep[uid]), wanted, last, (start, stop))
        if got is None:
            return None
        return {uid: got} if got else {}

    def delete_points(self, collection: str, uids: Sequence[str]) -> int:
        """Delete every point of the given documents; return how many buckets were deleted.

        Raises:
            QueryError: The collection name or a uid is malformed.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        check_collection(collection)
        order = check_strings(uids, "uid")
        if not order:
            return 0
        if len(points_collection(collection)) > _MAX_NAME:  # no points can be stored for it
            return 0
        c = self._collection(points_collection(collection))
        try:
            with self._lock:
                return self._delete_buckets(c, collection, order)
        except self._errors as e:
            raise self._wrap(e, f"deleting points from {c.name!r}", QueryError) from e

    def _delete_buckets(self, c: Any, collection: str, uids: list[str]) -> int:
        """Delete the buckets of ``uids`` (driver exceptions pass through)."""
        gone = set(uids)
        for key in [k for k in list(self._heads) + list(self._known) if k[0] == collection and k[1] in gone]:
            self._heads.pop(key, None)
            self._known.pop(key, None)
        n = 0
        for i in range(0, len(uids), _UIDS_PER_QUERY):
            n += c.delete_many({"trial": {"$in": uids[i : i + _UIDS_PER_QUERY]}}).deleted_count
        return n

    def _delete_with_points(self, c: Any, collection: str, filt: dict[str, Any]) -> int:
        """Delete documents and their points: points, documents, then points appended meanwhile.

        A crash between the steps leaves documents without points (a retry finishes the job),
        never points without their document. Driver exceptions pass through.
        """
        name = points_collection(collection)
        if len(name) > _MAX_NAME:  # a name too long to have points
            return c.delete_many(filt).deleted_count
        uids = [d["uid"] for d in c.find(filt, {"_id": 0, "uid": 1}) if type(d.get("uid")) is str]
        buckets = self._collection(name) if uids else None
        if buckets is not None:
            self._delete_buckets(buckets, collection, uids)
        n = c.delete_many(filt).deleted_count
        if buckets is not None and self._driver.name != "mongomock":  # mongomock: under one lock
            self._delete_buckets(buckets, collection, uids)
        return n
