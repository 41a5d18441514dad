"""Creating a collection's indexes once per store, and recognising the ones that exist already."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import DuplicateKeyError, QueryError, StoreError, TrackBackendsError
from .drivers import Driver
from .errors import index_conflict

IndexSpec = tuple[tuple[str, ...], bool]
"""``(paths, unique)`` of an ascending index."""

Wrap = Callable[[BaseException, str, type[TrackBackendsError]], TrackBackendsError]


def _keys(paths: tuple[str, ...]) -> list[tuple[str, int]]:
    return [(p, 1) for p in paths]


def _options(unique: bool) -> dict[str, bool]:
    return {"unique": True} if unique else {}


class IndexMaker:
    """Creates indexes for one store and remembers which it made.

    Args:
        driver: The store's driver adapter.
        label: How messages name the store.
        wrap: The store's driver-exception wrapper.
        text: The store's driver-message reader (password masked).
    """

    def __init__(self, driver: Driver, label: str, wrap: Wrap, text: Callable[[BaseException], str]) -> None:
        self._driver = driver
        self._label = label
        self._wrap = wrap
        self._text = text
        self.made: set[tuple[str, tuple[str, ...], bool]] = set()
        """``(collection, paths, unique)`` of every index this store created or found."""

    def create_many(self, c: Any, name: str, specs: list[IndexSpec]) -> None:
        """Create several indexes of collection ``name`` in one round trip.

        Raises:
            DuplicateKeyError: A unique index cannot be built: stored documents collide.
            QueryError: An index on the same paths exists with the other ``unique`` flag.
        """
        d = self._driver
        try:
            with d.lock:
                if d.index_model is not None:
                    c.create_indexes([d.index_model(_keys(paths), **_options(u)) for paths, u in specs])
                else:  # pragma: no cover - mongomock without pymongo
                    for paths, u in specs:
                        c.create_index(_keys(paths), **_options(u))
        except TrackBackendsError:
            raise
        except d.errors as e:
            if not index_conflict(e):
                raise self._error(e, name, specs) from e
            for paths, u in specs:  # an index on the same keys exists under another name or flags
                self.create(c, name, paths, u)
        for paths, u in specs:
            self.made.add((name, paths, u))

    def create(self, c: Any, name: str, paths: tuple[str, ...], unique: bool) -> None:
        """Create one index, or accept one on the same keys with the same ``unique`` flag.

        Raises:
            DuplicateKeyError: A unique index cannot be built: stored documents collide.
            QueryError: An index on the same paths exists with the other ``unique`` flag.
        """
        keys = _keys(paths)
        d = self._driver
        try:
            with d.lock:
                c.create_index(keys, **_options(unique))
        except TrackBackendsError:
            raise
        except d.errors as e:
            if not index_conflict(e):
                raise self._error(e, name, [(paths, unique)]) from e
            found = self._existing_unique_flag(c, keys)
            if found is None or found != unique:
                raise QueryError(
                    f"an index on {list(paths)} of {name!r} exists with unique={found} ({self._label}); "
                    f"drop it to create one with unique={unique}"
                ) from e
        self.made.add((name, paths, unique))

    def _existing_unique_flag(self, c: Any, keys: list[tuple[str, int]]) -> bool | None:
        """Only on the error path: whether an index on exactly ``keys`` exists, and its flag."""
        try:
            with self._driver.lock:
                for info in c.list_indexes():
                    if list(info["key"].items()) == keys:  # (1.0 == 1 where a server sends doubles)
                        return bool(info.get("unique", False))
        except self._driver.errors as e:
            raise self._wrap(e, "listing indexes", StoreError) from e
        return None

    def _error(self, e: BaseException, name: str, specs: list[IndexSpec]) -> Exception:
        err = self._wrap(e, f"creating the indexes {[list(p) for p, _ in specs]} of {name!r}", QueryError)
        if isinstance(err, DuplicateKeyError):
            unique = [list(p) for p, u in specs if u]
            return DuplicateKeyError(
                f"cannot build the unique index {unique[0] if len(unique) == 1 else unique} of {name!r}: stored "
                f"documents already collide ({self._text(e)}). Documents written without this "
                "index (track created none) can hold duplicates: remove them first."
            )
        return err
