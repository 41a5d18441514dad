"""Registry factories: ``mongodb://`` and ``mongodb+srv://`` (pymongo), ``mongomock://`` (in process)."""

from __future__ import annotations

from ...uri import StoreURI
from .drivers import import_driver, mongomock_client
from .store import MongoStore
from .uri import database_name, mongomock_database, open_client


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
    pymongo = import_driver("pymongo", "mongo", uri.scheme)
    database = database_name(uri, uri.path)
    client = open_client(pymongo, uri)
    store = MongoStore(client, database, label=uri.redacted, password=uri.password)
    store.scheme = uri.scheme
    return store


def mongomock_from_uri(uri: StoreURI) -> MongoStore:
    """Registry factory for ``mongomock://dbname`` (also ``mongomock:dbname``): MongoDB in process.

    Every ``mongomock://`` store of a process shares one in-memory mongomock server, so opening
    the same database name twice sees the same documents (until the process ends); use a new
    name, or ``ephemeral:``, for a fresh store. The URI takes no options.

    Raises:
        DriverNotInstalledError: mongomock is missing (``pip install 'track-backends[mongomock]'``).
        InvalidURIError: The URI has options, or both a host part and a path.
    """
    mongomock = import_driver("mongomock", "mongomock", uri.scheme)
    database = mongomock_database(uri)
    store = MongoStore(mongomock_client(mongomock), database, label=uri.redacted, owns_client=False)
    store.scheme = "mongomock"
    return store
