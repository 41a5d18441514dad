"""MongoDB stores: ``mongodb://`` and ``mongodb+srv://`` (pymongo), and ``mongomock://`` (in process).

One class, :class:`MongoStore`, serves all three: it wraps a ``pymongo.MongoClient`` or a
``mongomock.MongoClient``. Neither driver is imported by this module; each factory imports its
own, so ``mongomock://`` works without pymongo and a missing driver raises
:class:`~track_backends.errors.DriverNotInstalledError` naming the pip extra.

What the store adds to the driver:

* **One query language.** Every query, update, sort and projection is validated by
  :mod:`track_backends.query` (and cached by ``repr``, as :class:`~.memory.MemoryStore` does)
  before anything is sent, so a malformed query raises the same
  :class:`~track_backends.errors.QueryError` as on every other backend and never reaches the
  server. Queries are sent as written (values normalised to plain Python, e.g. NumPy scalars);
  updates are sent as the normalised document of the validated :class:`~track_backends.query.Update`.
* **Indexes.** The first write to a collection creates a unique index on ``uid`` and the
  collection's :data:`~track_backends.store.DEFAULT_INDEXES` (``(group_id, status.name)`` and
  ``hash`` for trials), in one ``createIndexes`` round trip, once per collection per store.
* **Atomic claims.** :meth:`MongoStore.find_one_and_update` is one ``findAndModify``
  (``find_one_and_update(..., sort=..., return_document=AFTER)``), atomic on any deployment.
* **Errors.** Duplicate keys raise :class:`~track_backends.errors.DuplicateKeyError`; an
  unreachable server :class:`~track_backends.errors.StoreUnavailableError` within the
  ``serverSelectionTimeoutMS`` bound (5 s unless the URI says otherwise); an update the server
  refuses (``$inc`` of a string) :class:`~track_backends.errors.QueryError`; any other driver
  error :class:`~track_backends.errors.StoreError`, with the driver's exception as the cause and
  the password masked in every message.
* **Documents** come back without MongoDB's ``_id`` (and documents may not carry one), with
  64-bit integers as plain ``int``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from ..encoding import encode
from ..encoding import prepare_document as prepare
from ..errors import (
    DriverNotInstalledError,
    DuplicateKeyError,
    EncodingError,
    InvalidURIError,
    QueryError,
    StoreError,
    StoreUnavailableError,
    TrackBackendsError,
)
from ..query import apply_update, parse, parse_projection, parse_sort, parse_update, upsert_seed
from ..query.cache import ParseCache
from ..query.update import Update
from ..store import DEFAULT_INDEXES, Document, Query, Store, check_collection, check_index_keys, check_limit
from ..uri import StoreURI, mask_password

DEFAULT_DATABASE = "track"
DEFAULT_CLIENT_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
    "appname": "track_backends",
}
"""Options :func:`from_uri` passes to ``MongoClient`` unless the URI sets them (any case)."""

_NO_ID = {"_id": 0}
_BAD_DB_CHARS = frozenset('/\\. "$*<>:|?\x00')

# Server error codes (https://www.mongodb.com/docs/manual/reference/error-codes/).
_DUPLICATE_CODES = frozenset({11000, 11001, 12582})
_QUERY_CODES = frozenset(
    {
        2,  # BadValue: $push onto a non-array, $inc overflow, bad regex, ...
        9,  # FailedToParse
        14,  # TypeMismatch: $inc of a string
        28,  # PathNotViable: a field inside a scalar or an array addressed by a name
        40,  # ConflictingUpdateOperators
        52,  # DollarPrefixedFieldName
        54,  # NotSingleValueField
        56,  # EmptyFieldName
        57,  # DottedFieldName
        66,  # ImmutableField
        171,  # CannotIndexParallelArrays
        31249,  # projection path collision
        31250,  # projection path collision
        31253,  # projection mixes inclusion and exclusion
        31254,  # projection mixes exclusion and inclusion
        51091,  # regular expression is invalid
        51108,  # invalid regex flags
    }
)
_TOO_LARGE_CODES = frozenset({10334, 17419, 17420})  # BSONObjectTooLarge, document too large after update
_INDEX_CONFLICT_CODES = frozenset({85, 86})  # IndexOptionsConflict, IndexKeySpecsConflict


class _NoLock:
    """A context manager that does nothing (pymongo clients are thread-safe)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()
_MOCK_LOCK = threading.RLock()  # mongomock is not thread-safe, and its clients share one server
_mock_client: Any = None


class _Never(Exception):
    """Stands in for a driver exception class that a driver does not have."""


@dataclass(frozen=True)
class _Driver:
    """What the store needs to know about pymongo or mongomock."""

    name: str
    errors: tuple[type[BaseException], ...]  # every exception a driver call may raise
    duplicate: type[BaseException]
    bulk: type[BaseException]
    unavailable: tuple[type[BaseException], ...]
    invalid_operation: type[BaseException]
    bad_value: tuple[type[BaseException], ...]  # BSON cannot encode a value
    object_id: Callable[[], Any]
    index_model: Callable[..., Any] | None
    codec_options: dict[str, Any] | None  # options added to the client's codec options
    lock: Any
    check_single_updates: bool  # mongomock: validate single-document updates client-side
    fam_projection: bool  # mongomock: a projection without _id breaks find_one_and_update's AFTER


_drivers: dict[str, _Driver] = {}


def _import(module: str, extra: str, scheme: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DriverNotInstalledError(
            f"the {scheme}: store needs the {module!r} package, which is not installed; "
            f"pip install 'track-backends[{extra}]'"
        ) from e


def _pymongo_driver() -> _Driver:
    d = _drivers.get("pymongo")
    if d is not None:
        return d
    import bson.errors
    import pymongo
    import pymongo.errors as pe
    from bson.codec_options import TypeDecoder, TypeRegistry
    from bson.int64 import Int64

    class _Int64AsInt(TypeDecoder):  # BSON int64 decodes to bson.Int64; documents hold plain ints
        bson_type = Int64

        def transform_bson(self, value: Any) -> int:
            return int(value)

    d = _Driver(
        name="pymongo",
        errors=(pe.PyMongoError, bson.errors.BSONError, UnicodeError),
        duplicate=pe.DuplicateKeyError,
        bulk=pe.BulkWriteError,
        unavailable=(pe.ConnectionFailure,),
        invalid_operation=pe.InvalidOperation,
        bad_value=(bson.errors.BSONError, UnicodeError),
        object_id=bson.ObjectId,
        index_model=pymongo.IndexModel,
        codec_options={"type_registry": TypeRegistry([_Int64AsInt()])},
        lock=_NO_LOCK,
        check_single_updates=False,
        fam_projection=True,
    )
    _drivers["pymongo"] = d
    return d


def _mongomock_driver() -> _Driver:
    d = _drivers.get("mongomock")
    if d is not None:
        return d
    import mongomock

    try:  # mongomock uses pymongo's IndexModel and bson's errors when they are installed
        from pymongo import IndexModel as index_model
    except ImportError:  # pragma: no cover - exercised only without pymongo
        index_model = None
    try:
        import bson.errors

        bad_value: tuple[type[BaseException], ...] = (bson.errors.BSONError, UnicodeError)
    except ImportError:  # pragma: no cover
        bad_value = (UnicodeError,)
    d = _Driver(
        name="mongomock",
        # mongomock also fails with plain Python exceptions where MongoDB would refuse an operation
        errors=(mongomock.PyMongoError, TypeError, ValueError, AttributeError, KeyError, IndexError)
        + (NotImplementedError,)
        + bad_value,
        duplicate=mongomock.DuplicateKeyError,
        bulk=mongomock.BulkWriteError,
        unavailable=(_Never,),
        invalid_operation=mongomock.InvalidOperation,
        bad_value=bad_value,
        object_id=mongomock.ObjectId,
        index_model=index_model,
        codec_options=None,
        lock=_MOCK_LOCK,
        check_single_updates=True,
        fam_projection=False,
    )
    _drivers["mongomock"] = d
    return d


def _driver_for(client: Any) -> _Driver:
    if type(client).__module__.split(".")[0] == "mongomock":
        return _mongomock_driver()
    return _pymongo_driver()


def _plain(value: Any) -> Any:
    """A query as plain Python: NumPy scalars and arrays, tuples and subclasses converted."""
    t = type(value)
    if t is dict:
        return {k: _plain(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_plain(v) for v in value]
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    return encode(value)  # already validated by the parser


def _validated_query(query: Any) -> dict[str, Any]:
    """Validate a query with the shared parser and return it as plain Python."""
    parse(query or {})
    return _plain(query) if query else {}


def _server_projection(projection: Any) -> tuple[dict[str, Any], bool]:
    """The projection to send and whether ``uid`` must be dropped from the results."""
    p = parse_projection(projection)
    if p is None:
        return _NO_ID, False
    if p.include:
        return {**{".".join(parts): 1 for parts in p.paths}, "uid": 1, "_id": 0}, not p.keep_uid
    out = {".".join(parts): 0 for parts in p.paths}
    if not p.keep_uid:
        out["uid"] = 0
    return {**out, "_id": 0}, False


def check_database_name(name: str, where: str = "") -> str:
    """Validate a MongoDB database name (the URI's path).

    Raises:
        InvalidURIError: The name is empty, longer than 63 bytes, or holds a character MongoDB
            refuses (slash, backslash, dot, space, quote, ``$ * < > : | ?``).
    """
    if not name or len(name.encode("utf-8", "surrogatepass")) > 63 or any(ch in _BAD_DB_CHARS for ch in name):
        raise InvalidURIError(
            f"bad MongoDB database name {name!r}{' in ' + where if where else ''}: use at most 63 bytes, "
            'without any of / \\ . space " $ * < > : | ?'
        )
    return name


@dataclass(frozen=True, slots=True)
class _UpdatePlan:
    update: Update
    doc: dict[str, Any]  # the normalised MongoDB update document
    may_fail: bool  # applying it can fail on some documents ($inc of a string, ...)
    fields: dict[str, int]  # projection of the top-level fields it touches, for client-side checks


def _plan_update(update: Update) -> _UpdatePlan:
    doc: dict[str, dict[str, Any]] = {}
    may_fail = False
    tops: dict[str, int] = {}
    for (op, parts, _), (_, path, value) in zip(update.ops, update.to_record()):
        if parts[0] == "_id":
            raise QueryError(f"'_id' is MongoDB's own key and cannot be changed by an update ({op} {path!r})")
        if op in ("$push", "$addToSet"):
            value = {"$each": value}
        elif op == "$unset":
            value = ""
        doc.setdefault(op, {})[path] = value
        if op in ("$inc", "$push", "$addToSet") or (op == "$set" and len(parts) > 1):
            may_fail = True
        tops[parts[0]] = 1
    return _UpdatePlan(update, doc, may_fail, {**tops, "_id": 0})


class MongoStore(Store):
    """A :class:`~track_backends.store.Store` on a MongoDB database (or a mongomock one).

    Args:
        client: A ``pymongo.MongoClient`` or a ``mongomock.MongoClient``.
        database: The database name (default ``"track"``).
        label: How messages name the store (the redacted URI); default from ``database``.
        owns_client: Close ``client`` when the store is closed.

    Deviations from the Store contract, because MongoDB has no multi-document atomicity
    outside transactions (which this store does not use):

    * ``insert_many`` is all-or-nothing on a duplicate key, best-effort: documents of the call
      that got in before the failing one are deleted again before
      :class:`~track_backends.errors.DuplicateKeyError` is raised, so another client may see
      them for a moment (and a connection loss during the clean-up can leave them).
    * ``update(many=True)`` checks the update against every matching document first (one extra
      read of the touched fields, only for updates that can fail: ``$inc``, ``$push``,
      ``$addToSet`` and dotted ``$set``), so an update that does not fit one of them changes
      none. A document changed by another client between that check and the
      ``update_many`` can still make it fail half-way; the error then says so. A unique index
      broken half-way through an ``update_many`` likewise leaves the documents before it
      updated.

    ``mongomock://`` stores serialise every call on one process-wide lock (mongomock is not
    thread-safe) and check single-document updates client-side as well, since mongomock does
    not refuse updates that MongoDB refuses; under the lock that makes them atomic.
    """

    scheme = "mongodb"

    def __init__(
        self, client: Any, database: str = DEFAULT_DATABASE, *, label: str | None = None, owns_client: bool = True
    ) -> None:
        self._driver = d = _driver_for(client)
        self.client = client
        self.database_name = check_database_name(database)
        opts = {}
        if d.codec_options is not None:  # the client's options, with plain dicts and plain ints
            opts["codec_options"] = client.codec_options.with_options(document_class=dict, **d.codec_options)
        self.database = client.get_database(database, **opts)
        self._label = label or f"{d.name} database {database!r}"
        self._owns_client = owns_client
        self._password: str | None = None
        self._lock = d.lock
        self._errors = d.errors
        self._read: dict[str, Any] = {}  # collection name -> driver collection
        self._write: dict[str, Any] = {}  # ... whose default indexes exist
        self._indexes: set[tuple[str, tuple[str, ...], bool]] = set()
        self._queries: ParseCache[dict[str, Any]] = ParseCache(_validated_query)
        self._updates: ParseCache[_UpdatePlan] = ParseCache(lambda u: _plan_update(parse_update(u)))
        self._projections: ParseCache[tuple[dict[str, Any], bool]] = ParseCache(_server_projection)
        self.closed = False
        if d.name == "mongomock":
            self.scheme = "mongomock"

    # -- helpers -----------------------------------------------------------------------------------
    def _collection(self, name: str) -> Any:
        if self.closed:
            raise StoreUnavailableError(f"the {self.scheme}: store {self._label} is closed")
        c = self.database.get_collection(check_collection(name))
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
        self._create_indexes(c, name, specs)
        self._write[name] = c
        return c

    def _create_indexes(self, c: Any, name: str, specs: list[tuple[tuple[str, ...], bool]]) -> None:
        model = self._driver.index_model
        try:
            with self._lock:
                if model is not None:
                    c.create_indexes(
                        [model([(p, 1) for p in paths], **({"unique": True} if u else {})) for paths, u in specs]
                    )
                else:  # pragma: no cover - mongomock without pymongo
                    for paths, u in specs:
                        c.create_index([(p, 1) for p in paths], **({"unique": True} if u else {}))
        except TrackBackendsError:
            raise
        except self._errors as e:
            if not _index_conflict(e):
                raise self._index_error(e, name, specs) from e
            for paths, u in specs:  # an index on the same keys exists under another name or flags
                self._create_index(c, name, paths, u)
        for paths, u in specs:
            self._indexes.add((name, paths, u))

    def _create_index(self, c: Any, name: str, paths: tuple[str, ...], unique: bool) -> None:
        keys = [(p, 1) for p in paths]
        try:
            with self._lock:
                c.create_index(keys, **({"unique": True} if unique else {}))
        except TrackBackendsError:
            raise
        except self._errors as e:
            if not _index_conflict(e):
                raise self._index_error(e, name, [(paths, unique)]) from e
            found = self._existing_unique_flag(c, keys)
            if found is None or found != unique:
                raise QueryError(
                    f"an index on {list(paths)} of {name!r} exists with unique={found} ({self._label}); "
                    f"drop it to create one with unique={unique}"
                ) from e

    def _existing_unique_flag(self, c: Any, keys: list[tuple[str, int]]) -> bool | None:
        """Only on the error path: whether an index on exactly ``keys`` exists, and its flag."""
        try:
            with self._lock:
                for info in c.list_indexes():
                    if list(info["key"].items()) == keys:  # (1.0 == 1 where a server sends doubles)
                        return bool(info.get("unique", False))
        except self._errors as e:
            raise self._wrap(e, "listing indexes", StoreError) from e
        return None

    def _index_error(self, e: BaseException, name: str, specs: list[tuple[tuple[str, ...], bool]]) -> Exception:
        err = self._wrap(e, f"creating the indexes {[list(p) for p, _ in specs]} of {name!r}", QueryError)
        if isinstance(err, DuplicateKeyError):
            unique = [list(p) for p, u in specs if u]
            return DuplicateKeyError(
                f"cannot build the unique index {unique[0] if len(unique) == 1 else unique} of {name!r}: stored "
                f"documents already collide ({self._text(e)}). Documents written without this index (track "
                "created none) can hold duplicates: remove them first."
            )
        return err

    def _query(self, query: Query) -> dict[str, Any]:
        """Validate a query (cached by its exact text) and return it as plain Python.

        ``{"uid": "<ASCII str>"}``, the Protocol's query for every write to one trial, is valid as
        it stands and skips the parser and the cache.
        """
        if type(query) is dict and len(query) == 1:
            uid = query.get("uid")
            if type(uid) is str and uid.isascii():
                return query
        return self._queries.get(query)

    def _update(self, update: Any) -> _UpdatePlan:
        return self._updates.get(update)

    def _projection(self, projection: Any) -> tuple[dict[str, Any], bool]:
        """The server-side projection and whether ``uid`` must be dropped from its results.

        ``uid`` is kept unless excluded, as ``_id`` is in MongoDB; MongoDB cannot exclude a field
        other than ``_id`` from an inclusion, so such a ``uid`` is fetched and dropped here.
        """
        if projection is None:
            return _NO_ID, False
        return self._projections.get(projection)

    def _check_documents(self, c: Any, filt: dict[str, Any], plan: _UpdatePlan, sort: Any, limit: int) -> None:
        """Apply ``plan`` client-side to the documents it would change; raise if it does not fit one."""
        for doc in c.find(filt, plan.fields, sort=sort, limit=limit):
            apply_update(doc, plan.update)

    def _text(self, e: BaseException) -> str:
        """The driver's message, without pymongo's 'full error' dump, password masked, bounded."""
        details = getattr(e, "details", None)
        text = None
        if isinstance(details, dict):
            errs = details.get("writeErrors")
            text = errs[0].get("errmsg") if errs else details.get("errmsg")
        if not isinstance(text, str):
            text = getattr(e, "_message", None)
        if not isinstance(text, str) or not text:
            text = str(e)
        text = mask_password(text)
        pw = self._password
        if pw:
            for form in {pw, quote(pw, safe=""), quote(pw)}:
                text = text.replace(form, "***")
        return text if len(text) <= 500 else text[:500] + "..."

    def _wrap(self, e: BaseException, what: str, bad_value: type[TrackBackendsError]) -> TrackBackendsError:
        """Turn a driver exception into this library's exception (``raise ... from e``)."""
        if isinstance(e, TrackBackendsError):
            return e
        d = self._driver
        code = _code(e)
        text = self._text(e)
        where = f"{what} ({self._label})"
        if code in _DUPLICATE_CODES or isinstance(e, d.duplicate):
            return DuplicateKeyError(f"{where}: duplicate key: {text}")
        if (
            isinstance(e, d.unavailable)
            or getattr(e, "timeout", False) is True
            or (isinstance(e, d.invalid_operation) and "close" in text)
        ):
            return StoreUnavailableError(f"{where}: the server is unavailable: {text}")
        if code in _QUERY_CODES:
            return QueryError(f"{where}: {text}")
        if code in _TOO_LARGE_CODES:
            return EncodingError(f"{where}: {text}")
        if isinstance(e, d.bad_value):
            return bad_value(f"{where}: MongoDB cannot store this value: {text}")
        return StoreError(f"{where}: {d.name} {type(e).__name__}: {text}")

    # -- Store API ---------------------------------------------------------------------------------
    def insert(self, collection: str, doc: Document) -> None:
        """Insert one document (see :meth:`Store.insert`)."""
        prepared = prepare(doc)
        if "_id" in prepared:
            raise EncodingError(_ID_RESERVED)
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
        """Insert documents, all or none, best-effort (see the class docstring)."""
        check_collection(collection)
        prepared = [prepare(d) for d in docs]
        if not prepared:
            return 0
        seen: set[str] = set()
        for d in prepared:
            if "_id" in d:
                raise EncodingError(_ID_RESERVED)
            if d["uid"] in seen:
                raise DuplicateKeyError(f"duplicate uid {d['uid']!r} within one insert_many into {collection!r}")
            seen.add(d["uid"])
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        new_id = self._driver.object_id
        ids = []
        for d in prepared:  # our own ids, so that a failure can take back exactly what got in
            d["_id"] = i = new_id()
            ids.append(i)
        try:
            with self._lock:
                c.insert_many(prepared, ordered=True)
        except TrackBackendsError:
            raise
        except self._errors as e:
            err = self._wrap(e, f"insert_many into {collection!r}", EncodingError)
            details = getattr(e, "details", None) if isinstance(e, self._driver.bulk) else None
            if not isinstance(details, dict) or details.get("nInserted") != 0:
                try:
                    with self._lock:
                        c.delete_many({"_id": {"$in": ids}})
                except self._errors as e2:
                    err.args = (f"{err} (and taking back the documents already inserted failed: {self._text(e2)})",)
            raise err from e
        return len(prepared)

    def find(
        self,
        collection: str,
        query: Query = None,
        *,
        sort: Any = None,
        limit: int | None = None,
        projection: Any = None,
    ) -> list[Document]:
        """Return the documents matching ``query`` (see :meth:`Store.find`)."""
        c = self._read.get(collection)
        if c is None:
            c = self._collection(collection)
        filt = self._query(query)
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
        """Count the documents matching ``query`` (see :meth:`Store.count`)."""
        c = self._read.get(collection)
        if c is None:
            c = self._collection(collection)
        filt = self._query(query)
        try:
            with self._lock:
                return c.count_documents(filt)
        except self._errors as e:
            raise self._wrap(e, f"count in {collection!r}", QueryError) from e

    def update(
        self, collection: str, query: Query, update: Document, *, many: bool = False, upsert: bool = False
    ) -> int:
        """Update the first or every match (see :meth:`Store.update` and the class docstring)."""
        check_collection(collection)
        filt = self._query(query)
        plan = self._update(update)
        if upsert:  # the document an upsert would insert must be storable and have a uid
            seed = upsert_seed(parse(query or {}))
            apply_update(seed, plan.update, inserting=True)
            if "_id" in prepare(seed):
                raise EncodingError(_ID_RESERVED)
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        checked = plan.may_fail and (many or self._driver.check_single_updates)
        try:
            with self._lock:
                if checked:
                    self._check_documents(c, filt, plan, None, 0 if many else 1)
                if many:
                    r = c.update_many(filt, plan.doc, upsert=upsert)
                else:
                    r = c.update_one(filt, plan.doc, upsert=upsert)
        except TrackBackendsError:
            raise
        except self._errors as e:
            err = self._wrap(e, f"update in {collection!r}", EncodingError)
            if many and not isinstance(err, StoreUnavailableError):
                err.args = (
                    f"{err} (MongoDB applies update_many document by document without a transaction: "
                    "documents before the failing one may have been updated)",
                )
            raise err from e
        return 1 if r.upserted_id is not None else r.matched_count

    def find_one_and_update(
        self, collection: str, query: Query, update: Document, *, sort: Any = None
    ) -> Document | None:
        """Atomically update the first match and return it (see :meth:`Store.find_one_and_update`)."""
        check_collection(collection)
        filt = self._query(query)
        plan = self._update(update)
        spec = parse_sort(sort)
        order = list(spec) if spec else None
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        try:
            with self._lock:
                if plan.may_fail and self._driver.check_single_updates:
                    self._check_documents(c, filt, plan, order, 1)
                if self._driver.fam_projection:
                    return c.find_one_and_update(filt, plan.doc, projection=_NO_ID, sort=order, return_document=True)
                doc = c.find_one_and_update(filt, plan.doc, sort=order, return_document=True)
                if doc is not None:
                    del doc["_id"]
                return doc
        except TrackBackendsError:
            raise
        except self._errors as e:
            raise self._wrap(e, f"find_one_and_update in {collection!r}", EncodingError) from e

    def delete(self, collection: str, query: Query) -> int:
        """Delete the documents matching ``query`` (see :meth:`Store.delete`)."""
        c = self._read.get(collection)
        if c is None:
            c = self._collection(collection)
        filt = self._query(query)
        try:
            with self._lock:
                return c.delete_many(filt).deleted_count
        except self._errors as e:
            raise self._wrap(e, f"delete in {collection!r}", QueryError) from e

    def ensure_index(self, collection: str, keys: str | Sequence[str], *, unique: bool = False) -> None:
        """Create an ascending index on the paths unless this store made it already.

        Raises:
            DuplicateKeyError: ``unique`` is asked for and stored documents already collide.
            QueryError: An index on the same paths exists with the other ``unique`` flag.
        """
        check_collection(collection)
        paths = check_index_keys(keys)
        unique = bool(unique)
        c = self._write.get(collection)
        if c is None:
            c = self._writable(collection)
        if paths == ("uid",) or (collection, paths, unique) in self._indexes:
            return
        self._create_index(c, collection, paths, unique)
        self._indexes.add((collection, paths, unique))

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


_ID_RESERVED = "'_id' is reserved for MongoDB's own key: documents identify themselves by 'uid'"


def _code(e: BaseException) -> int | None:
    """The server error code of a driver exception (the first write error's for bulk writes)."""
    details = getattr(e, "details", None)
    if isinstance(details, dict):
        errs = details.get("writeErrors")
        if errs:
            return errs[0].get("code")
    code = getattr(e, "code", None)
    return code if isinstance(code, int) else None


def _index_conflict(e: BaseException) -> bool:
    """Whether creating an index failed because one on the same keys exists with other options."""
    return _code(e) in _INDEX_CONFLICT_CODES or "already exists with different options" in str(e)  # mongomock


def _database(uri: StoreURI, name: str) -> str:
    """The database a URI names (``name`` is its decoded path), or the default one."""
    return check_database_name(name.strip("/") or DEFAULT_DATABASE, uri.redacted)


def _check_client_options(uri: StoreURI) -> None:
    """Refuse option names and values pymongo does not know, naming the option (never its value).

    Each ``name=value`` of the query string is checked on its own, as written (pymongo decodes
    values its own way), so the message can say which one is wrong; pymongo's own messages
    never repeat a value.
    """
    from pymongo.uri_parser import split_options

    query = uri.raw.partition("?")[2].partition("#")[0]
    for piece in re.split("[&;]", query):
        if not piece:
            continue
        try:
            split_options(piece, validate=True, warn=False)
        except Exception as e:  # noqa: BLE001 - ConfigurationError, InvalidURI, ValueError, OSError (tlsCAFile)
            name = unquote(piece.partition("=")[0])
            raise InvalidURIError(f"option {name!r} in {uri.redacted}: {mask_password(str(e))}") from None


def from_uri(uri: StoreURI) -> MongoStore:
    """Registry factory for ``mongodb://`` and ``mongodb+srv://`` URIs.

    The database is the URI's path (default ``track``). Every option of the URI (credentials,
    ``replicaSet``, ``tls``, ``authSource``, timeouts, ...) goes to ``pymongo.MongoClient``;
    ``serverSelectionTimeoutMS`` and ``connectTimeoutMS`` default to 5000 ms here (pymongo's own
    default is 30 s), so an unreachable server fails within about 5 s. Connecting is lazy: the
    first call reaches the server.

    Raises:
        DriverNotInstalledError: pymongo is missing (``pip install 'track-backends[mongo]'``).
        InvalidURIError: The URI, an option or the database name is invalid.
        StoreUnavailableError: A ``mongodb+srv`` host name does not resolve.
    """
    pymongo = _import("pymongo", "mongo", uri.scheme)
    database = _database(uri, uri.path)
    _check_client_options(uri)
    given = {k.lower() for k in uri.params}
    defaults = {k: v for k, v in DEFAULT_CLIENT_OPTIONS.items() if k.lower() not in given}
    try:
        client = pymongo.MongoClient(uri.raw, **defaults)
    except pymongo.errors.ConfigurationError as e:
        text = mask_password(str(e))
        if "DNS" in text or "resolution" in text:
            raise StoreUnavailableError(f"cannot resolve the hosts of {uri.redacted}: {text}") from e
        raise InvalidURIError(f"{uri.redacted}: {text}") from e
    except (pymongo.errors.PyMongoError, ValueError, TypeError) as e:
        raise InvalidURIError(f"{uri.redacted}: {mask_password(str(e))}") from e
    store = MongoStore(client, database, label=uri.redacted)
    store.scheme = uri.scheme
    store._password = uri.password
    return store


def _mongomock_client(mongomock: Any) -> Any:
    global _mock_client
    with _MOCK_LOCK:
        if _mock_client is None:
            _mock_client = mongomock.MongoClient()
        return _mock_client


def mongomock_from_uri(uri: StoreURI) -> MongoStore:
    """Registry factory for ``mongomock://dbname`` (also ``mongomock:dbname``): MongoDB in process.

    Every ``mongomock://`` store of a process shares one in-memory mongomock server, so opening
    the same database name twice sees the same documents (until the process ends); use a new
    name, or ``ephemeral:``, for a fresh store. The URI takes no options.

    Raises:
        DriverNotInstalledError: mongomock is missing (``pip install 'track-backends[mongomock]'``).
        InvalidURIError: The URI has options, or both a host part and a path.
    """
    mongomock = _import("mongomock", "mongomock", uri.scheme)
    uri.check_options(frozenset())
    rest = uri.raw.split(":", 1)[1].split("?", 1)[0].split("#", 1)[0]
    netloc, path = "", rest
    if rest.startswith("//"):
        netloc, _, path = rest[2:].partition("/")
    if netloc and path.strip("/"):
        raise InvalidURIError(f"{uri.redacted}: name the database once, as in mongomock://dbname")
    if "@" in netloc:
        raise InvalidURIError(f"{uri.redacted}: mongomock:// takes no credentials")
    database = _database(uri, unquote(netloc or path))
    store = MongoStore(_mongomock_client(mongomock), database, label=uri.redacted, owns_client=False)
    store.scheme = "mongomock"
    return store


__all__ = ["DEFAULT_CLIENT_OPTIONS", "DEFAULT_DATABASE", "MongoStore", "from_uri", "mongomock_from_uri"]
