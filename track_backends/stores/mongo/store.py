"""The :class:`MongoStore`: the Store interface on a pymongo or mongomock client."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ...clock import ServerClock
from ...encoding import prepare_document
from ...errors import DuplicateKeyError, EncodingError, QueryError, StoreUnavailableError, TrackBackendsError
from ...query import apply_update, parse_sort, parse_update, upsert_seed
from ...query.cache import ParseCache
from ...store import DEFAULT_INDEXES, Document, Query, Store, check_collection, check_index_keys, check_limit
from .bucketing import BUCKET_INDEX
from .drivers import driver_for
from .emulate import update_documents
from .errors import driver_text, wrap_error
from .gridblobs import GridBlobs
from .indexes import IndexMaker
from .series import SeriesMixin
from .translate import ID_RESERVED, NO_ID, QueryPlan, UpdatePlan, plan_query, plan_update, server_projection
from .upgrade import LAYOUT_COLLECTIONS, LayoutMixin
from .uri import DEFAULT_DATABASE, check_database_name


class MongoStore(GridBlobs, SeriesMixin, LayoutMixin, Store):
    """A :class:`~track_backends.store.Store` on a MongoDB database (or a mongomock one).

    Args:
        client: A ``pymongo.MongoClient`` or a ``mongomock.MongoClient``.
        database: The database name (default ``"track"``).
        label: How messages name the store (the redacted URI); default from ``database``.
        owns_client: Close ``client`` when the store is closed.
        password: The URI's password, masked in every message (in any encoding).

    The first write to a collection creates a unique index on ``uid`` and the collection's
    :data:`~track_backends.store.DEFAULT_INDEXES`, in one ``createIndexes`` round trip, once per
    collection per store. Documents come back without MongoDB's ``_id`` (and may not carry one),
    with 64-bit integers as plain ``int``.

    Deviations from the Store contract, because MongoDB has no multi-document atomicity
    outside transactions (which this store does not use):

    * ``insert_many`` is all-or-nothing on a duplicate key, best-effort: documents of the call
      that got in before the failing one are deleted again before
      :class:`~track_backends.errors.DuplicateKeyError` is raised, so another client may see
      them for a moment (and a connection loss during the clean-up can leave them).
    * ``update(many=True)`` checks the update against every matching document first (one extra
      read of the touched fields, only for updates that can fail: ``$inc``, ``$push``,
      ``$addToSet`` and dotted ``$set``, and only when the query can match more than one
      document), so an update that does not fit one of them changes none. A document changed
      by another client between that check and the ``update_many`` can still make it fail
      half-way; the error then says so. A unique index broken half-way through an
      ``update_many`` likewise leaves the documents before it updated.

    * ``append_points`` updates the document, then writes the points (see :mod:`.series`).
      ``delete`` deletes the documents' points, then the documents, then points appended
      meanwhile: a crash in between leaves documents without points, never the reverse.

    Metric points live in ``<collection>_points`` as bounded bucket documents (:mod:`.series`).
    Before a store first touches ``trials``, it checks the database's document layout and
    converts trials of layout 1 once (:mod:`.upgrade`).

    Blobs (the bytes behind artifacts) are GridFS files of the bucket ``blobs``, named by their
    sha256 (:mod:`.gridblobs`).

    ``mongomock://`` stores serialise every call on one process-wide lock (mongomock is not
    thread-safe) and check single-document updates client-side as well, since mongomock does
    not refuse updates that MongoDB refuses; under the lock that makes them atomic. Updates with
    ``$min``/``$max`` are applied client-side there (:mod:`.emulate`).
    """

    scheme = "mongodb"

    def __init__(
        self,
        client: Any,
        database: str = DEFAULT_DATABASE,
        *,
        label: str | None = None,
        owns_client: bool = True,
        password: str | None = None,
    ) -> None:
        self._driver = d = driver_for(client)
        self.client = client
        self.database_name = check_database_name(database)
        opts = {}
        if d.codec_options is not None:  # the client's options, with plain dicts and plain ints
            opts["codec_options"] = client.codec_options.with_options(document_class=dict, **d.codec_options)
        self.database = client.get_database(database, **opts)
        self._label = label or f"{d.name} database {database!r}"
        self._owns_client = owns_client
        self._password = password
        self._lock = d.lock
        self._errors = d.errors
        self._read: dict[str, Any] = {}  # collection name -> driver collection
        self._write: dict[str, Any] = {}  # ... whose default indexes exist
        self._indexes = IndexMaker(d, self._label, self._wrap, self._text)
        self._queries: ParseCache[QueryPlan] = ParseCache(plan_query)
        self._updates: ParseCache[UpdatePlan] = ParseCache(lambda u: plan_update(parse_update(u)))
        self._projections: ParseCache[tuple[dict[str, Any], bool]] = ParseCache(server_projection)
        self._clock = ServerClock(self._server_time)
        self._heads: dict[tuple[str, str, int], tuple[int, int, int]] = {}  # newest bucket of each series
        self._known: dict[tuple[str, str, int], set[str]] = {}  # names in each series' registry
        self._layout_state: str | None = None
        self._layout_recorded = False
        # one lock on mongomock (its calls hold d.lock, which may be held around this one)
        self._layout_lock = d.lock if d.name == "mongomock" else threading.RLock()
        self.closed = False
        if d.name == "mongomock":
            self.scheme = "mongomock"

    # -- helpers -----------------------------------------------------------------------------------
    def _collection(self, name: str) -> Any:
        if self.closed:
            raise StoreUnavailableError(f"the {self.scheme}: store {self._label} is closed")
        c = self.database.get_collection(check_collection(name))
        if self._layout_state != "checked" and name in LAYOUT_COLLECTIONS:
            self._ensure_layout()
        self._read[name] = c
        return c

    def _writable(self, name: str) -> Any:
        """The collection, after creating its default indexes (once per store)."""
        c = self._write.get(name)
        if c is not None:
            return c
        c = self._read.get(name)
        if c is None:
            c = self._collection(name)
        specs = [(("uid",), True), *DEFAULT_INDEXES.get(name, ())]
        if name.endswith("_points"):
            specs.append(BUCKET_INDEX)
        self._indexes.create_many(c, name, specs)
        if name in LAYOUT_COLLECTIONS and self._layout_state == "checked" and not self._layout_recorded:
            self._record_layout()
        self._write[name] = c
        return c

    def _query(self, query: Query) -> QueryPlan:
        """Validate a query through the shared parser (cached by its exact text)."""
        return self._queries.get(query)

    def _update(self, update: Any) -> UpdatePlan:
        return self._updates.get(update)

    def _projection(self, projection: Any) -> tuple[dict[str, Any], bool]:
        """The server-side projection and whether ``uid`` must be dropped from its results."""
        if projection is None:
            return NO_ID, False
        return self._projections.get(projection)

    def _check_documents(self, c: Any, filt: dict[str, Any], plan: UpdatePlan, sort: Any, limit: int) -> None:
        """Apply ``plan`` client-side to the documents it would change; raise if it does not fit one."""
        for doc in c.find(filt, plan.fields, sort=sort, limit=limit):
            apply_update(doc, plan.update)

    def _text(self, e: BaseException) -> str:
        return driver_text(e, self._password)

    def _wrap(self, e: BaseException, what: str, bad_value: type[TrackBackendsError]) -> TrackBackendsError:
        """Turn a driver exception into this library's exception (``raise ... from e``)."""
        return wrap_error(
            e, what, bad_value, driver=self._driver, label=self._label, client=self.client, password=self._password
        )

    def _server_time(self) -> float:
        if self._driver.name == "mongomock":  # in process: this machine's clock is the server's
            return time.time()
        if self.closed:
            raise StoreUnavailableError(f"{self._label} is closed")
        try:
            with self._lock:
                local_time = self.database.command("hello").get("localTime")
        except self._errors as e:
            raise self._wrap(e, "read the server's clock", QueryError) from e
        if not isinstance(local_time, datetime.datetime):
            return time.time()  # a server that does not say: the best we have
        if local_time.tzinfo is None:
            local_time = local_time.replace(tzinfo=datetime.UTC)
        return local_time.timestamp()

    # -- Store API ---------------------------------------------------------------------------------
    def now(self) -> float:
        """The server's clock (from ``hello``'s ``localTime``), which decides when leases expire.

        Raises:
            StoreUnavailableError: The server cannot be reached.
        """
        return self._clock.now()

    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document (see :meth:`Store.insert`).

        Raises:
            DuplicateKeyError: A document with the same ``uid`` (or unique key) exists.
            EncodingError: The document cannot be stored, has no string ``uid``, or has an ``_id``.
            QueryError: The collection name is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        prepared = prepare_document(doc)
        if "_id" in prepared:
            raise EncodingError(ID_RESERVED)
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        try:
            with self._lock:
                c.insert_one(prepared)
        except TrackBackendsError:
            raise
        except self._errors as e:
            raise self._wrap(e, f"insert into {collection!r}", EncodingError) from e

    def insert_many(self, collection: str, docs: Iterable[Document]) -> int:
        """Insert documents, all or none, best-effort (see the class docstring).

        Raises:
            DuplicateKeyError: One of them collides with a stored document or another one; those
                inserted before it are deleted again.
            EncodingError: A document cannot be stored, has no string ``uid``, or has an ``_id``.
            QueryError: The collection name is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        check_collection(collection)
        prepared = [prepare_document(d) for d in docs]
        if not prepared:
            return 0
        seen: set[str] = set()
        for d in prepared:
            if "_id" in d:
                raise EncodingError(ID_RESERVED)
            if d["uid"] in seen:
                raise DuplicateKeyError(f"duplicate uid {d['uid']!r} within one insert_many into {collection!r}")
            seen.add(d["uid"])
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        ids = []
        for d in prepared:  # our own ids, so that a failure can take back exactly what got in
            d["_id"] = i = self._driver.object_id()
            ids.append(i)
        try:
            with self._lock:
                c.insert_many(prepared, ordered=True)
        except TrackBackendsError:
            raise
        except self._errors as e:
            raise self._take_back(c, ids, e, f"insert_many into {collection!r}") from e
        return len(prepared)

    def _take_back(self, c: Any, ids: list[Any], e: BaseException, what: str) -> TrackBackendsError:
        """Delete the documents of a failed ``insert_many`` that got in; the error to raise."""
        err = self._wrap(e, what, EncodingError)
        details = getattr(e, "details", None) if isinstance(e, self._driver.bulk) else None
        if not isinstance(details, dict) or details.get("nInserted") != 0:
            try:
                with self._lock:
                    c.delete_many({"_id": {"$in": ids}})
            except self._errors as e2:
                err.args = (f"{err} (and taking back the documents already inserted failed: {self._text(e2)})",)
        return err

    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Return the documents matching ``query`` (see :meth:`Store.find`).

        Raises:
            QueryError: The collection name, query, sort, limit or projection is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        c = self._read.get(collection)
        if c is None:
            c = self._collection(collection)
        filt = self._query(query).filter
        spec = parse_sort(sort)
        lim = check_limit(limit)
        proj, drop_uid = self._projection(projection)
        try:
            with self._lock:
                docs = list(c.find(filt, proj, sort=list(spec) if spec else None, limit=lim or 0))
        except self._errors as e:
            raise self._wrap(e, f"find in {collection!r}", QueryError) from e
        if drop_uid:
            for d in docs:
                d.pop("uid", None)
        return docs

    def count(self, collection: str, query: Query = None) -> int:
        """Count the documents matching ``query`` (see :meth:`Store.count`).

        Raises:
            QueryError: The collection name or query is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        c = self._read.get(collection)
        if c is None:
            c = self._collection(collection)
        filt = self._query(query).filter
        try:
            with self._lock:
                return c.count_documents(filt)
        except self._errors as e:
            raise self._wrap(e, f"count in {collection!r}", QueryError) from e

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update the first or every match (see :meth:`Store.update` and the class docstring).

        Raises:
            QueryError: The collection name, query or update is invalid, or the update does not
                fit a matching document (``$inc`` of a string, ...).
            EncodingError: A value cannot be stored, or an upsert would insert an ``_id``.
            DuplicateKeyError: The update (or upsert) breaks a unique index.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        check_collection(collection)
        q = self._query(query)
        plan = self._update(update)
        if upsert:  # the document an upsert would insert must be storable and have a uid
            seed = upsert_seed(q.node)
            apply_update(seed, plan.update, inserting=True)
            if "_id" in prepare_document(seed):
                raise EncodingError(ID_RESERVED)
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        several = many and q.uid is None  # {"uid": x} matches at most one document
        checked = plan.may_fail and (several or self._driver.check_single_updates)
        try:
            with self._lock:
                if plan.min_max and self._driver.emulate_min_max:
                    n = len(update_documents(c, q.filter, plan, limit=0 if many else 1))
                    if n or not upsert:
                        return n
                if checked:
                    self._check_documents(c, q.filter, plan, None, 0 if many else 1)
                if many:
                    r = c.update_many(q.filter, plan.doc, upsert=upsert)
                else:
                    r = c.update_one(q.filter, plan.doc, upsert=upsert)
        except TrackBackendsError:
            raise
        except self._errors as e:
            err = self._wrap(e, f"update in {collection!r}", EncodingError)
            if several and not isinstance(err, StoreUnavailableError):
                err.args = (
                    f"{err} (MongoDB applies update_many document by document without a transaction: "
                    "documents before the failing one may have been updated)",
                )
            raise err from e
        return 1 if r.upserted_id is not None else r.matched_count

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match and return it (one ``findAndModify``).

        See :meth:`Store.find_one_and_update`.

        Raises:
            QueryError: The collection name, query, update or sort is invalid, or the update does
                not fit the selected document.
            EncodingError: A value cannot be stored.
            DuplicateKeyError: The update breaks a unique index.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        check_collection(collection)
        filt = self._query(query).filter
        plan = self._update(update)
        spec = parse_sort(sort)
        order = list(spec) if spec else None
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        try:
            with self._lock:
                if plan.min_max and self._driver.emulate_min_max:
                    docs = update_documents(c, filt, plan, limit=1, sort=order)
                    return {k: v for k, v in docs[0].items() if k != "_id"} if docs else None
                if plan.may_fail and self._driver.check_single_updates:
                    self._check_documents(c, filt, plan, order, 1)
                if self._driver.fam_projection:
                    return c.find_one_and_update(filt, plan.doc, projection=NO_ID, sort=order, return_document=True)
                doc = c.find_one_and_update(filt, plan.doc, sort=order, return_document=True)
                if doc is not None:
                    del doc["_id"]
                return doc
        except TrackBackendsError:
            raise
        except self._errors as e:
            raise self._wrap(e, f"find_one_and_update in {collection!r}", EncodingError) from e

    def delete(self, collection: str, query: Query) -> int:
        """Delete the documents matching ``query`` and their points (see :meth:`Store.delete`).

        Their points go first, then the documents, then points appended meanwhile (see the class
        docstring).

        Raises:
            QueryError: The collection name or query is invalid.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        c = self._read.get(collection)
        if c is None:
            c = self._collection(collection)
        filt = self._query(query).filter
        try:
            with self._lock:
                return self._delete_with_points(c, collection, filt)
        except TrackBackendsError:
            raise
        except self._errors as e:
            raise self._wrap(e, f"delete in {collection!r}", QueryError) from e

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create an ascending index on the paths unless this store made it already.

        Raises:
            DuplicateKeyError: ``unique`` is asked for and stored documents already collide.
            QueryError: The collection name or keys are invalid, or an index on the same paths
                exists with the other ``unique`` flag.
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The driver failed otherwise.
        """
        check_collection(collection)
        paths = check_index_keys(keys)
        unique = bool(unique)
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        if paths == ("uid",) or (collection, paths, unique) in self._indexes.made:
            return
        self._indexes.create(c, collection, paths, unique)

    def close(self) -> None:
        """Close the client (unless shared); later calls raise StoreUnavailableError."""
        if self.closed:
            return
        self.closed = True
        self._read.clear()
        self._write.clear()
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._label}>"
