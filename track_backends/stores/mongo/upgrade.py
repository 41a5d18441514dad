"""The document layout of a MongoDB database: recorded, and brought forward from layout 1 once.

A database records its layout (:data:`track_backends.layout.LAYOUT`) in the document
``{"_id": "layout", "uid": "layout", "version": 2}`` of the collection :data:`META` (``tb_meta``),
written with the first write to ``trials`` (one upsert on ``_id``, so it needs no index). Before
a store first touches ``trials`` (or its points), it reads that record; when none is there, it
converts every layout-1 trial, one holding ``metrics: {name: [[step, value], ...]}``:

1. its points go to buckets numbered from 0 (:func:`.bucketing.plan`), inserted unordered, a
   duplicate key counting as done: the buckets are a function of the document, so inserting them
   twice writes the same thing once;
2. then one update of the trial, guarded by ``metrics`` still being there, writes
   ``metric_summary`` and unsets ``metrics`` (:func:`track_backends.layout.legacy_points`).

So the conversion is idempotent and safe when several processes open the database at once: a
crash between 1 and 2 leaves the trial in layout 1 and its buckets in place, and the next open
finishes it; two converters write the same buckets, and only one update matches. When every
trial is converted the layout is recorded, and later opens only read the record. A layout newer
than this release's is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import CorruptStoreError, QueryError, TrackBackendsError
from ...layout import LAYOUT, attempt_of, legacy_points
from ...store import TRIALS
from ..buckets import points_collection
from ..points import check_points
from .bucketing import NO_BUCKET, plan, point_sizes
from .tail import registry_doc

META = "tb_meta"
"""The collection that records the database's layout."""
LAYOUT_UID = "layout"
LEGACY: dict[str, Any] = {"metrics": {"$type": "object"}}
"""The trials of layout 1."""
LAYOUT_COLLECTIONS = frozenset({TRIALS, points_collection(TRIALS)})
"""Touching these first makes a store check the layout."""
_PER_READ = 100


class LayoutMixin:
    """The layout check and the layout-1 conversion of :class:`~.store.MongoStore`."""

    _layout_state: str | None  # None (not checked), "checking" or "checked"
    _layout_recorded: bool
    _layout_lock: Any  # re-entrant: the check itself opens the points collection
    _lock: Any
    _errors: tuple[type[BaseException], ...]
    database: Any

    if TYPE_CHECKING:  # provided by MongoStore and SeriesMixin

        def _writable(self, name: str) -> Any: ...
        def _wrap(self, e: BaseException, what: str, bad_value: type[TrackBackendsError]) -> TrackBackendsError: ...
        def _update(self, update: Any) -> Any: ...
        def _duplicate(self, e: BaseException) -> bool: ...

    def _ensure_layout(self) -> None:
        """Check the layout once per store, before any thread of it reads trials.

        Raises:
            CorruptStoreError: See :meth:`_check_layout`.
            StoreUnavailableError: The server cannot be reached.
            StoreError: The driver failed otherwise.
        """
        with self._layout_lock:
            if self._layout_state is None:
                self._check_layout()

    def _check_layout(self) -> None:
        """Read the recorded layout; convert layout-1 trials when none is recorded.

        Raises:
            CorruptStoreError: The database has a newer layout, or a layout-1 trial holds
                points that cannot be stored.
            StoreUnavailableError: The server cannot be reached.
            StoreError: The driver failed otherwise (e.g. a user without write access).
        """
        self._layout_state = "checking"
        try:
            version = self._recorded_layout()
            if version is not None and version > LAYOUT:
                raise CorruptStoreError(
                    f"the database {self.database.name!r} has document layout {version}; this release of "
                    f"track_backends reads layouts up to {LAYOUT}: upgrade track_backends"
                )
            if version == LAYOUT:
                self._layout_recorded = True
            elif self._convert_layout_1():
                self._record_layout()
        except BaseException:
            self._layout_state = None
            raise
        self._layout_state = "checked"

    def _recorded_layout(self) -> int | None:
        try:
            with self._lock:
                doc = self.database.get_collection(META).find_one({"_id": LAYOUT_UID}, {"_id": 0})
        except self._errors as e:
            raise self._wrap(e, "reading the document layout", QueryError) from e
        version = doc.get("version") if doc else None
        return version if type(version) is int else None

    def _record_layout(self) -> None:
        """Record the current layout (``$max``: a newer one recorded meanwhile stays)."""
        meta = self.database.get_collection(META)
        update = {"$max": {"version": LAYOUT}, "$setOnInsert": {"uid": LAYOUT_UID}}
        try:
            with self._lock:
                meta.update_one({"_id": LAYOUT_UID}, update, upsert=True)
        except self._errors as e:
            if not self._duplicate(e):  # else another process recorded it at the same moment
                raise self._wrap(e, "recording the document layout", QueryError) from e
        self._layout_recorded = True

    def _convert_layout_1(self) -> int:
        """Convert every layout-1 trial (see the module docstring); return how many were found."""
        trials = self.database.get_collection(TRIALS)
        n = 0
        while True:
            try:
                with self._lock:
                    uids = [d.get("uid") for d in trials.find(LEGACY, {"_id": 0, "uid": 1})]
            except self._errors as e:
                raise self._wrap(e, "looking for trials of layout 1", QueryError) from e
            uids = [u for u in uids if type(u) is str]
            if not uids:
                return n
            for i in range(0, len(uids), _PER_READ):
                try:
                    with self._lock:
                        docs = list(trials.find({"uid": {"$in": uids[i : i + _PER_READ]}, **LEGACY}, {"_id": 0}))
                except self._errors as e:
                    raise self._wrap(e, "reading trials of layout 1", QueryError) from e
                for doc in docs:
                    self._convert_trial(trials, doc)
                n += len(docs)

    def _convert_trial(self, trials: Any, doc: dict[str, Any]) -> None:
        """Move one layout-1 trial's points to buckets, then write its summary and drop ``metrics``."""
        got = legacy_points(doc)
        if got is None:
            return
        points, update = got
        uid = doc["uid"]
        try:
            pts = check_points(points)
            plan_update = self._update(update)
        except TrackBackendsError as e:
            raise CorruptStoreError(f"trial {uid!r} of layout 1 holds metrics that cannot be stored: {e}") from e
        if pts:
            attempt = attempt_of(doc)
            names = list(dict.fromkeys(p[0] for p in pts))
            buckets = plan(uid, attempt, pts, point_sizes(pts), NO_BUCKET).docs
            self._insert_once(self._writable(points_collection(TRIALS)), [registry_doc(uid, attempt, names), *buckets])
        try:
            with self._lock:
                trials.update_one({"uid": uid, **LEGACY}, plan_update.doc)
        except self._errors as e:
            raise self._wrap(e, f"converting trial {uid!r} of layout 1", QueryError) from e

    def _insert_once(self, c: Any, docs: list[dict[str, Any]]) -> None:
        """Insert documents, those already stored (same ``uid``) counting as inserted."""
        try:
            with self._lock:
                c.insert_many(docs, ordered=False)
        except self._errors as e:
            details = getattr(e, "details", None)
            errs = details.get("writeErrors") if isinstance(details, dict) else None
            if not errs or any(w.get("code") not in (11000, 11001) for w in errs):
                raise self._wrap(e, "writing the points of a trial of layout 1", QueryError) from e
