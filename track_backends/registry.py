"""URI scheme registry: ``get_protocol(uri)`` and ``register(scheme, factory)``.

Built-in schemes are registered as ``"module:factory"`` text, so a backend's module, and its
database driver, is imported only when its scheme is first used. Plugins register the same way
through the entry-point group ``track_backends.protocols`` (name = scheme, value =
``"module:factory"``). A factory takes a :class:`~track_backends.uri.StoreURI` and returns a
:class:`~track_backends.store.Store` (or a ready protocol object).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import DriverNotInstalledError, InvalidURIError, StoreError, TrackBackendsError, UnknownSchemeError
from .protocol import DocumentProtocol
from .store import Store
from .uri import StoreURI, mask_password, parse_uri

ENTRY_POINT_GROUP = "track_backends.protocols"
Factory = Callable[[StoreURI], Any]


@dataclass(frozen=True)
class _Entry:
    target: str | Factory
    extra: str | None = None  # the pip extra that brings the driver


_BUILTINS: dict[str, _Entry] = {
    "ephemeral": _Entry("track_backends.stores.memory:from_uri"),
    "pickled": _Entry("track_backends.stores.journal:pickled_from_uri"),
    "file": _Entry("track_backends.stores.journal:file_from_uri"),
    "multiplex": _Entry("track_backends.stores.multiplex:from_uri"),
    "mongodb": _Entry("track_backends.stores.mongo:from_uri", extra="mongo"),
    "mongodb+srv": _Entry("track_backends.stores.mongo:from_uri", extra="mongo"),
    "mongomock": _Entry("track_backends.stores.mongo:mongomock_from_uri", extra="mongomock"),
    "postgresql": _Entry("track_backends.stores.postgres:from_uri", extra="postgres"),
    "postgres": _Entry("track_backends.stores.postgres:from_uri", extra="postgres"),
    "cockroach": _Entry("track_backends.stores.postgres:from_uri", extra="postgres"),
    "cockroachdb": _Entry("track_backends.stores.postgres:from_uri", extra="postgres"),
    "http": _Entry("track_backends.stores.http:from_uri", extra="http"),
    "https": _Entry("track_backends.stores.http:from_uri", extra="http"),
}

_registry: dict[str, _Entry] = dict(_BUILTINS)
_lock = threading.Lock()
_entry_points_loaded = False


def _check_scheme(scheme: Any) -> str:
    if not isinstance(scheme, str) or not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise InvalidURIError(f"bad scheme name {scheme!r}")
    return scheme.lower()


def register(scheme: str, factory: str | Factory, *, replace: bool = False, extra: str | None = None) -> None:
    """Register a store factory for a URI scheme.

    Args:
        scheme: The scheme, e.g. ``"redis"`` (case-insensitive, without ``:``).
        factory: A callable ``factory(uri: StoreURI) -> Store``, or its ``"module:attr"`` path
            (imported on first use).
        replace: Allow replacing a scheme that is already registered.
        extra: The pip extra that installs the factory's driver, named in the error raised when
            the driver is missing.

    Raises:
        InvalidURIError: The scheme is malformed.
        ValueError: The scheme is taken and ``replace`` is false (a :class:`TrackBackendsError`).
    """
    scheme = _check_scheme(scheme)
    if not callable(factory) and not (isinstance(factory, str) and ":" in factory):
        raise InvalidURIError(f"a factory must be callable or a 'module:attr' string, got {factory!r}")
    _load_entry_points()
    with _lock:
        if scheme in _registry and not replace:
            raise SchemeTakenError(f"scheme {scheme!r} is already registered; pass replace=True to replace it")
        _registry[scheme] = _Entry(factory, extra)


class SchemeTakenError(TrackBackendsError, ValueError):
    """``register`` was asked to replace a scheme without ``replace=True``."""


def unregister(scheme: str) -> None:
    """Remove a scheme (built-ins included); unknown schemes are ignored."""
    with _lock:
        _registry.pop(_check_scheme(scheme), None)


def available_schemes() -> list[str]:
    """Return the registered schemes, sorted (entry-point plugins included)."""
    _load_entry_points()
    return sorted(_registry)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    from importlib.metadata import entry_points

    with _lock:
        if _entry_points_loaded:
            return
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            scheme = ep.name.lower()
            if scheme not in _registry:
                _registry[scheme] = _Entry(ep.value)
        _entry_points_loaded = True


def _resolve(scheme: str, entry: _Entry) -> Factory:
    if callable(entry.target):
        return entry.target
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or "a module"
        if missing.split(".")[0] == module_name.split(".")[0] and missing == module_name:
            raise StoreError(f"the factory module {module_name!r} for {scheme}: cannot be found") from e
        hint = f"pip install 'track-backends[{entry.extra}]'" if entry.extra else f"install {missing.split('.')[0]}"
        raise DriverNotInstalledError(
            f"the {scheme}: store needs the {missing.split('.')[0]!r} package, which is not installed; {hint}"
        ) from e
    try:
        factory: Callable[[StoreURI], Any] = getattr(module, attr)
        return factory
    except AttributeError as e:
        raise StoreError(f"the factory {entry.target!r} for {scheme}: does not exist") from e


def open_store(uri: str | StoreURI) -> Store:
    """Open the store a URI names (without wrapping it in a protocol).

    Raises:
        InvalidURIError: The URI is malformed.
        UnknownSchemeError: No store is registered for its scheme; the message lists the known ones.
        DriverNotInstalledError: The scheme's driver is missing; the message names the pip extra.
        StoreError: The store could not be opened.
    """
    parsed = uri if isinstance(uri, StoreURI) else parse_uri(uri)
    _load_entry_points()
    entry = _registry.get(parsed.scheme)
    if entry is None:
        raise UnknownSchemeError(
            f"no store is registered for scheme {parsed.scheme!r} (in {parsed.redacted}); "
            f"known schemes: {', '.join(available_schemes())}"
        )
    factory = _resolve(parsed.scheme, entry)
    try:
        store: Store = factory(parsed)
        return store
    except TrackBackendsError:
        raise
    except Exception as e:  # a plugin's or driver's own exception: wrap it, masking secrets
        raise StoreError(f"could not open {parsed.redacted}: {mask_password(str(e))}") from e


def get_protocol(uri: str | StoreURI | Store) -> DocumentProtocol:
    """Open a store by URI and return the track Protocol over it.

    Args:
        uri: A store URI such as ``"ephemeral:"``, ``"pickled:///abs/store.pkl"``,
            ``"file:relative.jsonl"``, or an already open :class:`Store`.

    Returns:
        A :class:`~track_backends.protocol.DocumentProtocol`; use it as a context manager to
        close the store.
    """
    if isinstance(uri, Store):
        return DocumentProtocol(uri)
    store = open_store(uri)
    return store if isinstance(store, DocumentProtocol) else DocumentProtocol(store)
