"""track_backends: interchangeable document stores for experiment tracking.

Pick a store with a URI and get track's persistence Protocol over it::

    from track_backends import get_protocol, Trial

    with get_protocol("pickled:///tmp/store.pkl") as proto:
        proto.new_trial(Trial({"lr": 0.1}, group_id="g"))

``import track_backends`` imports no database driver: a backend's driver is imported when its
scheme is first used.
"""

from .errors import (
    CorruptStoreError,
    DriverNotInstalledError,
    DuplicateKeyError,
    EncodingError,
    InvalidURIError,
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

__all__ = [
    "CorruptStoreError",
    "DocumentProtocol",
    "DriverNotInstalledError",
    "DuplicateKeyError",
    "EncodingError",
    "InvalidURIError",
    "LockTimeoutError",
    "NotFoundError",
    "Project",
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
    "open_store",
    "parse_uri",
    "register",
    "unregister",
]
