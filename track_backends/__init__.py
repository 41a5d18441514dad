"""track_backends: interchangeable document stores for experiment tracking.

Pick a store with a URI and get track's persistence Protocol over it::

    from track_backends import get_protocol, Trial

    with get_protocol("pickled:///tmp/store.pkl") as proto:
        proto.new_trial(Trial({"lr": 0.1}, group_id="g"))

``import track_backends`` imports no database driver: a backend's driver is imported when its
scheme is first used.
"""

from typing import TYPE_CHECKING

from .errors import (
    CorruptStoreError,
    DriverNotInstalledError,
    DuplicateKeyError,
    EncodingError,
    InvalidURIError,
    LeaseLostError,
    LockTimeoutError,
    NotFoundError,
    QueryError,
    StoreError,
    StoreUnavailableError,
    TrackBackendsError,
    UnknownSchemeError,
    UnsupportedOperatorError,
)
from .model import Project, Status, Trial, TrialGroup
from .protocol import DocumentProtocol
from .registry import SchemeTakenError, available_schemes, get_protocol, open_store, register, unregister
from .store import Store
from .uri import StoreURI, parse_uri

__version__ = "0.1.0"

if TYPE_CHECKING:  # the lazy names below, for type checkers
    from .migrate import MigrationReport
    from .multiplexer import ProtocolMultiplexer
    from .stores.multiplex import MirrorError, MultiplexStore, multiplex_uri

_LAZY = {
    "ProtocolMultiplexer": "track_backends.multiplexer",
    "MultiplexStore": "track_backends.stores.multiplex",
    "MirrorError": "track_backends.stores.multiplex",
    "multiplex_uri": "track_backends.stores.multiplex",
    "MigrationReport": "track_backends.migrate",
}


def __getattr__(name: str) -> object:
    """Import the multiplexer and the migration report on first use (they pull in more modules).

    The ``migrate`` function lives in :mod:`track_backends.migrate` (a module of the same name).
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'track_backends' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "CorruptStoreError",
    "DocumentProtocol",
    "DriverNotInstalledError",
    "DuplicateKeyError",
    "EncodingError",
    "InvalidURIError",
    "LeaseLostError",
    "LockTimeoutError",
    "MigrationReport",
    "MirrorError",
    "MultiplexStore",
    "NotFoundError",
    "Project",
    "ProtocolMultiplexer",
    "QueryError",
    "SchemeTakenError",
    "Status",
    "Store",
    "StoreError",
    "StoreURI",
    "StoreUnavailableError",
    "TrackBackendsError",
    "Trial",
    "TrialGroup",
    "UnknownSchemeError",
    "UnsupportedOperatorError",
    "available_schemes",
    "get_protocol",
    "multiplex_uri",
    "open_store",
    "parse_uri",
    "register",
    "unregister",
]
