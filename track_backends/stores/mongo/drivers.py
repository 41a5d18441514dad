"""Driver adapters: what :class:`~.store.MongoStore` needs to know about pymongo and mongomock.

Neither driver is imported when this module is; each adapter imports its own on first use, so
``mongomock://`` works without pymongo, and a missing driver raises
:class:`~track_backends.errors.DriverNotInstalledError` naming the pip extra.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import DriverNotInstalledError


class _NoLock:
    """A context manager that does nothing (pymongo clients are thread-safe)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


NO_LOCK = _NoLock()
MOCK_LOCK = threading.RLock()
"""Serialises every mongomock call: mongomock is not thread-safe, and its clients share one server."""

_mock_client: Any = None


class _Never(Exception):
    """Stands in for a driver exception class that a driver does not have."""


@dataclass(frozen=True)
class Driver:
    """What the store needs to know about pymongo or mongomock.

    Attributes:
        name: ``"pymongo"`` or ``"mongomock"``.
        errors: Every exception a driver call may raise.
        duplicate: The driver's duplicate-key exception.
        bulk: The driver's bulk-write exception (its ``details`` say what got in).
        unavailable: Exceptions that mean the server cannot be reached.
        invalid_operation: The driver's exception for a call on a closed client.
        bad_value: Exceptions raised when BSON cannot encode a value.
        object_id: Makes a new ``_id``.
        index_model: ``pymongo.IndexModel``, or ``None`` when it cannot be imported.
        codec_options: Options added to the client's codec options (plain ints), or ``None``.
        lock: A context manager held around every driver call.
        check_single_updates: Validate single-document updates client-side (mongomock accepts
            updates that MongoDB refuses).
        fam_projection: ``find_one_and_update`` may be given a projection (mongomock returns the
            document before the update when a projection drops ``_id``).
        emulate_min_max: Apply updates with ``$min``/``$max`` client-side (mongomock compares
            with Python's ``min``/``max``, not in BSON order, and fails half-way on mixed types).
    """

    name: str
    errors: tuple[type[BaseException], ...]
    duplicate: type[BaseException]
    bulk: type[BaseException]
    unavailable: tuple[type[BaseException], ...]
    invalid_operation: type[BaseException]
    bad_value: tuple[type[BaseException], ...]
    object_id: Callable[[], Any]
    index_model: Callable[..., Any] | None
    codec_options: dict[str, Any] | None
    lock: Any
    check_single_updates: bool
    fam_projection: bool
    emulate_min_max: bool = False


_drivers: dict[str, Driver] = {}


def import_driver(module: str, extra: str, scheme: str) -> Any:
    """Import a driver module.

    Raises:
        DriverNotInstalledError: The module is missing; the message names the pip extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DriverNotInstalledError(
            f"the {scheme}: store needs the {module!r} package, which is not installed; "
            f"pip install 'track-backends[{extra}]'"
        ) from e


def pymongo_driver() -> Driver:
    """The pymongo adapter (made once per process)."""
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

    d = Driver(
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
        lock=NO_LOCK,
        check_single_updates=False,
        fam_projection=True,
    )
    _drivers["pymongo"] = d
    return d


def mongomock_driver() -> Driver:
    """The mongomock adapter (made once per process)."""
    d = _drivers.get("mongomock")
    if d is not None:
        return d
    mongomock: Any = importlib.import_module("mongomock")  # untyped: its attributes are looked up at run time

    index_model: Any = None
    try:  # mongomock uses pymongo's IndexModel and bson's errors when they are installed
        from pymongo import IndexModel

        index_model = IndexModel
    except ImportError:  # pragma: no cover - exercised only without pymongo
        pass
    try:
        import bson.errors

        bad_value: tuple[type[BaseException], ...] = (bson.errors.BSONError, UnicodeError)
    except ImportError:  # pragma: no cover
        bad_value = (UnicodeError,)
    # mongomock also fails with plain Python exceptions where MongoDB would refuse an operation
    plain = (TypeError, ValueError, AttributeError, KeyError, IndexError, NotImplementedError)
    d = Driver(
        name="mongomock",
        errors=(mongomock.PyMongoError, *plain, *bad_value),
        duplicate=mongomock.DuplicateKeyError,
        bulk=mongomock.BulkWriteError,
        unavailable=(_Never,),
        invalid_operation=mongomock.InvalidOperation,
        bad_value=bad_value,
        object_id=mongomock.ObjectId,
        index_model=index_model,
        codec_options=None,
        lock=MOCK_LOCK,
        check_single_updates=True,
        fam_projection=False,
        emulate_min_max=True,
    )
    _drivers["mongomock"] = d
    return d


def driver_for(client: Any) -> Driver:
    """The adapter of a ``pymongo.MongoClient`` or a ``mongomock.MongoClient``."""
    if type(client).__module__.split(".")[0] == "mongomock":
        return mongomock_driver()
    return pymongo_driver()


def mongomock_client(mongomock: Any) -> Any:
    """The process's one mongomock client (every ``mongomock://`` store shares its server)."""
    global _mock_client
    with MOCK_LOCK:
        if _mock_client is None:
            _mock_client = mongomock.MongoClient()
        return _mock_client


def shared_mongomock_client() -> Any:
    """The process's mongomock client if a ``mongomock://`` store made it, else ``None``."""
    return _mock_client
